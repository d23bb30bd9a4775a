"""Migrations on real SQLite: ordering, wrangler-compatible tracking, all-or-nothing apply."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ops.database.migrations import CREATE_TABLE, MigrationError, MigrationFileError, apply, discover, pending, status
from ops.targets import LocalDatabase
from tests.helpers import REPO
from tests.helpers import sqlite_dump as dump


@pytest.fixture
def db_path(empty_sqlite: Path) -> Path:
    return empty_sqlite


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_initial_schema.sql").write_text((REPO / "migrations" / "0001_initial_schema.sql").read_text())
    return folder


def test_repository_migrations_apply_to_an_empty_database(db_path: Path) -> None:
    db = LocalDatabase(db_path)
    result = apply(db, discover(REPO / "migrations"))
    assert result.applied == [m.name for m in discover(REPO / "migrations")]
    assert result.applied[0] == "0001_initial_schema.sql"
    tables = {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"appointments", "users", "audit_logs", "d1_migrations"} <= tables


def test_status_shows_pending_then_applied_with_time(db_path: Path, folder: Path) -> None:
    db = LocalDatabase(db_path)
    [before], _ = status(db, discover(folder))
    assert not before.applied
    apply(db, discover(folder))
    [after], unknown = status(db, discover(folder))
    assert after.applied and after.applied_at and unknown == []


def test_applying_twice_applies_nothing_the_second_time(db_path: Path, folder: Path) -> None:
    db = LocalDatabase(db_path)
    apply(db, discover(folder))
    assert apply(db, discover(folder)).applied == []
    assert db.query("SELECT COUNT(*) AS n FROM d1_migrations")[0]["n"] == 1


def test_tracking_table_is_the_one_wrangler_creates(db_path: Path, folder: Path) -> None:
    # A database migrated by wrangler (its table, its row for 0001) has nothing pending for us.
    conn = sqlite3.connect(db_path)
    conn.executescript(CREATE_TABLE + "\nINSERT INTO d1_migrations (name) VALUES ('0001_initial_schema.sql');")
    conn.close()
    db = LocalDatabase(db_path)
    assert pending(db, discover(folder)) == []
    columns = [r["name"] for r in db.query("PRAGMA table_info(d1_migrations)")]
    assert columns == ["id", "name", "applied_at"]


def test_migrations_run_in_number_order(db_path: Path, folder: Path) -> None:
    (folder / "0003_third.sql").write_text("CREATE TABLE third (id INTEGER);")
    (folder / "0002_second.sql").write_text("CREATE TABLE second (id INTEGER);")
    result = apply(LocalDatabase(db_path), discover(folder))
    assert result.applied == ["0001_initial_schema.sql", "0002_second.sql", "0003_third.sql"]


@pytest.mark.parametrize("name", ["0002-second.sql", "second.sql", "0002_tab\there.sql"])
def test_badly_named_migration_file_is_refused(folder: Path, name: str) -> None:
    (folder / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_description\.sql"):
        discover(folder)


@pytest.mark.parametrize("name", ["0002_Add_Staff_Table.sql", "2_second.sql", "0002_O'Brien's_table.sql",
                                  "10000_after_9999.sql"])
def test_names_wrangler_d1_migrations_create_writes_are_applied_and_recorded_as_wrangler_records_them(
        db_path: Path, folder: Path, name: str) -> None:
    """The review's M1: `wrangler d1 migrations create DB "Add Staff Table"` writes 0002_Add_Staff_Table.sql."""
    (folder / name).write_text("CREATE TABLE staff (id TEXT PRIMARY KEY);\n")
    db = LocalDatabase(db_path)
    assert apply(db, discover(folder)).applied == ["0001_initial_schema.sql", name]
    assert [r["name"] for r in db.query("SELECT name FROM d1_migrations ORDER BY id")] == [
        "0001_initial_schema.sql", name]


def test_numbers_order_numerically_whatever_their_padding(db_path: Path, folder: Path) -> None:
    (folder / "10_ten.sql").write_text("CREATE TABLE ten (id INTEGER);")
    (folder / "9_nine.sql").write_text("CREATE TABLE nine (id INTEGER);")
    assert [m.name for m in discover(folder)] == ["0001_initial_schema.sql", "9_nine.sql", "10_ten.sql"]


