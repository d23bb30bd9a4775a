"""What one statement of a rehearsed migration did to rows it did not name: for `migrate rehearse`.

Row counts show most losses (a cascade, a trigger's DELETE, a DROP's implicit delete). Three do not
move a count, so each has its own look:

- a parent's DROP or DELETE under ON DELETE SET NULL/SET DEFAULT empties its children's references
  and keeps the rows (`links`/`nulled`);
- a REPLACE conflict (`INSERT OR REPLACE`, `REPLACE INTO`, `UPDATE OR REPLACE`, a table's own
  `ON CONFLICT REPLACE`, the same inside a trigger) deletes the row holding a UNIQUE value and
  inserts the new one under another key (sqlite.org/lang_conflict.html, REPLACE): the count holds,
  a booking's service is gone (`ReplaceWatch`);
- a migration whose rebuild copies fewer rows than the old table held (`unexplained_losses`).

And one loss a migration names and does on purpose, shown so a reviewer sees its size:
`ALTER TABLE ... DROP COLUMN` takes the column's values (`dropped_values`; a dropped table's rows
show in the report's per-table counts).

Which tables a statement writes is read from SQLite itself, not from its text: the statement is
compiled (`EXPLAIN`, nothing runs) under an authorizer that records every INSERT, UPDATE, DELETE, DROP
TABLE and ALTER TABLE SQLite codes for it, its triggers' (temp triggers too) and its foreign-key
actions' (`Writes`). A quoted or unspaced name (`REPLACE INTO"services"`, `'services'` where a name is
expected), an alias that reads like a statement, or a name spelled in another case cannot hide a
table that way. Tables are named as SQLite compares them: ASCII letters folded, nothing else.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from ops.database import schema
from ops.database.rehearsal_model import MigrationRehearsal, Problem
from ops.database.sqlscript import Statement, quote_ident, strip_comments, without_strings

_DECLARED_REPLACE = re.compile(r"\bON\s+CONFLICT\s+REPLACE\b", re.I)
# The REPLACE conflict clause in a statement's own text (over-inclusive: `replace()` the function
# counts too, which only arms a watch that then finds nothing).
_REPLACE_WORD = re.compile(r"\bREPLACE\b", re.I)
_DROP = re.compile(r"^\s*DROP\s+TABLE\b", re.I)
_SNAPSHOTS = itertools.count()
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_WRITE_ACTIONS = {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE, sqlite3.SQLITE_DROP_TABLE}


def fold(name: str) -> str:
    """A table name as SQLite compares names: ASCII letters lower-cased, every other character kept
    ("Ä" and "ä" are two tables to SQLite, one to str.lower())."""
    return name.translate(_ASCII_LOWER)


@dataclass(frozen=True)
class Writes:
    """What one statement writes, as SQLite compiles it (see the module's docstring)."""

    action: int | None = None  # the statement's own first write: SQLITE_INSERT, _UPDATE, _DELETE, _DROP_TABLE
    target: str | None = None  # ... and its table (folded)
    direct: frozenset[str] = frozenset()  # tables written outside triggers (the statement, its FK actions)
    by_triggers: frozenset[str] = frozenset()  # tables a trigger it fires writes (chains included)
    updated: frozenset[tuple[str, str]] = frozenset()  # (table, column) the statement itself UPDATEs
    dropped_column: tuple[str, str] | None = None  # (table, column) of an ALTER TABLE ... DROP COLUMN
    replace: bool = False  # its text holds REPLACE (a conflict clause, or the function)

    @property
    def named_deletes(self) -> set[str]:
        """The table the statement itself DELETEs from (a cascade's tables are not named)."""
        return {self.target} if self.action == sqlite3.SQLITE_DELETE and self.target else set()

    @property
    def tables(self) -> set[str]:
        return set(self.direct | self.by_triggers)


Authorizer = Callable[[int, str | None, str | None, str | None, str | None], int]


def writes(conn: sqlite3.Connection, statement: Statement, restore: Authorizer | None) -> Writes:
    """Compile `statement` under a recording authorizer, then put `restore` back (None: no authorizer).

    A statement that does not compile (a table that is not there yet) writes nothing here: running
    it fails and says why."""
    seen: list[tuple[int, str, str | None, str | None]] = []  # (action, table, column, trigger)
    dropped: list[tuple[str, str]] = []

    def record(action: int, arg1: str | None, arg2: str | None, db: str | None, inner: str | None) -> int:
        if action in _WRITE_ACTIONS and arg1 and db != "temp" and not arg1.lower().startswith("sqlite_"):
            seen.append((action, arg1, arg2, inner))
        elif action == sqlite3.SQLITE_ALTER_TABLE and arg2 and db and inner is None:
            # ALTER TABLE passes (schema, table); DROP COLUMN alone passes the column third.
            dropped.append((arg2, db))
        return restore(action, arg1, arg2, db, inner) if restore else sqlite3.SQLITE_OK

    conn.set_authorizer(record)
    try:
        conn.execute("EXPLAIN " + statement.sql)
    except sqlite3.Error:
        return Writes()
    finally:
        conn.set_authorizer(restore)
    top = [(a, fold(t), c) for a, t, c, inner in seen if inner is None]
    first = top[0] if top else None
    return Writes(action=first[0] if first else None, target=first[1] if first else None,
                  direct=frozenset(t for _, t, _ in top),
                  by_triggers=frozenset(fold(t) for _, t, _, inner in seen if inner is not None),
                  updated=frozenset((t, c.lower()) for a, t, c in top if a == sqlite3.SQLITE_UPDATE and c),
                  dropped_column=dropped[0] if dropped else None,
                  replace=bool(_REPLACE_WORD.search(without_strings(strip_comments(statement.sql)))))


def _first_line(statement: Statement) -> str:
    return strip_comments(statement.sql).strip().splitlines()[0][:120]


def by_fold(counts: dict[str, int]) -> dict[str, int]:
    """Counts keyed as SQLite compares names: `bookings` before and `Bookings` after are one table."""
    return {fold(t): n for t, n in counts.items()}


def attribute(counts: dict[str, int], after: dict[str, int], statement: Statement, done: Writes, direct: int,
              file: str, result: MigrationRehearsal, explained: dict[str, int]) -> None:
    """Report rows gone from tables the statement does not itself DELETE from, and from the one it
    does beyond the `direct` rows its own WHERE matched (SQLite's changes(): a cascade or trigger
    through the same table is not counted there). `explained` counts every row a statement took,
    named or not, keyed by folded name, for `unexplained_losses`."""
    now_of = by_fold(after)
    for table, was in counts.items():
        now = now_of.get(fold(table))
        if now is None:
            continue  # dropped (or renamed away): the table's own rows go with it
        # Net: rows a statement added count against those it took, or 2 rows merged in and deleted
        # again by name would excuse a rebuild that drops 2 real ones.
        explained[fold(table)] = explained.get(fold(table), 0) + was - now
        if now >= was:
            continue
        lost = was - now - (direct if fold(table) in done.named_deletes else 0)
        if lost <= 0:
            continue
        how = "the table's DROP" if _DROP.match(strip_comments(statement.sql)) else "a cascade, trigger or REPLACE"
        beyond = (f" beyond the {direct:,} its DELETE matched" if fold(table) in done.named_deletes
                  else f"; the statement does not DELETE from {table}")
        result.problems.append(Problem("rows-deleted-unnamed", f"{lost:,} rows of {table} deleted by "
                                       f"`{_first_line(statement)}` ({how}{beyond})", file, statement.line, table,
                                       lost))


@dataclass
class ReplaceWatch:
    """The keys of each table a statement may delete rows of without its count showing it, taken before
    it runs, to count after it the rows whose primary key is gone beyond the fall in the count.

    Watched: the statement's own table when it may REPLACE (its text holds REPLACE, or the table
    declares ON CONFLICT REPLACE: a new row takes a UNIQUE value under another key, the old row is
    deleted, the count holds), and every table a trigger it fires writes (a trigger may delete a row
    and insert another). Only tables with a declared primary key: a table keyed by its rowid alone
    has no key a child could lose. Not the statement's own table when it UPDATEs a key column itself
    (a renumbering, named in the statement).
    """

    tables: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # table -> (temp copy, key)

    @classmethod
    def before(cls, conn: sqlite3.Connection, done: Writes) -> ReplaceWatch:
        watch = cls()
        for table in _watched(conn, done):
            key = schema.table(conn, table).primary_key
            # An UPDATE statement that sets the key renumbers rows on purpose; an upsert's DO UPDATE (an
            # INSERT) may name the key without running, so it does not switch the watch off.
            renumbers = done.action == sqlite3.SQLITE_UPDATE and any((fold(table), k.lower()) in done.updated
                                                                      for k in key)
            if not key or renumbers:
                continue
            keys = ", ".join(quote_ident(k) for k in key)
            copy = f"_rehearsal_keys_{next(_SNAPSHOTS)}"
            conn.execute(f"CREATE TEMP TABLE {quote_ident(copy)} AS SELECT {keys} FROM main.{quote_ident(table)}")
            watch.tables[table] = copy, key
        return watch

    def after(self, conn: sqlite3.Connection, counts: dict[str, int], now: dict[str, int], statement: Statement,
              done: Writes, direct: int, file: str, result: MigrationRehearsal) -> None:
        """Report the rows whose key is gone that `attribute` did not see as a fall in the count (in the table
        the statement DELETEs from, beyond the `direct` rows its own WHERE matched)."""
        was_of, now_of = by_fold(counts), by_fold(now)
        for table, (copy, key) in self.tables.items():
            match = " AND ".join(f"t.{quote_ident(k)} IS k.{quote_ident(k)}" for k in key)
            try:
                gone = int(conn.execute(f"SELECT count(*) FROM temp.{quote_ident(copy)} AS k WHERE NOT EXISTS "
                                        f"(SELECT 1 FROM main.{quote_ident(table)} AS t WHERE {match})").fetchone()[0])
            except sqlite3.OperationalError:
                gone = 0  # the statement dropped or rebuilt the table: its counts tell
            conn.execute(f"DROP TABLE temp.{quote_ident(copy)}")
            fell = max(was_of.get(fold(table), 0) - now_of.get(fold(table), 0), 0)  # `attribute` saw those
            # ... and the named DELETE's own rows: at least `direct` of them, all of the fall when it was more.
            seen = max(fell, direct) if fold(table) in done.named_deletes else fell
            if gone > seen:
                result.problems.append(Problem(
                    "rows-deleted-unnamed", f"{gone - seen:,} rows of {table} deleted by `{_first_line(statement)}` "
                    "although the count held: a REPLACE conflict (a new row took their UNIQUE value under another "
                    "key; use ON CONFLICT (...) DO UPDATE to keep the row) or a trigger that deleted and inserted",
                    file, statement.line, table, gone - seen))


def _watched(conn: sqlite3.Connection, done: Writes) -> list[str]:
    tables = {fold(t): t for t in schema.ordinary_tables(conn)}
    wanted = set(done.by_triggers)
    if done.target and (done.replace or done.target in _declared_replace(conn)):
        wanted.add(done.target)
    return [tables[t] for t in sorted(wanted) if t in tables]


def _declared_replace(conn: sqlite3.Connection) -> set[str]:
    return {fold(str(name)) for name, sql in conn.execute(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql IS NOT NULL")
        if _DECLARED_REPLACE.search(without_strings(str(sql)))}


def dropped_values(conn: sqlite3.Connection, done: Writes) -> tuple[str, str, int] | None:
    """(table, column, values that are not NULL) of an `ALTER TABLE t DROP COLUMN c`, counted before it runs."""
    if done.dropped_column is None:
        return None
    table, column = done.dropped_column
    try:
        values = conn.execute(f"SELECT count({quote_ident(column)}) FROM main.{quote_ident(table)}").fetchone()[0]
    except sqlite3.Error:
        return None  # no such table or column: the statement itself fails and says so
    return table, column, int(values)


def report_dropped(dropped: tuple[str, str, int] | None, statement: Statement, file: str,
                   result: MigrationRehearsal) -> None:
    if dropped and dropped[2]:
        table, column, values = dropped
        result.problems.append(Problem("values-dropped", f"{values:,} values of {table}.{column} dropped with the "
                                       "column (ALTER TABLE ... DROP COLUMN): restore them only from a backup",
                                       file, statement.line, table, values))


Links = dict[tuple[str, str], int]  # (child table, column) -> rows whose reference is set


def links(conn: sqlite3.Connection, skip: str) -> Links:
    """Rows holding a reference in each foreign-key column whose parent's deletion or key change sets it
    NULL or to its default (ON DELETE / ON UPDATE SET NULL / SET DEFAULT): what a parent's DROP,
    DELETE or renumbering empties without deleting a row, so row counts never show it. Tables
    starting with `skip` are left out."""
    found: Links = {}
    for table in schema.ordinary_tables(conn):
        if table.startswith(skip):
            continue
        for column, on_update, on_delete in conn.execute(
                'SELECT "from", on_update, on_delete FROM pragma_foreign_key_list(?)', (table,)):
            if {str(on_update).upper(), str(on_delete).upper()} & {"SET NULL", "SET DEFAULT"}:
                # Non-NULL values: SET DEFAULT is seen only where the default is NULL (not done otherwise).
                found[(table, str(column))] = int(conn.execute(
                    f"SELECT count(*) FROM main.{quote_ident(table)} WHERE {quote_ident(str(column))} IS NOT NULL"
                ).fetchone()[0])
    return found


def nulled(before: Links, now: Links, statement: Statement, done: Writes, file: str,
           result: MigrationRehearsal) -> None:
    """Report references a statement emptied in tables it does not itself write."""
    for (table, column), was in before.items():
        left = now.get((table, column))
        own = (done.action == sqlite3.SQLITE_UPDATE and fold(table) == done.target
               and (fold(table), column.lower()) in done.updated)
        if left is None or left >= was or own:
            continue  # gone with its table, unchanged, or the statement's own doing (an UPDATE of that column)
        result.problems.append(Problem(
            "references-nulled", f"{was - left:,} rows of {table} lost their {column} (ON DELETE/ON UPDATE SET "
            f"NULL/SET DEFAULT) through `{_first_line(statement)}`: the rows stay, pointing at nothing; the "
            f"statement does not write {table} itself", file, statement.line, table, was - left))


def unexplained_losses(before: dict[str, int], after: dict[str, int], explained: dict[str, int], file: str,
                       problems: list[Problem], *, where: str = "the migration") -> dict[str, int]:
    """A table with fewer rows after `where` than its statements account for: a rebuild that did not
    copy them all (its old table's rows went with the DROP, the new one has fewer), also when the copy,
    the DROP and the RENAME are in separate migrations (`where`: the whole run). Returns what it
    reported, by folded name, so the run's check does not report it twice."""
    after_of = by_fold(after)
    reported: dict[str, int] = {}
    for table, was in before.items():
        now = after_of.get(fold(table))
        if now is None:
            continue
        missing = was - now - explained.get(fold(table), 0)
        if missing > 0:
            reported[fold(table)] = missing
            problems.append(Problem("rows-deleted-unnamed", f"{table} has {missing:,} rows fewer after {where} "
                                    "than its DELETEs account for (a rebuild that did not copy them all?)", file, 0,
                                    table, missing))
    return reported
