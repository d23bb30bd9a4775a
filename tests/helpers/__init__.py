"""What the tests share: the repository, the committed account, fake secrets, a database dump."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from bookingctl.planner import Plan

REPO = Path(__file__).resolve().parents[2]
# The day the tests judge dates as of (BOOKING_TODAY, set in conftest): the committed stacks'
# compatibility date (2026-10-01) is recent then.
TODAY = dt.date(2026, 11, 27)
ACCOUNT = "8f3a2c1d9e7b4a6f5c0d1e2f3a4b5c6d"  # the committed stacks' account id

# Obviously fake values that look like the real thing, to prove they never print.
FAKE_SECRETS = {
    "booking:paystackSecretKey": "sk_live_FAKEFAKEFAKE0123456789",
    "booking:googleCalendarCredentials": json.dumps({"type": "service_account", "private_key": "FAKE-KEY-0001"}),
    "booking:whatsappToken": "EAAG-FAKE-WHATSAPP-TOKEN-42",
}

PlanFn = Callable[..., Plan]


def copy_project(root: Path) -> Path:
    """A copy under `root` of what planning a stack reads: Pulumi.yaml, the committed stack files, the
    program, the pack, the Worker and the migrations (no caches, no node_modules)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.production.yaml"):
        shutil.copy(REPO / name, root / name)
    for folder in ("infra", "policies", "worker", "migrations"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    return root


def sqlite_dump(path: Path) -> list[str]:
    """Schema and data of a SQLite file as text, to compare a database before and after."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()
