"""`bookingctl migrate check` and the check `migrate apply` runs first: exit codes, formats, overrides."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from booking_shared.deploy import migrations_checksum
from booking_shared.migration_files import text_sha256
from bookingctl.cli import app
from tests.helpers import REPO
from tests.helpers.cf_double import TOKEN, CloudflareDouble
from tests.helpers.migrations import folder_with

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project-dir", str(REPO)])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "d1.sqlite"
    code, _, err = run("migrate", "apply", "--local", str(path), "--yes")
    assert code == 0, err
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The committed migration and a contract: appointments.notes goes."""
    return folder_with(tmp_path, **{"0002_drop_notes": "-- release 42\nALTER TABLE appointments DROP COLUMN notes;\n"})


@pytest.fixture
def reads_notes(tmp_path: Path) -> Path:
    path = tmp_path / "app.sql"
    path.write_text("SELECT id, notes FROM appointments WHERE id = ?;\n")
    return path


def test_a_safe_check_exits_0_with_the_json_the_gate_reads(target: Path, folder: Path) -> None:
    code, out, _ = run("migrate", "check", "--local", str(target), "--dir", str(folder), "-f", "json")
    data = json.loads(out)
    assert code == 0 and data["verdict"] == "safe"
    # Bound to the files judged (the gate compares them with the tree's): each file's sha256, the folder's checksum.
    sha256 = text_sha256((folder / "0002_drop_notes.sql").read_text())
    assert data["migrationsChecksum"] == migrations_checksum(folder)
    assert data["migrations"] == [{"name": "0002_drop_notes.sql", "sha256": sha256, "class": "contract",
                                   "unsafe": False, "findings": [
        {"rule": "contract", "severity": "info", "file": "0002_drop_notes.sql", "line": 2,
         "message": "removes column appointments.notes: safe only while no serving version reads it"}]}]


def test_an_unsafe_check_exits_1_and_names_the_file_line_and_query(target: Path, folder: Path,
                                                                     reads_notes: Path) -> None:
    code, out, _ = run("migrate", "check", "--local", str(target), "--dir", str(folder), "--queries", str(reads_notes))
    assert code == 1 and "verdict: unsafe" in out
    assert "0002_drop_notes.sql:2: error: serving-query-breaks" in out and "app.sql:1" in out


def test_markdown_puts_the_verdict_first_for_the_pull_request_comment(target: Path, folder: Path,
                                                                      reads_notes: Path) -> None:
    code, out, _ = run("migrate", "check", "--local", str(target), "--dir", str(folder), "--queries", str(reads_notes),
                       "-f", "markdown")
    assert code == 1 and out.startswith("❌ migrate check: **unsafe**")
    assert "| 0002_drop_notes.sql | contract | error | serving-query-breaks | 0002_drop_notes.sql:2 |" in out


@pytest.mark.parametrize("args", [[], ["--local", "x.sqlite", "--stack", "staging"], ["--local", "missing.sqlite"]])
def test_usage_errors_exit_2(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run("migrate", "check", *args)
    assert code == 2 and ("exactly one database" in err or "no such SQLite file" in err)


def test_a_missing_corpus_file_exits_2(target: Path, tmp_path: Path) -> None:
    code, _, err = run("migrate", "check", "--local", str(target), "--queries", str(tmp_path / "nope.sql"))
    assert code == 2 and "no such query corpus file" in err


def test_the_remote_check_runs_through_the_api_double(double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch,
                                                      folder: Path, reads_notes: Path) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    d1 = double.add_database("appointmentbooking-db-staging")
    assert run("migrate", "apply", "--stack", "staging", "--yes")[0] == 0
    before = d1.path.read_bytes()
    code, out, _ = run("migrate", "check", "--stack", "staging", "--dir", str(folder), "--queries", str(reads_notes),
                       "-f", "json")
    assert code == 1 and json.loads(out)["target"].startswith("D1 appointmentbooking-db-staging")
    assert d1.path.read_bytes() == before


def test_apply_refuses_an_unsafe_migration_and_applies_it_with_a_reason(target: Path, folder: Path,
                                                                        reads_notes: Path) -> None:
    args = ["migrate", "apply", "--local", str(target), "--dir", str(folder), "--queries", str(reads_notes), "--yes"]
    code, _, err = run(*args)
    assert code == 1 and "0002_drop_notes.sql (contract)" in err and "--allow-unsafe --reason" in err
    assert "notes" in {r[1] for r in sqlite3.connect(target).execute("PRAGMA table_info(appointments)")}
    assert run(*args, "--allow-unsafe")[0] == 2  # a reason is required
    reason = "the booking app stopped reading notes in release 41"
    code, _, err = run(*args, "--allow-unsafe", "--reason", reason)
    assert code == 0 and f"reason, recorded in d1_migrations_unsafe: {reason}" in err
    row = sqlite3.connect(target).execute("SELECT name, reason, approved_via FROM d1_migrations_unsafe").fetchone()
    assert row == ("0002_drop_notes.sql", reason, "bookingctl migrate apply --allow-unsafe")


def test_apply_of_a_safe_migration_needs_no_override(target: Path, folder: Path) -> None:
    code, out, _ = run("migrate", "apply", "--local", str(target), "--dir", str(folder), "--yes")
    assert code == 0 and "applied now" in out
    tables = {r[0] for r in sqlite3.connect(target).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "d1_migrations_unsafe" not in tables


def test_a_reason_with_a_c1_control_or_a_bidi_override_is_refused(target: Path, folder: Path,
                                                                   reads_notes: Path) -> None:
    for reason in ("approved by ops \u009b31m for release 41", "approved by ops \u202eevil for release 41"):
        code, _, err = run("migrate", "apply", "--local", str(target), "--dir", str(folder), "--yes", "--queries",
                           str(reads_notes), "--allow-unsafe", "--reason", reason)
        assert code == 2 and "--reason" in err
    cols = [r[1] for r in sqlite3.connect(target).execute("PRAGMA table_info(appointments)")]
    assert "notes" in cols


def test_a_folder_named_like_a_migration_is_a_usage_error(target: Path, folder: Path) -> None:
    (folder / "0003_dir.sql").mkdir()
    code, _, err = run("migrate", "check", "--local", str(target), "--dir", str(folder))
    assert code == 2 and "0003_dir.sql" in err and "not a file" in err


def test_a_corpus_query_that_never_prepares_fails_the_check_and_is_printed(target: Path, folder: Path,
                                                                          tmp_path: Path) -> None:
    broken = tmp_path / "pyformat.sql"
    broken.write_text("SELECT id, notes FROM appointments WHERE id = %s;\n")
    code, out, _ = run("migrate", "check", "--local", str(target), "--dir", str(folder), "--queries", str(broken))
    assert code == 1 and "corpus-query-unprepared" in out and "pyformat.sql:1" in out
