"""Hostile review of issue #25: `-- check:` assertions in a remote (D1) apply.

A fake D1 runs each write request the way D1 does (all statements of the request in one
transaction) on a real SQLite file; reads run as single statements.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ops.database.migrations import _apply_remote, discover


class FakeD1:
    label = "fake-d1"
    fix_target = "--stack fake"

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.requests: list[str] = []

    def bookmark(self) -> str:
        return "bookmark-0"

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def write_once(self, sql: str, log: Any) -> None:
        # D1: a multi-statement request is one transaction.
        self.requests.append(sql)
        self.conn.execute("BEGIN")
        try:
            _each(self.conn, sql)
        except Exception:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def restore(self, bookmark: str) -> None:  # pragma: no cover
        raise AssertionError("no restore expected")


def _each(conn: sqlite3.Connection, sql: str) -> None:
    """Run a script statement by statement inside the caller's transaction (as D1's request does)."""
    rest = sql
    while rest.strip():
        # sqlite3.complete_statement tells where SQLite ends a statement.
        for end in range(1, len(rest) + 1):
            if rest[end - 1] == ";" and sqlite3.complete_statement(rest[:end]):
                break
        else:
            end = len(rest)
        statement, rest = rest[:end], rest[end:]
        if statement.strip().strip(";").strip() and _has_code(statement):
            conn.execute(statement)


def _has_code(sql: str) -> bool:
    probe = sqlite3.connect(":memory:")
    try:
        return probe.execute("EXPLAIN " + sql).fetchall() is not None
    except sqlite3.Error as exc:
        # a comment-only fragment: "incomplete input" / syntax error at end
        return "incomplete input" not in str(exc) and "not an error" not in str(exc)
    finally:
        probe.close()


@pytest.fixture
def d1(tmp_path: Path) -> FakeD1:
    db = FakeD1(tmp_path / "d1.sqlite")
    db.conn.executescript("CREATE TABLE customers (id INTEGER PRIMARY KEY, phone TEXT);"
                          "INSERT INTO customers VALUES (1, '+27 82 000 0001'), (2, '+27 82 000 0002');")
    return db


def _folder(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_step.sql").write_text(text)
    return folder


def test_two_checks_cannot_smuggle_a_drop_table_into_the_remote_request(tmp_path: Path, d1: FakeD1) -> None:
    """guard_sql pastes a check's text into `CASE WHEN (<check>)`: a check ending in an open `/*`
    and the next one closing it inside a string literal turn the rest of the second check into
    statements of the migration's request. Each check alone is a valid read-only SELECT that
    answers true, so parse(), `migrate rehearse` and the pre-check on D1 all accept them."""
    text = ("-- check: SELECT 1 /*x -- opens a comment in the guard\n"
            "-- check: SELECT '*/) THEN 1 END); DROP TABLE customers; SELECT 1; --' -- closes it\n"
            "ALTER TABLE customers ADD COLUMN tier TEXT;\n")
    from ops.database.migration_asserts import CheckFileError

    with pytest.raises(CheckFileError, match="without comments"):  # refused when the file is read
        _apply_remote(d1, discover(_folder(tmp_path, text)), lambda _: None, {}, False)
    tables = {n for n, in d1.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "customers" in tables, (
        f"a `-- check:` comment dropped customers on D1; request was:\n{d1.requests[-1]}")


def test_a_check_never_writes_on_d1_before_the_migration(tmp_path: Path, d1: FakeD1) -> None:
    """migration_asserts says a check never writes, but its WITH ... DELETE escape hatch ("the
    authorizer refuses it when the check runs") has no authorizer on D1: _check_remote sends the
    check's SQL to D1's query API as is, outside any transaction, before the migration."""
    text = ("-- check: WITH x AS (SELECT 1) DELETE FROM customers RETURNING 1 -- customers exist\n"
            "ALTER TABLE customers ADD COLUMN tier TEXT;\n")
    from ops.database.migration_asserts import CheckFileError

    with pytest.raises(CheckFileError, match="may only read"):  # refused when the file is read
        _apply_remote(d1, discover(_folder(tmp_path, text)), lambda _: None, {}, False)
    assert d1.conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 2, "the check deleted customers on D1"
