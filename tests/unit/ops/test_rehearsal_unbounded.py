"""Third hostile review of issue #25 (2026-12-05):
work of the rehearsal's child that no deadline bounds (fails on main a4f7c1b).

`rehearse` runs its child with `seconds=math.inf`, and the child calls `reporter.free()` before it
starts: until the first `clock.start`, and between steps, the parent waits in `receiver.poll(None)`.
`_counts` (and `links`, `_children`, ReplaceWatch, which call schema.ordinary_tables) read
`pragma_table_list`, which compiles every VIEW of the schema to count its columns. A schema with
nested views (each level reading the one below twice) doubles that time per level: measured here
0.34 s at 10 levels, 2.5 s at 13; 20 levels is minutes, 25 hours, with nothing to stop it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from ops.database.migrations import discover
from ops.database.rehearsal import RehearsalStopped, rehearse


def _view_nest(levels: int, leaves: int = 40) -> str:
    lines = [f"CREATE TABLE leaf{j} (a);" for j in range(leaves)]
    lines.append("CREATE VIEW v0 AS " + " UNION ALL ".join(f"SELECT a FROM leaf{j}" for j in range(leaves)) + ";")
    lines += [f"CREATE VIEW v{i} AS SELECT a FROM v{i - 1} UNION ALL SELECT a FROM v{i - 1};"
              for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_the_statement_timeout_bounds_the_row_counts_of_a_backup_with_nested_views(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0002_step.sql").write_text("CREATE TABLE extra (id INTEGER PRIMARY KEY);\n")
    conn = sqlite3.connect(tmp_path / "copy.sqlite", isolation_level=None)
    conn.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);" + _view_nest(14))
    started = time.monotonic()
    try:
        rehearse(conn, discover(folder), source="test", statement_timeout=0.5)
    except RehearsalStopped:
        pass
    finally:
        conn.close()
    elapsed = time.monotonic() - started
    # 0.5 s timeout + 1 s grace: any bounded step is stopped by 1.5 s (and the child's start-up).
    assert elapsed < 3.5, (f"--statement-timeout 0.5 s; the rehearsal ran {elapsed:.1f} s before anything "
                           "stopped it (row counts compile every view, outside any step)")


def test_a_database_of_more_than_2000_tables_can_be_rehearsed(tmp_path: Path) -> None:
    """migration_rows.counts counts every table in ONE SELECT of one subquery per table; SQLite's
    result has at most 2,000 columns (SQLITE_MAX_COLUMN), so a schema of 2,001 tables (D1 publishes no
    bound on tables) makes the rehearsal raise `too many columns in result set` before any migration."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0002_step.sql").write_text("CREATE TABLE extra (id INTEGER PRIMARY KEY);\n")
    conn = sqlite3.connect(tmp_path / "copy.sqlite", isolation_level=None)
    conn.executescript("".join(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY);" for i in range(2001)))
    try:
        report = rehearse(conn, discover(folder), source="test")
    finally:
        conn.close()
    assert [m.status for m in report.migrations] == ["applied"]
