"""`-- check:` assertions in migrations: parsed when the file is read, run before and after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.database.migration_asserts import Check, CheckFailed, CheckFileError, answer_sql, guard_sql, parse, run
from ops.database.migrations import MigrationError, apply, discover
from ops.targets import LocalDatabase
from tests.helpers import sqlite_dump as dump

NO_DUPLICATE_PHONES = ("-- check: SELECT count(*) = count(DISTINCT phone) FROM customers -- "
                       "no two customers share a phone")


def test_a_check_is_its_sql_its_message_and_its_line() -> None:
    text = f"-- widen phones\n{NO_DUPLICATE_PHONES}\nCREATE UNIQUE INDEX customers_phone ON customers(phone);\n"
    assert parse(text, "0002_x.sql") == (Check("SELECT count(*) = count(DISTINCT phone) FROM customers",
                                               "no two customers share a phone", 2),)


@pytest.mark.parametrize(("line", "why"), [
    ("-- check: SELECT 1", "on one line"),  # no message
    ("-- check:  -- a message", "on one line"),  # no SQL
    ("-- check: DELETE FROM customers -- gone", "may only read"),
    ("-- check: SELECT 1; DELETE FROM customers -- two statements", "may only read"),
    ("-- check: PRAGMA foreign_keys = OFF -- nope", "may only read"),
    ("-- check: ATTACH 'x.db' AS x -- nope", "may only read"),
])
def test_a_check_that_is_not_one_reading_select_is_refused_naming_its_line(line: str, why: str) -> None:
    with pytest.raises(CheckFileError, match=rf"0002_x\.sql:3: .*{why}"):
        parse(f"-- a\n-- b\n{line}\nSELECT 1;\n", "0002_x.sql")


def _folder(tmp_path: Path, second: str) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_customers.sql").write_text(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, phone TEXT);\n"
        "INSERT INTO customers (phone) VALUES ('1'), ('1'), ('2');\n")
    (folder / "0002_unique_phones.sql").write_text(second)
    return folder


def test_a_check_false_before_the_migration_applies_none_of_the_run(tmp_path: Path, empty_sqlite: Path) -> None:
    folder = _folder(tmp_path, f"{NO_DUPLICATE_PHONES}\nCREATE INDEX customers_phone ON customers(phone);\n")
    db = LocalDatabase(empty_sqlite)
    before = dump(empty_sqlite)
    with pytest.raises(MigrationError, match=r"0002_unique_phones\.sql:1: check failed before the migration .*"
                                             r"no two customers share a phone\. Rolled back"):
        apply(db, discover(folder))
    assert dump(empty_sqlite) == before


def test_a_check_false_after_the_migration_rolls_it_back(tmp_path: Path, empty_sqlite: Path) -> None:
    folder = _folder(tmp_path, "-- check: SELECT count(*) = 3 FROM customers -- no customer is lost\n"
                               "DELETE FROM customers WHERE rowid = 2;\n")
    with pytest.raises(MigrationError, match=r"check failed after the migration .*no customer is lost"):
        apply(LocalDatabase(empty_sqlite), discover(folder))
    assert LocalDatabase(empty_sqlite).query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'customers'") \
        == [{"n": 0}]


def test_checks_that_hold_let_the_migration_apply(tmp_path: Path, empty_sqlite: Path) -> None:
    folder = _folder(tmp_path, "-- check: SELECT count(*) = 3 FROM customers -- no customer is lost\n"
                               "ALTER TABLE customers ADD COLUMN notes TEXT;\n")
    assert apply(LocalDatabase(empty_sqlite), discover(folder)).applied == ["0001_customers.sql",
                                                                           "0002_unique_phones.sql"]


def test_the_remote_guard_fails_exactly_when_the_check_is_false() -> None:
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x)")
    guard = guard_sql(Check("SELECT count(*) = 0 FROM t", "t is empty", 1))
    conn.execute(guard)  # true: passes
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError, match="malformed JSON"):
        conn.execute(guard)


def test_a_check_that_writes_from_a_with_clause_is_refused_when_the_file_is_read(tmp_path: Path) -> None:
    # Hostile review of #25: it was sent to D1 as it stood, and deleted every customer there.
    folder = _folder(tmp_path, "-- check: WITH x AS (SELECT 1) DELETE FROM customers RETURNING 1 -- sneaky\n"
                               "ALTER TABLE customers ADD COLUMN notes TEXT;\n")
    with pytest.raises(CheckFileError, match=r"0002_unique_phones\.sql:1: a check may only read"):
        discover(folder)


def test_a_check_line_inside_a_string_literal_or_a_block_comment_is_text_not_a_check() -> None:
    text = ("INSERT INTO templates (body) VALUES ('Dear customer,\n"
            "-- check: SELECT 0 -- quoted text, not a check\n"
            "see you soon');\n/*\n-- check: SELECT 0 -- inside a comment\n*/\n"
            f"{NO_DUPLICATE_PHONES}\n")
    assert [c.line for c in parse(text, "0002_templates.sql")] == [7]


@pytest.mark.parametrize(("answer", "holds"), [("'no'", False), ("'7 days'", True), ("0.0", False), ("NULL", False),
                                               ("x'00'", False), ("2", True), ("'-1'", True)])
def test_a_check_holds_as_sqlite_reads_its_answer_in_the_local_run_the_remote_precheck_and_the_guard(
        answer: str, holds: bool) -> None:
    import sqlite3

    check = Check(f"SELECT {answer}", "as SQLite reads it", 1)
    conn = sqlite3.connect(":memory:")
    assert bool(conn.execute(answer_sql(check)).fetchone()[1]) is holds
    try:
        conn.execute(guard_sql(check))
        guarded = True
    except sqlite3.OperationalError:
        guarded = False
    assert guarded is holds
    try:
        run(conn, check, "0002_x.sql", "before")
        ran = True
    except CheckFailed:
        ran = False
    assert ran is holds
