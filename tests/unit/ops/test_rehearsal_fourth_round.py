"""Fourth hostile review of issue #25 (2026-12-05): `migrate rehearse` after the third round's fixes
(each test failed on 063bd60)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import pytest

from ops.database.migrations import discover
from ops.database.rehearsal import RehearsalStopped, rehearse
from ops.database.rehearsal_model import RehearsalReport


def _run(tmp_path: Path, setup: str, text: str, **kwargs: float) -> tuple[RehearsalReport, sqlite3.Connection]:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0002_step.sql").write_text(text)
    conn = sqlite3.connect(tmp_path / "copy.sqlite", isolation_level=None)
    conn.executescript(setup)
    return rehearse(conn, discover(folder), source="test", **kwargs), conn


DECLARED = ("CREATE TABLE services (id INTEGER PRIMARY KEY, slug TEXT UNIQUE ON CONFLICT REPLACE, price INT);"
            "INSERT INTO services VALUES (1, 'cut', 10), (2, 'dye', 20);")


def test_an_upsert_whose_do_update_names_the_key_does_not_switch_off_the_replace_watch(tmp_path: Path) -> None:
    """A seed upsert that sets every column from `excluded` (as generated upserts do), on a table whose
    slug is UNIQUE ON CONFLICT REPLACE: id 3 is new, so the row is INSERTed and its slug 'cut' deletes
    row 1 (count held). The DO UPDATE never ran, but ReplaceWatch.before reads its `SET id = ...` as
    "the statement renumbers its own key" (Writes.updated) and watches nothing: `safe`.
    The plain INSERT of the same row is reported (tests/unit/ops: the REPLACE watch)."""
    report, conn = _run(tmp_path, DECLARED,
                        "INSERT INTO services (id, slug, price) VALUES (3, 'cut', 15) ON CONFLICT (id) DO UPDATE "
                        "SET id = excluded.id, slug = excluded.slug, price = excluded.price;\n")
    gone = conn.execute("SELECT count(*) = 0 FROM services WHERE id = 1").fetchone()[0]
    conn.close()
    assert gone  # service 1 (and every booking's reference to it) replaced away, on the copy
    assert report.verdict == "unsafe", f"services row 1 was deleted by a REPLACE; rehearsal says {report.verdict}"


def test_insert_or_replace_with_an_upsert_clause_on_the_key_is_watched(tmp_path: Path) -> None:
    """The same through the statement's own OR REPLACE: `ON CONFLICT(id) DO UPDATE SET id = id` (a no-op
    that never runs) switches the watch off."""
    report, conn = _run(tmp_path, "CREATE TABLE services (id INTEGER PRIMARY KEY, slug TEXT UNIQUE, price INT);"
                                  "INSERT INTO services VALUES (1, 'cut', 10), (2, 'dye', 20);",
                        "INSERT OR REPLACE INTO services VALUES (3, 'cut', 15) "
                        "ON CONFLICT (id) DO UPDATE SET id = id;\n")
    gone = conn.execute("SELECT count(*) = 0 FROM services WHERE id = 1").fetchone()[0]
    conn.close()
    assert gone
    assert report.verdict == "unsafe", f"services row 1 was deleted by a REPLACE; rehearsal says {report.verdict}"


def test_a_real_table_named_like_an_fts_shadow_is_counted(tmp_path: Path) -> None:
    """FTS5 external content: `notes` indexes the real table `notes_content` (content='notes_content'), so
    FTS5 makes no shadow of that name, but schema.ordinary_tables skips every `<virtual>_content` of an
    fts5 table: the cascade that deletes 2 of its 3 rows moves no count. (pragma_table_list calls it
    'shadow' too: SQLite's xShadowName looks at the suffix only; the table's `sql` tells.)"""
    report, conn = _run(tmp_path,
                        "CREATE TABLE customers (id INTEGER PRIMARY KEY);"
                        "CREATE TABLE notes_content (id INTEGER PRIMARY KEY, "
                        "customer_id INT REFERENCES customers(id) ON DELETE CASCADE, body TEXT);"
                        "CREATE VIRTUAL TABLE notes USING fts5(body, content='notes_content', content_rowid='id');"
                        "INSERT INTO customers VALUES (1), (2);"
                        "INSERT INTO notes_content VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 2, 'c');",
                        "DELETE FROM customers WHERE id = 1;\n")
    left = conn.execute("SELECT count(*) FROM notes_content").fetchone()[0]
    conn.close()
    assert left == 1
    assert report.verdict == "unsafe", f"2 of 3 rows of notes_content cascaded away; rehearsal says {report.verdict}"


def test_a_named_delete_does_not_excuse_a_trigger_that_deletes_and_inserts_in_its_table(tmp_path: Path) -> None:
    """LOW, needs a trigger: `DELETE FROM bookings WHERE id = 1` (changes() = 1) fires a trigger that deletes
    booking 2 and inserts a placeholder: the count falls by 1, as the DELETE matched; ReplaceWatch sees
    two keys gone but skips the statement's own DELETE table (`not in done.named_deletes`): `safe`."""
    report, conn = _run(tmp_path,
                        "CREATE TABLE bookings (id INTEGER PRIMARY KEY, who TEXT);"
                        "INSERT INTO bookings VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');"
                        "CREATE TRIGGER t AFTER DELETE ON bookings WHEN old.id = 1 BEGIN "
                        "DELETE FROM bookings WHERE id = 2; INSERT INTO bookings VALUES (99, 'placeholder'); END;",
                        "DELETE FROM bookings WHERE id = 1;\n")
    gone = conn.execute("SELECT count(*) = 0 FROM bookings WHERE id = 2").fetchone()[0]
    conn.close()
    assert gone
    assert report.verdict == "unsafe", f"booking 2 was deleted by a trigger; rehearsal says {report.verdict}"


