"""Sample rows and write probes for `migrate check`: what lets the check prove what a migration does
to rows, rather than guess it from the words of its SQL.

The scratch copy of the target's schema gets a few sample rows in every ordinary table, chosen so
that a WHERE true for each of them is one that no real row escapes either: a typical row (DEFAULTs
taken), a low one (0, '1970-01-01 00:00:00') and a high one (1000000007, '9999-12-31 23:59:59',
NULL where the column allows it). Values satisfy the table's CHECK, UNIQUE and NOT NULL constraints
(SQLite is the oracle: a refused row is retried with the values its error names) and each foreign
key points at a sample row of its parent, so the copy behaves as a database with rows does: D1
refuses `ADD COLUMN ... NOT NULL` without a DEFAULT, a `DROP TABLE` whose rows are referenced, or
a rebuild that copies rows into a stricter table.

A write probe is a write the serving version makes (an INSERT naming only the NOT NULL columns
without a DEFAULT, and its key, as an INSERT must; an UPDATE and a DELETE of one row), run in a savepoint that
is rolled back. Its outcome before the migrations and after each statement tells whether a trigger
refuses or silently undoes the serving version's writes, or a lost DEFAULT makes them fail.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ops.database import schema
from ops.database.schema import Column
from ops.database.sqlscript import quote_ident

SAMPLE_ROWS = 3
PROBE_ROW = SAMPLE_ROWS + 1
# A refused sample row is retried with other values for the columns its error names; each retry
# moves one column to its next candidate, so this bounds the work on a hostile schema.
_ATTEMPTS = 40
_TEXT = {1: "sample-1", 2: "1970-01-01 00:00:00", 3: "9999-12-31 23:59:59", PROBE_ROW: "probe-4"}
_INT = {1: 1, 2: 0, 3: 1_000_000_007, PROBE_ROW: 1_000_000_009}
_REAL = {1: 1.5, 2: 0.0, 3: 1e12, PROBE_ROW: 2e12}
_LITERAL = re.compile(r"'((?:[^']|'')*)'|(?<![\w.])(-?\d+(?:\.\d+)?)(?![\w.])")
_WORD = re.compile(r"[A-Za-z_]\w*")
# What a refused row's error names: "UNIQUE constraint failed: t.a, t.b", "NOT NULL constraint
# failed: t.c", "CHECK constraint failed: <expression or name>".
_FAILED = re.compile(r"(UNIQUE|NOT NULL|CHECK|FOREIGN KEY) constraint failed(?::\s*(.*))?", re.DOTALL)
# A write that fails for want of a table or column is a removal: the serving queries judge those.
_REMOVAL = re.compile(r"no such (table|column)|has no column named", re.IGNORECASE)


def _rowid_alias(cols: Sequence[Column]) -> str | None:
    keys = [c for c in cols if c.pk]
    return keys[0].name if len(keys) == 1 and keys[0].type.upper() == "INTEGER" else None


def _base(column: Column, row: int) -> Any:
    kind = column.type.upper()
    if "INT" in kind:
        return _INT[row]
    if any(word in kind for word in ("CHAR", "CLOB", "TEXT")) or not kind:
        return _TEXT[row]
    if any(word in kind for word in ("REAL", "FLOA", "DOUB")):
        return _REAL[row]
    if "BLOB" in kind:
        return _TEXT[row].encode()
    return _INT[row]


def _literals(sql: str) -> list[Any]:
    found: list[Any] = []
    for text, number in _LITERAL.findall(sql):
        value: Any = text.replace("''", "'") if not number else (float(number) if "." in number else int(number))
        if value not in found:
            found.append(value)
    return found


def _parents(conn: sqlite3.Connection, table: str) -> dict[str, tuple[str, str | None]]:
    """column -> (parent table, parent column or None for its primary key)."""
    return {column: (fk.parent, to) for fk in schema.foreign_keys(conn, table)
            for column, to in zip(fk.columns, fk.parent_columns, strict=True)}


def _parent_value(conn: sqlite3.Connection, parent: str, column: str | None, row: int) -> Any:
    try:
        if column is None:
            keys = [c.name for c in schema.columns(conn, parent) if c.pk]
            column = keys[0] if keys else "rowid"
        values = [r[0] for r in conn.execute(f"SELECT {quote_ident(column)} FROM {quote_ident(parent)} ORDER BY rowid")]
    except sqlite3.Error:
        return None
    return values[(row - 1) % len(values)] if values else None


def _order(conn: sqlite3.Connection, tables: list[str]) -> list[str]:
    """Parents before children (a cycle or a self-reference is left where it falls)."""
    done: list[str] = []
    pending = {t: {p for p, _ in _parents(conn, t).values() if p != t and p in tables} for t in tables}
    while pending:
        ready = sorted(t for t, needs in pending.items() if not needs - set(done)) or sorted(pending)[:1]
        for t in ready:
            done.append(t)
            del pending[t]
    return done


def row_values(conn: sqlite3.Connection, table: str, row: int, *, only_required: bool = False) -> dict[str, Any]:
    """The first guess at sample row `row` of `table` (column -> value; a column left out takes its DEFAULT)."""
    cols = schema.columns(conn, table)
    alias = _rowid_alias(cols)
    parents = _parents(conn, table)
    values: dict[str, Any] = {}
    for column in cols:
        if column.hidden or column.name == alias:
            continue
        # What any INSERT names: NOT NULL columns without a DEFAULT, and the key (an id is never left NULL).
        required = (column.notnull or bool(column.pk)) and column.default is None
        if only_required and not required:
            continue
        if row == 1 and column.default is not None:
            continue  # the typical row takes the DEFAULT, as a serving INSERT that leaves it out does
        if row == 3 and not column.notnull and not column.pk:
            values[column.name] = None
            continue
        if column.name in parents:
            parent, parent_column = parents[column.name]
            value = _parent_value(conn, parent, parent_column, 1 if row == PROBE_ROW else row)
            if value is not None:
                values[column.name] = value
                continue
        values[column.name] = _base(column, row)
    return values


def _insert_sql(table: str, values: dict[str, Any]) -> str:
    if not values:
        return f"INSERT INTO {quote_ident(table)} DEFAULT VALUES"
    return (f"INSERT INTO {quote_ident(table)} ({', '.join(quote_ident(c) for c in values)}) "
            f"VALUES ({', '.join('?' for _ in values)})")


def _fit(conn: sqlite3.Connection, table: str, values: dict[str, Any], table_sql: str) -> dict[str, Any] | None:
    """`values` adjusted until SQLite accepts the row (inserted, when it does), or None."""
    cols = {c.name.lower(): c for c in schema.columns(conn, table)}
    literals = _literals(table_sql)
    tried: dict[str, int] = {}
    for _ in range(_ATTEMPTS):
        try:
            conn.execute(_insert_sql(table, values), list(values.values()))
            return values
        except sqlite3.IntegrityError as exc:
            match = _FAILED.search(str(exc))
            if not match or match.group(1) == "FOREIGN KEY":
                return None
            named = [w.lower() for w in _WORD.findall(match.group(2) or "")]
            if match.group(1) in ("UNIQUE", "NOT NULL"):
                named = [w.rsplit(".", 1)[-1].lower() for w in (match.group(2) or "").replace(" ", "").split(",")]
            blamed = [cols[w] for w in named if w in cols and not cols[w].hidden]
            if match.group(1) == "CHECK" and not blamed:  # a named CHECK: any column may be its subject
                blamed = [c for c in cols.values() if not c.hidden]
            if not blamed:
                return None
            column = min(blamed, key=lambda c: tried.get(c.name, 0))
            pool = [*literals, *(_base(column, r) for r in (1, 2, 3, PROBE_ROW)), *(v * 7 for v in _INT.values())]
            index = tried.get(column.name, 0)
            if index >= len(pool):
                return None
            tried[column.name] = index + 1
            values = {**values, column.name: pool[index]}
        except sqlite3.Error:
            return None
    return None


def _table_sql(conn: sqlite3.Connection) -> dict[str, str]:
    """Each table's CREATE statement (where its CHECK literals are found)."""
    return {o.name: o.sql or "" for o in schema.objects(conn) if o.type == schema.TABLE}


