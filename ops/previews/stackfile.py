"""`Pulumi.pr-N.yaml`: a pull request's preview stack file, derived from staging's and read back.

Written whole or not at all: the new text goes to a partial file renamed into place, then is read as
the program reads it; anything that refuses it (the model, another stack serving its hostname,
Ctrl-C) puts back the file that was there (a push re-derives an existing preview) or removes it.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import yaml

from booking_shared import safeyaml
from booking_shared.project import STACK_FILE_MAX_BYTES, Project
from stackconfig.files import read_stack_config
from stackconfig.model import StackConfig
from stackconfig.preview import DEFAULT_LIFETIME_DAYS, PreviewError, derive, stack_name

_HEADER = ("# Preview stack of pull request {pr}, derived from Pulumi.staging.yaml by `bookingctl preview`\n"
           "# on {today}; derive again rather than edit. No secret is copied: set the integrations' test-mode keys\n"
           "# with `pulumi config set --secret` (never production's).\n")


def staging_config(project: Project) -> dict[str, Any]:
    staging = safeyaml.load(project.stack_file("staging"), max_bytes=STACK_FILE_MAX_BYTES).data
    config = staging.get("config") if isinstance(staging, dict) else None
    if not isinstance(config, dict):
        raise PreviewError("Pulumi.staging.yaml has no `config:` mapping to derive a preview from")
    return config


def write_stack(project: Project, pr: int, *, today: dt.date,
                lifetime_days: int = DEFAULT_LIFETIME_DAYS) -> StackConfig:
    """Write Pulumi.pr-`pr`.yaml from staging's file; the typed config the program will read from it."""
    config = derive(staging_config(project), pr, today=today, lifetime_days=lifetime_days)
    stack = stack_name(pr)
    path = project.stack_file(stack)
    text = _HEADER.format(pr=pr, today=today.isoformat()) + yaml.safe_dump({"config": config}, sort_keys=False)
    existed = path.read_bytes() if path.is_file() else None
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    try:
        cfg = read_stack_config(stack, project.root)
    except BaseException:
        if existed is None:
            path.unlink()
        else:
            path.write_bytes(existed)
        raise
    assert cfg.preview is not None  # derive always sets booking:preview; the model checked it
    return cfg
