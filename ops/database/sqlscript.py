"""Splitting SQL scripts into statements, and finding explicit transaction control in them.

D1's HTTP API rejects `BEGIN TRANSACTION` / `COMMIT` (the guide's migration template has them),
and SQLite's `executescript` commits on its own; both reasons to run statements one by one under
a transaction (or a Time Travel bookmark) that the runner owns. A `COMMIT` that slipped through
would end the runner's transaction halfway, so the splitter must see statements exactly as
SQLite does: a `;` inside a string, a quoted identifier or a comment ends nothing, a trigger's
`BEGIN ... END;` body is one statement, and several statements may share a line.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# What a statement of explicit transaction control starts with, once comments are removed.
_TRANSACTION = re.compile(r"^(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
# Where the scanner must look closer: a statement end, the start of a quoted token, a comment.
_SPECIAL = re.compile(r"""[;'"`\[]|--|/\*""")
_CLOSING = {"'": "'", '"': '"', "`": "`", "[": "]"}
# Complete quoted tokens on one line: strings ('it''s'), identifiers ("a""b", `a`, [a]).
_QUOTED = re.compile(r"""'[^']*(?:''[^']*)*'|"[^"]*(?:""[^"]*)*"|`[^`]*`|\[[^\]]*\]""")


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int  # 1-based line where the statement starts, for messages


def quote_ident(name: str) -> str:
    """An SQL identifier quoted for SQLite (and D1): any name, safely."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Text as an SQL string literal, control characters as spaces: for multi-statement D1 requests,
    which take no parameters (as wrangler does)."""
    clean = "".join(ch if ch >= " " else " " for ch in text)
    return "'" + clean.replace("'", "''") + "'"


class _Scanner:
    """Cuts text into statements as it arrives, line by line, remembering an open string or comment."""

    def __init__(self) -> None:
        self.buffer: list[str] = []
        self.start = 0  # line of the first code character of the statement being built
        self.open: str | None = None  # the quote or comment we are inside, across lines
        # Where in the buffer the open `/*` starts: one never closed is dropped at the end (below).
        self.comment_at: int | None = None
        # Inside a CREATE TRIGGER body (a `;` SQLite did not call complete): only a `;` right after
        # END can end it, so the buffer is joined again only then (joining at every `;` was quadratic).
        self.trigger = False
        self.segment = 0  # buffer index just past the last `;`

    def feed(self, text: str, number: int) -> Iterator[Statement]:
        position = 0
        while position < len(text):
            if self.open is not None:
                position = self._close(text, position)
                continue
            match = _SPECIAL.search(text, position)
            chunk = text[position:match.start() if match else len(text)]
            if not self.start and chunk.strip():
                self.start = number
            # Until a statement's code starts, whitespace and comments belong to no statement.
            if self.start:
                self.buffer.append(chunk)
            if match is None:
                return
            token = match.group()
            position = match.end()
            if token not in ("--", "/*") and not self.start:
                self.start = number  # a statement may start with a quoted name; a lone ';' is dropped below
            if self.start:
                if token == "/*":
                    self.comment_at = len(self.buffer)
                self.buffer.append(token)
            if token == ";":
                statement = self._complete()
                if statement is not None:
                    yield statement
            else:
                self.open = token

    def _close(self, text: str, position: int) -> int:
        """Consume the rest of the open string or comment on this text; returns where scanning resumes."""
        assert self.open is not None
        if self.open == "--":
            end = text.find("\n", position)
            stop = len(text) if end < 0 else end + 1
            if end >= 0:
                self.open = None
        else:
            closing = "*/" if self.open == "/*" else _CLOSING[self.open]
            end = text.find(closing, position)
            stop = len(text) if end < 0 else end + len(closing)
            if end >= 0:
                self.open = None  # a doubled quote ('') closes and reopens: same result
                self.comment_at = None
        if self.start:
            self.buffer.append(text[position:stop])
        return stop

    def _complete(self) -> Statement | None:
        if self.trigger:
            # sqlite3_complete ends a trigger only at `; END ;` (comments and spaces between): any
            # other `;` of the body cannot complete it, so it costs only its own segment.
            segment = "".join(self.buffer[self.segment:-1])
            self.segment = len(self.buffer)
            if strip_comments(segment).strip().upper() != "END":
                return None
        text = "".join(self.buffer)
        # SQLite's own tokenizer decides: inside a trigger body a ';' does not end the statement.
        if not sqlite3.complete_statement(text):
            self.trigger, self.segment = True, len(self.buffer)
            return None
        self.buffer = []
        self.trigger = False
        start, self.start = self.start, 0
        return Statement(text.strip(), start) if _has_code(text) else None

    def rest(self) -> Statement | None:
        """What is left at the end: a last statement without its semicolon is still a statement.

        A `/*` never closed runs to the end of the input (sqlite.org/lang_comment.html): it is left
        out, so that nothing sent after the statement (a d1_migrations row) can fall into it.
        """
        if self.open == "/*" and self.comment_at is not None:
            del self.buffer[self.comment_at:]
        text = "".join(self.buffer)
        return Statement(text.strip(), self.start) if _has_code(text) else None


def split_statements(script: str) -> list[Statement]:
    """Complete SQL statements of `script`, in order, without comments-only fragments."""
    return list(iter_statements(script.splitlines(keepends=True)))


def iter_statements(lines: Iterable[str]) -> Iterator[Statement]:
    """Statements from lines as they come (a file object streams: memory stays flat).

    Most lines of a dump are one whole statement; those take a fast path, decided at C speed:
    the line's only `;` (once quoted tokens are set aside) is its last character, and SQLite
    agrees the statement is complete. Everything else goes through the scanner.
    """
    scanner = _Scanner()
    for number, line in enumerate(lines, 1):
        stripped = line.rstrip()
        if not scanner.buffer and scanner.open is None and stripped.endswith(";") and _one_statement(stripped):
            yield Statement(stripped.strip(), number)
            continue
        yield from scanner.feed(line if line.endswith("\n") else line + "\n", number)
    last = scanner.rest()
    if last is not None:
        yield last


def _one_statement(line: str) -> bool:
    """True when a line ending in `;` holds exactly one complete statement (and nothing after it)."""
    if line.count(";") > 1:
        # More than one ';': fine only if the others are inside strings or quoted identifiers.
        bare = _QUOTED.sub("", line)
        if bare.count(";") != 1 or "--" in bare or "/*" in bare or any(q in bare for q in "'\"`["):
            return False
    # With a single terminator, SQLite's tokenizer settles the rest (a ';' inside an unclosed
    # string or a comment is not complete).
    return sqlite3.complete_statement(line)


def strip_comments(sql: str) -> str:
    """`sql` without its comments (strings and quoted identifiers kept intact)."""
    return "".join(_pieces(sql))


def _pieces(sql: str) -> Iterator[str]:
    position = 0
    while position < len(sql):
        match = _SPECIAL.search(sql, position)
        if match is None:
            yield sql[position:]
            return
        yield sql[position:match.start()]
        token = match.group()
        if token == "--":
            end = sql.find("\n", match.end())
            position = len(sql) if end < 0 else end
            yield " "
        elif token == "/*":
            end = sql.find("*/", match.end())
            position = len(sql) if end < 0 else end + 2
            yield " "
        elif token == ";":
            yield ";"
            position = match.end()
        else:
            end = sql.find(_CLOSING[token], match.end())
            position = len(sql) if end < 0 else end + 1
            yield sql[match.start():position]


def without_strings(sql: str) -> str:
    """`sql` without comments and with every string literal emptied (`''`); quoted names kept: what
    SQLite reads as keywords and names, so that a value reading `DELETE FROM x` is not taken for one."""
    return "".join("''" if piece.startswith("'") else piece for piece in _pieces(sql))


def line_comments(sql: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of each `--` comment that is all its line holds, as SQLite's tokenizer sees
    it: a line of a multi-line string literal, or inside a `/* */` comment, is not one."""
    position = 0
    while position < len(sql):
        match = _SPECIAL.search(sql, position)
        if match is None:
            return
        token = match.group()
        if token in ("--", "/*"):
            end = sql.find("\n" if token == "--" else "*/", match.end())
            if token == "--":
                start = sql.rfind("\n", 0, match.start()) + 1
                if not sql[start:match.start()].strip():
                    yield sql.count("\n", 0, match.start()) + 1, sql[start:len(sql) if end < 0 else end]
            position = len(sql) if end < 0 else end + (1 if token == "--" else 2)
        elif token == ";":
            position = match.end()
        else:
            end = sql.find(_CLOSING[token], match.end())
            position = len(sql) if end < 0 else end + 1


def _has_code(text: str) -> bool:
    if "--" in text or "/*" in text:  # only then is the (slower) comment stripping needed
        text = strip_comments(text)
    return bool(text.strip().strip(";").strip())


def terminated(statement: Statement) -> str:
    """The statement's SQL ending in its own `;`, so that another statement can follow it in one request.

    A last statement may lack its `;` or end in a `--` comment; a bare `;` appended on a line of its
    own ends it either way. Raises ValueError when even that leaves it open (an unclosed string or
    quoted name), which SQLite and D1 refuse.
    """
    if sqlite3.complete_statement(statement.sql):
        return statement.sql
    closed = statement.sql + "\n;"
    if not sqlite3.complete_statement(closed):
        raise ValueError(f"the statement at line {statement.line} never ends: a string or quoted name is not "
                         "closed; close it")
    return closed


def is_transaction_control(statement: Statement) -> bool:
    """BEGIN / COMMIT / END / ROLLBACK / SAVEPOINT / RELEASE as a statement of its own (a trigger's
    `BEGIN ... END` body is part of its CREATE TRIGGER statement, which starts with CREATE)."""
    return bool(_TRANSACTION.match(strip_comments(statement.sql).strip()))
