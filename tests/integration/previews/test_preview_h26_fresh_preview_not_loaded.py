"""hostile26: a brand-new preview whose migrations write a row (reference data, an FTS5 index) is taken for
one holding a reviewer's data: `preview up` skips the load ("already holds rows: kept"), exits 0, and the
preview stays without staging's data on every later push.

Cause: ops/previews/data.py `has_rows` asks whether any table other than the tracking table holds a row.
A migration's own INSERT (a new permission) or an FTS5 table's shadow tables (users_fts_config holds its
version row from creation; sqlite_master lists virtual and shadow tables as type 'table') count as rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.conftest import STAGING_DB
from tests.integration.previews.test_preview_lifecycle import rows_of, run

# Whole previews brought up against the API double: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

REFERENCE_ROW = ("-- The export permission the new report needs.\n"
                 "INSERT INTO permissions (id, permission_name, resource_type, action) "
                 "VALUES ('perm-report-export', 'report_export', 'report', 'export');\n")
FTS = ("CREATE VIRTUAL TABLE services_fts USING fts5(name, content='services', content_rowid='rowid');\n"
       "CREATE TRIGGER services_fts_ai AFTER INSERT ON services BEGIN\n"
       "  INSERT INTO services_fts(rowid, name) VALUES (new.rowid, new.name);\nEND;\n")
FTS_CLASSES = ("services_fts:\n  name: keep\nservices_fts_idx:\n  segid: keep\n  term: keep\n  pgno: keep\n"
               "services_fts_config:\n  k: keep\n  v: keep\n")


@pytest.mark.parametrize("migration", ["reference-row", "fts5"])
def test_a_new_preview_gets_staging_data_when_its_migrations_write_a_row(
        project: Path, api: CloudflareDouble, engine: DoubleEngine, staging_seeded: dict[str, list[dict[str, Any]]],
        migration: str) -> None:
    if migration == "reference-row":
        (project / "migrations" / "0003_report_permission.sql").write_text(REFERENCE_ROW)
    else:
        (project / "migrations" / "0003_services_search.sql").write_text(FTS)
        with (project / "migrations" / "columns.yaml").open("a") as f:
            f.write(FTS_CLASSES)  # what the gate's text-columns-classified then asks for
    code, out = run(project, api, "up", "--pr", "1")
    users = len(rows_of(api, f"{STAGING_DB}-pr-1")["users"])
    assert users == len(staging_seeded["users"]), (
        f"exit {code}, {users} users in a brand-new preview (staging has {len(staging_seeded['users'])}); "
        f"'already holds rows: kept' in its output: {'already holds rows: kept' in out}")