def test_nested_files_of_a_migrations_pattern_are_named_by_their_relative_path(db_path: Path, tmp_path: Path) -> None:
    """drizzle's layout with wrangler's `migrations_pattern: migrations/*/migration.sql`."""
    nested = tmp_path / "nested"
    (nested / "0001_initial_schema").mkdir(parents=True)
    (nested / "0001_initial_schema" / "migration.sql").write_text(
        (REPO / "migrations" / "0001_initial_schema.sql").read_text())
    (nested / "0001_initial_schema" / "notes.txt").write_text("not a migration")
    db = LocalDatabase(db_path)
    assert apply(db, discover(nested, pattern="*/migration.sql")).applied == ["0001_initial_schema/migration.sql"]


def test_a_renamed_tracking_table_is_created_and_read_instead_of_d1_migrations(db_path: Path, folder: Path) -> None:
    db = LocalDatabase(db_path)
    apply(db, discover(folder), table="schema_migrations")
    tables = {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "schema_migrations" in tables and "d1_migrations" not in tables
    assert pending(db, discover(folder), "schema_migrations") == []
    assert [m.name for m in pending(db, discover(folder))] == ["0001_initial_schema.sql"]


def test_the_tracking_table_is_created_with_wranglers_exact_text(db_path: Path, folder: Path) -> None:
    """The review's M4: sqlite_schema reads the same whichever tool created the table."""
    apply(LocalDatabase(db_path), discover(folder))
    conn = sqlite3.connect(db_path)
    [sql] = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'd1_migrations'").fetchone()
    conn.close()
    assert sql == ('CREATE TABLE "d1_migrations"(\n\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n'
                   "\t\tname       TEXT UNIQUE,\n\t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n)")


def test_duplicate_migration_numbers_are_refused(folder: Path) -> None:
    (folder / "0001_other.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="share number 0001"):
        discover(folder)


def test_guide_template_transaction_statements_are_refused_naming_file_and_line(folder: Path) -> None:
    (folder / "0002_feature.sql").write_text(
        "-- Migration: new feature\nBEGIN TRANSACTION;\n"
        "CREATE TABLE new_feature (id TEXT PRIMARY KEY, name TEXT NOT NULL);\n"
        "CREATE TRIGGER stamp AFTER INSERT ON new_feature BEGIN UPDATE new_feature SET name = name; END;\n"
        "COMMIT;\nSELECT 'Migration completed successfully' as status;\n")
    with pytest.raises(MigrationFileError) as info:
        discover(folder)
    message = str(info.value)
    assert "0002_feature.sql:2 `BEGIN TRANSACTION`" in message and "0002_feature.sql:5 `COMMIT`" in message
    assert "remove it" in message
    # Why wrangler takes the same file (it strips the pair) and D1's API does not (the review's M2).
    assert "wrangler" in message and "trimmer.ts" in message
    assert "cannot start a transaction within a transaction" in message


@pytest.mark.parametrize(("hidden", "line"), [("COMMIT; /* end of part 1 */", 2), ("/* part 1 done */ COMMIT;", 2),
                                             ("END /*x*/;", 2), ("SELECT 1; COMMIT;", 2), ("-- done\nCOMMIT", 3)])
def test_a_commit_hidden_by_comments_or_a_shared_line_is_refused_before_anything_runs(
        db_path: Path, folder: Path, hidden: str, line: int) -> None:
    """The review's D4: such a COMMIT used to end the runner's transaction and leave half a migration."""
    (folder / "0002_evil.sql").write_text(f"CREATE TABLE t1 (a INT);\n{hidden}\nCREATE TABLE t2 (a INT);\n"
                                          "SELECT * FROM nonexistent;\n")
    before = dump(db_path)
    with pytest.raises(MigrationFileError, match=rf"0002_evil\.sql:{line} .*transaction control"):
        apply(LocalDatabase(db_path), discover(folder))
    assert dump(db_path) == before


def test_two_statements_on_one_line_are_applied_as_d1_does(db_path: Path, folder: Path) -> None:
    (folder / "0002_two.sql").write_text("CREATE TABLE a (x); CREATE TABLE b (y);\n")
    apply(LocalDatabase(db_path), discover(folder))
    tables = {r["name"] for r in LocalDatabase(db_path).query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"a", "b"} <= tables


def test_a_migration_file_that_is_not_utf8_is_a_file_error(folder: Path) -> None:
    (folder / "0002_latin1.sql").write_bytes("-- caf\xe9\nCREATE TABLE c (x);\n".encode("latin-1"))
    with pytest.raises(MigrationFileError, match=r"0002_latin1\.sql: not UTF-8"):
        discover(folder)


def test_a_run_that_waited_for_anothers_lock_applies_nothing_twice(db_path: Path, folder: Path) -> None:
    """Two applies of the same pending migration: the second decides again under the write lock."""
    first, second = LocalDatabase(db_path), LocalDatabase(db_path)
    migrations = discover(folder)
    assert pending(second, migrations)  # computed before the first run applies
    apply(first, migrations)
    from ops.database.migrations import _apply_local

    assert _apply_local(second, pending(first, migrations) or migrations, lambda _: None).applied == []
    assert second.query("SELECT COUNT(*) AS n FROM d1_migrations")[0]["n"] == 1


def test_failed_migration_leaves_schema_and_data_exactly_as_before(db_path: Path, folder: Path) -> None:
    db = LocalDatabase(db_path)
    apply(db, discover(folder))
    db.query("INSERT INTO tenants (id, slug, name) VALUES ('t1', 'instyle', 'InStyle Hair Boutique')")
    before = dump(db_path)
    (folder / "0002_add_loyalty.sql").write_text(
        "CREATE TABLE loyalty (user_id TEXT, points INTEGER);\n"
        "INSERT INTO loyalty VALUES ('u1', 10);\n"
        "ALTER TABLE tenants ADD COLUMN plan TEXT;\n")
    (folder / "0003_broken.sql").write_text(
        "UPDATE tenants SET plan = 'pro';\n"
        "INSERT INTO no_such_table VALUES (1);\n")
    with pytest.raises(MigrationError) as info:
        apply(db, discover(folder))
    message = str(info.value)
    assert "0003_broken.sql:2" in message and "no such table" in message and "exactly as before" in message
    assert dump(db_path) == before
    assert [m.name for m in pending(db, discover(folder))] == ["0002_add_loyalty.sql", "0003_broken.sql"]


def test_missing_local_database_is_a_target_error(tmp_path: Path) -> None:
    from ops.targets import TargetError

    with pytest.raises(TargetError, match="no SQLite database"):
        LocalDatabase(tmp_path / "nope.sqlite")


def test_a_statement_that_makes_sqlite_roll_back_reports_its_own_error_and_the_true_state(
        db_path: Path, folder: Path) -> None:
    """INSERT OR ROLLBACK ends the transaction inside SQLite: the runner must not hide that error
    behind "cannot rollback - no transaction is active", and nothing is left applied."""
    db = LocalDatabase(db_path)
    apply(db, discover(folder))
    before = dump(db_path)
    (folder / "0002_dupe.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY);\nINSERT INTO t VALUES (1);\n"
                                          "INSERT OR ROLLBACK INTO t VALUES (1);\n")
    with pytest.raises(MigrationError) as info:
        apply(db, discover(folder))
    assert "UNIQUE constraint failed" in str(info.value) and "0002_dupe.sql:3" in str(info.value)
    assert "no transaction is active" not in str(info.value)
    assert dump(db_path) == before


def test_if_a_statement_ever_ended_the_runners_transaction_the_message_says_so(db_path: Path, folder: Path) -> None:
    """A belt to the splitter's braces: should a COMMIT reach the runner, it reports what is committed."""
    from ops.database.migrations import Migration
    from ops.database.sqlscript import Statement

    sneaky = Migration("0002_sneaky.sql", folder / "0002_sneaky.sql",
                       (Statement("CREATE TABLE a (x);", 1), Statement("COMMIT;", 2)), "0" * 64)
    with pytest.raises(MigrationError, match=r"0002_sneaky\.sql:2 ended the runner's transaction.*NOT as before"):
        apply(LocalDatabase(db_path), [*discover(folder), sneaky])