def seed(conn: sqlite3.Connection) -> None:
    """Put up to SAMPLE_ROWS sample rows in every ordinary table (before any trigger exists)."""
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        tables = schema.ordinary_tables(conn)
        sql = _table_sql(conn)
        for table in _order(conn, tables):
            for row in range(1, SAMPLE_ROWS + 1):
                _fit(conn, table, row_values(conn, table, row), sql.get(table, ""))
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


def counts(conn: sqlite3.Connection, tables: Sequence[str]) -> dict[str, int | None]:
    """Rows per table of `main`; None for a table that does not exist (now).

    Qualified with `main.`: a TEMP table of the same name would shadow it otherwise (SQLite resolves
    temp first), and a migration's temp copy would hide what happens to the real rows. A few hundred
    subqueries a query: one per table would pass SQLite's 2,000 result columns on a large schema.
    """
    existing = {n.lower() for n in schema.table_names(conn)}
    present = [t for t in tables if t.lower() in existing]
    found: dict[str, int | None] = {t: None for t in tables}
    for start in range(0, len(present), _COUNTS_PER_QUERY):
        chunk = present[start:start + _COUNTS_PER_QUERY]
        row = conn.execute("SELECT " + ", ".join(f"(SELECT count(*) FROM main.{quote_ident(t)})" for t in chunk)
                           ).fetchone()
        found.update(zip(chunk, (int(n) for n in row), strict=True))
    return found


_COUNTS_PER_QUERY = 500


