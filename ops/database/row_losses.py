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

Tables are named as SQLite compares them, lower-cased.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from dataclasses import dataclass, field

from ops.database import schema
from ops.database.rehearsal_model import MigrationRehearsal, Problem
from ops.database.sqlscript import Statement, quote_ident, strip_comments, without_strings

# A table's name, after an optional schema `main` (quoted or not: `"main"."bookings"` names bookings).
_IDENT = r'("(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[\w$]+)'
_NAME = r'(?:(?:main|"main"|`main`|\[main\])\s*\.\s*)?' + _IDENT
_DELETE = re.compile(r"\bDELETE\s+FROM\s+" + _NAME, re.I)
# Statements that change a table's rows or the table itself: what may leave rows pointing nowhere.
_WRITES = re.compile(r"\b(?:DROP\s+TABLE(?:\s+IF\s+EXISTS)?|ALTER\s+TABLE|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM"
                     r"|INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO)\s+" + _NAME, re.I)
# Writes whose own conflict clause is REPLACE, and plain writes (a table may declare REPLACE itself).
_REPLACES = re.compile(r"\b(?:(?:INSERT|UPDATE)\s+OR\s+REPLACE(?:\s+INTO)?|REPLACE\s+INTO)\s+" + _NAME,
                       re.I)
_ROW_WRITES = re.compile(r"\b(?:UPDATE(?:\s+OR\s+\w+)?|INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO)\s+" + _NAME,
                         re.I)
_DECLARED_REPLACE = re.compile(r"\bON\s+CONFLICT\s+REPLACE\b", re.I)
_DROP = re.compile(r"^\s*DROP\s+TABLE\b", re.I)
_DROP_COLUMN = re.compile(r"^\s*ALTER\s+TABLE\s+" + _NAME + r"\s+DROP\s+(?:COLUMN\s+)?" + _IDENT, re.I)
_SNAPSHOTS = itertools.count()


def _unquote(name: str) -> str:
    if name[:1] in "\"`[":
        return name[1:-1].replace('""', '"') if name[0] == '"' else name[1:-1]
    return name


def _names(pattern: re.Pattern[str], sql: str) -> set[str]:
    # Strings emptied first: a value that reads `DELETE FROM bookings` names nothing.
    return {_unquote(m.group(1)).lower() for m in pattern.finditer(without_strings(sql))}


def named_deletes(statement: Statement) -> set[str]:
    """Tables a statement names in a DELETE."""
    return _names(_DELETE, statement.sql)


def written_tables(statement: Statement) -> set[str]:
    """Tables a statement drops, alters or writes rows of."""
    return _names(_WRITES, statement.sql)


def _first_line(statement: Statement) -> str:
    return strip_comments(statement.sql).strip().splitlines()[0][:120]


def attribute(conn: sqlite3.Connection, counts: dict[str, int], after: dict[str, int], statement: Statement,
              file: str, result: MigrationRehearsal, explained: dict[str, int]) -> None:
    """Report rows gone from tables the statement does not name in a DELETE (`explained` counts every
    row a statement took, named or not, for `unexplained_losses`)."""
    named = named_deletes(statement)
    for table, was in counts.items():
        now = after.get(table)
        if now is None or now >= was:
            continue  # dropped (or renamed away): the table's own rows go with it; or no rows gone
        explained[table] = explained.get(table, 0) + was - now
        if table.lower() in named:
            continue
        how = "the table's DROP" if _DROP.match(strip_comments(statement.sql)) else "a cascade, trigger or REPLACE"
        result.problems.append(Problem("rows-deleted-unnamed", f"{was - now:,} rows of {table} deleted by "
                                       f"`{_first_line(statement)}` ({how}; no DELETE of the migration names "
                                       f"{table})", file, statement.line, table, was - now))


@dataclass
class ReplaceWatch:
    """The keys of each table a statement may REPLACE into, taken before it runs, to count after it
    the rows whose primary key is gone although the table's count did not fall by as many.

    Only tables with a declared primary key and another UNIQUE index are watched: a conflict on the
    primary key alone replaces a row by one with the same key (an upsert), and a table keyed by its
    rowid alone has no key a child could lose (its UNIQUE value is kept by the new row).
    """

    tables: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # table -> (temp copy, key)

    @classmethod
    def before(cls, conn: sqlite3.Connection, statement: Statement) -> ReplaceWatch:
        watch = cls()
        for table in _replace_targets(conn, statement):
            key = schema.table(conn, table).primary_key
            if not key or not any(i.unique and i.origin != "pk" for i in schema.indexes(conn, table)):
                continue
            keys = ", ".join(quote_ident(k) for k in key)
            copy = f"_rehearsal_keys_{next(_SNAPSHOTS)}"
            conn.execute(f"CREATE TEMP TABLE {quote_ident(copy)} AS SELECT {keys} FROM {quote_ident(table)}")
            watch.tables[table] = copy, key
        return watch

    def after(self, conn: sqlite3.Connection, counts: dict[str, int], now: dict[str, int], statement: Statement,
              file: str, result: MigrationRehearsal) -> None:
        """Report the rows a REPLACE conflict deleted that `attribute` did not see as a fall in the count."""
        named = named_deletes(statement)
        for table, (copy, key) in self.tables.items():
            match = " AND ".join(f"t.{quote_ident(k)} IS k.{quote_ident(k)}" for k in key)
            gone = int(conn.execute(f"SELECT count(*) FROM temp.{quote_ident(copy)} AS k WHERE NOT EXISTS "
                                    f"(SELECT 1 FROM {quote_ident(table)} AS t WHERE {match})").fetchone()[0])
            conn.execute(f"DROP TABLE temp.{quote_ident(copy)}")
            seen = max(counts.get(table, 0) - now.get(table, 0), 0)  # `attribute` reported (or excused) those
            if gone > seen and table.lower() not in named:
                result.problems.append(Problem(
                    "rows-deleted-unnamed", f"{gone - seen:,} rows of {table} deleted by a REPLACE conflict in "
                    f"`{_first_line(statement)}`: a new row took their UNIQUE value under another key, so the "
                    "count held (use ON CONFLICT (...) DO UPDATE to keep the row)", file, statement.line, table,
                    gone - seen))


