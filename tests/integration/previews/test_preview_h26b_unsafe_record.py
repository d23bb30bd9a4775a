"""hostile26b (beyond the sweep): once staging has applied an approved unsafe migration, its D1 holds
`d1_migrations_unsafe` (ops/database/migrations.py UNSAFE_TABLE: name, reason, findings, approved_via; the
deploy hook honours booking:approvedUnsafeMigrations, docs/configuration.md) and so does every backup of
it. ops/previews/data.py load_scrubbed treats it as data: only the tracking table `d1_migrations` is left
out (`_write`: `t != tracking`), so the scrubber meets its unclassified text columns, and the preview's
D1 (migrated without overrides) has no such table. Every `preview up` of every pull request then fails
until someone classifies a bookkeeping table as personal data."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudflare import Cloudflare

from ops.backups import backups
from ops.database.migrations import CREATE_UNSAFE_TABLE, Override, apply, discover, override_sql
from ops.database.seed import seed
from ops.targets import Bucket, LocalDatabase, remote_database
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, CloudflareDouble
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.conftest import NOW, STAGING_BUCKET, STAGING_DB
from tests.integration.previews.test_preview_lifecycle import run

pytestmark = pytest.mark.slow


def test_a_staging_that_applied_an_approved_unsafe_migration_still_loads_previews(
        project: Path, api: CloudflareDouble, engine: DoubleEngine, tmp_path: Path) -> None:
    path = tmp_path / "staging.sqlite"
    found = discover(project / "migrations")
    with LocalDatabase(path, must_exist=False) as db:
        apply(db, found)
        seed(db, NOW)
    import sqlite3
    conn = sqlite3.connect(path)
    # What apply(..., overrides=...) records beside an approved unsafe migration.
    sql = override_sql(found[-1].name, Override("dropping a column nobody has read since 2026-10", "D001 ...",
                                                "booking:approvedUnsafeMigrations"))
    assert sql[0] == CREATE_UNSAFE_TABLE
    conn.executescript("\n".join(sql))
    conn.commit()
    conn.close()
    api.add_database(STAGING_DB, source=path)
    api.buckets[STAGING_BUCKET] = {}
    with Cloudflare(api_token=TOKEN, base_url=api.base_url, max_retries=0) as client:
        remote = remote_database(ACCOUNT, STAGING_DB, client=client)
        manifest = backups.create(remote, tmp_path / "backups", poll_interval=0)
        backups.upload(Bucket(client, ACCOUNT, STAGING_BUCKET), tmp_path / "backups", manifest)
    code, out = run(project, api, "up", "--pr", "1")
    assert code == 0 and "loaded backup" in out, out[-900:]
