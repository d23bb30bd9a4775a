"""The schema of a local SQLite database (a `sqlite3.Connection`), read in one place, typed.

`migrate check` (its scratch copy and sample rows), the dump and the tenant restore each need the
same facts of a table: its columns, its foreign keys, its indexes. Each used to read them with its
own PRAGMA, quoting names its own way and parsing rows by position; this module reads them once:

- through the pragma table-valued functions with the name as a bound parameter
  (`pragma_table_xinfo(?)`), so a hostile table name (quotes, spaces, keywords, unicode) is only
  ever data, never SQL to quote;
- `table_xinfo`, not `table_info`: generated columns and a virtual table's hidden columns are
  listed too, marked by `hidden`; a reader that wants what `table_info` shows keeps `visible`;
- names exactly as SQLite stores them: SQLite compares names case-insensitively, so a reader that
  compares them lower-cases them itself (a rename that changes only the case is a change to show);
- rows in the order the pragma gives them (callers report findings in that order).

What is not here, and why: the remote D1 side (`db.query` over D1's HTTP API in
ops/database/migrations.py, ops/targets.py, ops/database/seed.py) never has a `sqlite3.Connection`;
it reads the same pragmas through D1's API. The tenant restore (ops/tenants/tenant_rows.py) reads its
backup and its target, which may be a D1, with the same queries so that the two compare like with
like; only its unique-index check, which reads the backup alone, is here.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from booking_shared.sqlite_tables import ordinary_tables as ordinary_tables  # re-exported: ops read it here

# sqlite_schema's `type` column (sqlite.org/schematab.html).
TABLE, INDEX, VIEW, TRIGGER = "table", "index", "view", "trigger"
# index_xinfo's cid of a key term that is not a column (sqlite.org/pragma.html#pragma_index_xinfo).
ROWID_CID, EXPRESSION_CID = -1, -2


@dataclass(frozen=True)
class Column:
    """One row of `PRAGMA table_xinfo`."""

    name: str
    type: str  # as declared ('' when none); SQLite's affinity rules read it case-insensitively
    notnull: bool
    default: str | None  # the DEFAULT clause's SQL text, None when there is none
    pk: int  # position in the primary key (1-based); 0 when not part of it
    hidden: int  # 0 an ordinary column, 1 hidden (a virtual table's), 2 or 3 generated (VIRTUAL, STORED)


@dataclass(frozen=True)
class ForeignKey:
    """One FOREIGN KEY constraint (a composite one is one ForeignKey with several columns)."""

    id: int
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str | None, ...]  # None: `REFERENCES parent` without columns, its primary key


@dataclass(frozen=True)
class Index:
    """One index of a table, with its key terms (not the rowid or key columns it stores besides)."""

    name: str
    unique: bool
    origin: str  # 'c' CREATE INDEX, 'u' a UNIQUE constraint, 'pk' the PRIMARY KEY
    partial: bool
    cids: tuple[int, ...]  # per key term: the column's cid, ROWID_CID or EXPRESSION_CID
    columns: tuple[str | None, ...]  # per key term: the column's name; None for an expression


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    foreign_keys: tuple[ForeignKey, ...]
    indexes: tuple[Index, ...]

    @property
    def primary_key(self) -> tuple[str, ...]:
        """The primary key's columns in key order; () for a table keyed by its rowid alone."""
        return tuple(c.name for c in sorted((c for c in self.columns if c.pk), key=lambda c: c.pk))

    @property
    def visible(self) -> tuple[Column, ...]:
        """The columns `PRAGMA table_info` lists: no hidden or generated ones."""
        return tuple(c for c in self.columns if not c.hidden)


@dataclass(frozen=True)
class SchemaObject:
    """One row of sqlite_schema."""

    type: str
    name: str
    tbl_name: str
    sql: str | None  # None for an automatic index (a UNIQUE or PRIMARY KEY constraint's)


