"""`migrate rehearse` on real SQLite: the hazard corpus, each caught with the right table and count.

Each case builds a small database with rows, writes the pending migrations the way people write them
(and the way the bug reports show them), and rehearses them on it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from ops.database.migrations import discover
from ops.database.rehearsal import RehearsalStopped, rehearse
from ops.database.rehearsal_model import Problem, RehearsalReport
from ops.database.serving import ServingQuery
from tests.helpers import REPO

SCHEMA = """
CREATE TABLE salons (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE stylists (id INTEGER PRIMARY KEY, salon_id INTEGER NOT NULL, name TEXT);
CREATE TABLE customers (id INTEGER PRIMARY KEY, phone TEXT, email TEXT);
CREATE TABLE bookings (
    id INTEGER PRIMARY KEY,
    salon_id INTEGER NOT NULL REFERENCES salons(id) ON DELETE CASCADE,
    stylist_id INTEGER REFERENCES stylists(id),
    customer_id INTEGER REFERENCES customers(id),
    starts_at TEXT NOT NULL
);
CREATE INDEX idx_bookings_salon ON bookings(salon_id);
"""


def _database(tmp_path: Path, bookings: int = 1200) -> sqlite3.Connection:
    tmp_path.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(tmp_path / "copy.sqlite", isolation_level=None)
    conn.executescript(SCHEMA)
    conn.executemany("INSERT INTO salons VALUES (?, ?)", [(1, "InStyle"), (2, "Other")])
    conn.executemany("INSERT INTO stylists VALUES (?, ?, ?)", [(i, 1 + i % 2, f"stylist {i}") for i in range(1, 11)])
    # Customers 1-4 share two phones; 5-30 have none in email.
    conn.executemany("INSERT INTO customers VALUES (?, ?, ?)",
                     [(i, f"+27 82 000 {min(i, 5) // 3:04d}" if i <= 4 else f"+27 82 {i:07d}",
                       None if i > 20 else f"c{i}@example.com") for i in range(1, 31)])
    conn.executemany("INSERT INTO bookings VALUES (?, ?, ?, ?, ?)",
                     [(i, 1 + i % 2, 1 + i % 10, 1 + i % 30, f"2026-12-{1 + i % 28:02d} 10:00:00")
                      for i in range(1, bookings + 1)])
    return conn


def _migrations(tmp_path: Path, *texts: str) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir(exist_ok=True)
    for number, text in enumerate(texts, start=2):
        (folder / f"{number:04d}_step.sql").write_text(text)
    return folder


def _run(tmp_path: Path, *texts: str, queries: tuple[ServingQuery, ...] = (), **options: float) -> RehearsalReport:
    conn = _database(tmp_path)
    try:
        return rehearse(conn, discover(_migrations(tmp_path, *texts)), queries, source="test", **options)
    finally:
        conn.close()


def _only(report: RehearsalReport, rule: str) -> Problem:
    found = [p for p in report.findings if p.rule == rule]
    assert len(found) == 1, report.findings
    return found[0]


REBUILD_SALONS = """PRAGMA defer_foreign_keys = ON;
CREATE TABLE salons_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, plan TEXT);
INSERT INTO salons_new (id, name) SELECT id, name FROM salons;
DROP TABLE salons;
ALTER TABLE salons_new RENAME TO salons;
PRAGMA defer_foreign_keys = OFF;
"""


def test_a_parent_rebuild_that_cascades_into_its_children_names_the_table_the_count_and_the_drop(
        tmp_path: Path) -> None:
    # workers-sdk#5438: defer_foreign_keys does not stop ON DELETE CASCADE when the old table is dropped.
    report = _run(tmp_path, REBUILD_SALONS)
    problem = _only(report, "rows-deleted-unnamed")
    assert (problem.table, problem.rows, problem.file, problem.line) == ("bookings", 1200, "0002_step.sql", 4)
    assert "DROP TABLE salons" in problem.message
    assert report.verdict == "unsafe"
    [migration] = report.migrations
    assert {t.table: (t.before, t.after) for t in migration.tables}["bookings"] == (1200, 0)


def test_a_delete_the_migration_names_is_not_reported_but_its_cascade_is(tmp_path: Path) -> None:
    report = _run(tmp_path, "DELETE FROM salons WHERE id = 2;\n")
    problem = _only(report, "rows-deleted-unnamed")
    assert (problem.table, problem.rows) == ("bookings", 600)
    assert not any(p.table == "salons" for p in report.findings)


def test_duplicates_under_a_new_unique_index_are_counted_and_sampled_with_phones_masked(tmp_path: Path) -> None:
    report = _run(tmp_path, "CREATE UNIQUE INDEX customers_phone ON customers(phone);\n")
    problem = _only(report, "constraint-failed")
    assert (problem.table, problem.rows, problem.line) == ("customers", 2, 1)
    assert [row["rows"] for row in problem.sample] == [2, 2]
    assert all(row["phone"].startswith("<masked") for row in problem.sample)
    assert report.migrations[0].status == "failed"


def test_nulls_in_a_column_the_next_migration_makes_not_null_are_found_before_it_runs(tmp_path: Path) -> None:
    backfill = "UPDATE customers SET email = 'x' || id || '@example.com' WHERE id <= 25;\n"
    tighten = """PRAGMA defer_foreign_keys = ON;
