"""A damaged local database is an outage to the commands that watch a site (`verify`, `monitor health`):
exit 1 with the JSON report and the database check failed, as a monitor must report it; commands
that only read data keep calling a non-SQLite file bad input (exit 2)."""

from __future__ import annotations

import json
import os
import sqlite3
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


@pytest.fixture
def malformed(tmp_path: Path) -> Path:
    """A file with SQLite's header whose pages are damaged."""
    path = tmp_path / "d1.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    conn.close()
    data = bytearray(path.read_bytes())
    data[100:4096 * 3] = os.urandom(4096 * 3 - 100)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("damage", ["garbage", "malformed"])
def test_verify_reports_a_damaged_local_database_as_a_failed_database_check(
        damage: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(damage)
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