def objects(conn: sqlite3.Connection) -> list[SchemaObject]:
    """Every row of sqlite_schema, in its rowid order (the order the objects were created in)."""
    return [SchemaObject(str(t), str(n), str(tn), None if s is None else str(s)) for t, n, tn, s in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid")]


def table_names(conn: sqlite3.Connection) -> list[str]:
    """Every table of sqlite_schema (SQLite's own, virtual and shadow tables included), in rowid order."""
    # Its own query, not objects(): `migrate check` asks after every statement it runs.
    return [str(n) for n, in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY rowid")]


_WITHOUT_ROWID = re.compile(r"\)\s*(?:STRICT\s*,\s*)?WITHOUT\s+ROWID\s*(?:,\s*STRICT\s*)?$", re.I)


def has_rowid(conn: sqlite3.Connection, table: str) -> bool:
    """Whether `table` is a table of `main` with a rowid (false for WITHOUT ROWID and unknown names)."""
    row = conn.execute("SELECT sql FROM main.sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE",
                       (table,)).fetchone()
    return bool(row) and not _WITHOUT_ROWID.search(str(row[0] or "").strip())


def columns(conn: sqlite3.Connection, table: str) -> tuple[Column, ...]:
    """`table`'s columns in their order, hidden and generated ones included (see Column.hidden)."""
    return tuple(Column(str(r[1]), str(r[2]), bool(r[3]), None if r[4] is None else str(r[4]), int(r[5]), int(r[6]))
                 for r in conn.execute("SELECT cid, name, type, \"notnull\", dflt_value, pk, hidden "
                                       "FROM pragma_table_xinfo(?)", (table,)))


def foreign_keys(conn: sqlite3.Connection, table: str) -> tuple[ForeignKey, ...]:
    """`table`'s foreign keys in the pragma's order, each with its columns in their order."""
    parts: dict[int, list[tuple[str, str, str | None]]] = {}
    for fk_id, parent, child, to in conn.execute(
            "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?)", (table,)):
        parts.setdefault(int(fk_id), []).append((str(parent), str(child), None if to is None else str(to)))
    return tuple(ForeignKey(fk_id, tuple(p[1] for p in found), found[0][0], tuple(p[2] for p in found))
                 for fk_id, found in parts.items())


def indexes(conn: sqlite3.Connection, table: str) -> tuple[Index, ...]:
    """`table`'s indexes in the pragma's order (automatic ones of UNIQUE and PRIMARY KEY included)."""
    found = []
    for name, unique, origin, partial in conn.execute(
            "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?)", (table,)).fetchall():
        keys = conn.execute("SELECT cid, name FROM pragma_index_xinfo(?) WHERE key", (name,)).fetchall()
        found.append(Index(str(name), bool(unique), str(origin), bool(partial), tuple(int(k[0]) for k in keys),
                           tuple(None if k[1] is None else str(k[1]) for k in keys)))
    return tuple(found)


def table(conn: sqlite3.Connection, name: str) -> Table:
    """Everything this module reads of one table."""
    return Table(name, columns(conn, name), foreign_keys(conn, name), indexes(conn, name))


def constraint_columns(conn: sqlite3.Connection, listed: str) -> tuple[str, list[str]] | None:
    """(table, columns) of SQLite's "t.a, t.b" list in a constraint's message, read against the
    table's real columns (a name may hold ", " or "."); None when it does not read as one table's."""
    for table in ordinary_tables(conn):
        found: list[str] = []
        rest = listed
        names = sorted((c.name for c in columns(conn, table)), key=len, reverse=True)
        while rest.startswith(f"{table}."):
            rest = rest[len(table) + 1:]
            name = next((n for n in names if rest == n or rest.startswith(f"{n}, ")), None)
            if name is None:
                break
            found.append(name)
            rest = rest[len(name) + 2:]
        else:
            if found and not rest:
                return table, found
    return None
