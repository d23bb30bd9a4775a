"""--progress/--quiet on every long or network-bound command; --progress shows in CI logs (no terminal)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from tests.helpers import REPO

runner = CliRunner()

LONG_OR_NETWORK = [
    ["backup", "create"], ["backup", "list"], ["backup", "verify"], ["backup", "restore"], ["restore", "tenant"],
    ["migrate", "status"], ["migrate", "check"], ["migrate", "apply"], ["tenants", "add"], ["tenants", "status"],
    ["tenants", "remove"], ["tenants", "list"], ["monitor", "health"], ["monitor", "perf"], ["report", "daily"],
    ["audit", "security"], ["db", "stats"], ["doctor"], ["verify"], ["rollback"], ["watch"],
    ["release", "canary"],
]


@pytest.mark.parametrize("command", LONG_OR_NETWORK, ids=" ".join)
def test_the_command_takes_progress_and_quiet(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--progress" in result.output and "--quiet" in result.output


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "d1.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE tenants (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO tenants (name) VALUES (?)", [(f"salon {i}",) for i in range(500)])
    return path


def test_backup_create_with_progress_reports_its_steps_without_a_terminal(database: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["backup", "create", "--local", str(database), "--dest", str(tmp_path / "b"),
                                 "--progress", "--project-dir", str(REPO)])
    assert result.exit_code == 0, result.stderr
    steps = [line for line in result.stderr.splitlines() if line.startswith("backing up ")]
    assert steps, result.stderr


def test_backup_create_quiet_reports_no_steps(database: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["backup", "create", "--local", str(database), "--dest", str(tmp_path / "b"),
                                 "--quiet", "--project-dir", str(REPO)])
    assert result.exit_code == 0, result.stderr
    assert not [line for line in result.stderr.splitlines() if line.startswith("backing up ")]


def test_a_stack_command_with_progress_says_what_it_is_reaching(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    result = runner.invoke(app, ["migrate", "status", "--stack", "staging", "--progress", "--project-dir", str(REPO)])
    assert result.exit_code == 2
    assert "stack staging: finding D1 database appointmentbooking-db-staging" in result.stderr
