"""The newcomer's small details: -h is help, backup verify ends with a one-line verdict, a damaged
database file gets a fix."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from bookingctl.errors import classify
from tests.helpers import REPO

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["backup"], ["backup", "create"], ["migrate", "check"]], ids=" ".join)
def test_dash_h_is_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "-h"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_backup_verify_ends_with_a_one_line_verdict_on_stderr(tmp_path: Path) -> None:
    db = tmp_path / "d1.sqlite"
    migrated = runner.invoke(app, ["migrate", "apply", "--local", str(db), "--yes", "--project-dir", str(REPO)])
    assert migrated.exit_code == 0, migrated.stderr
    dest = tmp_path / "backups"
    made = runner.invoke(app, ["backup", "create", "--local", str(db), "--dest", str(dest), "--project-dir", str(REPO)])
    assert made.exit_code == 0, made.stderr
    name = made.stdout.strip()
    result = runner.invoke(app, ["backup", "verify", name, "--dest", str(dest), "--project-dir", str(REPO)])
    assert result.exit_code == 0, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"backup {name}: OK") and "checks passed" in last


def test_a_malformed_database_names_the_fix() -> None:
    code, message = classify(sqlite3.DatabaseError("database disk image is malformed"))
    assert code == 1
    assert "PRAGMA integrity_check" in message and "bookingctl backup restore" in message
