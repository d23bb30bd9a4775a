"""Assertions written in a migration: `-- check: <SQL> -- <message>` comments.

A migration says what must hold of the rows around it, in its own file, where a reviewer reads it:

    -- check: SELECT count(*) = 0 FROM appointments WHERE stylist_id IS NULL -- every appointment has a stylist

Each check is one SELECT of one column whose first row is true or false as SQLite reads it (a
non-zero number is true; 0, NULL, no row, and text that does not start with a non-zero number such
as 'no' are false), the same reading locally and on D1. It runs before the migration and again
after it, in the same transaction, during `migrate rehearse` and `migrate apply`: a false answer
fails the migration before anything of it is kept (see ops/database/migrations.py for the remote
form). A check reads; it never writes: it is compiled under an authorizer that allows reading and
functions only, so a check that would write, ATTACH or change a PRAGMA is refused when the file is
read, naming its line.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from booking_shared.errors import InputError, OperationFailed
from ops.database.sqlscript import line_comments, split_statements, strip_comments

# The comment, on a line of its own: the SQL up to the first " -- ", then the message.
_CHECK = re.compile(r"^\s*--\s*check:\s*(?P<sql>.*?)\s+--\s+(?P<message>\S.*?)\s*$", re.IGNORECASE)
_STARTS = re.compile(r"^\s*--\s*check:", re.IGNORECASE)
_SELECT = re.compile(r"\s*(SELECT|VALUES|WITH)\b", re.IGNORECASE)
# What a check may do while it is compiled (sqlite.org/c3ref/c_alter_table.html): read and call functions.
_READ_ONLY = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}


def _reads_only(action: int, *_: object) -> int:
    """The authorizer a check is compiled and run under."""
    return sqlite3.SQLITE_OK if action in _READ_ONLY else sqlite3.SQLITE_DENY


class CheckFileError(InputError):
    """A `-- check:` comment that cannot be a check; the message names the file and line."""


class CheckFailed(OperationFailed):
    """A check answered false (or could not run): the migration must not be kept."""


@dataclass(frozen=True)
class Check:
    sql: str
    message: str
    line: int

    def where(self, name: str) -> str:
        return f"{name}:{self.line}"


def parse(text: str, name: str) -> tuple[Check, ...]:
    """The `-- check:` comments of a migration's text, in order; a malformed one is a CheckFileError."""
    found = []
    # Comments as SQLite reads them: a line of a multi-line string literal that reads `-- check:` is text.
    for number, line in line_comments(text):
        if not _STARTS.match(line):
            continue
        match = _CHECK.match(line)
        if match is None or not match["sql"]:
            raise CheckFileError(f"{name}:{number}: a check is `-- check: <SELECT ...> -- <message>` on one line "
                                 "(the message says what must hold, for the error when it does not)")
        sql = match["sql"].rstrip().rstrip(";")
        _read_only(sql, f"{name}:{number}")
        found.append(Check(sql, match["message"], number))
    return tuple(found)


def _read_only(sql: str, where: str) -> None:
    """Refuse a check that is not one SELECT that only reads (compiled against an empty database)."""
    # The first word first: compiled against an empty database, a write to a table that does not
    # exist there fails as "no such table" before the authorizer sees it. (A WITH ... DELETE gets
    # past this; the authorizer refuses it when the check runs.)
    # No comment, no second statement, and nothing but a query: joined with other checks into D1's
    # request, a `/*` in one would comment out the start of the next and turn its string into SQL.
    if "/*" in sql or "*/" in sql or "--" in sql or not sqlite3.complete_statement(f"SELECT * FROM ({sql});"):
        raise CheckFileError(f"{where}: a check may only read, in one SELECT statement without comments: {sql!r}")
    if len(split_statements(sql)) != 1 or not _SELECT.match(strip_comments(sql)):
        raise CheckFileError(f"{where}: a check may only read, in one SELECT statement: {sql!r}")
    conn = sqlite3.connect(":memory:")
    try:
        conn.set_authorizer(_reads_only)
        conn.execute(f"EXPLAIN SELECT * FROM ({sql})")
    except sqlite3.DatabaseError as exc:
        # "no such table" is expected here (the tables exist in the database it will run on);
        # anything refused by the authorizer, or that is not SQL, is the file's to fix.
        if "no such table" not in str(exc) and "no such column" not in str(exc):
            raise CheckFileError(f"{where}: a check may only read, in one SELECT statement: {exc}") from None
    finally:
        conn.close()


def run(conn: sqlite3.Connection, check: Check, name: str, when: str) -> None:
    """Run one check on `conn`; CheckFailed when it answers false, NULL, nothing, or an error."""
    try:
        conn.set_authorizer(_reads_only)
        answer, holds = conn.execute(answer_sql(check)).fetchone()
    except sqlite3.DatabaseError as exc:
        raise CheckFailed(f"{check.where(name)}: the check {when} the migration could not run ({exc}): "
                          f"{check.message}") from exc
    finally:
        conn.set_authorizer(None)
    if not holds:
        answer = shown(answer)
        raise CheckFailed(f"{check.where(name)}: check failed {when} the migration ({check.sql} answered "
                          f"{answer}): {check.message}")


def answer_sql(check: Check) -> str:
    """A query answering one row (answer, holds): the check's value and whether it holds, by the same
    expression guard_sql sends to D1, so that SQLite's truth (not Python's) decides everywhere:
    'no' is false to SQLite and true to Python; no row is NULL, false."""
    return f"SELECT answer, CASE WHEN answer THEN 1 ELSE 0 END AS holds FROM (SELECT ({_scalar(check)}) AS answer)"


_PLAIN = re.compile(r"-?[0-9.]+|yes|no|true|false|t|f|ok", re.IGNORECASE)


def shown(answer: object) -> str:
    """The answer as a message may quote it: a number or a yes/no word as it is; other text only as its
    length (a check can select a customer's name, and the message reaches CI logs and PR comments)."""
    if answer is None:
        return "no row or NULL"
    if isinstance(answer, str) and not _PLAIN.fullmatch(answer):
        return f"text of {len(answer)} characters"
    if isinstance(answer, bytes):
        return f"a blob of {len(answer)} bytes"
    return repr(answer)


def guard_sql(check: Check) -> str:
    """One statement that fails when `check` answers false, for a request D1 runs as one transaction.

    SQLite has no RAISE outside triggers, so the statement asks json() to read text that is not
    JSON when the check is false ("malformed JSON"); json() is among D1's functions
    (developers.cloudflare.com/d1/sql-api/query-json/). The text depends on the check's answer, so
    SQLite cannot fold it into a constant evaluated whatever the answer.
    """
    return f"SELECT json(CASE WHEN ({_scalar(check)}) THEN '1' ELSE 'check failed' END);"


def _scalar(check: Check) -> str:
    """The check as a scalar subquery: its first row's only value (NULL without a row), inside which
    SQLite refuses any write."""
    return f"SELECT * FROM ({check.sql})"
