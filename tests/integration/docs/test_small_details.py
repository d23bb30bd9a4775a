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

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

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


def test_the_readmes_saas_bench_resource_counts_are_what_the_plan_counts(tmp_path: Path) -> None:
    """Newcomer review, problem 15: the README said 26 resources where the SaaS plan had 27 (the
    benchmark figures now live in docs/development.md)."""
    import json
    import re
    import subprocess
    import sys

    from bench.plan_bench import saas_project, tenant_project

    development = (REPO / "docs" / "development.md").read_text()
    said = re.search(r"(\d+) resources against (\d+) \(the SaaS component", development)
    assert said, "docs/development.md's SaaS bench sentence moved: update this test with it"

    def resources(project: Path) -> int:
        done = subprocess.run([sys.executable, "-m", "bookingctl", "plan", "production", "--project-dir", str(project),
                               "--format", "json"], capture_output=True, text=True, timeout=300)
        return len(json.loads(done.stdout)["resources"])

    (tmp_path / "saas").mkdir()
    (tmp_path / "plain").mkdir()
    with_saas, _ = saas_project(0, tmp_path / "saas")
    without = tenant_project(0, tmp_path / "plain")
    assert (resources(with_saas), resources(without)) == (int(said.group(1)), int(said.group(2)))
