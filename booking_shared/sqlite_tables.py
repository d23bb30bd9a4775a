"""Which tables of a SQLite schema hold rows of their own: no virtual tables, no shadow tables.

Shared by the operations (ops/database/schema.py) and the column classification's check
(booking_shared/columns.py, run by the policy pack), which cannot import the operations.
"""

from __future__ import annotations

import re
import sqlite3

# The shadow tables each module keeps its storage in (sqlite.org/fts5.html, fts3.html, rtree.html).
_SHADOWS = {"fts5": ("data", "idx", "content", "docsize", "config"),
            "fts4": ("content", "segments", "segdir", "docsize", "stat"),
            "fts3": ("content", "segments", "segdir", "docsize", "stat"), "rtree": ("node", "parent", "rowid")}
_MODULE = re.compile(r"\s*CREATE\s+VIRTUAL\s+TABLE\s+.+?\s+USING\s+(\w+)", re.I | re.S)


def ordinary_tables(conn: sqlite3.Connection) -> list[str]:
    """Tables of `main` that hold rows of their own, by name: no virtual or shadow tables, none of
    SQLite's (`sqlite_*`) or D1's (`_cf_*`).

    Read from sqlite_schema, not `pragma_table_list`: that pragma computes the columns of every VIEW
    of the schema (even when asked for one table), and a nest of views in a backup doubles that per
    level (5 s at 14 levels, hours at 25), outside any deadline of the rehearsal.
    """
    rows = [(str(name), str(sql or "")) for name, sql in conn.execute(
        "SELECT name, sql FROM main.sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name")]
    virtual = {name: (m.group(1).lower() if (m := _MODULE.match(sql)) else "") for name, sql in rows
               if _MODULE.match(sql)}
    sql_of = dict(rows)
    shadows = {f"{name}_{suffix}".lower() for name, module in virtual.items()
               for suffix in _SHADOWS.get(module, ()) if suffix not in _not_kept(module, sql_of[name])}
    return [name for name, _ in rows if name not in virtual and name.lower() not in shadows]


def _not_kept(module: str, sql: str) -> set[str]:
    """Shadow suffixes an FTS table's options leave out: with `content=` (external content, or none)
    there is no `_content` table, so a real table of that name (the external content itself, often)
    is counted; `columnsize=0` has no `_docsize` (sqlite.org/fts5.html, 4.4.2 and 4.5)."""
    options = sql.lower()
    left = set()
    if module in ("fts5", "fts4") and re.search(r"\bcontent\s*=", options):
        left.add("content")
    if module == "fts5" and re.search(r"\bcolumnsize\s*=\s*'?0", options):
        left.add("docsize")
    return left


