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
from cloudflare import Cloudflare
from typer.testing import CliRunner

from booking_shared.deploy import migrations_checksum
from booking_shared.migration_files import text_sha256
from bookingctl.cli import app
from ops.backups.archive import create
from ops.backups.bucket import upload
from ops.backups.manifest import read_manifest
from ops.targets import Bucket, LocalDatabase
from tests.helpers import ACCOUNT, REPO
from tests.helpers.backups import relabel
from tests.helpers.cf_double import TOKEN, CloudflareDouble
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


# --- From the hostile review of #25 (/work/briefs/hostile25): each failed before its fix. ------------

def test_a_wal_database_is_rehearsed_without_leaving_files_beside_it(tmp_path: Path, target: Path) -> None:
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    folder = folder_with(tmp_path, **{"0003_tier": "ALTER TABLE services ADD COLUMN tier TEXT;\n"})
    before = sorted(p.name for p in target.parent.iterdir())
    code, out, err = run("migrate", "rehearse", "--local", str(target), "--dir", str(folder), "-f", "json")
    assert code == 0, err
    assert json.loads(out)["rows"] > 0
    assert sorted(p.name for p in target.parent.iterdir()) == before


@pytest.mark.parametrize("name", ["d1.sqlite#prod", "d1 ?mode=rw%20x.sqlite"])
def test_the_file_rehearsed_is_the_file_named_whatever_its_characters(tmp_path: Path, target: Path, name: str) -> None:
    (tmp_path / "d1.sqlite").touch()  # what the path would name if '#' or '?' ended it
    named = target.rename(tmp_path / name)
    conn = sqlite3.connect(named)
    rows = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("tenants", "services"))
    conn.close()
    code, out, err = run("migrate", "rehearse", "--local", str(named), "--dir", str(REPO / "migrations"), "-f", "json")
    assert code == 0, err
    assert json.loads(out)["rows"] >= rows > 0


def test_sigterm_while_sqlite_cannot_be_interrupted_still_ends_the_rehearsal_and_removes_its_copy(
        tmp_path: Path, target: Path) -> None:
    nest = [f"CREATE TABLE leaf{j} (a);" for j in range(40)]
    nest.append("CREATE VIEW v0 AS " + " UNION ALL ".join(f"SELECT a FROM leaf{j}" for j in range(40)) + ";")
    nest += [f"CREATE VIEW v{i} AS SELECT a FROM v{i - 1} UNION ALL SELECT a FROM v{i - 1};" for i in range(1, 12)]
    # Level 11: the statement runs about half a minute with no progress call SQLite would make.
    folder = folder_with(tmp_path, **{"0003_nest": "\n".join(nest) + "\nCREATE TABLE flat AS SELECT a FROM v11;\n"})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    child = subprocess.Popen([sys.executable, "-m", "bookingctl", "migrate", "rehearse", "--local", str(target),
                              "--dir", str(folder), "--project-dir", str(REPO)],
                             env={**os.environ, "TMPDIR": str(scratch)}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any(scratch.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)  # the views take a fraction of that to create: inside the statement by then
        child.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, err = child.communicate(timeout=10)
        assert time.monotonic() - started < 3.0, err
        assert child.returncode != 0 and list(scratch.iterdir()) == [], err
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


# --- --r2: the newest backup of the stack's database from its bucket ---------------------------------

STAGING = {"kind": "remote", "database": "appointmentbooking-db-staging", "databaseId": "x", "bookmark": None}
BUCKET = "appointmentbooking-backups-staging"


def _uploaded(tmp_path: Path, target: Path, client: Cloudflare, label: str, source: dict[str, object],
              bind: bool = True) -> str:
    made = tmp_path / "made"
    made.mkdir(exist_ok=True)
    backup = create(LocalDatabase(target), made, label=label)
    relabel(made / f"{backup.name}.manifest.json", source, bind=bind)
    upload(Bucket(client, ACCOUNT, BUCKET), made, read_manifest(made / f"{backup.name}.manifest.json"))
    return backup.name


def test_r2_copies_the_newest_backup_of_the_stacks_database_and_binds_the_evidence_to_it(
        tmp_path: Path, target: Path, double: CloudflareDouble, client: Cloudflare,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    double.buckets[BUCKET] = {}
    older = _uploaded(tmp_path, target, client, "first", STAGING)
    newer = _uploaded(tmp_path, target, client, "second", STAGING)
    _uploaded(tmp_path, target, client, "zzz", {**STAGING, "database": "appointmentbooking-db"})  # newest, not ours
    _uploaded(tmp_path, target, client, "zzzz", STAGING, bind=False)  # ours by its word only: source not bound
    dest = tmp_path / "fresh"
    folder = folder_with(tmp_path, **{"0003_tier": "ALTER TABLE services ADD COLUMN tier TEXT;\n"})
    code, out, err = run("migrate", "rehearse", "--stack", "staging", "--r2", "--dest", str(dest), "--dir",
                         str(folder), "-f", "json")
    assert code == 0, err
    evidence = json.loads(out)
    assert (evidence["source"], evidence["database"]) == (f"backup {newer}", "appointmentbooking-db-staging")
    assert evidence["migrationsChecksum"] == migrations_checksum(folder)
    assert evidence["migrations"][0]["sha256"] == text_sha256((folder / "0003_tier.sql").read_text())
    assert sorted(p.name for p in dest.iterdir()) == [f"{newer}.manifest.json", f"{newer}.sql"]
    assert older not in out


def test_r2_refuses_a_dump_that_is_not_what_its_manifest_says_and_leaves_nothing(
        tmp_path: Path, target: Path, double: CloudflareDouble, client: Cloudflare,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    double.buckets[BUCKET] = {}
    name = _uploaded(tmp_path, target, client, "daily", STAGING)
    dump = double.buckets[BUCKET][f"{name}.sql"]
    double.buckets[BUCKET][f"{name}.sql"] = dump[:-2] + b"X\n"  # same size, another sha256
    dest = tmp_path / "fresh"
    code, _, err = run("migrate", "rehearse", "--stack", "staging", "--r2", "--dest", str(dest))
    assert code == 1 and "is not the dump its manifest describes" in err
    assert list(dest.iterdir()) == []
    double.buckets[BUCKET][f"{name}.sql"] = dump + b"-- appended\n"
    code, _out, err = run("migrate", "rehearse", "--stack", "staging", "--r2", "--dest", str(dest))
    assert code == 1 and "larger than" in err and list(dest.iterdir()) == []


def test_r2_needs_a_stack_and_no_from(target: Path) -> None:
    assert run("migrate", "rehearse", "--local", str(target), "--r2")[0] == 2
    assert run("migrate", "rehearse", "--stack", "staging", "--r2", "--from", "x")[0] == 2
