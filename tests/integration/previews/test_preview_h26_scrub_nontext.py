"""hostile26 (fixed): a personal value that is not stored as text reached the preview as it was.

The gate (policies/columns.py via booking_shared.columns.text_columns) only asks for a class on columns that
can hold text by their declared type, and the scrubber (ops/database/scrub.py `_holding_text`) only refuses
an unclassified column when a value's typeof() is 'text'. A phone number column declared INTEGER (a common
choice) needs no class, passes the gate, and SQLite's INTEGER affinity stores "27821234567" as an integer:
neither the gate nor the scrubber sees it, and `preview up` copies every customer's number into the preview.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ops.database.migrations import apply, discover
from ops.database.seed import seed
from ops.targets import LocalDatabase
from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.conftest import NOW, STAGING_DB, publish_staging
from tests.integration.previews.test_preview_lifecycle import rows_of, run

# Whole previews brought up against the API double: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

MIGRATION = "-- Customers' phone numbers for WhatsApp reminders.\nALTER TABLE users ADD COLUMN phone INTEGER;\n"


@pytest.fixture
def staging_with_phones(project: Path, api: CloudflareDouble, tmp_path: Path) -> set[int]:
    """The pull request that added users.phone was merged and deployed: staging's D1 holds phone numbers, and
    its scheduled backup is in staging's bucket."""
    (project / "migrations" / "0003_users_phone.sql").write_text(MIGRATION)
    path = tmp_path / "staging.sqlite"
    with LocalDatabase(path, must_exist=False) as db:
        apply(db, discover(project / "migrations"))
        seed(db, NOW)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE users SET phone = '27' || (821000000 + rowid)")  # as the Worker would store '27821000001'
    conn.commit()
    phones = {int(r[0]) for r in conn.execute("SELECT phone FROM users")}
    assert {r[0] for r in conn.execute("SELECT DISTINCT typeof(phone) FROM users")} == {"integer"}
    conn.close()
    publish_staging(api, path, tmp_path)
    return phones


def test_phone_numbers_in_an_integer_column_need_a_class_and_are_scrubbed_once_classified(
        project: Path, api: CloudflareDouble, engine: DoubleEngine, staging_with_phones: set[int]) -> None:
    code, out = run(project, api, "up", "--pr", "1")
    assert code != 0 and "text-columns-classified" in out, out[-800:]  # the gate wants a class for users.phone
    assert not any(d.name.endswith("-pr-1") for d in api.databases.values())  # refused before anything came up
    classes = project / "migrations" / "columns.yaml"
    classes.write_text(classes.read_text().replace("  email: email\n", "  email: email\n  phone: phone\n", 1))
    code, out = run(project, api, "up", "--pr", "1")
    assert code == 0, out[-1500:]
    loaded: dict[str, Any] = rows_of(api, f"{STAGING_DB}-pr-1")
    leaked = {r["phone"] for r in loaded["users"]} & staging_with_phones
    assert not leaked and len(loaded["users"]) == len(staging_with_phones)
