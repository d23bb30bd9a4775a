"""`bookingctl migrate rehearse`: on a copy of a local file or of a verified backup, never the target."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from ops.backups.archive import create
from ops.targets import LocalDatabase
from tests.helpers import REPO
from tests.helpers.backups import relabel
from tests.helpers.migrations import folder_with

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

runner = CliRunner()
DROP_SERVICES = ("PRAGMA defer_foreign_keys = ON;\nDROP TABLE appointments;\nDROP TABLE services;\n"
                 "PRAGMA defer_foreign_keys = OFF;\n")


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project-dir", str(REPO)])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A local database at the committed migrations, seeded with two salons' fake data."""
    path = tmp_path / "d1.sqlite"
    assert run("migrate", "apply", "--local", str(path), "--yes")[0] == 0
    assert runner.invoke(app, ["db", "seed", "--local", str(path)]).exit_code == 0
    return path


def test_a_hazard_on_a_local_copy_exits_1_with_json_evidence_and_the_target_untouched(
        tmp_path: Path, target: Path) -> None:
    folder = folder_with(tmp_path, **{"0003_remove_appointments": "DELETE FROM services;\n"})
    before = target.read_bytes()
    code, out, err = run("migrate", "rehearse", "--local", str(target), "--dir", str(folder), "-f", "json")
    data = json.loads(out)
    assert code == 1 and data["kind"] == "migration-rehearsal" and data["verdict"] == "unsafe"
    [migration] = data["migrations"]
    assert migration["status"] == "failed"
    assert migration["problems"][0]["rule"] == "constraint-failed"
    assert target.read_bytes() == before
    assert "rehearsing 0003_remove_appointments.sql (1 of 1)" in err


def test_nothing_pending_is_safe_and_says_so(target: Path) -> None:
    code, out, _ = run("migrate", "rehearse", "--local", str(target))
    assert code == 0 and "migrate rehearse: safe (0 pending migration(s)" in out


def test_a_stack_rehearses_on_its_newest_backup_that_verifies_skipping_a_damaged_one(
        tmp_path: Path, target: Path) -> None:
    dest = tmp_path / "backups"
    dest.mkdir()
    source = {"kind": "remote", "database": "appointmentbooking-db-staging", "databaseId": "x", "bookmark": None}
    older = create(LocalDatabase(target), dest, label="first")
    relabel(dest / f"{older.name}.manifest.json", source)
    newer = create(LocalDatabase(target), dest, label="second")
    relabel(dest / f"{newer.name}.manifest.json", source)
    (dest / newer.file).write_text("-- damaged\n")
    folder = folder_with(tmp_path, **{"0003_notes": "UPDATE appointments SET notes = NULL WHERE id = 'none';\n"})
    code, out, err = run("migrate", "rehearse", "--stack", "staging", "--dest", str(dest), "--dir", str(folder),
                         "-f", "json")
    assert code == 0, err
    assert json.loads(out)["source"] == f"backup {older.name}"
    assert f"skipped backup {newer.name}" in err


def test_a_stack_without_a_backup_of_its_database_is_an_error_naming_the_command(tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    dest.mkdir()
    code, _, err = run("migrate", "rehearse", "--stack", "staging", "--dest", str(dest))
    assert code == 1 and "bookingctl backup create --stack staging" in err


def test_exactly_one_database(target: Path) -> None:
    assert run("migrate", "rehearse")[0] == 2
    assert run("migrate", "rehearse", "--stack", "staging", "--local", str(target))[0] == 2


def test_ctrl_c_mid_rehearsal_removes_the_scratch_copy(tmp_path: Path, target: Path) -> None:
    slow = ("CREATE TABLE numbers AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
            "WHERE x < 500000000) SELECT x FROM n;\n")
    folder = folder_with(tmp_path, **{"0003_slow": slow})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    child = subprocess.Popen([sys.executable, "-m", "bookingctl", "migrate", "rehearse", "--local", str(target),
                              "--dir", str(folder), "--project-dir", str(REPO)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(scratch.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(scratch.iterdir()), "the rehearsal never made its scratch copy"
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode != 0
    assert list(scratch.iterdir()) == [], err
    created = sqlite3.connect(target).execute("SELECT count(*) FROM sqlite_master WHERE name = 'numbers'").fetchone()
    assert created == (0,)
