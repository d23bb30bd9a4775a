"""hostile26: the cap destroys another pull request's preview before this one's `pulumi preview`/`up` has
shown that it can come up. A preview that then fails (the policy pack refuses it, a create fails) costs a
working preview of someone else for nothing; a pull request that fails on every push destroys one per push.

Cause: ops/previews/lifecycle.py `preview_up` calls `enforce_cap` before `engine.up` (whose first step, the
preview with the pack, is what could refuse it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.cf_double.faults import Fault
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.test_preview_lifecycle import run

# Whole previews brought up against the API double: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow


def test_a_preview_that_fails_to_come_up_destroys_nobody_elses(
        project: Path, api: CloudflareDouble, engine: DoubleEngine, staging_seeded: Any) -> None:
    staging = project / "Pulumi.staging.yaml"
    staging.write_text(staging.read_text() + "  booking:previewCap: 2\n")
    for pr in (1, 2):
        code, out = run(project, api, "up", "--pr", str(pr))
        assert code == 0, out
    api.inject(Fault("POST", r"/d1/database$", 500, times=10))  # pull request 3's D1 cannot be created
    code, out = run(project, api, "up", "--pr", "3")
    assert code != 0
    assert sorted(engine.states) in (["pr-1", "pr-2"], ["pr-1", "pr-2", "pr-3"]), (
        f"live stacks after pr-3 failed: {sorted(engine.states)}; "
        f"'destroying pr-1' in its output: {'destroying pr-1' in out}")
