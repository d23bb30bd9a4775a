"""`bookingctl users|db` (bookingctl/commands/admin.py) on a local SQLite file: what goes to stdout,
what to stderr, and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from tests.helpers import REPO

runner = CliRunner()


@pytest.fixture
def db(empty_sqlite: Path) -> Path:
    return empty_sqlite


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project-dir", str(REPO)])
    return result.exit_code, result.stdout, result.stderr


def test_users_permissions_of_an_unknown_user_fails_saying_so(db: Path) -> None:
    run("migrate", "apply", "--local", str(db), "--yes")
    code, out, err = run("users", "permissions", "nobody@example.com", "--local", str(db))
    assert code == 1 and out == "" and "no user with id or email 'nobody@example.com'" in err


def test_db_stats_prints_its_summary_on_stdout_in_the_chosen_format(db: Path) -> None:
    run("migrate", "apply", "--local", str(db), "--yes")
    code, out, err = run("db", "stats", "--local", str(db))
    assert code == 0 and "size" in out and "appointments-by-tenant query" in out and "uses an index" in out
    assert err == ""
    code, out, _ = run("db", "stats", "--local", str(db), "-f", "json")
    data = json.loads(out)
    assert data["size"]["size_bytes"] > 0 and data["tenant_query_uses_index"] is True
