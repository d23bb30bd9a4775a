"""Serving queries' plans before and after a rehearsed migration: a query that searched an index
and now reads a whole table (an index dropped with a rebuild and never made again) is a full scan
that D1 bills per row read and that slows as the table grows. For `migrate rehearse`.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from collections.abc import Sequence
from typing import Any

from ops.database.rehearsal_model import Problem
from ops.database.serving import ServingQuery

FULL_SCAN_ROWS = 1000  # below this a full scan costs less than the index lookups it replaces

Plans = dict[int, dict[str, bool]]  # query index -> {table: read whole}


def plans(conn: sqlite3.Connection, queries: Sequence[ServingQuery]) -> Plans:
    """query index -> {table: read whole} from EXPLAIN QUERY PLAN (a query that does not prepare: absent)."""
    found: Plans = {}
    for index, query in enumerate(queries):
        rows = _query_plan(conn, query.sql)
        if rows is None:
            continue
        tables: dict[str, bool] = {}
        for row in rows:
            words = str(row[-1]).split()
            if len(words) >= 2 and words[0] in ("SCAN", "SEARCH"):
                tables[words[1]] = tables.get(words[1], False) or words[0] == "SCAN"
        found[index] = tables
    return found


_PLANS = itertools.count()


class _AnyValue(dict[str, Any]):
    """Named parameters of a query that is only planned, never run: each is NULL."""

    def __missing__(self, key: str) -> None:
        return None


def _query_plan(conn: sqlite3.Connection, sql: str) -> list[Any] | None:
    """EXPLAIN QUERY PLAN's rows for `sql`, its parameters bound to NULL; None when it does not prepare."""
    # A text of its own each time: Python's statement cache would hand back the plan prepared before
    # the migration changed the schema (an EXPLAIN is not prepared again when the schema changes).
    plan = f"EXPLAIN QUERY PLAN /* {next(_PLANS)} */ {sql}"
    try:
        return conn.execute(plan).fetchall()
    except sqlite3.ProgrammingError as exc:
        # Python binds parameters after the prepare: the message says how many the query has.
        wanted = re.search(r"uses (\d+)", str(exc))
        try:
            return conn.execute(plan, [None] * int(wanted.group(1)) if wanted else _AnyValue()).fetchall()
        except sqlite3.Error:
            return None
    except sqlite3.Error:
        return None


def full_scans(conn: sqlite3.Connection, queries: Sequence[ServingQuery], before: Plans, counts: dict[str, int],
               file: str) -> list[Problem]:
    """Serving queries whose plan searched an index of a table in `before` and now reads it whole."""
    found = []
    for index, tables in plans(conn, queries).items():
        old = before.get(index)
        if old is None:
            continue
        for table, whole in tables.items():
            rows = counts.get(table, 0)
            if whole and old.get(table) is False and rows >= FULL_SCAN_ROWS:
                found.append(Problem("full-scan", f"{queries[index].source} now reads all {rows:,} rows "
                                    f"of {table} (it searched an index before the migration)", file, 0,
                                    table, rows))
    return found
