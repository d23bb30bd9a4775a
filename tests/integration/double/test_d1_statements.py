"""The double's D1 finds statements with SQLite itself (sqlite3_complete and Python's sqlite3 tail
check), not with the project's splitter ops.database.sqlscript: on tricky scripts the two must agree, so a
bug in the splitter shows up against the double instead of being mirrored by it."""

from __future__ import annotations

import ast
import sqlite3
import subprocess
import sys
from pathlib import Path

import cloudflare
import pytest
from cloudflare import Cloudflare

from ops.database.sqlscript import is_transaction_control as project_transaction_control
from ops.database.sqlscript import split_statements
from tests.helpers import ACCOUNT, REPO
from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.cf_double.d1 import is_transaction_control, statements

PACKAGE = Path(__file__).resolve().parents[2] / "helpers" / "cf_double"

TRICKY = {
    "semicolons in strings": "INSERT INTO notes VALUES ('a;b'); INSERT INTO notes VALUES ('it''s; fine');",
    "semicolons in quoted names": 'CREATE TABLE "odd;name" ([a;b] TEXT, `c;d` TEXT); SELECT 1;',
    "comments": "-- first; not a statement\nSELECT 1; /* a ; block\n comment */ SELECT 2; -- trailing ;",
    "comments only": "-- nothing here;\n/* nor ; here */",
    "trigger": ("CREATE TABLE t (x); CREATE TABLE log (y);\n"
                "CREATE TRIGGER t_log AFTER INSERT ON t BEGIN\n  INSERT INTO log VALUES (new.x);\n"
                "  INSERT INTO log VALUES ('; END;');\nEND;\nINSERT INTO t VALUES (1);"),
    "no final semicolon": "SELECT 1;\nSELECT 'x;y'",
    "several on a line and empty ones": "SELECT 1;;  ; SELECT 2;",
}


@pytest.mark.parametrize("script", TRICKY.values(), ids=TRICKY.keys())
def test_the_double_and_the_project_splitter_find_the_same_statements(script: str) -> None:
    ours = statements(script)
    project = [s.sql for s in split_statements(script)]
    assert len(ours) == len(project), (ours, project)
    for found, expected in zip(ours, project, strict=True):
        # The double keeps a statement's leading comments (D1 receives them); the splitter drops them.
        assert found.endswith(expected), (found, expected)


@pytest.mark.parametrize("statement", ["BEGIN;", "begin transaction;", "-- note\nCOMMIT", "END;",
                                       "SAVEPOINT a;", "RELEASE a", "ROLLBACK TO a;", "ROLLBACK;"])
def test_sqlites_parser_and_the_project_agree_on_transaction_control(statement: str) -> None:
    assert is_transaction_control(statement)
    assert project_transaction_control(split_statements(statement)[0])


@pytest.mark.parametrize("statement", ["SELECT 'BEGIN';", "INSERT INTO t VALUES ('COMMIT');", "-- BEGIN\nSELECT 1;",
                                       "CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; END;"])
def test_statements_that_only_mention_transactions_are_not_transaction_control(statement: str) -> None:
    assert not is_transaction_control(statement)


def test_a_trigger_with_a_body_runs_as_one_statement_through_the_api(
        double: CloudflareDouble, client: Cloudflare) -> None:
    db = double.add_database("appointmentbooking-db")
    answer = client.d1.database.query(db.uuid, account_id=ACCOUNT, sql=TRICKY["trigger"])
    assert len(answer.result) == 4  # two tables, one trigger, one insert
    conn = sqlite3.connect(db.path)
    try:
        assert conn.execute("SELECT y FROM log ORDER BY rowid").fetchall() == [(1,), ("; END;",)]
    finally:
        conn.close()


def test_a_commit_after_a_string_with_a_semicolon_is_refused_and_nothing_is_applied(
        double: CloudflareDouble, client: Cloudflare) -> None:
    db = double.add_database("appointmentbooking-db")
    client.d1.database.query(db.uuid, account_id=ACCOUNT, sql="CREATE TABLE notes (body TEXT);")
    with pytest.raises(cloudflare.BadRequestError, match=r"state\.storage\.transaction"):
        client.d1.database.query(db.uuid, account_id=ACCOUNT,
                                 sql="INSERT INTO notes VALUES ('x; COMMIT'); /* ; */ COMMIT;")
    conn = sqlite3.connect(db.path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM notes").fetchone() == (0,)
    finally:
        conn.close()


def test_the_double_does_not_import_the_project_splitter() -> None:
    imported = set()
    for module in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add((module.name, node.module))
            elif isinstance(node, ast.Import):
                imported.update((module.name, alias.name) for alias in node.names)
    assert imported, "no imports found: the package moved?"
    assert not [(m, name) for m, name in imported if name == "ops" or name.startswith("ops.")]


def test_importing_the_double_loads_nothing_of_ops() -> None:
    """Not even through another helper: a fresh interpreter imports the double and lists ops modules."""
    code = ("import sys, tests.helpers.cf_double; "
            "print(sorted(m for m in sys.modules if m == 'ops' or m.startswith('ops.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip() == "[]"


def test_every_module_of_the_double_stays_under_450_lines() -> None:
    long = {m.name: n for m in PACKAGE.glob("*.py") if (n := len(m.read_text(encoding="utf-8").splitlines())) > 450}
    assert not long
