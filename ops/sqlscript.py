"""Splitting SQL scripts into statements, and finding explicit transaction control in them.

D1's HTTP API rejects `BEGIN TRANSACTION` / `COMMIT` (the guide's migration template has them),
and SQLite's `executescript` commits on its own; both reasons to run statements one by one under
a transaction (or a Time Travel bookmark) that the runner owns.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_TRANSACTION = re.compile(r"^\s*(BEGIN(\s+(DEFERRED|IMMEDIATE|EXCLUSIVE))?(\s+TRANSACTION)?|COMMIT(\s+TRANSACTION)?|"
                          r"END(\s+TRANSACTION)?|ROLLBACK(\s+TRANSACTION)?)\s*;?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int  # 1-based line where the statement starts, for messages


def split_statements(script: str) -> list[Statement]:
    """Complete SQL statements of `script`, in order, without comments-only fragments."""
    return list(iter_statements(script.splitlines()))


def iter_statements(lines: Iterable[str]) -> Iterator[Statement]:
    """Statements from lines as they come (a file object streams: memory stays flat).

    Uses SQLite's own notion of a complete statement, so triggers (`BEGIN ... END;` bodies) and
    semicolons inside strings stay intact.
    """
    buffer: list[str] = []
    start = 1
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\n")
        if not buffer and not _has_code(line):
            continue  # blank and comment lines between statements belong to none of them
        if not buffer:
            start = number
        buffer.append(line)
        text = "\n".join(buffer)
        if sqlite3.complete_statement(text):
            yield Statement(text.strip(), start)
            buffer = []
    rest = "\n".join(buffer)
    if _has_code(rest):
        # A last statement without its semicolon is still a statement.
        yield Statement(rest.strip(), start)


def _has_code(text: str) -> bool:
    without_comments = re.sub(r"--[^\n]*", "", re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL))
    return bool(without_comments.strip().strip(";").strip())


def quote_ident(name: str) -> str:
    """An SQL identifier quoted for SQLite (and D1): any name, safely."""
    return '"' + name.replace('"', '""') + '"'


def is_transaction_control(statement: Statement) -> bool:
    """BEGIN / COMMIT / END / ROLLBACK as a statement of its own (not a trigger body)."""
    code = re.sub(r"--[^\n]*", "", statement.sql).strip()
    return bool(_TRANSACTION.match(code))
