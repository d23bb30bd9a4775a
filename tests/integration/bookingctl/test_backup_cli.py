"""`bookingctl backup` on local files: every bad input is one line on stderr and an exit code."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from ops.database.migrations import apply, discover
from ops.targets import LocalDatabase
from tests.helpers import REPO
from tests.helpers.cf_double import TOKEN, CloudflareDouble

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project-dir", str(REPO)])
    return result.exit_code, result.stdout, result.stderr


def one_error(code: int, err: str, *expected: str) -> None:
    """A failure reported as it should be: one `error:` line naming what is wrong, no traceback."""
    lines = err.strip().splitlines()
    assert code in (1, 2) and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert all(text in lines[0] for text in expected), lines[0]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "d1.sqlite"
    database = LocalDatabase(path, must_exist=False)
    apply(database, discover(REPO / "migrations"))
    with database.transaction() as conn:
        conn.execute("INSERT INTO tenants (id, slug, name) VALUES ('t1', 'instyle', 'InStyle')")
        conn.execute("INSERT INTO users (id, tenant_id, email, name) VALUES ('u1', 't1', 'a@example.co.za', 'A')")
        conn.execute("INSERT INTO services (id, tenant_id, name, duration_minutes) VALUES ('s1', 't1', 'Cut', 30)")
        conn.executemany("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) "
                         "VALUES (?, 't1', 's1', 'u1', '2026-12-01 10:00:00')", [(f"a{i}",) for i in range(20)])
    database.close()
    return path


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "backups"


def create(db: Path, dest: Path, *extra: str) -> str:
    code, out, err = run("backup", "create", "--local", str(db), "--dest", str(dest), *extra)
    assert code == 0, err
    return out.strip()


def edit_manifest(dest: Path, name: str, change: dict[str, object] | None = None, raw: bytes | None = None) -> Path:
    path = dest / f"{name}.manifest.json"
    if raw is not None:
        path.write_bytes(raw)
    else:
        data = json.loads(path.read_text())
        data.update(change or {})
        path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    return path


# The manifest's field rules (a missing or unknown field, a bad time, a bad size) are asserted on the
# operation in tests/integration/ops/test_backups.py; here only that a manifest verify cannot read
# reaches the terminal as one error line naming it.
@pytest.mark.parametrize("raw, why", [(b'{"name": "x",', "not valid JSON"), (b'{"reason": "caf\xe9"}', "not UTF-8")])
def test_verify_of_a_malformed_manifest_is_one_error_line(db: Path, dest: Path, raw: bytes, why: str) -> None:
    name = create(db, dest)
    path = edit_manifest(dest, name, raw=raw)
    code, _, err = run("backup", "verify", name, "--dest", str(dest))
    one_error(code, err, str(path), why)


def test_list_and_prune_skip_a_manifest_with_a_bad_time_and_say_so(db: Path, dest: Path) -> None:
    good = create(db, dest, "--label", "good")
    bad = create(db, dest, "--label", "bad")
    edit_manifest(dest, bad, {"created_at": "yesterday"})
    code, out, err = run("backup", "list", "--dest", str(dest), "-f", "json")
    assert code == 0 and [b["name"] for b in json.loads(out)] == [good]
    assert err.startswith("warning: skipped ") and f"{bad}.manifest.json" in err and "created_at" in err
    code, out, err = run("backup", "prune", "--dest", str(dest), "--retention-days", "1")
    assert code == 0 and out == "" and f"{bad}.manifest.json" in err
    assert (dest / f"{bad}.sql").exists()


def test_restore_into_a_folder_is_one_error_line(db: Path, dest: Path, tmp_path: Path) -> None:
    name = create(db, dest)
    code, _, err = run("backup", "restore", name, "--dest", str(dest), "--local", str(tmp_path), "--replace")
    one_error(code, err, str(tmp_path), "is a folder")
    assert code == 2


def test_list_of_a_folder_that_does_not_exist_says_which(tmp_path: Path) -> None:
    code, _, err = run("backup", "list", "--dest", str(tmp_path / "typo"))
    one_error(code, err, f"no backup folder at {tmp_path / 'typo'}")
    assert code == 2  # a wrong --dest is bad input


def test_verifying_a_backup_that_does_not_exist_is_bad_input_not_a_failed_check(dest: Path) -> None:
    """Exit 1 means "the backup is bad"; a name that is not there is a different answer (2)."""
    dest.mkdir()
    code, out, err = run("backup", "verify", "nosuch", "--dest", str(dest))
    one_error(code, err, "no backup 'nosuch'", "bookingctl backup list")
    assert code == 2 and out == ""


def test_list_shows_a_reason_with_control_characters_escaped(db: Path, dest: Path) -> None:
    reason = "\x1b[2J\x1b[31mred alert\x1b[0m\x07\rspoofed"
    create(db, dest, "--reason", reason)
    code, out, _ = run("backup", "list", "--dest", str(dest))
    assert code == 0 and "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "\\x1b[31mred alert" in out
    code, out, _ = run("backup", "list", "--dest", str(dest), "-f", "json")
    assert json.loads(out)[0]["reason"] == reason  # JSON escapes them itself, and keeps them exact


def test_foreign_key_violations_are_warned_at_create_and_need_a_flag_to_restore(
        db: Path, dest: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        rowid = conn.execute("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) "
                             "VALUES ('orphan', 't1', 's1', 'ghost', '2026-12-02 09:00:00')").lastrowid
    conn.close()
    code, out, err = run("backup", "create", "--local", str(db), "--dest", str(dest))
    assert code == 0 and f"appointments rowid {rowid} -> users" in err and err.startswith("warning: ")
    name = out.strip()
    code, out, _ = run("backup", "verify", name, "--dest", str(dest))
    assert code == 1 and not json.loads(out)["ok"]
    target = tmp_path / "restored.sqlite"
    code, _, err = run("backup", "restore", name, "--dest", str(dest), "--local", str(target))
    one_error(code, err, "--allow-foreign-key-violations")
    code, _, err = run("backup", "restore", name, "--dest", str(dest), "--local", str(target),
                       "--allow-foreign-key-violations")
    assert code == 0 and f"restored backup {name} into {target}" in err


@pytest.mark.parametrize("args", [
    ["backup", "prune", "--retention-days", "0"], ["backup", "verify", ""], ["backup", "create", "--label", "Bad"],
])
def test_bad_arguments_are_bad_input_not_a_failed_backup(db: Path, dest: Path, args: list[str]) -> None:
    """The CLI's side of the operation's input checks (a retention out of 1..36500, a name that is not a
    backup's: tests/integration/ops/test_backups.py): exit 2 and one line."""
    dest.mkdir()
    extra = ["--local", str(db)] if args[1] == "create" else []
    code, out, err = run(*args, *extra, "--dest", str(dest))
    one_error(code, err)
    assert code == 2 and out == ""


@pytest.mark.parametrize("stack", ["..", "../../etc", "a/b"])
def test_a_stack_name_never_leads_the_backup_folder_out_of_backups(stack: str) -> None:
    code, out, err = run("backup", "list", "--stack", stack)
    one_error(code, err, f"stack name {stack!r}")
    assert code == 2 and out == ""


# --- the backup commands in turn, and where --stack is needed -------------------------------------

def test_backup_create_list_verify_prune_restore(empty_sqlite: Path, tmp_path: Path) -> None:
    db, dest = empty_sqlite, tmp_path / "backups"
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


def test_upload_needs_a_stack(empty_sqlite: Path) -> None:
    code, _, err = run("backup", "create", "--local", str(empty_sqlite), "--upload")
    assert code == 2 and "--upload needs --stack" in err


@pytest.mark.slow  # the API double listens on a socket
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


# --- backup import: an export made elsewhere (the review's B1) ------------------------------------

def d1_export_of(db: Path, tmp_path: Path, extra: str = "") -> Path:
    """The database as D1's export writes it (tests/helpers/d1_export.py), with `extra` rows added first."""
    from tests.helpers.d1_export import export_text

    conn = sqlite3.connect(db)
    conn.executescript(extra)
    path = tmp_path / "wrangler-export.sql"
    path.write_text(export_text(conn))
    conn.close()
    return path


def test_an_export_without_a_manifest_is_refused_with_the_import_command_named(db: Path, tmp_path: Path) -> None:
    export = d1_export_of(db, tmp_path)
    code, _, err = run("backup", "verify", str(export))
    one_error(code, err, "backup import", str(export))


def test_an_imported_export_is_verified_and_restored_by_name(db: Path, dest: Path, tmp_path: Path) -> None:
    export = d1_export_of(db, tmp_path, "UPDATE services SET price_cents = 9007199254740993;")
    code, out, err = run("backup", "import", str(export), "--dest", str(dest), "--label", "wrangler")
    assert code == 0, err
    name = out.strip()
    assert name.startswith("wrangler-") and "services.price_cents: 1 value(s) past 2^53" in err
    code, out, err = run("backup", "verify", name, "--dest", str(dest))
    assert code == 0 and json.loads(out)["ok"], err
    code, _, err = run("backup", "restore", name, "--dest", str(dest), "--local", str(tmp_path / "r.sqlite"))
    assert code == 0, err
    conn = sqlite3.connect(tmp_path / "r.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM appointments").fetchone()[0] == 20
    conn.close()


def test_importing_a_file_that_does_not_load_fails_and_writes_nothing(dest: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE TABLE t (a);\nDROP TABLE t;\n")
    code, out, err = run("backup", "import", str(bad), "--dest", str(dest))
    one_error(code, err, "DROP TABLE", "nothing was imported")
    assert code == 1 and out == "" and not dest.exists()


def test_restore_replace_names_the_kept_database_and_the_command_that_undoes_it(db: Path, dest: Path) -> None:
    name = create(db, dest)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM appointments WHERE id = 'a1'")  # what only the overwritten file holds
    code, _, err = run("backup", "restore", name, "--local", str(db), "--dest", str(dest), "--replace")
    assert code == 0, err
    undo = err.split("to undo: ", 1)[1].strip()
    assert undo.startswith("bookingctl backup restore pre-restore-") and undo.endswith(f"--local {db} --replace")
    code, _, err = run(*undo.split()[1:])
    assert code == 0, err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM appointments WHERE id = 'a1'").fetchone()[0] == 0


def test_the_undo_command_is_shell_quoted_and_runs_as_printed(db: Path, tmp_path: Path) -> None:
    """Hostile review of #22, D4: a path with a space or `$(...)` broke the printed command, or ran."""
    import shlex

    odd = tmp_path / "my backups"
    target = tmp_path / "tgt $(echo pwned) x.sqlite"
    target.write_bytes(db.read_bytes())
    name = create(db, odd)
    with sqlite3.connect(target) as conn:
        conn.execute("DELETE FROM appointments WHERE id = 'a2'")
    code, _, err = run("backup", "restore", name, "--local", str(target), "--dest", str(odd), "--replace")
    assert code == 0, err
    undo = err.split("to undo: ", 1)[1].strip()
    words = shlex.split(undo)
    assert words[words.index("--local") + 1] == str(target) and words[words.index("--dest") + 1] == str(odd)
    code, _, err = run(*words[1:])
    assert code == 0, err
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM appointments WHERE id = 'a2'").fetchone()[0] == 0


def test_a_damaged_databases_copy_is_named_once_with_one_line_of_why(db: Path, dest: Path, tmp_path: Path) -> None:
    """Hostile review of #22, D5: the copy was named twice and SQLite's multi-line error sat inside the undo."""
    import os
    import subprocess

    name = create(db, dest)
    target = tmp_path / "damaged.sqlite"
    target.write_bytes(db.read_bytes())
    with target.open("r+b") as f:
        f.seek(4096)
        f.write(os.urandom(8192))
    code, _, err = run("backup", "restore", name, "--local", str(target), "--dest", str(dest), "--replace")
    assert code == 0, err
    [line] = [line for line in err.splitlines() if "could not be read whole" in line]
    copy = next(p for p in tmp_path.iterdir() if ".replaced-" in p.name)
    assert line.count(copy.name) == 2  # "kept as COPY; to undo: mv COPY TARGET"
    undo = line.split("to undo: ", 1)[1]
    assert undo.startswith("mv ") and "\\n" not in line
    moved = subprocess.run(undo, shell=True, capture_output=True, text=True)  # the command as printed
    assert moved.returncode == 0 and not copy.exists() and target.exists()