def _view_nest(levels: int, leaves: int = 40) -> str:
    lines = [f"CREATE TABLE leaf{j} (a);" for j in range(leaves)]
    lines.append("CREATE VIEW v0 AS " + " UNION ALL ".join(f"SELECT a FROM leaf{j}" for j in range(leaves)) + ";")
    lines += [f"CREATE VIEW v{i} AS SELECT a FROM v{i - 1} UNION ALL SELECT a FROM v{i - 1};"
              for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_the_compile_that_reads_what_a_statement_writes_is_bounded(tmp_path: Path) -> None:
    """row_losses.writes() compiles each statement (`EXPLAIN`) before clock.start: the child is `free`,
    the parent waits in poll(None). SQLite compiles a read of a nest of views in time doubling per level
    (1 s at 12 levels here, 4 s at 14, hours at 25). The look-ahead on an empty copy would catch it, but
    stops at the first statement that fails there (`except sqlite3.Error: return []`), here a
    NOT NULL insert of `min(id)`, which holds a value only on real rows."""
    started = time.monotonic()
    with contextlib.suppress(RehearsalStopped):
        _run(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);"
                       "CREATE TABLE settings (v INT NOT NULL); CREATE TABLE extra (n INT);" + _view_nest(14),
             "INSERT INTO settings (v) VALUES ((SELECT min(id) FROM t));\n"
             "INSERT INTO extra SELECT count(*) FROM v14;\n", statement_timeout=0.5)[1].close()
    elapsed = time.monotonic() - started
    # 0.5 s timeout + 1 s grace: any bounded step is stopped by 1.5 s (and the child's start-up).
    assert elapsed < 3.5, (f"--statement-timeout 0.5 s; the rehearsal ran {elapsed:.1f} s before anything "
                           "stopped it (writes() compiles the statement outside any step)")


@pytest.mark.xfail(strict=True, reason="known LOW gap, left for now: PRAGMA foreign_key_check gives no rowid for a "
                   "WITHOUT ROWID child, so its orphans are still compared by count (rehearsal._orphans)")
