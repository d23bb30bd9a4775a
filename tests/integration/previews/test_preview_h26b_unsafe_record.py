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

from ops.database.migrations import CREATE_UNSAFE_TABLE, Override, apply, discover, override_sql
from ops.database.seed import seed
from ops.targets import LocalDatabase
from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.conftest import NOW, publish_staging
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
    publish_staging(api, path, tmp_path)
    code, out = run(project, api, "up", "--pr", "1")
    assert code == 0 and "loaded backup" in out, out[-900:]
