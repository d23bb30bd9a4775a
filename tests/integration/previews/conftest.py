"""Fixtures of the preview tests (test_preview_lifecycle.py and the hostile review's test_preview_h26_*.py):
a copy of the project, the API double with staging's zone, staging's D1 seeded and backed up, and the
engine double in place of the Pulumi CLI. A test module's own fixture of the same name wins."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudflare import Cloudflare

import bookingctl.commands.preview as preview_command
from booking_shared.project import find_project
from ops.backups import backups
from ops.database.migrations import apply, discover
from ops.database.seed import seed
from ops.targets import Bucket, LocalDatabase, remote_database
from tests.helpers import ACCOUNT, REPO, copy_project
from tests.helpers.cf_double import TOKEN, CloudflareDouble
from tests.helpers.cf_double.double import running
from tests.helpers.preview_engine import DoubleEngine

STAGING_DB = "appointmentbooking-db-staging"
STAGING_BUCKET = "appointmentbooking-backups-staging"
ZONE = "1a2b3c4d5e6f708192a3b4c5d6e7f809"
NOW = dt.datetime(2026, 12, 5, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[CloudflareDouble]:
    (tmp_path / "api").mkdir()
    with running(tmp_path / "api", ACCOUNT) as double:
        double.add_zone(ZONE, "business", name="instylehairboutique.co.za")
        yield double


def publish_staging(api: CloudflareDouble, path: Path, tmp_path: Path) -> None:
    """Staging's D1 made from the SQLite file at `path`, and its backup in staging's bucket, as the
    scheduled job leaves them."""
    api.add_database(STAGING_DB, source=path)
    api.buckets[STAGING_BUCKET] = {}
    with Cloudflare(api_token=TOKEN, base_url=api.base_url, max_retries=0) as client:
        remote = remote_database(ACCOUNT, STAGING_DB, client=client)
        manifest = backups.create(remote, tmp_path / "backups", poll_interval=0)
        backups.upload(Bucket(client, ACCOUNT, STAGING_BUCKET), tmp_path / "backups", manifest)


@pytest.fixture
def staging_seeded(api: CloudflareDouble, tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Staging's D1 with the seed data and its backup in staging's bucket, as the scheduled job leaves it."""
    path = tmp_path / "staging.sqlite"
    with LocalDatabase(path, must_exist=False) as db:
        apply(db, discover(REPO / "migrations"))
        seed(db, NOW)
    publish_staging(api, path, tmp_path)
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%' AND name != 'd1_migrations'")]
    return {t: [dict(r) for r in conn.execute(f'SELECT * FROM "{t}"')] for t in tables}


@pytest.fixture
def engine(api: CloudflareDouble, project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DoubleEngine]:
    ticks = iter(range(1, 1000))
    with Cloudflare(api_token=TOKEN, base_url=api.base_url, max_retries=0) as client:
        double_engine = DoubleEngine(find_project(project), client, lambda: NOW + dt.timedelta(minutes=next(ticks)))
        monkeypatch.setattr(preview_command, "make_engine", lambda _root, _config, **_: double_engine)
        yield double_engine