def _per_column(conn: sqlite3.Connection, tables: Sequence[str], aggregate: str) -> dict[str, dict[str, int]]:
    """Per table of `main` present, per column: `aggregate` (a template, `{}` the column) over its rows,
    in one query a table. `main.`: a TEMP table of the same name must not stand in for it."""
    existing = {n.lower() for n in schema.table_names(conn)}
    found: dict[str, dict[str, int]] = {}
    for table in (t for t in tables if t.lower() in existing):
        names = [c.name for c in schema.columns(conn, table)]
        if names:
            row = conn.execute("SELECT " + ", ".join(aggregate.format(quote_ident(n)) for n in names) +
                               f" FROM main.{quote_ident(table)}").fetchone()
            found[table] = dict(zip(names, (int(n) for n in row), strict=True))
    return found


def filled(conn: sqlite3.Connection, tables: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per table present, per column: how many rows hold a value (not NULL) there."""
    return _per_column(conn, tables, "count({})")


def distinct(conn: sqlite3.Connection, tables: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per table present, per column: how many different values its rows hold (names lower-cased)."""
    return {t.lower(): {c.lower(): n for c, n in per.items()}
            for t, per in _per_column(conn, tables, "count(DISTINCT {})").items()}


# --- write probes --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    table: str
    kind: str  # INSERT, UPDATE, DELETE
    sql: str
    params: tuple[Any, ...]

    def describe(self) -> str:
        where = "into" if self.kind == "INSERT" else "of one row of"
        return f"an {self.kind} {where} {self.table} as the serving version writes it (`{self.sql}`)"


@dataclass(frozen=True)
class Outcome:
    error: str | None
    kept: bool  # INSERT: the row is there afterwards; UPDATE: the table kept its rows
    emptied: frozenset[str]  # other tables the write left without rows


def probes(conn: sqlite3.Connection) -> list[Probe]:
    """The serving version's writes, one of each kind per table, built on the current (serving) schema."""
    found: list[Probe] = []
    sql = _table_sql(conn)
    for table in schema.ordinary_tables(conn):
        conn.execute("SAVEPOINT probe_values")
        try:
            values = _fit(conn, table, row_values(conn, table, PROBE_ROW, only_required=True), sql.get(table, ""))
        finally:
            conn.execute("ROLLBACK TO probe_values")
            conn.execute("RELEASE probe_values")
        if values is not None:
            found.append(Probe(table, "INSERT", _insert_sql(table, values), tuple(values.values())))
        cols = [c for c in schema.columns(conn, table) if not c.hidden]
        if cols and schema.has_rowid(conn, table):
            name = quote_ident(next((c for c in cols if not c.pk), cols[0]).name)
            one = f"rowid = (SELECT min(rowid) FROM {quote_ident(table)})"
            found.append(Probe(table, "UPDATE", f"UPDATE {quote_ident(table)} SET {name} = {name} WHERE {one}", ()))
            found.append(Probe(table, "DELETE", f"DELETE FROM {quote_ident(table)} WHERE {one}", ()))
    return found


def outcome(conn: sqlite3.Connection, probe: Probe, tables: Sequence[str]) -> Outcome | None:
    """What `probe` does now (rolled back); None when its table or a column it names is gone."""
    conn.execute("SAVEPOINT probe")
    try:
        before = counts(conn, tables)
        if before.get(probe.table) is None and probe.table in before:
            return None
        error = None
        try:
            conn.execute(probe.sql, probe.params)
        except sqlite3.Error as exc:
            if _REMOVAL.search(str(exc)):
                return None
            error = str(exc)
        after = counts(conn, tables)
    finally:
        conn.execute("ROLLBACK TO probe")
        conn.execute("RELEASE probe")
    expected = {"INSERT": 1, "UPDATE": 0, "DELETE": -1}[probe.kind]
    mine, was = after.get(probe.table), before.get(probe.table)
    kept = error is not None or probe.kind == "DELETE" or (
        mine is not None and was is not None and mine - was == expected)
    emptied = frozenset(t for t in tables if t != probe.table and (before.get(t) or 0) > 0 and not after.get(t))
    return Outcome(error, kept, emptied)


def worse(now: Outcome | None, then: Outcome | None) -> str | None:
    """Why `now` is worse than `then` (the serving schema's outcome), or None."""
    if now is None or then is None:
        return None
    if now.error and not then.error:
        return f"fails: {now.error}"
    if then.kept and not now.kept:
        return "succeeds, but the row is not there afterwards (a trigger undoes it)"
    if now.emptied - then.emptied:
        return f"empties {', '.join(sorted(now.emptied - then.emptied))}"
    return None


def judge(conn: sqlite3.Connection, baseline: dict[Probe, Outcome | None],
          tables: Sequence[str]) -> Iterator[tuple[Probe, str]]:
    """Each probe whose outcome is now worse than it was on the serving schema, with why."""
    for probe, then in baseline.items():
        why = worse(outcome(conn, probe, tables), then)
        if why:
            yield probe, why
