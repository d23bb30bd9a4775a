"""Loading an SQL dump into SQLite with only what a dump does, within a time and a size limit.

A dump is data from outside: a backup folder that others can write to, or D1's export. Run with
SQLite's full reach it could ATTACH another database and change it, or run a recursive query
that never ends and fills the disk. So its statements run under an authorizer
(`sqlite3.Connection.set_authorizer`) that allows what dumps contain: creating tables, indexes,
views, triggers and FTS5 tables, inserting rows, resetting sqlite_sequence, and the two
foreign-key pragmas. Anything else is refused, naming the line: ATTACH and DETACH, other
pragmas, SELECT (so no CREATE TABLE ... AS SELECT and no INSERT ... SELECT), recursive queries,
transaction control, DROP, ALTER, DELETE and UPDATE of rows, temporary objects, other virtual
tables. A progress handler stops a load that runs past its time limit, and `PRAGMA
max_page_count` one that grows the database past its size limit; both grow with the dump's size.

FTS5 runs statements of its own on its shadow tables while rows go in; they are allowed during a
statement that creates or inserts into an FTS5 table this dump created, on its shadow tables only.

D1's export of a database with statistics (D1 supports `PRAGMA optimize`, which writes sqlite_stat1)
creates their tables with `ANALYZE sqlite_schema;` before inserting their rows, as SQLite's shell
does (workers-sdk f8308360 packages/miniflare/src/workers/d1/dumpSql.ts). That one statement is
allowed, exactly so spelled: it analyzes no table of the dump (SQLite skips its own tables), and
what it does inside is SQLite's own bookkeeping of sqlite_stat1 and sqlite_stat4.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from booking_shared.errors import OperationFailed
from ops.database.dump_source import ForeignKeyViolations, foreign_key_violations
from ops.database.sqldump import Progress, no_progress
from ops.database.sqlite_callbacks import clear_pending, reraise_pending, shielded
from ops.database.sqlscript import iter_statements, strip_comments

# SQLite's authorizer action codes (sqlite3.h). Python's sqlite3 module has them too, but under
# names it shares with result codes of the same value, so they are spelled out here.
_CREATE_INDEX, _CREATE_TABLE, _CREATE_TRIGGER, _CREATE_VIEW = 1, 2, 7, 8
_DELETE, _INSERT, _PRAGMA, _READ, _SELECT, _UPDATE = 9, 18, 19, 20, 21, 23
_REINDEX, _ANALYZE, _CREATE_VTABLE, _FUNCTION = 27, 28, 29, 31
_REFUSED = {3: "CREATE TEMP INDEX (temporary objects)", 4: "CREATE TEMP TABLE (temporary objects)",
            5: "CREATE TEMP TRIGGER (temporary objects)", 6: "CREATE TEMP VIEW (temporary objects)",
            10: "DROP INDEX", 11: "DROP TABLE", 12: "DROP INDEX", 13: "DROP TABLE", 14: "DROP TRIGGER",
            15: "DROP VIEW", 16: "DROP TRIGGER", 17: "DROP VIEW", 22: "transaction control (BEGIN/COMMIT/ROLLBACK)",
            24: "ATTACH", 25: "DETACH", 26: "ALTER TABLE", 28: "ANALYZE", 30: "DROP of a virtual table",
            32: "SAVEPOINT", 33: "a recursive query (WITH RECURSIVE)"}
_FTS5_SHADOWS = ("data", "idx", "content", "docsize", "config")
_SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"})
_ANALYZE_SCHEMA = re.compile(r"ANALYZE\s+(main\.)?sqlite_(schema|master)\s*;?", re.IGNORECASE)
_STAT_TABLES = frozenset({"sqlite_stat1", "sqlite_stat4"})
_TICK_OPCODES = 1000  # how often (virtual machine instructions) the time limit is looked at
_ROOM_LEFT = 64 * 2**20  # free disk space below which "database or disk is full" means the disk


class LoadError(OperationFailed):
    """The dump did not load (a refused statement, a limit, an SQL error); the message names the line."""


@dataclass(frozen=True)
class Limits:
    seconds: float  # for the whole load
    max_bytes: int  # of the database it loads into

    @classmethod
    def for_dump(cls, size: int) -> Limits:
        """Generous for a genuine dump of `size` bytes, finite for anything else.

        A genuine dump loads at several MB/s (54 MB in about 9 s on the 2-core development machine):
        a minute plus a second per MB leaves a wide margin on a slow or busy machine. A database is
        usually smaller than its dump, which spells every row out as SQL; indexes can make it larger,
        so the limit leaves room for several full copies of the data.
        """
        return cls(seconds=60 + size / 1e6, max_bytes=64 * 2**20 + 8 * size)


def load_dump(conn: sqlite3.Connection, sql_file: Path, *, limits: Limits,
              progress: Progress = no_progress) -> ForeignKeyViolations:
    """Execute the dump in `sql_file` into `conn`, a new database, in one transaction (all or nothing).

    Returns the rows whose foreign keys point nowhere. Enforcement is off while loading: dumps need
    not order tables by dependency (an export may list them alphabetically), and SQLite rejects a
    row whose parent table does not exist yet even when checks are deferred.
    """
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {max(1, limits.max_bytes // page_size)}")
    conn.execute("PRAGMA foreign_keys = OFF")
    guard = _Guard(time.monotonic() + limits.seconds)
    conn.execute("BEGIN")
    try:
        clear_pending()
        conn.set_authorizer(shielded(guard.authorize, sqlite3.SQLITE_DENY))
        conn.set_progress_handler(shielded(guard.past_deadline, 1), _TICK_OPCODES)
        for statement in iter_statements(_lines(sql_file, progress)):
            guard.next_statement(analyze=bool(_ANALYZE_SCHEMA.fullmatch(strip_comments(statement.sql).strip())))
            # The progress handler sees the deadline only while a statement runs; reading and
            # splitting a crafted dump (one huge trigger body) takes its time between statements.
            if time.monotonic() > guard.deadline:
                raise LoadError(f"line {statement.line}: stopped at the time limit ({limits.seconds:.0f} s for a "
                                "dump of this size); a genuine dump loads well within it")
            try:
                conn.execute(statement.sql)
            except sqlite3.Error as exc:
                reraise_pending()  # Ctrl-C or SIGTERM inside a callback: not the dump's fault
                raise _explain(exc, guard, conn, statement.line, limits) from exc
        _unguard(conn)
        violations = foreign_key_violations(conn)
        conn.execute("COMMIT")
    except BaseException:
        _unguard(conn)
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return violations


def _unguard(conn: sqlite3.Connection) -> None:
    conn.set_authorizer(None)
    conn.set_progress_handler(None, 0)


def _lines(sql_file: Path, progress: Progress) -> Iterator[str]:
    total = sql_file.stat().st_size
    done = reported = 0
    progress("load", 0, total)
    with sql_file.open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise LoadError(f"line {number}: not UTF-8 text (byte {exc.start} of the line); a dump is "
                                "UTF-8 SQL, so this file is not one or was damaged") from exc
            done += len(raw)
            if done - reported >= 1 << 20:
                progress("load", done, total)
                reported = done
    progress("load", done, total)


def _explain(exc: sqlite3.Error, guard: _Guard, conn: sqlite3.Connection, line: int, limits: Limits) -> LoadError:
    if guard.refused is not None:
        return LoadError(f"line {line}: {guard.refused} is not allowed in a backup dump, which only creates "
                         "tables, indexes, views and triggers and inserts rows; this file was not written by "
                         "`bookingctl backup create` or D1's export, or was changed since")
    if guard.timed_out:
        return LoadError(f"line {line}: stopped at the time limit ({limits.seconds:.0f} s for a dump of this "
                         f"size); a genuine dump loads well within it: check what the statement at line {line} does")
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        _unguard(conn)
        folder = Path(conn.execute("PRAGMA database_list").fetchone()[2] or ".").parent
        free = shutil.disk_usage(folder).free
        if free < _ROOM_LEFT:  # the disk, not our limit
            return LoadError(f"line {line}: the disk is full ({free / 2**20:.0f} MiB free in {folder}); make room "
                             "and try again")
        return LoadError(f"line {line}: stopped at the size limit ({limits.max_bytes / 2**20:.0f} MiB for a dump of "
                         f"this size); a genuine dump stays well within it: check the statement at line {line}")
    return LoadError(f"line {line}: {exc}")


class _Guard:
    """The authorizer and the deadline of one load."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.refused: str | None = None
        self.timed_out = False
        self.fts5: dict[str, frozenset[str]] = {}  # FTS5 tables made by this dump -> their shadow tables
        self.active: frozenset[str] = frozenset()  # shadow tables FTS5 may use during this statement
        self.analyze = False  # this statement is `ANALYZE sqlite_schema` (see the module docstring)

    def next_statement(self, *, analyze: bool = False) -> None:
        self.refused = None
        self.active = frozenset()
        self.analyze = analyze

    def past_deadline(self) -> int:
        self.timed_out = time.monotonic() > self.deadline
        return int(self.timed_out)

    def authorize(self, action: int, arg1: str | None, arg2: str | None, database: str | None,
                  _source: str | None) -> int:
        why = self._why_not(action, (arg1 or "").lower(), arg2 or "", database)
        if why is None:
            return sqlite3.SQLITE_OK
        # SQLite asks about a statement's parts before the statement itself (DROP TABLE deletes from
        # sqlite_master first): the statement's own refusal names it best.
        if self.refused is None or action in _REFUSED:
            self.refused = why
        return sqlite3.SQLITE_DENY

    def _why_not(self, action: int, name: str, detail: str, database: str | None) -> str | None:
        if self.analyze and (action in (_ANALYZE, _SELECT) or (action == _DELETE and name in _STAT_TABLES)):
            return None
        if action in _REFUSED:
            return _REFUSED[action]
        if name in _SCHEMA_TABLES and action in (_INSERT, _UPDATE, _DELETE, _READ):
            # SQLite's own bookkeeping for a CREATE or DROP, which is asked about in its own right.
            # SQL cannot write these tables without PRAGMA writable_schema, which is refused.
            return None
        if database not in (None, "main"):
            return f"using the {database} database"
        if action in (_CREATE_TABLE, _CREATE_INDEX, _CREATE_VIEW, _CREATE_TRIGGER, _READ, _FUNCTION, _REINDEX):
            return None  # READ alone reaches nothing: no SELECT runs outside FTS5's own statements
        if action == _CREATE_VTABLE:
            if detail.lower() != "fts5":
                return f"a virtual table of module {detail}"
            self.fts5[name] = frozenset(f"{name}_{shadow}" for shadow in _FTS5_SHADOWS)
            self.active = self.fts5[name]
            return None
        if action == _INSERT:
            self.active = self.active | self.fts5.get(name, frozenset())
            return None
        if action == _UPDATE:
            return None if name in self.active else f"UPDATE of {name}"
        if action == _DELETE:
            return None if name == "sqlite_sequence" or name in self.active else f"DELETE FROM {name}"
        if action == _SELECT:
            return None if self.active else "a SELECT (a dump spells every row out)"
        if action == _PRAGMA:
            if name in ("defer_foreign_keys", "foreign_keys") or (name == "data_version" and self.active):
                return None
            return f"PRAGMA {name}"
        return f"the operation with SQLite authorizer code {action}"
