"""The operations' command line on local SQLite files: output, confirmation and exit codes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from tests.helpers import REPO
from tests.helpers.cf_double import TOKEN, CloudflareDouble

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

runner = CliRunner()


@pytest.fixture
def db(empty_sqlite: Path) -> Path:
    return empty_sqlite


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project-dir", str(REPO)], input=stdin)
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


@pytest.mark.parametrize("args", [
    ["migrate", "status"], ["migrate", "status", "--stack", "staging", "--local", "x"],
    ["verify", "--stack", "staging", "--local", "x"], ["monitor", "health", "--stack", "staging", "--local", "x"],
    ["report", "daily", "--stack", "staging", "--local", "x"],
])
def test_exactly_one_database_must_be_named(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Refused before the stack is read: no token is needed to be told.
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    code, _, err = run(*args)
    assert code == 2 and "exactly one database" in err


def test_options_are_checked_before_the_database_is_opened(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    code, _, err = run("monitor", "health", "--local", str(missing))
    assert code == 2 and "name what to check" in err
    (tmp_path / "reports").write_text("")
    code, _, err = run("report", "daily", "--local", str(missing), "--out", str(tmp_path / "reports"))
    assert code == 2 and "is a file" in err
    assert not missing.exists()


def test_remote_stack_without_a_token_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    code, _, err = run("migrate", "status", "--stack", "staging")
    assert code == 2 and "CLOUDFLARE_API_TOKEN is not set" in err


def test_backup_create_list_verify_prune_restore(db: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    assert run("migrate", "apply", "--local", str(db), "--yes")[0] == 0
    code, out, _ = run("backup", "create", "--local", str(db), "--dest", str(dest), "--reason", "test")
    name = out.strip()
    assert code == 0 and name.startswith("backup-")
    code, out, _ = run("backup", "list", "--dest", str(dest), "-f", "json")
    assert [b["name"] for b in json.loads(out)] == [name]
    code, out, _ = run("backup", "verify", name, "--dest", str(dest))
    assert code == 0 and json.loads(out)["ok"] is True
    (dest / f"{name}.sql").write_text("garbage")
    code, out, _ = run("backup", "verify", name, "--dest", str(dest))
    assert code == 1 and json.loads(out)["ok"] is False
    code, _, err = run("backup", "restore", name, "--dest", str(dest), "--local", str(tmp_path / "r.sqlite"))
    assert code == 1 and "failed verification" in err
    code, out, _ = run("backup", "prune", "--dest", str(dest), "--retention-days", "1", "--dry-run")
    assert code == 0 and out == ""


def test_prune_takes_the_stacks_retention_by_default(tmp_path: Path) -> None:
    code, _, err = run("backup", "prune", "--stack", "staging", "--dest", str(tmp_path), "--dry-run")
    assert code == 0 and "older than 7 days" in err
    code, _, err = run("backup", "prune", "--dest", str(tmp_path))
    assert code == 2 and "--retention-days" in err


def test_upload_needs_a_stack(db: Path) -> None:
    code, _, err = run("backup", "create", "--local", str(db), "--upload")
    assert code == 2 and "--upload needs --stack" in err


def test_backup_create_upload_reads_the_stack_once_and_fills_its_r2_bucket(
        tmp_path: Path, double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    double.add_database("appointmentbooking-db-staging")
    double.buckets["appointmentbooking-backups-staging"] = {}
    code, out, err = run("backup", "create", "--stack", "staging", "--dest", str(tmp_path / "b"),
                         "--upload", "--label", "daily")
    assert code == 0, err
    name = out.strip()
    assert set(double.buckets["appointmentbooking-backups-staging"]) == {f"{name}.sql", f"{name}.manifest.json"}


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


@pytest.mark.parametrize("command", [["migrate", "status"], ["users", "list"], ["audit", "security"],
                                     ["db", "stats"], ["backup", "list"]])
@pytest.mark.parametrize("fmt", ["markdown", "sarif"])
def test_commands_refuse_formats_they_cannot_print(db: Path, command: list[str], fmt: str) -> None:
    args = [*command, "-f", fmt] if command[0] == "backup" else [*command, "--local", str(db), "-f", fmt]
    code, out, err = run(*args)
    assert code == 2 and out == "" and "'table', 'json'" in err