def test_new_orphans_of_a_without_rowid_table_are_reported_even_when_old_ones_were_cleaned_up(tmp_path: Path) -> None:
    """The third round's fix compares orphans by rowid; a WITHOUT ROWID child has none (foreign_key_check
    gives NULL), so it is still compared by count: 2 legacy orphans cleaned up, 2 customers deleted under
    defer_foreign_keys whose bookings stay: 2 new orphans, `safe` (with a rowid table: reported)."""
    report, conn = _run(tmp_path,
                        "PRAGMA foreign_keys = OFF;"
                        "CREATE TABLE customers (id INTEGER PRIMARY KEY);"
                        "CREATE TABLE bookings (id INTEGER PRIMARY KEY, customer_id INT REFERENCES customers(id))"
                        " WITHOUT ROWID;"
                        "INSERT INTO customers VALUES (1), (2), (3);"
                        "INSERT INTO bookings VALUES (1, 1), (2, 2), (3, 3), (10, 98), (11, 99);",
                        "PRAGMA defer_foreign_keys = ON;\n"
                        "DELETE FROM bookings WHERE id IN (10, 11);\n"
                        "DELETE FROM customers WHERE id IN (1, 2);\n"
                        "PRAGMA defer_foreign_keys = OFF;\n")
    orphans = [r[0] for r in conn.execute(
        "SELECT id FROM bookings WHERE customer_id NOT IN (SELECT id FROM customers) ORDER BY id")]
    conn.close()
    assert orphans == [1, 2]
    assert report.verdict == "unsafe", f"bookings 1 and 2 now point nowhere; rehearsal says {report.verdict}"


def test_rows_a_migration_inserted_and_deleted_do_not_excuse_a_lossy_rebuild(tmp_path: Path) -> None:
    """unexplained_losses compares the table's net fall with `explained`, a COUNT of rows statements took:
    2 legacy rows merged in and deleted again by name (a dedup) bank 2, and the rebuild whose copy (an
    inner join) drops 2 real bookings is then `safe`. Without the merge the same rebuild is reported."""
    report, conn = _run(tmp_path,
                        "CREATE TABLE customers (id INTEGER PRIMARY KEY); INSERT INTO customers VALUES (1), (2);"
                        "CREATE TABLE bookings (id INTEGER PRIMARY KEY, customer_id INT, note TEXT);"
                        "INSERT INTO bookings VALUES (1, 1, 'a'), (2, NULL, 'b'), (3, 2, 'c'), (4, NULL, 'd');"
                        "CREATE TABLE legacy (id INTEGER PRIMARY KEY, customer_id INT, note TEXT);"
                        "INSERT INTO legacy VALUES (10, 1, 'x'), (11, 2, 'y');",
                        "INSERT INTO bookings SELECT * FROM legacy;\n"
                        "DELETE FROM bookings WHERE id IN (10, 11);\n"
                        "CREATE TABLE bookings_new (id INTEGER PRIMARY KEY, customer_id INT, note TEXT);\n"
                        "INSERT INTO bookings_new SELECT b.* FROM bookings b "
                        "JOIN customers c ON c.id = b.customer_id;\n"
                        "DROP TABLE bookings;\n"
                        "ALTER TABLE bookings_new RENAME TO bookings;\n")
    ids = [r[0] for r in conn.execute("SELECT id FROM bookings ORDER BY id")]
    conn.close()
    assert ids == [1, 3]  # bookings 2 and 4 were not copied
    assert report.verdict == "unsafe", f"the rebuild lost bookings 2 and 4; rehearsal says {report.verdict}"


def test_references_nulled_in_the_deleting_table_itself_are_reported(tmp_path: Path) -> None:
    """LOW: `nulled` excuses every table the statement targets (`fold(table) == done.target`, meant for
    an UPDATE of the column): `DELETE FROM bookings WHERE id = 1` in a self-referencing series
    (ON DELETE SET NULL) empties the parent of bookings 2-4, and nothing is said: `safe`."""
    report, conn = _run(tmp_path,
                        "CREATE TABLE bookings (id INTEGER PRIMARY KEY, "
                        "parent INT REFERENCES bookings(id) ON DELETE SET NULL);"
                        "INSERT INTO bookings VALUES (1, NULL), (2, 1), (3, 1), (4, 1);",
                        "DELETE FROM bookings WHERE id = 1;\n")
    nulled = conn.execute("SELECT count(*) FROM bookings WHERE parent IS NULL").fetchone()[0]
    conn.close()
    assert nulled == 3
    assert any(p.rule == "references-nulled" for m in report.migrations for p in m.problems), (
        f"3 bookings lost their parent; rehearsal says {report.verdict} with no references-nulled")
