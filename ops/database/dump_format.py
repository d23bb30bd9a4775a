"""How the dump renders rows as INSERT statements, inside SQLite (printf, quote()), and which columns
may take the fast path (printf's %Q for text known to hold no blob).

Apart from ops/database/sqldump.py, which cuts tables into ranges and chunks and runs them on two
processes: this is the one definition of a dumped row's text, which the helper process and this
one must produce byte for byte alike.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ops.database import schema
from ops.database.sqlscript import quote_ident


def without_rowid(sql: str) -> bool:
    return "WITHOUT ROWID" in " ".join(sql.upper().split())


def returns_utf8(conn: sqlite3.Connection) -> bool:
    """CAST(text AS BLOB) yields the database's encoding; only UTF-8 can be written as it comes."""
    return bool(conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-8")


def _text_affinity(declared: str) -> bool:
    """SQLite's column affinity rules 1-2: 'INT' wins, then CHAR/CLOB/TEXT mean TEXT affinity."""
    upper = declared.upper()
    return "INT" not in upper and any(word in upper for word in ("CHAR", "CLOB", "TEXT"))


@dataclass(frozen=True)
class Columns:
    """A table's columns, and which of its text columns printf's %Q may render (see row_format)."""

    table: str
    names: tuple[str, ...]  # quoted
    clean: frozenset[str]  # TEXT-affinity columns an index shows to hold no blob at all
    to_scan: tuple[str, ...]  # TEXT-affinity columns without such an index: checked per range


def columns_of(conn: sqlite3.Connection, name: str) -> Columns:
    table = quote_ident(name)
    info = [(quote_ident(c.name), c.type) for c in schema.columns(conn, name) if not c.hidden]  # as INSERT takes
    texts = [column for column, declared in info if _text_affinity(declared)]
    leading = set()  # columns that lead a full index: a blob in them is one index seek away
    for index in schema.indexes(conn, name):
        if not index.partial and index.columns and index.columns[0] is not None:  # not an expression
            leading.add(quote_ident(index.columns[0]))
    clean = frozenset(c for c in texts if c in leading
                      and conn.execute(f"SELECT 1 FROM {table} WHERE {c} >= x'' LIMIT 1").fetchone() is None)
    return Columns(table, tuple(column for column, _ in info), clean, tuple(c for c in texts if c not in leading))


def row_format(conn: sqlite3.Connection, columns: Columns, where: str = "1", params: tuple[int, ...] = (),
                *, with_rowid: bool = False) -> str:
    """A printf() expression rendering one row of the table as an INSERT statement.

    quote() renders any value exactly (text, integers, round-trip reals, NULL, blobs as X'..').
    printf's %Q renders text and NULL the same way without an allocation per value, but would
    mangle a blob; it is used for TEXT-affinity columns (which hold only text, NULL or blobs)
    known to hold no blob: through an index, or for the rows matching `where` by one scan of
    plain comparisons (every blob sorts above every text, and comparing calls no function).
    `with_rowid` names the columns and writes the rowid first (an FTS5 table's rowid is its key).
    """
    percent_q = set(columns.clean)
    table = columns.table
    if columns.to_scan:
        blob_test = " OR ".join(f"{c} >= x''" for c in columns.to_scan)
        if conn.execute(f"SELECT 1 FROM {table} WHERE ({where}) AND ({blob_test}) LIMIT 1", params).fetchone() is None:
            percent_q.update(columns.to_scan)
    specs = ["%Q" if c in percent_q else "%s" for c in columns.names]
    args = [c if c in percent_q else f"quote({c})" for c in columns.names]
    target = table
    if with_rowid:
        specs, args = ["%s", *specs], ["rowid", *args]
        target = f"{table}({','.join(['rowid', *columns.names])})"
    template = "INSERT INTO " + target.replace("'", "''").replace("%", "%%") + " VALUES(" + ",".join(specs) + ");"
    return f"printf('{template}', {', '.join(args)})"


def as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")
