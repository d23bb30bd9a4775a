"""What the tenant restore reads, of the backup and of the target alike: the tables, their columns and
single-column foreign keys, the SQL conditions that name one tenant's rows, and rows as SQLite literals.

Apart from ops/tenants/tenant_restore.py because both sides go through these: the backup (a loaded
`sqlite3.Connection`) and the target (a `Database`, local or a remote D1 answering over HTTP) are read
with the same queries, so what the restore compares between them was read the same way. That is why
the schema here is read with PRAGMAs through `query_rows` rather than ops/database/schema.py, which
reads a `sqlite3.Connection` only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ops.database.sqlscript import quote_ident
from ops.targets import Database

ROOT = "tenants"
_LOOKUP_BYTES = 50_000  # the SQL text of one key lookup (keys are spelled out as literals)


@dataclass(frozen=True)
class Link:
    """A single-column reference from a table to a parent table's column."""

    column: str
    parent: str
    parent_column: str


@dataclass(frozen=True)
class ScopedTable:
    """A table holding tenant rows: its columns, primary key and the links that make rows a tenant's."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    direct: tuple[str, ...]  # columns that name the tenant (reference tenants)
    through: tuple[Link, ...]  # references into other scoped tables (used when `direct` is empty)
    # References into the table itself (an appointment rescheduled from another): its rows are
    # written referenced-first and deleted referencing-first.
    selfs: tuple[Link, ...] = ()


def table_names(conn: Any) -> list[str]:
    rows = query_rows(conn, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                       "AND name NOT LIKE '_cf_%' AND name <> 'd1_migrations' ORDER BY name")
    return [str(r["name"]) for r in rows]


def query_rows(conn: Any, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Rows as dicts from a sqlite3 connection or a Database (local or remote)."""
    if isinstance(conn, sqlite3.Connection):
        cursor = conn.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    result: list[dict[str, Any]] = conn.query(sql, params)
    return result


def tenant_id_of(conn: Any, slug: str) -> str | None:
    """The id of the tenant with `slug` (slugs are unique), in the backup or the target alike; None: none."""
    found = query_rows(conn, f"SELECT id FROM {ROOT} WHERE slug = ?1", [slug])
    return str(found[0]["id"]) if found else None


def known_slugs(conn: Any) -> list[str]:
    """The first 20 tenants' slugs: what a message names when a slug is not there."""
    return [str(r["slug"]) for r in query_rows(conn, f"SELECT slug FROM {ROOT} ORDER BY slug LIMIT 20")]


