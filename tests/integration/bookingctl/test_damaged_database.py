"""A damaged local database is an outage to the commands that watch a site (`verify`, `monitor health`):
exit 1 with the JSON report and the database check failed, as a monitor must report it; commands
that only read data keep calling a non-SQLite file bad input (exit 2)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bookingctl.cli import app
from tests.helpers.http_site import Site, serving


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def garbage(tmp_path: Path) -> Path:
    """What the review's step 3.5 left under the runtime: the D1 file overwritten with random bytes."""
    path = tmp_path / "d1.sqlite"
    path.write_bytes(os.urandom(200_704))
    return path


def test_verify_reports_a_damaged_local_database_as_a_failed_database_check(garbage: Path) -> None:
    """A file whose pages are damaged behind an intact header fails the same check, asserted on the
    operation: tests/integration/ops/test_verify.py::test_corrupt_database_file_fails_the_database_check."""
    path = garbage
    result = run("verify", "--local", str(path), "--timeout", "0")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    database = next(c for c in report["checks"] if c["name"] == "database")
    assert database["ok"] is False and str(path) in database["detail"]


def test_monitor_health_reports_a_damaged_local_database_as_an_outage(garbage: Path) -> None:
    with serving(Site()) as site:
        result = run("monitor", "health", "--base-url", f"http://127.0.0.1:{site.port}", "--local", str(garbage),
                     "--skip-integrations", "--timeout", "5")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["checks"]["database"]["status"] == "FAIL"
    assert report["checks"]["main_application"]["status"] == "OK"
    assert report["overall_status"] == "FAIL"


def test_a_read_command_still_calls_a_non_sqlite_file_bad_input(garbage: Path) -> None:
    result = run("users", "list", "--local", str(garbage))
    assert result.exit_code == 2 and "not a SQLite database" in result.stderr