def dropped_values(conn: sqlite3.Connection, statement: Statement) -> tuple[str, str, int] | None:
    """(table, column, values that are not NULL) of an `ALTER TABLE t DROP COLUMN c`, counted before it runs."""
    found = _DROP_COLUMN.match(without_strings(strip_comments(statement.sql)))
    if found is None:
        return None
    table, column = _unquote(found.group(1)), _unquote(found.group(2))
    try:
        values = conn.execute(f"SELECT count({quote_ident(column)}) FROM {quote_ident(table)}").fetchone()[0]
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


def _replace_targets(conn: sqlite3.Connection, statement: Statement) -> set[str]:
    """Tables the statement, or a trigger it fires (and the triggers those fire), may REPLACE into."""
    written = written_tables(statement)
    if not written:
        return set()  # writes no rows (a CREATE, an index): nothing to watch, nothing read
    triggers = [(str(on).lower(), str(sql)) for on, sql in conn.execute(
        "SELECT tbl_name, sql FROM sqlite_schema WHERE type = 'trigger' AND sql IS NOT NULL")]
    bodies, reached = [statement.sql], set[str]()
    while new := written - reached:  # each table's triggers once, through chains of triggers
        reached |= new
        fired = [sql for on, sql in triggers if on in new]
        bodies += fired
        written = reached | {t for sql in fired for t in _names(_WRITES, sql)}
    tables = {t.lower(): t for t in schema.ordinary_tables(conn)}
    declared = {str(name).lower() for name, sql in conn.execute(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql IS NOT NULL")
        if _DECLARED_REPLACE.search(without_strings(str(sql)))}
    targets = {t for sql in bodies for t in _names(_REPLACES, sql) | (_names(_ROW_WRITES, sql) & declared)}
    return {tables[t] for t in targets if t in tables}


Links = dict[tuple[str, str], int]  # (child table, column) -> rows whose reference is set


def links(conn: sqlite3.Connection, skip: str) -> Links:
    """Rows holding a reference in each foreign-key column whose parent's deletion sets it NULL or to
    its default (ON DELETE SET NULL / SET DEFAULT): what a parent's DROP or DELETE empties without
    deleting a row, so row counts never show it. Tables starting with `skip` are left out."""
    found: Links = {}
    for table in schema.ordinary_tables(conn):
        if table.startswith(skip):
            continue
        for column, action in conn.execute('SELECT "from", on_delete FROM pragma_foreign_key_list(?)', (table,)):
            if str(action).upper() in ("SET NULL", "SET DEFAULT"):
                # Non-NULL values: SET DEFAULT is seen only where the default is NULL (not done otherwise).
                found[(table, str(column))] = int(conn.execute(
                    f"SELECT count(*) FROM {quote_ident(table)} WHERE {quote_ident(str(column))} IS NOT NULL"
                ).fetchone()[0])
    return found


def nulled(conn: sqlite3.Connection, before: Links, now: Links, statement: Statement, file: str,
           result: MigrationRehearsal) -> None:
    """Report references a statement emptied in tables it does not itself write."""
    written = written_tables(statement)
    for (table, column), was in before.items():
        left = now.get((table, column))
        if left is None or left >= was or table.lower() in written:
            continue  # gone with its table, unchanged, or the statement's own doing (an UPDATE of it)
        result.problems.append(Problem(
            "references-nulled", f"{was - left:,} rows of {table} lost their {column} (ON DELETE SET NULL/SET "
            f"DEFAULT) through `{_first_line(statement)}`: the rows stay, pointing at nothing; no statement names "
            f"{table}", file, statement.line, table, was - left))


def unexplained_losses(before: dict[str, int], after: dict[str, int], explained: dict[str, int], file: str,
                       result: MigrationRehearsal) -> None:
    """A table with fewer rows after the migration than its statements account for: a rebuild that
    did not copy them all (its old table's rows went with the DROP, the new one has fewer)."""
    for table, was in before.items():
        now = after.get(table)
        if now is None:
            continue
        missing = was - now - explained.get(table, 0)
        if missing > 0:
            result.problems.append(Problem("rows-deleted-unnamed", f"{table} has {missing:,} rows fewer after the "
                                           "migration than its DELETEs account for (a rebuild that did not copy "
                                           "them all?)", file, 0, table, missing))
