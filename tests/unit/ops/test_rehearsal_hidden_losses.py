"""Third hostile review of issue #25 (2026-12-05):
rows lost while `migrate rehearse` says `safe` (each test failed on a4f7c1b)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ops.database.migrations import discover
from ops.database.rehearsal import rehearse
from ops.database.rehearsal_model import RehearsalReport


def _run(tmp_path: Path, setup: str, text: str) -> tuple[RehearsalReport, sqlite3.Connection]:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0002_step.sql").write_text(text)
    conn = sqlite3.connect(tmp_path / "copy.sqlite", isolation_level=None)
    conn.executescript(setup)
    return rehearse(conn, discover(folder), source="test"), conn


FAMILY = ("CREATE TABLE customers (id INTEGER PRIMARY KEY);"
          "CREATE TABLE bookings (id INTEGER PRIMARY KEY, customer_id INT REFERENCES customers(id) ON DELETE CASCADE);"
          "INSERT INTO customers VALUES (1), (2); INSERT INTO bookings VALUES (1, 1), (2, 2);")
SERVICES = ("CREATE TABLE services (id INTEGER PRIMARY KEY, slug TEXT UNIQUE, price INT);"
            "INSERT INTO services VALUES (1, 'cut', 10), (2, 'dye', 20);")


def test_a_temp_table_does_not_hide_a_cascade_from_the_counts(tmp_path: Path) -> None:
    """A TEMP table named like a table of main shadows it: every count (`SELECT count(*) FROM "bookings"`,
    unqualified) reads the temp copy, so the cascade that empties main.bookings moves no count."""
    report, conn = _run(tmp_path, FAMILY,
                        "CREATE TEMP TABLE bookings AS SELECT * FROM main.bookings;\n"
                        "DELETE FROM customers;\n")
    left = conn.execute("SELECT count(*) FROM main.bookings").fetchone()[0]
    conn.close()
    assert left == 0  # every booking went with its customer, on the copy
    assert report.verdict == "unsafe", f"main.bookings lost 2 of 2 rows; rehearsal says {report.verdict}"


def test_a_temp_trigger_replacing_a_row_is_watched(tmp_path: Path) -> None:
    """A TEMP TRIGGER the migration creates does INSERT OR REPLACE: services row 1 is deleted by the
    UNIQUE conflict and row 3 inserted, count held. _replace_targets reads triggers of main only."""
    report, conn = _run(tmp_path, SERVICES + "CREATE TABLE log (x);",
                        "CREATE TEMP TRIGGER t AFTER INSERT ON main.log "
                        "BEGIN INSERT OR REPLACE INTO services VALUES (3, 'cut', 15); END;\n"
                        "INSERT INTO log VALUES (1);\n")
    gone = conn.execute("SELECT count(*) = 0 FROM services WHERE id = 1").fetchone()[0]
    conn.close()
    assert gone
    assert report.verdict == "unsafe", f"services row 1 was replaced away; rehearsal says {report.verdict}"


def test_a_trigger_that_deletes_and_inserts_in_one_table_is_seen(tmp_path: Path) -> None:
    """One statement fires a trigger that deletes booking 1 and inserts booking 99: the count of
    bookings holds, so `attribute` (counts) sees nothing, and no REPLACE is involved for ReplaceWatch."""
    report, conn = _run(tmp_path,
                        "CREATE TABLE jobs (id INTEGER PRIMARY KEY); INSERT INTO jobs VALUES (1);"
                        "CREATE TABLE bookings (id INTEGER PRIMARY KEY, who TEXT);"
                        "INSERT INTO bookings VALUES (1, 'ann'), (2, 'bob');"
                        "CREATE TRIGGER move AFTER DELETE ON jobs BEGIN "
                        "DELETE FROM bookings WHERE id = 1; INSERT INTO bookings VALUES (99, 'placeholder'); END;",
                        "DELETE FROM jobs;\n")
    gone = conn.execute("SELECT count(*) = 0 FROM bookings WHERE id = 1").fetchone()[0]
    conn.close()
    assert gone
    assert report.verdict == "unsafe", f"booking 1 was deleted by a trigger; rehearsal says {report.verdict}"


def test_table_names_are_folded_as_sqlite_folds_them(tmp_path: Path) -> None:
    """SQLite folds only ASCII letters: "Ä" and "ä" are two tables. The rehearsal folds with
    str.lower(), so a DELETE FROM "ä" excuses the rows its trigger deletes from "Ä"."""
    report, conn = _run(tmp_path,
                        'CREATE TABLE "Ä" (id INTEGER PRIMARY KEY); CREATE TABLE "ä" (id INTEGER PRIMARY KEY);'
                        'INSERT INTO "Ä" VALUES (1), (2); INSERT INTO "ä" VALUES (1), (2);'
                        'CREATE TRIGGER t AFTER DELETE ON "ä" BEGIN DELETE FROM "Ä" WHERE id = old.id; END;',
                        'DELETE FROM "ä" WHERE id = 1;\n')
    left = conn.execute('SELECT count(*) FROM "Ä"').fetchone()[0]
    conn.close()
    assert left == 1
    assert report.verdict == "unsafe", f'a row of "Ä" (named by no DELETE) went; rehearsal says {report.verdict}'


BOOKINGS = ("CREATE TABLE bookings (id INTEGER PRIMARY KEY, status TEXT);"
            "INSERT INTO bookings VALUES (1, 'ok'), (2, 'ok'), (3, 'legacy'), (4, 'legacy');")


def _run_files(tmp_path: Path, setup: str, *texts: str) -> tuple[RehearsalReport, sqlite3.Connection]:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for number, text in enumerate(texts, start=2):
        (folder / f"{number:04d}_step.sql").write_text(text)
    conn = sqlite3.connect(tmp_path / "copy.sqlite", isolation_level=None)
    conn.executescript(setup)
    return rehearse(conn, discover(folder), source="test"), conn


def test_a_rebuild_whose_new_name_differs_only_in_case_is_checked_for_lost_rows(tmp_path: Path) -> None:
    """The documented rebuild copying 2 of 4 rows is reported (unexplained_losses) when the new table
    is renamed `bookings`; renamed `Bookings` (the same table to SQLite) it is `safe`: the counts are
    dicts keyed by the exact spelling, so `bookings` 4 -> gone and `Bookings` new -> 2."""
    report, conn = _run_files(tmp_path, BOOKINGS,
                              "CREATE TABLE Bookings_new (id INTEGER PRIMARY KEY, status TEXT);\n"
                              "INSERT INTO Bookings_new SELECT * FROM bookings WHERE status != 'legacy';\n"
                              "DROP TABLE bookings;\n"
                              "ALTER TABLE Bookings_new RENAME TO Bookings;\n")
    left = conn.execute("SELECT count(*) FROM bookings").fetchone()[0]
    conn.close()
    assert left == 2
    assert report.verdict == "unsafe", f"bookings went from 4 rows to 2 in a rebuild; rehearsal says {report.verdict}"


def test_a_rebuild_split_over_migrations_is_checked_for_lost_rows(tmp_path: Path) -> None:
    """The same rebuild in three files (copy; drop; rename): each migration alone loses nothing it
    does not name, so no migration compares the old table with the one that took its name."""
    report, conn = _run_files(tmp_path, BOOKINGS,
                              "CREATE TABLE bookings_new (id INTEGER PRIMARY KEY, status TEXT);\n"
                              "INSERT INTO bookings_new SELECT * FROM bookings WHERE status != 'legacy';\n",
                              "DROP TABLE bookings;\n",
                              "ALTER TABLE bookings_new RENAME TO bookings;\n")
    left = conn.execute("SELECT count(*) FROM bookings").fetchone()[0]
    conn.close()
    assert left == 2
    assert report.verdict == "unsafe", f"bookings went from 4 rows to 2 in a rebuild; rehearsal says {report.verdict}"


def test_references_nulled_by_on_update_set_null_are_reported(tmp_path: Path) -> None:
    """`references-nulled` watches ON DELETE SET NULL/SET DEFAULT only (row_losses.links reads
    `on_delete`). Renumbering the parent under ON UPDATE SET NULL empties every booking's customer_id,
    the same loss, and the rehearsal says `safe`."""
    report, conn = _run(tmp_path,
                        "CREATE TABLE customers (id INTEGER PRIMARY KEY);"
                        "CREATE TABLE bookings (id INTEGER PRIMARY KEY, "
                        "customer_id INT REFERENCES customers(id) ON UPDATE SET NULL);"
                        "INSERT INTO customers VALUES (1), (2); INSERT INTO bookings VALUES (1, 1), (2, 2), (3, 1);",
                        "UPDATE customers SET id = id + 1000;\n")
    nulled = conn.execute("SELECT count(*) FROM bookings WHERE customer_id IS NULL").fetchone()[0]
    conn.close()
    assert nulled == 3
    assert report.verdict == "unsafe", f"3 bookings lost their customer; rehearsal says {report.verdict}"


def test_a_delete_of_one_row_does_not_excuse_its_cascade_through_the_same_table(tmp_path: Path) -> None:
    """Arguable (the rules excuse any table a DELETE names): `DELETE FROM bookings WHERE id = 1` in a
    table whose rows reference each other (a recurring series, ON DELETE CASCADE) deletes the whole
    chain, 4 rows for the 1 its WHERE names; the table is named, so every row it lost is excused."""
    report, conn = _run(tmp_path,
                        "CREATE TABLE bookings (id INTEGER PRIMARY KEY, "
                        "series_parent INT REFERENCES bookings(id) ON DELETE CASCADE);"
                        "INSERT INTO bookings VALUES (1, NULL), (2, 1), (3, 2), (4, 3);",
                        "DELETE FROM bookings WHERE id = 1;\n")
    left = conn.execute("SELECT count(*) FROM bookings").fetchone()[0]
    conn.close()
    assert left == 0
    assert report.verdict == "unsafe", f"a DELETE of booking 1 took all 4; rehearsal says {report.verdict}"


def test_a_replace_into_a_single_quoted_table_name_is_watched(tmp_path: Path) -> None:
    """SQLite takes a string literal where a table name is expected (`INSERT OR REPLACE INTO 'services'`,
    a quirk it keeps for compatibility). row_losses reads names from `without_strings(sql)`, which
    empties every '...' first, so the statement names no table: ReplaceWatch is not armed, `safe`."""
    report, conn = _run(tmp_path, SERVICES, "INSERT OR REPLACE INTO 'services' VALUES (3, 'cut', 15);\n")
    gone = conn.execute("SELECT count(*) = 0 FROM services WHERE id = 1").fetchone()[0]
    conn.close()
    assert gone
    assert report.verdict == "unsafe", f"services row 1 was replaced away; rehearsal says {report.verdict}"


def test_a_drop_column_with_single_quoted_names_shows_the_values_it_drops(tmp_path: Path) -> None:
    """`values-dropped` (a warning) is missing for `ALTER TABLE 't' DROP COLUMN 'secret'`: the same
    emptying of string literals hides the table and column from dropped_values."""
    report, conn = _run(tmp_path,
                        "CREATE TABLE t (id INTEGER PRIMARY KEY, secret TEXT); INSERT INTO t VALUES (1, 'x');",
                        "ALTER TABLE 't' DROP COLUMN 'secret';\n")
    columns = [r[1] for r in conn.execute("PRAGMA table_info(t)")]
    conn.close()
    assert columns == ["id"]
    assert [p.rule for p in report.findings] == ["values-dropped"]


@pytest.mark.parametrize("sql", [
    "INSERT OR REPLACE INTO\"services\"VALUES (3, 'cut', 15);\n",
    "REPLACE INTO[services]VALUES (3, 'cut', 15);\n",
    "REPLACE INTO`services`VALUES (3, 'cut', 15);\n",
])
def test_a_replace_into_a_quoted_name_without_a_space_is_watched(tmp_path: Path, sql: str) -> None:
    """SQLite's tokenizer needs no space between INTO and a quoted name; the row_losses patterns
    (`INTO\\s+` then the name) do, so these REPLACEs arm no ReplaceWatch: row 1 gone, `safe`."""
    report, conn = _run(tmp_path, SERVICES, sql)
    gone = conn.execute("SELECT count(*) = 0 FROM services WHERE id = 1").fetchone()[0]
    conn.close()
    assert gone
    assert report.verdict == "unsafe", f"services row 1 was replaced away; rehearsal says {report.verdict}"


def test_a_delete_named_only_inside_a_quoted_identifier_does_not_excuse_a_cascade(tmp_path: Path) -> None:
    """String literals are emptied before the names are read (hostile25's fix), quoted identifiers are
    kept: an alias `"DELETE FROM bookings"` names bookings, so the cascade that deletes a booking is
    excused. Hostile only (no one writes this by accident), but the excuse rests on words, not on what ran."""
    report, conn = _run(tmp_path, FAMILY,
                        'DELETE FROM customers WHERE id IN (SELECT 1 AS "DELETE FROM bookings");\n')
    left = conn.execute("SELECT count(*) FROM bookings").fetchone()[0]
    conn.close()
    assert left == 1
    assert report.verdict == "unsafe", f"a booking went by cascade; rehearsal says {report.verdict}"


def test_new_orphans_are_reported_even_when_old_ones_were_cleaned_up(tmp_path: Path) -> None:
    """The backup holds 2 bookings pointing nowhere (orphans-before, info). The migration deletes those
    2 and, under defer_foreign_keys, 2 customers whose bookings stay: 2 NEW orphans. _orphans compares
    how many rows point nowhere (2 before, 2 after), not which: no `orphans` error, `safe`."""
    report, conn = _run(tmp_path,
                        "PRAGMA foreign_keys = OFF;"
                        "CREATE TABLE customers (id INTEGER PRIMARY KEY);"
                        "CREATE TABLE bookings (id INTEGER PRIMARY KEY, customer_id INT REFERENCES customers(id));"
                        "INSERT INTO customers VALUES (1), (2), (3);"
                        "INSERT INTO bookings VALUES (1, 1), (2, 2), (3, 3), (10, 98), (11, 99);",
                        "PRAGMA defer_foreign_keys = ON;\n"
                        "DELETE FROM bookings WHERE id IN (10, 11);\n"
                        "DELETE FROM customers WHERE id IN (1, 2);\n"
                        "PRAGMA defer_foreign_keys = OFF;\n")
    orphans = [r[0] for r in conn.execute(
        "SELECT id FROM bookings WHERE customer_id NOT IN (SELECT id FROM customers) ORDER BY id")]
    conn.close()
    assert orphans == [1, 2]  # new ones: bookings 10 and 11 are gone
    assert report.verdict == "unsafe", f"bookings 1 and 2 now point nowhere; rehearsal says {report.verdict}"