def table_columns(conn: Any, table: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(columns, primary-key columns in key order) of `table`."""
    info = query_rows(conn, f"PRAGMA table_info({quote_ident(table)})")
    columns = tuple(str(r["name"]) for r in info)
    key = tuple(str(r["name"]) for r in sorted((r for r in info if int(r["pk"] or 0) > 0), key=lambda r: int(r["pk"])))
    return columns, key


def references(conn: Any, table: str, key_of: Callable[[str], tuple[str, ...]]) -> list[Link]:
    """Single-column foreign keys of `table` (composite ones cannot make a row a tenant's and are skipped)."""
    found = query_rows(conn, f"PRAGMA foreign_key_list({quote_ident(table)})")
    by_id: dict[int, list[dict[str, Any]]] = {}
    for row in found:
        by_id.setdefault(int(row["id"]), []).append(row)
    links = []
    for parts in by_id.values():
        if len(parts) != 1:
            continue
        row = parts[0]
        parent = str(row["table"])
        to = row["to"]
        if to is None:  # REFERENCES parent without a column: the parent's primary key
            parent_key = key_of(parent)
            if len(parent_key) != 1:
                continue
            to = parent_key[0]
        links.append(Link(str(row["from"]), parent, str(to)))
    return links



def mine_where(table: ScopedTable, scope: dict[str, ScopedTable]) -> str:
    """SQL condition: the row is this tenant's (parameter ?1, the tenant id) and no other tenant's."""
    if table.name == ROOT:
        return '"id" = ?1'
    if table.direct:
        named = " OR ".join(f"{quote_ident(c)} = ?1" for c in table.direct)
        return f"({named}) AND NOT ({theirs_where(table, scope)})"
    return f"({_through(table, scope, mine_where)}) AND NOT ({theirs_where(table, scope)})"


def _through(table: ScopedTable, scope: dict[str, ScopedTable],
             parent_condition: Callable[[ScopedTable, dict[str, ScopedTable]], str]) -> str:
    """SQL condition: one of the table's links points at a parent row meeting `parent_condition`.
    COALESCE: a NULL reference points at nothing."""
    return " OR ".join(
        f"COALESCE({quote_ident(lk.column)} IN (SELECT {quote_ident(lk.parent_column)} FROM {quote_ident(lk.parent)} "
        f"WHERE {parent_condition(scope[lk.parent], scope)}), 0)" for lk in table.through)


def theirs_where(table: ScopedTable, scope: dict[str, ScopedTable]) -> str:
    """SQL condition: another tenant reaches the row. COALESCE: a NULL reference reaches nobody."""
    if table.name == ROOT:
        return '"id" <> ?1'
    if table.direct:
        return " OR ".join(f"COALESCE({quote_ident(c)} <> ?1, 0)" for c in table.direct)
    return _through(table, scope, theirs_where)


def reached_where(table: ScopedTable, scope: dict[str, ScopedTable]) -> str:
    """SQL condition: this tenant reaches the row (shared rows included)."""
    if table.name == ROOT:
        return '"id" = ?1'
    if table.direct:
        return " OR ".join(f"{quote_ident(c)} = ?1" for c in table.direct)
    return _through(table, scope, mine_where)


# --- reading rows as literals -----------------------------------------------------------------

Row = tuple[str, ...]  # each column as SQLite's quote() literal


def _select(table: ScopedTable, columns: Sequence[str], where: str) -> str:
    listed = ", ".join(f"quote({quote_ident(c)}) AS {quote_ident(c)}" for c in columns)
    order = ", ".join(quote_ident(c) for c in table.key)
    return f"SELECT {listed} FROM {quote_ident(table.name)} WHERE {where} ORDER BY {order}"


def read_rows(conn: Any, table: ScopedTable, where: str, tenant_id: str) -> dict[Row, Row]:
    """Primary key -> the whole row, as literals."""
    rows = query_rows(conn, _select(table, table.columns, where), [tenant_id])
    index = [table.columns.index(k) for k in table.key]
    found = {}
    for row in rows:
        values = tuple(str(row[c]) for c in table.columns)
        found[tuple(values[i] for i in index)] = values
    return found


def count_rows(conn: Any, table: ScopedTable, where: str, tenant_id: str) -> int:
    rows = query_rows(conn, f"SELECT COUNT(*) AS n FROM {quote_ident(table.name)} WHERE {where}", [tenant_id])
    return int(rows[0]["n"]) if rows else 0


def lookup(db: Database, table: str, columns: Sequence[str], wanted: Iterable[Row],
            returned: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of `table` whose `columns` equal one of `wanted` (literals), in chunks; `returned` quoted."""
    chunk: list[str] = []
    size = 0
    out: list[dict[str, Any]] = []
    target = ", ".join(quote_ident(c) for c in columns)
    listed = ", ".join(f"quote({quote_ident(c)}) AS {quote_ident(c)}" for c in returned)

    def flush() -> None:
        if chunk:
            out.extend(query_rows(db, f"SELECT {listed} FROM {quote_ident(table)} WHERE ({target}) IN "
                                 f"(VALUES {', '.join(chunk)})"))
            chunk.clear()

    for values in wanted:
        tuple_sql = f"({', '.join(values)})"
        if size + len(tuple_sql) > _LOOKUP_BYTES or len(chunk) >= 500:
            flush()
            size = 0
        chunk.append(tuple_sql)
        size += len(tuple_sql) + 2
    flush()
    return out

