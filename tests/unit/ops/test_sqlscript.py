"""The statement splitter sees statements exactly as SQLite does."""

from __future__ import annotations

import pytest

from ops.database.sqlscript import is_transaction_control, iter_statements, split_statements, strip_comments


def sqls(script: str) -> list[str]:
    return [s.sql for s in split_statements(script)]


def test_two_statements_on_one_line_are_two_statements() -> None:
    assert sqls("CREATE TABLE a(x); CREATE TABLE b(y);") == ["CREATE TABLE a(x);", "CREATE TABLE b(y);"]


@pytest.mark.parametrize("quoted", ["'a;b'", "'it''s; fine'", '"a;b"', "`a;b`", "[a;b]", "'--;'", "'/*;*/'"])
def test_a_semicolon_inside_a_quoted_token_ends_nothing(quoted: str) -> None:
    assert sqls(f"SELECT {quoted}; SELECT 2;") == [f"SELECT {quoted};", "SELECT 2;"]


def test_semicolons_in_comments_end_nothing_and_comment_only_fragments_vanish() -> None:
    script = "-- setup; part\nCREATE TABLE t (a); /* done; really */\n/* only a comment; */\n-- and this;\n"
    assert sqls(script) == ["CREATE TABLE t (a);"]


def test_a_trigger_body_is_one_statement() -> None:
    script = ("CREATE TRIGGER s AFTER INSERT ON t BEGIN\n  UPDATE t SET a = 1; -- first;\n"
              "  UPDATE t SET a = 2;\nEND; SELECT 3;")
    statements = split_statements(script)
    assert [s.line for s in statements] == [1, 4]
    assert statements[0].sql.startswith("CREATE TRIGGER") and statements[0].sql.endswith("END;")
    assert not is_transaction_control(statements[0])


def test_each_statement_knows_the_line_where_its_code_starts() -> None:
    script = "-- header\n\nCREATE TABLE a (x);\n/* note */\nINSERT INTO a\nVALUES (1); INSERT INTO a VALUES (2);\n"
    assert [s.line for s in split_statements(script)] == [3, 5, 6]


@pytest.mark.parametrize("statement", [
    "COMMIT;", "commit transaction;", "/* x */ COMMIT;", "END /*x*/;", "-- c\nEND;", "BEGIN\nTRANSACTION;",
    "BEGIN IMMEDIATE;", "ROLLBACK;", "SAVEPOINT s1;", "RELEASE s1;", "ROLLBACK TO s1;",
])
def test_transaction_control_is_found_behind_any_comment(statement: str) -> None:
    [found] = split_statements(statement)
    assert is_transaction_control(found)


@pytest.mark.parametrize("statement", ["SELECT 'COMMIT;';", "CREATE TABLE commits (id);",
                                       "INSERT INTO t VALUES ('END');"])
def test_the_words_inside_other_statements_are_not_transaction_control(statement: str) -> None:
    [found] = split_statements(statement)
    assert not is_transaction_control(found)


def test_a_last_statement_without_a_semicolon_is_kept() -> None:
    assert sqls("SELECT 1;\nSELECT 2") == ["SELECT 1;", "SELECT 2"]


def test_streaming_lines_gives_the_same_statements_as_the_whole_text() -> None:
    script = ("INSERT INTO t VALUES('x;y', 'it''s');\nINSERT INTO t VALUES(1); INSERT INTO t VALUES(2);\n"
              "CREATE TRIGGER r AFTER INSERT ON t BEGIN\n SELECT 1;\nEND;\nINSERT INTO t VALUES('multi\nline;');\n")
    streamed = [(s.sql, s.line) for s in iter_statements(script.splitlines(keepends=True))]
    assert streamed == [(s.sql, s.line) for s in split_statements(script)]
    assert len(streamed) == 5


def test_strip_comments_keeps_strings_intact() -> None:
    assert strip_comments("SELECT '--not a comment' -- a comment\n/* gone */ , 1;").split() == [
        "SELECT", "'--not", "a", "comment'", ",", "1;"]


def test_an_unclosed_block_comment_at_the_end_belongs_to_no_statement() -> None:
    # SQLite reads a `/*` that is never closed as a comment running to the end of the input
    # (sqlite.org/lang_comment.html); kept in the statement, it would swallow whatever is sent after it.
    assert sqls("UPDATE t SET a = 1 WHERE b = 1 /* double the prices, as agreed\n") == [
        "UPDATE t SET a = 1 WHERE b = 1"]
    assert sqls("SELECT 1; /* a trailing note; never closed") == ["SELECT 1;"]


def test_terminated_ends_every_statement_so_that_nothing_appended_is_swallowed() -> None:
    import sqlite3

    from ops.database.sqlscript import terminated

    for script in ("CREATE TABLE extra (a TEXT)\n-- done", "SELECT 1 /* open", "SELECT 1;", "SELECT 1 -- x"):
        joined = "\n".join([*(terminated(s) for s in split_statements(script)), "SELECT 2;"])
        assert sqlite3.complete_statement(joined) and len(split_statements(joined)) == 2, joined


def test_splitting_a_large_trigger_takes_linear_time() -> None:
    import time

    # 40,000 `;` inside one trigger body: re-joining the buffer at each of them (quadratic) took minutes.
    script = "CREATE TRIGGER t AFTER INSERT ON users BEGIN\n" + "SELECT 1;\n" * 40_000 + "END;\nSELECT 2;\n"
    started = time.monotonic()
    statements = split_statements(script)
    assert time.monotonic() - started < 10
    assert len(statements) == 2 and statements[0].sql.endswith("END;") and statements[1].line == 40_003
