"""Backups as another tool (or a test's fixture) would make them: a manifest given another source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ops.backups.backups import source_digest


def relabel(manifest: Path, source: dict[str, Any], *, bind: bool = True) -> None:
    """Give the backup of `manifest` another `source`, bound to its dump as bookingctl binds it
    (`bind=False`: without the binding, as a manifest written before it existed)."""
    data = json.loads(manifest.read_text())
    data["source"] = source
    if bind:
        data["source_sha256"] = source_digest(data["sha256"], source)
    else:
        data.pop("source_sha256", None)
    manifest.write_text(json.dumps(data))
