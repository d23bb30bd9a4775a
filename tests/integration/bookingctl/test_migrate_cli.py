"""`bookingctl migrate status|apply` on local SQLite files: output, confirmation, exit codes, a new file."""

from __future__ import annotations

import json
import sqlite3
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


def test_migrate_status_then_apply_then_status(db: Path) -> None:
    code, out, _ = run("migrate", "status", "--local", str(db), "-f", "json")
    assert code == 0 and json.loads(out)["migrations"][0]["applied"] is False
    code, out, _ = run("migrate", "apply", "--local", str(db), "--yes")
    assert code == 0 and "applied now" in out
    code, out, _ = run("migrate", "status", "--local", str(db), "-f", "json")
    assert json.loads(out)["migrations"][0]["applied"] is True


def test_migrate_apply_without_yes_on_non_interactive_input_changes_nothing(
        db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    code, _, err = run("migrate", "apply", "--local", str(db))
    assert code == 2 and "pass --yes" in err
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0


def test_failed_migration_exits_1_naming_file_and_line(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_broken.sql").write_text("CREATE TABLE a (x);\nINSERT INTO nope VALUES (1);\n")
    code, _, err = run("migrate", "apply", "--local", str(db), "--dir", str(folder), "--yes")
    # The check that runs first applies it to a scratch copy and refuses it there.
    assert code == 1 and "apply-failed at 0001_broken.sql:2" in err and "Nothing was applied" in err
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    code, _, err = run("migrate", "apply", "--local", str(db), "--dir", str(folder), "--yes", "--allow-unsafe",
                       "--reason", "proving the runner's own rollback in a test")
    assert code == 1 and "0001_broken.sql:2" in err and "exactly as before" in err


def test_remote_stack_without_a_token_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    code, _, err = run("migrate", "status", "--stack", "staging")
    assert code == 2 and "CLOUDFLARE_API_TOKEN is not set" in err


def test_migrate_apply_creates_a_local_database_from_nothing_and_says_so(tmp_path: Path) -> None:
    new = tmp_path / "dev" / "new.db"
    new.parent.mkdir()
    code, out, err = run("migrate", "apply", "--local", str(new), "--yes")
    assert code == 0 and f"created a new SQLite database at {new}" in err and "applied now" in out
    tables = {r[0] for r in sqlite3.connect(new).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"appointments", "users", "d1_migrations"} <= tables


def test_migrate_apply_asks_before_creating_a_local_database_and_a_refusal_leaves_no_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    new = tmp_path / "new.db"
    code, _, err = run("migrate", "apply", "--local", str(new))
    assert code == 2 and "no such file; it would be created" in err and "pass --yes" in err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_first_migration_leaves_no_half_made_database_behind(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_broken.sql").write_text("CREATE TABLE a (x);\nINSERT INTO nope VALUES (1);\n")
    new = tmp_path / "new.db"
    code, _, err = run("migrate", "apply", "--local", str(new), "--dir", str(folder), "--yes")
    assert code == 1 and "0001_broken.sql:2" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["migrations"]


def test_migrate_apply_into_a_missing_folder_is_bad_input(tmp_path: Path) -> None:
    code, _, err = run("migrate", "apply", "--local", str(tmp_path / "nope" / "new.db"), "--yes")
    assert code == 2 and "does not exist" in err and not (tmp_path / "nope").exists()
