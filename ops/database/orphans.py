"""Rows whose foreign keys point nowhere, found and reported for `migrate rehearse` (ops/database/rehearsal.py).

`PRAGMA foreign_key_check` names each such row by its rowid; the rehearsal compares those with the
ones the backup already had (by row, not by count: cleaning up old orphans must not hide new ones),
and shows a sample of each, personal columns masked (ops/database/personal.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ops.database import row_losses, schema
from ops.database.personal import masked
from ops.database.rehearsal_model import Problem
from ops.database.sqlscript import quote_ident

SAMPLE = 5


def sample_rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> tuple[dict[str, Any], ...]:
    cursor = conn.execute(f"{sql} LIMIT {SAMPLE}", params)
    names = [d[0] for d in cursor.description]
    return tuple({n: masked(n, v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall())


# (child, parent, foreign key id) -> rowids pointing nowhere (None: a WITHOUT ROWID table's row)
Orphans = dict[tuple[str, str, int], list[int | None]]


def orphan_rows(conn: sqlite3.Connection, tables: Sequence[str] | None = None) -> Orphans:
    """`PRAGMA foreign_key_check` of `tables` (default: every table), grouped by foreign key."""
    found: Orphans = {}
    checks = ([f"PRAGMA foreign_key_check({quote_ident(t)})" for t in tables] if tables is not None
              else ["PRAGMA foreign_key_check"])
    for sql in checks:
        for child, rowid, parent, fk_id in conn.execute(sql).fetchall():
            found.setdefault((str(child), str(parent), int(fk_id)), []).append(rowid)
    return found


def report_orphans(conn: sqlite3.Connection, found: Orphans, file: str, rule: str = "orphans",
             known: Orphans | None = None) -> list[Problem]:
    """A problem per foreign key with rows pointing nowhere, beyond those `known` before, with a sample."""
    problems = []
    for (child, parent, fk_id), all_rowids in found.items():
        # By row, not by count: old orphans cleaned up do not hide as many new ones.
        # A WITHOUT ROWID table's orphans have no rowid (None): those are compared by count.
        old = (known or {}).get((child, parent, fk_id), [])
        before = set(old)
        rowids = [r for r in all_rowids if r is not None and r not in before]
        new = len(rowids) + max(all_rowids.count(None) - old.count(None), 0)
        if new <= 0:
            continue
        fk = next((f for f in schema.foreign_keys(conn, child) if f.id == fk_id), None)
        columns = ", ".join(quote_ident(c) for c in fk.columns) if fk else "*"
        shown = [r for r in rowids[:SAMPLE] if r is not None]
        sample = sample_rows(conn, f"SELECT rowid, {columns} FROM {quote_ident(child)} WHERE rowid IN "
                               f"({', '.join('?' * len(shown))})", shown) if shown else ()
        where = f"{child}.{'/'.join(fk.columns)}" if fk else child
        problems.append(Problem(rule, f"{new:,} rows of {child} point at no row of {parent} ({where})",
                                file, 0, child, new, sample))
    return problems


def children(conn: sqlite3.Connection, written: set[str]) -> list[str]:
    """Tables that are written, or whose foreign keys point at a written one: where orphans can appear."""
    return [t for t in schema.ordinary_tables(conn) if row_losses.fold(t) in written
            or any(row_losses.fold(fk.parent) in written for fk in schema.foreign_keys(conn, t))]
