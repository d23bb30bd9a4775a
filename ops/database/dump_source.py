"""The source database as the dump reads it: one snapshot, what may be dumped, and its foreign keys.

- The write lock (BEGIN IMMEDIATE on a connection of its own) under which a second connection (the
  helper process, the foreign-key check) opens its read transaction: no commit can come between the
  snapshots, so every part reads the same database.
- The kinds of tables (`PRAGMA table_list`): an FTS5 table is dumped as its rows, its shadow tables
  are left out, any other virtual table is refused.
- The rows whose foreign keys point nowhere (`PRAGMA foreign_key_check`), counted in that snapshot,
  beside the dump on a thread and a connection of its own.

Apart from ops/database/sqldump.py, which formats and writes the rows: this is what the dump may
rely on of the source before and beside that, and what a load (ops/database/sqlload.py) counts too.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from booking_shared.errors import OperationFailed

FOREIGN_KEY_EXAMPLES = 20  # violations named one by one in a manifest; all of them are counted


class DumpError(OperationFailed):
    """The dump could not be completed; nothing it wrote may be used. The message says why."""


@dataclass(frozen=True)
class ForeignKeyViolations:
    """Rows whose foreign key points to no parent row: how many, and the first few."""

    count: int
    examples: tuple[tuple[str, int | None, str], ...]  # (table, rowid, parent table)

    def describe(self) -> str:
        shown = ", ".join(f"{table} rowid {rowid} -> {parent}" for table, rowid, parent in self.examples[:3])
        return f"{self.count} row(s) break foreign keys, e.g. {shown}"


def foreign_key_violations(conn: sqlite3.Connection) -> ForeignKeyViolations:
    """`PRAGMA foreign_key_check`, counted in full but with only the first FOREIGN_KEY_EXAMPLES kept."""
    count, examples = 0, list[tuple[str, int | None, str]]()
    for row in conn.execute("PRAGMA foreign_key_check"):
        count += 1
        if len(examples) < FOREIGN_KEY_EXAMPLES:
            examples.append((str(row[0]), row[1], str(row[2])))
    return ForeignKeyViolations(count, tuple(examples))
def table_kinds(conn: sqlite3.Connection) -> dict[str, str]:
    """'table', 'virtual' or 'shadow' (a virtual table's own storage) for each table of `main`."""
    try:
        rows = conn.execute("PRAGMA main.table_list").fetchall()
    except sqlite3.OperationalError:  # SQLite before 3.37 (2021) cannot tell shadow tables apart
        rows = []
        if conn.execute("SELECT 1 FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%'").fetchone():
            raise DumpError("the database has a virtual table, and this SQLite (before 3.37) cannot tell its "
                            "shadow tables apart; back it up with a newer Python or SQLite") from None
    return {str(row[1]): str(row[2]) for row in rows}


def check_virtual(name: str, sql: str) -> None:
    """Refuse a virtual table a dump cannot rebuild from its rows (see the module docstring)."""
    module = re.match(r"\s*CREATE\s+VIRTUAL\s+TABLE\s+.+?\s+USING\s+(\w+)", sql, re.IGNORECASE | re.DOTALL)
    kind = module.group(1).lower() if module else "unknown"
    if kind != "fts5":
        raise DumpError(f"table {name} is a virtual table of module {kind}: a dump can only rebuild FTS5 tables "
                        "from their rows; drop it (and re-create it after a restore) to back the database up")
    if re.search(r"\bcontent\s*=\s*(''|\"\"|,|\))", sql, re.IGNORECASE):
        raise DumpError(f"table {name} is a contentless FTS5 table: its text is not stored, so no dump can "
                        "restore it; rebuild it from its source after a restore, and drop it to back up")


def write_lock(path: Path) -> sqlite3.Connection | None:
    """A connection holding the write lock (BEGIN IMMEDIATE), or None if it cannot be had quickly.

    Without it (a read-only file, a long write in progress) the dump runs without a helper, in the
    one snapshot of `conn`, as correct and only slower.
    """
    try:
        lock = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None, timeout=1.0)
    except sqlite3.Error:
        return None
    try:
        lock.execute("BEGIN IMMEDIATE")
    except sqlite3.Error:
        lock.close()
        return None
    return lock


def release(lock: sqlite3.Connection) -> None:
    lock.execute("ROLLBACK")
    lock.close()


class ForeignKeyCheck:
    """`PRAGMA foreign_key_check` on a thread and a connection of its own, in the dump's snapshot.

    It costs about a third of the dump on a large table (an index lookup per row and foreign key);
    beside the dump, on the second core between the helper's turns, it costs little. The snapshot
    is the dump's because the read transaction starts while the dump holds the write lock.
    """

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("BEGIN")
        self._conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # the read snapshot starts here
        self._found: ForeignKeyViolations | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dump-foreign-keys", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._found = foreign_key_violations(self._conn)
        except BaseException as exc:  # handed to the dumping thread by result()
            self._error = exc

    def result(self) -> ForeignKeyViolations:
        self._thread.join()
        self._conn.close()
        if self._error is not None:
            raise DumpError(f"the foreign-key check failed: {self._error}") from self._error
        assert self._found is not None
        return self._found

    def abort(self) -> None:
        self._conn.interrupt()
        self._thread.join()
        self._conn.close()