CREATE TABLE customers_new (id INTEGER PRIMARY KEY, phone TEXT, email TEXT NOT NULL);
INSERT INTO customers_new SELECT id, phone, email FROM customers;
DROP TABLE customers;
ALTER TABLE customers_new RENAME TO customers;
PRAGMA defer_foreign_keys = OFF;
"""
    report = _run(tmp_path, backfill, tighten)
    problem = _only(report, "nulls-before-not-null")
    assert (problem.file, problem.table, problem.rows) == ("0003_step.sql", "customers", 5)
    assert {row["id"] for row in problem.sample} == {26, 27, 28, 29, 30}
    assert [m.status for m in report.migrations] == ["applied", "failed"]


def test_orphans_left_by_dropping_a_parent_under_defer_foreign_keys(tmp_path: Path) -> None:
    drop = "PRAGMA defer_foreign_keys = ON;\nDROP TABLE stylists;\nPRAGMA defer_foreign_keys = OFF;\n"
    report = _run(tmp_path, drop)
    problem = _only(report, "orphans")
    assert (problem.table, problem.rows) == ("bookings", 1200)
    assert "stylists" in problem.message and report.migrations[0].status == "applied"


def test_a_rebuild_whose_drop_is_never_forgiven_fails_at_commit_as_d1_would(tmp_path: Path) -> None:
    report = _run(tmp_path, REBUILD_SALONS.replace("PRAGMA defer_foreign_keys = OFF;\n", "").replace(
        "ON DELETE CASCADE", ""))
    assert report.migrations[0].status in ("applied", "failed")
    assert report.verdict == "unsafe"


def test_a_slow_statement_is_reported_and_one_past_the_timeout_is_stopped(tmp_path: Path) -> None:
    slow = ("CREATE TABLE numbers AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
            "WHERE x < 300000) SELECT x FROM n;\n")
    problem = _only(_run(tmp_path / "a", slow, slow_seconds=0.001), "slow-statement")
    assert (problem.file, problem.line) == ("0002_step.sql", 1) and "D1 stops a query at 30 s" in problem.message
    stopped = _run(tmp_path / "b", slow.replace("300000", "100000000"), statement_timeout=0.2)
    assert "statement timeout" in _only(stopped, "apply-failed").message


def test_a_serving_query_that_loses_its_index_is_a_full_scan_of_the_table(tmp_path: Path) -> None:
    query = ServingQuery("worker/src/index.js:40", "SELECT * FROM bookings WHERE salon_id = ?")
    report = _run(tmp_path, "DROP INDEX idx_bookings_salon;\n", queries=(query,))
    problem = _only(report, "full-scan")
    assert (problem.table, problem.rows) == ("bookings", 1200) and "worker/src/index.js:40" in problem.message
    assert report.verdict == "safe"  # a warning: slower, not broken


def test_a_false_check_fails_the_migration_and_nothing_of_it_stays(tmp_path: Path) -> None:
    report = _run(tmp_path, "-- check: SELECT count(*) = 0 FROM bookings WHERE stylist_id = 3 -- stylist 3 has "
                            "no bookings left\nUPDATE bookings SET stylist_id = NULL WHERE stylist_id = 4;\n")
    assert "stylist 3 has no bookings left" in _only(report, "check-failed").message
    assert report.migrations[0].status == "failed"


def test_the_repository_migrations_rehearse_without_findings(tmp_path: Path) -> None:
    migrations = discover(REPO / "migrations")
    conn = sqlite3.connect(tmp_path / "repo.sqlite", isolation_level=None)
    first = migrations[0]
    for statement in first.statements:
        conn.execute(statement.sql)
    conn.execute("CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, "
                 "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)")
    conn.execute("INSERT INTO d1_migrations (name) VALUES (?)", (first.name,))
    conn.execute("INSERT INTO tenants (id, slug, name) VALUES ('t1', 'instyle', 'InStyle')")
    report = rehearse(conn, migrations, source="repo")
    assert [m.name for m in report.migrations] == [m.name for m in migrations[1:]]
    assert report.findings == [] and all(m.status == "applied" for m in report.migrations)


@pytest.mark.parametrize("hostile", ['"; DROP TABLE x; --', "naïve table", "select"])
def test_tables_with_hostile_names_are_counted_and_sampled_as_data(tmp_path: Path, hostile: str) -> None:
    conn = _database(tmp_path)
    quoted = '"' + hostile.replace('"', '""') + '"'
    conn.execute(f"CREATE TABLE {quoted} (id INTEGER PRIMARY KEY, salon_id INTEGER REFERENCES salons(id) "
                 "ON DELETE CASCADE)")
    conn.executemany(f"INSERT INTO {quoted} VALUES (?, 2)", [(i,) for i in range(7)])
    folder = _migrations(tmp_path, "DELETE FROM salons WHERE id = 2;\n")
    report = rehearse(conn, discover(folder), source="test")
    assert {(p.table, p.rows) for p in report.findings} == {("bookings", 600), (hostile, 7)}


@pytest.mark.parametrize("statement", ["ATTACH DATABASE '{path}' AS x;", "VACUUM INTO '{path}';",
                                       "PRAGMA writable_schema = ON;"])
def test_what_d1_refuses_is_refused_and_writes_no_file_on_this_machine(tmp_path: Path, statement: str) -> None:
    written = tmp_path / "written.sqlite"
    report = _run(tmp_path, statement.format(path=written) + "\n")
    assert _only(report, "apply-failed").line == 1 and report.migrations[0].status == "failed"
    assert not written.exists()


def test_a_statement_that_needs_no_rows_does_not_hang_the_look_ahead(tmp_path: Path) -> None:
    endless = ("CREATE TABLE numbers AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
               "SELECT x FROM n;\n")
    report = _run(tmp_path, endless, statement_timeout=0.5)
    assert "statement timeout" in _only(report, "apply-failed").message


# --- From the hostile review of #25 (/work/briefs/hostile25): each failed before its fix. ------------

PEOPLE = ("CREATE TABLE people (id INTEGER PRIMARY KEY, customerEmail TEXT, e_mail TEXT, phoneNumber TEXT, "
          "fullname TEXT, tel TEXT, contact1 TEXT);"
          "INSERT INTO people VALUES (1, 'ann@example.io', 'ann@example.io', '+27821234567', 'Ann Smith', "
          "'0215550101', 'ann@example.io'), (2, 'ann@example.io', 'ann@example.io', '+27821234567', 'Ann Smith', "
          "'0215550101', 'ann@example.io');")


def _on(tmp_path: Path, setup: str, *texts: str, **options: float) -> RehearsalReport:
    conn = sqlite3.connect(tmp_path / "copy.sqlite", isolation_level=None)
    try:
        conn.executescript(setup)
        return rehearse(conn, discover(_migrations(tmp_path, *texts)), source="test", **options)
    finally:
        conn.close()


def test_a_duplicate_sample_masks_camel_case_compound_and_short_personal_names_and_values(tmp_path: Path) -> None:
    report = _on(tmp_path, PEOPLE, "CREATE UNIQUE INDEX people_all ON people "
                                   "(customerEmail, e_mail, phoneNumber, fullname, tel, contact1);\n")
    problem = _only(report, "constraint-failed")
    assert problem.rows == 1 and len(problem.sample) == 1
    evidence = repr(report.to_dict())
    assert not [v for v in ("ann@example.io", "+27821234567", "Ann Smith", "0215550101") if v in evidence]
    assert set(problem.sample[0]) == {"customerEmail", "e_mail", "phoneNumber", "fullname", "tel", "contact1", "rows"}


FAMILY = ("CREATE TABLE salons (id INTEGER PRIMARY KEY);"
          "CREATE TABLE bookings (id INTEGER PRIMARY KEY, salon_id INTEGER REFERENCES salons(id) ON DELETE CASCADE);"
          "INSERT INTO salons VALUES (1), (2); INSERT INTO bookings VALUES (1, 1), (2, 2);")


@pytest.mark.parametrize("schema", ['"main".', "`main`.", "[main].", "MAIN . "])
def test_a_delete_naming_its_table_after_a_quoted_schema_is_a_named_deletion(tmp_path: Path, schema: str) -> None:
    report = _on(tmp_path, FAMILY, f'DELETE FROM {schema}"bookings" WHERE id = 1;\n')
    assert report.verdict == "safe", report.findings


def test_a_delete_named_only_inside_a_string_does_not_excuse_a_trigger(tmp_path: Path) -> None:
    setup = FAMILY + ("CREATE TABLE audit (note TEXT);"
                      "CREATE TRIGGER purge AFTER INSERT ON audit BEGIN DELETE FROM bookings; END;")
    report = _on(tmp_path, setup, "INSERT INTO audit (note) VALUES ('DELETE FROM bookings was run by hand');\n")
    problem = _only(report, "rows-deleted-unnamed")
    assert (problem.table, problem.rows) == ("bookings", 2)


@pytest.mark.parametrize("column", ["x,y", "a, b", "t.c", "q, t.r"])
def test_a_unique_failure_on_a_column_whose_name_holds_a_comma_or_dot_is_read_and_sampled(
        tmp_path: Path, column: str) -> None:
    quoted = '"' + column + '"'
    report = _on(tmp_path, f"CREATE TABLE t (id INTEGER PRIMARY KEY, {quoted} TEXT, other TEXT);"
                           "INSERT INTO t VALUES (1, 'q', 'a'), (2, 'q', 'a'), (3, 'z', 'a');",
                 f"CREATE UNIQUE INDEX t_two ON t ({quoted}, other);\n")
    problem = _only(report, "constraint-failed")
    assert (problem.table, problem.rows) == ("t", 1) and problem.sample == ({column: "q", "other": "a", "rows": 2},)


def _view_nest(levels: int, leaves: int = 40) -> str:
    """Views doubling at each level over `leaves` tables: cheap to create; a statement over the top
    one runs for seconds without SQLite calling the progress handler or looking at an interrupt."""
    lines = [f"CREATE TABLE leaf{j} (a);" for j in range(leaves)]
    lines.append("CREATE VIEW v0 AS " + " UNION ALL ".join(f"SELECT a FROM leaf{j}" for j in range(leaves)) + ";")
    lines += [f"CREATE VIEW v{i} AS SELECT a FROM v{i - 1} UNION ALL SELECT a FROM v{i - 1};"
              for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_a_statement_sqlite_cannot_interrupt_stops_the_rehearsal_soon_after_its_timeout(tmp_path: Path) -> None:
    """Uninterrupted, the look-ahead's statement alone runs about 5 s here; only the parent's kill raises this."""
    started = time.monotonic()
    with pytest.raises(RehearsalStopped, match=r"0002_step\.sql \(applied to an empty copy of the schema\) ran past "
                                               r"the statement timeout \(0\.5 s\)"):
        _on(tmp_path, _view_nest(10), "CREATE TABLE flat AS SELECT a FROM v10;\n", statement_timeout=0.5)
    assert time.monotonic() - started < 4.0


def test_a_check_runs_under_the_statement_timeout(tmp_path: Path) -> None:
    check = ("-- check: WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000000) "
             "SELECT count(*) > 0 FROM n -- counts to two hundred million\n")
    started = time.monotonic()
    report = _on(tmp_path, "CREATE TABLE t (a);", check + "CREATE TABLE q (a);\n", statement_timeout=0.3)
    assert time.monotonic() - started < 3.0
    assert "interrupted" in _only(report, "check-failed").message and report.migrations[0].status == "failed"


def test_a_check_holds_as_sqlite_reads_it_the_same_as_on_d1(tmp_path: Path) -> None:
    report = _on(tmp_path, "CREATE TABLE t (a TEXT);",
                 "-- check: SELECT 'no' -- text that SQLite reads as false\nALTER TABLE t ADD COLUMN b TEXT;\n")
    assert "answered 'no'" in _only(report, "check-failed").message
    (tmp_path / "b").mkdir()
    kept = _on(tmp_path / "b", "CREATE TABLE t (a TEXT);",
               "-- check: SELECT '7 days' -- text that SQLite reads as 7\nALTER TABLE t ADD COLUMN b TEXT;\n")
    assert kept.verdict == "safe"


# --- From the second hostile review of #25 (/work/briefs/hostile25b) ---------------------------------

SET_NULL = ("CREATE TABLE customers (id INTEGER PRIMARY KEY, slug TEXT UNIQUE);"
            "CREATE TABLE bookings (id INTEGER PRIMARY KEY, "
            "customer_id INTEGER REFERENCES customers(id) ON DELETE SET NULL);"
            "INSERT INTO customers VALUES (1, 'a'), (2, 'b'); INSERT INTO bookings VALUES (1, 1), (2, 2), (3, 1);")


@pytest.mark.parametrize("migration", [
    ("PRAGMA defer_foreign_keys = ON;\nCREATE TABLE customers_new (id INTEGER PRIMARY KEY, slug TEXT UNIQUE, t TEXT);\n"
     "INSERT INTO customers_new (id, slug) SELECT id, slug FROM customers;\nDROP TABLE customers;\n"
     "ALTER TABLE customers_new RENAME TO customers;\nPRAGMA defer_foreign_keys = OFF;\n", 3, 4),
    ("DELETE FROM customers WHERE id = 1;\n", 2, 1),
])
def test_references_set_null_by_a_parents_drop_or_delete_are_reported(
        tmp_path: Path, migration: tuple[str, int, int]) -> None:
    text, rows, line = migration
    problem = _only(_on(tmp_path, SET_NULL, text), "references-nulled")
    assert (problem.table, problem.rows, problem.line) == ("bookings", rows, line)
    assert "customer_id" in problem.message


def test_an_update_of_the_child_itself_nulling_its_references_is_its_own_doing(tmp_path: Path) -> None:
    report = _on(tmp_path, SET_NULL, "UPDATE bookings SET customer_id = NULL WHERE id = 1;\n")
    assert report.verdict == "safe", report.findings


def test_a_failed_check_quotes_a_number_or_a_yes_no_but_never_a_persons_text(tmp_path: Path) -> None:
    setup = ("CREATE TABLE customers (id INTEGER PRIMARY KEY, fullname TEXT);"
             "INSERT INTO customers VALUES (1, 'Ann Smith');")
    report = _on(tmp_path, setup, "-- check: SELECT fullname FROM customers WHERE id = 1 -- kept\n"
                                  "CREATE TABLE q (a);\n")
    problem = _only(report, "check-failed")
    assert "Ann Smith" not in repr(report.to_dict()) and "text of 9 characters" in problem.message


# A REPLACE conflict deletes the row holding the UNIQUE value, then inserts: counts do not move.
SERVICES = ("CREATE TABLE services (id INTEGER PRIMARY KEY, slug TEXT UNIQUE, price INT);"
            "INSERT INTO services VALUES (1, 'cut', 10), (2, 'dye', 20);")


@pytest.mark.parametrize("statement", [
    "INSERT OR REPLACE INTO services (id, slug, price) VALUES (3, 'cut', 15);\n",
    "REPLACE INTO services (id, slug, price) VALUES (3, 'cut', 15);\n",
    "UPDATE OR REPLACE services SET slug = 'cut' WHERE id = 2;\n",
])
def test_a_row_a_replace_conflict_deletes_is_reported_though_the_count_holds(tmp_path: Path, statement: str) -> None:
    problem = _only(_on(tmp_path, SERVICES, statement), "rows-deleted-unnamed")
    assert (problem.table, problem.rows, problem.line) == ("services", 1, 1)
    assert "REPLACE" in problem.message


def test_a_replace_keeping_each_rows_key_is_an_upsert_not_a_deletion(tmp_path: Path) -> None:
    report = _on(tmp_path, SERVICES, "INSERT OR REPLACE INTO services (id, slug, price) VALUES (1, 'cut', 15);\n"
                                     "REPLACE INTO services VALUES (4, 'wash', 5);\n")
    assert report.verdict == "safe", report.findings


def test_a_replace_conflict_declared_by_the_table_or_done_by_a_trigger_is_reported(tmp_path: Path) -> None:
    setup = ("CREATE TABLE services (id INTEGER PRIMARY KEY, slug TEXT UNIQUE ON CONFLICT REPLACE, price INT);"
             "INSERT INTO services VALUES (1, 'cut', 10), (2, 'dye', 20);"
             "CREATE TABLE renames (slug TEXT);"
             "CREATE TRIGGER rename AFTER INSERT ON renames BEGIN "
             "INSERT OR REPLACE INTO services (id, slug) VALUES (9, NEW.slug); END;")
    report = _on(tmp_path, setup, "INSERT INTO services (id, slug, price) VALUES (3, 'cut', 15);\n"
                                  "INSERT INTO renames VALUES ('dye');\n")
    found = [(p.table, p.rows, p.line) for p in report.findings if p.rule == "rows-deleted-unnamed"]
    assert found == [("services", 1, 1), ("services", 1, 2)], report.findings


@pytest.mark.parametrize("statement", ["ALTER TABLE services DROP COLUMN price;\n",
                                       'ALTER TABLE "main"."services" DROP "price";\n'])
def test_a_dropped_columns_values_are_counted_for_the_reviewer(tmp_path: Path, statement: str) -> None:
    report = _on(tmp_path, SERVICES + "INSERT INTO services VALUES (3, 'wash', NULL);", statement)
    problem = _only(report, "values-dropped")
    assert (problem.table, problem.rows, problem.severity) == ("services", 2, "warning")
    assert report.verdict == "safe"  # named and on purpose: a contract step `migrate check` classifies


def test_a_rehearsal_whose_process_is_killed_stops_with_an_operation_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal

    import ops.database.rehearsal as rehearsal

    monkeypatch.setattr(rehearsal, "_rehearse", lambda *_: os.kill(os.getpid(), signal.SIGKILL))
    conn = _database(tmp_path, bookings=10)
    try:
        with pytest.raises(RehearsalStopped, match=r"was killed by SIGKILL \(out of memory\?\).*nothing was written"):
            rehearse(conn, discover(_migrations(tmp_path, "CREATE TABLE q (a);\n")), source="test")
    finally:
        conn.close()
