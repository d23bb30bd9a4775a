"""Backups: create (local and via the D1 export API), list, verify, prune, restore."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cloudflare import Cloudflare

import ops.backups.restore
from ops.backups import backups, staging
from ops.backups import bucket as bucket_module
from ops.backups.backups import BackupError
from ops.backups.bucket import fetch_newest
from ops.backups.manifest import MANIFEST, Manifest
from ops.database import sqlload
from ops.database.migrations import apply, discover
from ops.targets import Bucket, LocalDatabase, RemoteDatabase, TargetError, remote_database
from tests.helpers import ACCOUNT, REPO
from tests.helpers.cf_double import CloudflareDouble, D1State, Fault
from tests.helpers.hostile_http import hostile

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def seed(path: Path) -> None:
    """The real schema with awkward data: quotes, newlines, unicode, NULLs, blobs, autoincrement."""
    db = LocalDatabase(path, must_exist=False)
    apply(db, discover(REPO / "migrations"))
    # One transaction: 250 autocommit INSERTs would cost an fsync each (seconds per test).
    with db.transaction() as conn:
        conn.execute("INSERT INTO tenants (id, slug, name) VALUES ('t1', 'instyle', 'InStyle Hair Boutique')")
        conn.execute("INSERT INTO users (id, tenant_id, email, name, role) VALUES "
                     "('u1', 't1', 'thandi@example.co.za', 'Thandi O''Neill', 'owner'), "
                     "('u2', 't1', 'sipho@example.co.za', 'Sipho Ndlovu 💇', 'customer')")
        conn.execute("INSERT INTO services (id, tenant_id, name, duration_minutes, price_cents) VALUES "
                     "('s1', 't1', 'Silk press; wash & style', 90, 45000)")
        conn.executemany("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at, notes) "
                         "VALUES (?, 't1', 's1', 'u2', '2026-12-01 10:00:00', ?)",
                         [(f"a{i}", None if i % 3 else f"line one\nline two; 'quoted' {i}") for i in range(250)])
        conn.execute("INSERT INTO audit_logs (action, user_agent) VALUES ('login', ?)", (b"\x00\x01binary",))
    db.close()


def rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.sqlite"
    seed(path)
    return path


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "backups"


@pytest.fixture(autouse=True)
def tmpdir_(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary folder of the test's own (verify's scratch copies go there, and verify sweeps it)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_local_backup_writes_dump_and_manifest_with_row_counts(source: Path, dest: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, reason="pre-deploy", now=NOW)
    assert manifest.name == "backup-20261126-120000"
    assert manifest.tables["appointments"] == 250 and manifest.tables["users"] == 2
    assert manifest.reason == "pre-deploy" and manifest.source["kind"] == "local"
    on_disk = json.loads((dest / "backup-20261126-120000.manifest.json").read_text())
    assert on_disk["sha256"] == manifest.sha256 and on_disk["size"] == (dest / manifest.file).stat().st_size
    assert sorted(p.name for p in dest.iterdir()) == ["backup-20261126-120000.manifest.json",
                                                      "backup-20261126-120000.sql"]


def test_dump_is_restorable_without_transaction_statements(source: Path, dest: Path, tmp_path: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    text = (dest / manifest.file).read_text()
    assert "BEGIN TRANSACTION" not in text and "\nCOMMIT;" not in text  # D1 rejects both
    assert text.startswith("PRAGMA defer_foreign_keys=TRUE;")
    restored = tmp_path / "restored.sqlite"
    backups.restore_local(dest, manifest.name, restored)
    assert rows(restored) == rows(source)


def test_failed_backup_leaves_nothing_behind(source: Path, dest: Path) -> None:
    def explode(what: str, done: int, total: int) -> None:
        if what == "appointments":
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        backups.create(LocalDatabase(source), dest, progress=explode, now=NOW)
    assert list(dest.iterdir()) == []
    assert backups.list_backups(dest) == []


def test_second_backup_in_the_same_second_gets_its_own_name(source: Path, dest: Path) -> None:
    first = backups.create(LocalDatabase(source), dest, now=NOW)
    second = backups.create(LocalDatabase(source), dest, now=NOW)
    assert first.name != second.name
    assert [m.name for m in backups.list_backups(dest)] == [first.name, second.name]


def test_a_dump_without_manifest_is_not_listed(source: Path, dest: Path) -> None:
    backups.create(LocalDatabase(source), dest, now=NOW)
    (dest / "half-written.sql").write_text("CREATE TABLE x (y);")
    assert [m.name for m in backups.list_backups(dest)] == ["backup-20261126-120000"]


def test_verify_passes_and_cleans_up_its_scratch_database(source: Path, dest: Path, tmpdir_: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    report = backups.verify_backup(dest, manifest.name)
    assert report.ok, report.checks
    assert {c["check"] for c in report.checks} >= {"sha256", "size", "integrity_check", "foreign keys",
                                                     "critical tables", "rows appointments"}
    assert list(tmpdir_.iterdir()) == []


def test_verify_by_file_path(source: Path, dest: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    assert backups.verify_backup(Path("/nonexistent"), str(dest / manifest.file)).ok


def test_verify_detects_a_changed_dump(source: Path, dest: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    path = dest / manifest.file
    path.write_text(path.read_text().replace("Silk press", "Silk presS"))
    report = backups.verify_backup(dest, manifest.name)
    assert not report.ok
    assert [c["check"] for c in report.checks if not c["ok"]] == ["sha256"]


def test_verify_detects_missing_rows(source: Path, dest: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    path = dest / manifest.file
    lines = [line for line in path.read_text().splitlines() if "'a7'" not in line]
    path.write_text("\n".join(lines) + "\n")
    report = backups.verify_backup(dest, manifest.name)
    failed = {c["check"]: c["detail"] for c in report.checks if not c["ok"]}
    assert "rows appointments" in failed and failed["rows appointments"].startswith("249")


def test_verify_detects_a_truncated_dump(source: Path, dest: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    path = dest / manifest.file
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert not backups.verify_backup(dest, manifest.name).ok


def test_verify_requires_the_critical_tables(tmp_path: Path, dest: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    conn = sqlite3.connect(empty)
    conn.execute("CREATE TABLE notes (x)")
    conn.close()
    manifest = backups.create(LocalDatabase(empty), dest, now=NOW)
    report = backups.verify_backup(dest, manifest.name)
    assert not report.ok
    assert any(c["check"] == "critical tables" and "users" in c["detail"] for c in report.checks)


def test_unknown_backup_name_is_an_error(dest: Path) -> None:
    with pytest.raises(BackupError, match="no backup 'nope'"):
        backups.verify_backup(dest, "nope")


def test_prune_deletes_only_backups_older_than_retention(source: Path, dest: Path) -> None:
    db = LocalDatabase(source)
    for days in (40, 31, 29, 1):
        backups.create(db, dest, now=NOW - dt.timedelta(days=days))
    assert [m.name for m in backups.prune(dest, 30, now=NOW, dry_run=True)] == [
        "backup-20261017-120000", "backup-20261026-120000"]
    assert len(backups.list_backups(dest)) == 4
    deleted = backups.prune(dest, 30, now=NOW)
    assert len(deleted) == 2
    assert [m.created_at[:10] for m in backups.list_backups(dest)] == ["2026-10-28", "2026-11-25"]
    assert len(list(dest.glob("*.sql"))) == 2


def test_prune_refuses_a_retention_below_one_day(dest: Path) -> None:
    with pytest.raises(BackupError, match="at least 1"):
        backups.prune(dest, 0)


def test_restore_refuses_to_overwrite_without_replace(source: Path, dest: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    with pytest.raises(BackupError, match="pass --replace"):
        backups.restore_local(dest, manifest.name, source)


def test_restore_refuses_a_backup_that_fails_verification(source: Path, dest: Path, tmp_path: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    (dest / manifest.file).write_text("garbage")
    target = tmp_path / "target.sqlite"
    with pytest.raises(BackupError, match="failed verification"):
        backups.restore_local(dest, manifest.name, target)
    assert not target.exists()


# --- remote: D1 export through the real SDK and the double -----------------------------------

@pytest.fixture
def remote(double: CloudflareDouble, lenient_client: Cloudflare, source: Path) -> RemoteDatabase:
    d1 = double.add_database("appointmentbooking-db", source=source)
    return remote_database(ACCOUNT, d1.name, client=lenient_client)


def test_remote_backup_polls_the_export_and_records_its_bookmark(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path, source: Path) -> None:
    double.export_polls_needed = 3
    manifest = backups.create(remote, dest, reason="daily", now=NOW, poll_interval=0)
    exports = [p for m, p in double.requests if m == "POST" and p.endswith("/export")]
    assert len(exports) == 3
    assert manifest.source["kind"] == "remote" and manifest.source["bookmark"]
    assert manifest.tables["appointments"] == 250
    assert backups.verify_backup(dest, manifest.name).ok


def test_failed_export_leaves_no_backup(remote: RemoteDatabase, double: CloudflareDouble,
                                        dest: Path) -> None:
    double.export_fails = True
    with pytest.raises(BackupError, match="export failed: the database was busy"):
        backups.create(remote, dest, now=NOW, poll_interval=0)
    assert list(dest.iterdir()) == []


def test_download_cut_short_leaves_no_backup(remote: RemoteDatabase, double: CloudflareDouble,
                                             dest: Path) -> None:
    double.inject(Fault("GET", r"^/__downloads/", truncate=True))
    with pytest.raises(Exception, match=r"(?i)(ended after|incomplete|peer closed)"):
        backups.create(remote, dest, now=NOW, poll_interval=0)
    assert list(dest.iterdir()) == []


def test_rate_limited_export_is_retried(remote: RemoteDatabase, double: CloudflareDouble,
                                        dest: Path) -> None:
    double.inject(Fault("POST", r"/export$", status=429))
    manifest = backups.create(remote, dest, now=NOW, poll_interval=0)
    assert backups.verify_backup(dest, manifest.name).ok


def test_verify_reports_rows_whose_foreign_keys_point_nowhere(source: Path, dest: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    path = dest / manifest.file
    original = "INSERT INTO \"services\" VALUES('s1'"
    path.write_text(path.read_text().replace(original, original.replace("s1", "s9")))
    detail = failed_checks(backups.verify_backup(dest, manifest.name))["foreign keys"]
    assert "services" in detail and "the source had none" in detail


def test_upload_puts_the_dump_then_the_manifest_in_the_r2_bucket(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path) -> None:
    double.buckets["appointmentbooking-backups"] = {}
    manifest = backups.create(remote, dest, now=NOW, poll_interval=0)
    keys = backups.upload(Bucket(remote.client, ACCOUNT, "appointmentbooking-backups"), dest, manifest)
    assert keys == [manifest.file, f"{manifest.name}.manifest.json"]
    stored = double.buckets["appointmentbooking-backups"]
    assert stored[manifest.file] == (dest / manifest.file).read_bytes()
    assert backups.list_r2(Bucket(remote.client, ACCOUNT, "appointmentbooking-backups")) == [manifest.name]


def test_a_dump_without_its_manifest_in_r2_is_not_listed(
        remote: RemoteDatabase, double: CloudflareDouble) -> None:
    double.buckets["b"] = {"half.sql": b"CREATE TABLE x (y);"}
    assert backups.list_r2(Bucket(remote.client, ACCOUNT, "b")) == []


# --- manifests are data from a folder: trusted only when consistent -----------------------------

def rewrite_manifest(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def old_copy_of(dest: Path, manifest: backups.Manifest, as_name: str, **changes: object) -> Path:
    """A second manifest, `<as_name>.manifest.json`, copied from `manifest` and made 10 years old."""
    path = dest / f"{as_name}.manifest.json"
    path.write_text((dest / f"{manifest.name}.manifest.json").read_text())
    rewrite_manifest(path, **{"created_at": "2016-11-26T12:00:00+00:00", **changes})
    return path


@pytest.mark.parametrize("changes", [
    {"name": "old", "file": "../live.sqlite"},  # the reviewer's D1: the live database next to the folder
    {"name": "old", "file": "LIVE_ABSOLUTE"},  # an absolute path
    {"name": "../live", "file": "old.sql"},  # a name that leaves the folder
])
def test_prune_never_deletes_a_file_a_manifest_names_outside_its_backup(
        source: Path, dest: Path, tmp_path: Path, changes: dict[str, str]) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    live = tmp_path / "live.sqlite"
    live.write_bytes(source.read_bytes())
    (tmp_path / "live.manifest.json").write_text("{}")
    changes = {k: str(live) if v == "LIVE_ABSOLUTE" else v for k, v in changes.items()}
    old_copy_of(dest, manifest, "old", **changes)
    warnings: list[str] = []
    deleted = backups.prune(dest, 30, now=NOW, warn=warnings.append)
    assert deleted == []
    assert live.read_bytes() == source.read_bytes() and (tmp_path / "live.manifest.json").exists()
    assert (dest / manifest.file).exists()
    assert len(warnings) == 1 and "old.manifest.json" in warnings[0], warnings


def test_prune_leaves_a_backup_whose_manifest_names_another_backups_dump(source: Path, dest: Path) -> None:
    good = backups.create(LocalDatabase(source), dest, now=NOW)
    old_copy_of(dest, good, "old", name="old", file=good.file)
    warnings: list[str] = []
    assert backups.prune(dest, 30, now=NOW, warn=warnings.append) == []
    assert (dest / good.file).exists() and backups.verify_backup(dest, good.name).ok
    assert "old.manifest.json" in warnings[0] and "old.sql" in warnings[0]


def test_prune_keeps_and_reports_an_old_dump_that_does_not_match_its_manifest(source: Path, dest: Path) -> None:
    old = backups.create(LocalDatabase(source), dest, now=NOW - dt.timedelta(days=40))
    other = backups.create(LocalDatabase(source), dest, now=NOW, label="other")
    (dest / old.file).write_bytes((dest / other.file).read_bytes() + b"-- not the same bytes\n")
    warnings: list[str] = []
    assert backups.prune(dest, 30, now=NOW, warn=warnings.append) == []
    assert (dest / old.file).exists() and (dest / f"{old.name}.manifest.json").exists()
    assert old.name in warnings[0] and "sha256" in warnings[0]


def test_prune_deletes_an_old_backup_whose_dump_matches(source: Path, dest: Path) -> None:
    old = backups.create(LocalDatabase(source), dest, now=NOW - dt.timedelta(days=40))
    assert [m.name for m in backups.prune(dest, 30, now=NOW)] == [old.name]
    assert list(dest.iterdir()) == []


def test_prune_refuses_a_retention_beyond_any_calendar(dest: Path) -> None:
    dest.mkdir()
    with pytest.raises(BackupError, match="--retention-days 99999999999: must be at least 1 and at most 36500"):
        backups.prune(dest, 99999999999, now=NOW)


MALFORMED = {
    "invalid JSON": (b'{"name": ', "not valid JSON"),
    "not UTF-8": ('{"reason": "caf\xe9"}'.encode("latin-1"), "not UTF-8"),
    "a list": (b"[]", "not a JSON object"),
}


@pytest.mark.parametrize("content, why", MALFORMED.values(), ids=MALFORMED.keys())
def test_list_skips_an_unreadable_manifest_with_a_warning(source: Path, dest: Path, content: bytes, why: str) -> None:
    good = backups.create(LocalDatabase(source), dest, now=NOW)
    (dest / "bad.manifest.json").write_bytes(content)
    warnings: list[str] = []
    assert [m.name for m in backups.list_backups(dest, warn=warnings.append)] == [good.name]
    assert len(warnings) == 1 and "bad.manifest.json" in warnings[0] and why in warnings[0], warnings


FIELD_PROBLEMS = {
    "missing field": ({"reason": None}, "missing field: reason"),
    "extra field": ({"createdAt": "2026-11-26T12:00:00+00:00"}, "unknown field: createdAt"),
    "naive created_at": ({"created_at": "2026-11-26T12:00:00"}, "created_at"),
    "non-ISO created_at": ({"created_at": "yesterday"}, "created_at"),
    "size as text": ({"size": "12"}, "size"),
    "row count as text": ({"tables": {"appointments": "250"}}, "tables"),
    "name of another file": ({"name": "other"}, "name"),
}


@pytest.mark.parametrize("changes, why", FIELD_PROBLEMS.values(), ids=FIELD_PROBLEMS.keys())
def test_a_manifest_with_a_bad_field_is_skipped_by_list_and_prune_and_refused_by_verify(
        source: Path, dest: Path, changes: dict[str, object], why: str) -> None:
    good = backups.create(LocalDatabase(source), dest, now=NOW)
    bad = backups.create(LocalDatabase(source), dest, now=NOW - dt.timedelta(days=40), label="bad")
    path = dest / f"{bad.name}.manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    warnings: list[str] = []
    assert [m.name for m in backups.list_backups(dest, warn=warnings.append)] == [good.name]
    assert backups.prune(dest, 30, now=NOW, warn=warnings.append) == []
    assert (dest / bad.file).exists()
    assert len(warnings) == 2 and all(path.name in w and why in w for w in warnings), warnings
    with pytest.raises(BackupError, match=why) as raised:
        backups.verify_backup(dest, bad.name)
    assert path.name in str(raised.value)


def test_list_of_a_folder_that_does_not_exist_names_it(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=f"no backup folder at {tmp_path / 'typo'}"):
        backups.list_backups(tmp_path / "typo")


def test_a_backup_name_that_cannot_be_a_file_name_is_refused_clearly(dest: Path) -> None:
    dest.mkdir()
    with pytest.raises(BackupError, match="not a backup name"):
        backups.verify_backup(dest, "x" * 300)


# --- a dump's SQL runs with only what a dump needs ---------------------------------------------

def tamper(dest: Path, manifest: backups.Manifest, sql: str) -> None:
    """Append `sql` to the dump and record the new size, sha256 and source binding, as someone with
    write access could."""
    path = dest / manifest.file
    data = path.read_bytes() + sql.encode()
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    rewrite_manifest(dest / f"{manifest.name}.manifest.json", size=len(data), sha256=digest,
                     source_sha256=backups.source_digest(digest, manifest.source))


def failed_checks(report: backups.VerifyReport) -> dict[str, str]:
    return {c["check"]: c["detail"] for c in report.checks if not c["ok"]}


def test_a_dump_that_attaches_another_database_is_refused_and_changes_nothing(
        source: Path, dest: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.sqlite"
    seed(victim)
    before = rows(victim)
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    tamper(dest, manifest, f"ATTACH DATABASE '{victim}' AS v;\nDELETE FROM v.appointments;\n")
    report = backups.verify_backup(dest, manifest.name)
    assert not report.ok and "ATTACH" in failed_checks(report)["restore"], report.checks
    with pytest.raises(BackupError, match="ATTACH"):
        backups.restore_local(dest, manifest.name, tmp_path / "restored.sqlite")
    assert rows(victim) == before


def test_an_endless_recursive_query_is_stopped_with_a_clear_error(source: Path, dest: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    tamper(dest, manifest, "CREATE TABLE boom AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                           "SELECT i, randomblob(1000) FROM n;\n")
    detail = failed_checks(backups.verify_backup(dest, manifest.name))["restore"]
    assert "not allowed in a backup dump" in detail and "line" in detail, detail


@pytest.mark.parametrize("sql, what", [
    ("PRAGMA writable_schema = ON;", "PRAGMA writable_schema"),
    ("DELETE FROM appointments;", "DELETE FROM appointments"),
    ("UPDATE users SET name = 'x';", "UPDATE of users"),
    ("DROP TABLE sessions;", "DROP TABLE"),
    ("INSERT INTO permissions SELECT 'p' || id, id, 'x', 'y' FROM users;", "SELECT"),
    ("COMMIT;", "transaction control"),
    ("CREATE TEMP TABLE t (x);", "temporary"),
])
def test_statements_no_dump_contains_are_refused_by_name(source: Path, dest: Path, sql: str, what: str) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    tamper(dest, manifest, sql + "\n")
    detail = failed_checks(backups.verify_backup(dest, manifest.name))["restore"]
    assert what in detail and "not allowed" in detail, detail


def test_a_load_past_its_time_limit_is_stopped(source: Path, dest: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    report = backups.verify_backup(dest, manifest.name, limits=sqlload.Limits(seconds=0, max_bytes=1 << 30))
    assert "time limit" in failed_checks(report)["restore"]


def test_a_load_past_its_size_limit_is_stopped(source: Path, dest: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    report = backups.verify_backup(dest, manifest.name, limits=sqlload.Limits(seconds=60, max_bytes=64 * 1024))
    assert "size limit" in failed_checks(report)["restore"]


def test_a_database_with_an_fts5_table_is_backed_up_verified_and_restored(
        source: Path, dest: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(source)
    with conn:
        conn.execute("CREATE VIRTUAL TABLE notes_fts USING fts5(body)")
        # Inserting into it makes FTS5 run statements of its own (shadow tables, PRAGMA data_version)
        # under the restore's authorizer; rowids are not 1..n, so they must be kept, not renumbered.
        conn.executemany("INSERT INTO notes_fts (rowid, body) VALUES (?, ?)",
                         [(i * 2, f"client {i} prefers a silk press") for i in range(5000)])
    conn.close()
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    assert manifest.tables["notes_fts"] == 5000 and "notes_fts_data" not in manifest.tables
    report = backups.verify_backup(dest, manifest.name)
    assert report.ok, failed_checks(report)
    restored = tmp_path / "restored.sqlite"
    backups.restore_local(dest, manifest.name, restored)
    found = sqlite3.connect(restored).execute("SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'client 4711'")
    assert found.fetchall() == [(9422,)]
    assert {t: r for t, r in rows(restored).items() if not t.startswith("notes_fts")} == {
        t: r for t, r in rows(source).items() if not t.startswith("notes_fts")}


# --- restoring over a database: what is already there --------------------------------------------

def writer_process(path: Path, script: str) -> subprocess.Popen[str]:
    """A second process that runs `script` against `path` (as `conn`), says "ready" and waits on stdin."""
    code = ("import sqlite3, sys\n"
            "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            f"{script}\n"
            "print('ready', flush=True)\n"
            "sys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


WRITE_ROWS = ("for i in range({n}):\n"
              "    conn.execute(\"INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at, notes) \"\n"
              "                 \"VALUES (?, 't1', 's1', 'u2', '2027-01-01', ?)\", (f'crash{{i}}', 'x' * 200))")


def crash(path: Path, script: str) -> None:
    proc = writer_process(path, script)
    proc.kill()  # SIGKILL: no rollback, no checkpoint, nothing cleaned up
    proc.wait()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_restore_over_a_database_with_a_hot_journal_gives_the_backup(source: Path, dest: Path, tmp_path: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    target = tmp_path / "crashed.sqlite"
    seed(target)
    # A writer killed in the middle of a transaction that no longer fits its cache: the database
    # file holds half-written pages and the -journal their old content (a "hot" journal).
    crash(target, "conn.execute('PRAGMA cache_size = 1')\nconn.execute('BEGIN')\n" + WRITE_ROWS.format(n=3000))
    assert Path(f"{target}-journal").stat().st_size > 0
    backups.restore_local(dest, manifest.name, target, replace=True)
    assert integrity(target) == "ok"
    assert rows(target) == rows(source)


def test_restore_over_a_database_with_a_stale_wal_gives_the_backup(source: Path, dest: Path, tmp_path: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    target = tmp_path / "crashed.sqlite"
    seed(target)
    crash(target, "conn.execute('PRAGMA journal_mode = WAL')\nconn.execute('PRAGMA wal_autocheckpoint = 0')\n"
          + WRITE_ROWS.format(n=500))  # 500 commits that live only in the -wal file
    assert Path(f"{target}-wal").stat().st_size > 0
    backups.restore_local(dest, manifest.name, target, replace=True)
    assert integrity(target) == "ok"
    assert rows(target) == rows(source)


def test_restore_refuses_while_another_process_is_writing_the_database(
        source: Path, dest: Path, tmp_path: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    target = tmp_path / "live.sqlite"
    seed(target)
    before = rows(target)
    writer = writer_process(target, "conn.execute('BEGIN IMMEDIATE')\n" + WRITE_ROWS.format(n=5))
    try:
        with pytest.raises(BackupError, match="in use by another process"):
            backups.restore_local(dest, manifest.name, target, replace=True, lock_timeout=0.5)
    finally:
        writer.communicate("")  # the writer ends without committing
    assert rows(target) == before


@pytest.mark.parametrize("make, what", [
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: os.mkfifo(p), "is a FIFO"),
    (lambda p: p.symlink_to(p.parent / "real.sqlite"), "is a symbolic link"),
])
def test_restore_refuses_a_target_that_is_not_a_regular_file(
        source: Path, dest: Path, tmp_path: Path, make: Callable[[Path], None], what: str) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    seed(tmp_path / "real.sqlite")
    before = rows(tmp_path / "real.sqlite")
    target = tmp_path / "target"
    make(target)
    with pytest.raises(TargetError, match=what):
        backups.restore_local(dest, manifest.name, target, replace=True)
    assert rows(tmp_path / "real.sqlite") == before


def test_replace_never_overwrites_a_file_that_is_not_a_sqlite_database(source: Path, dest: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    dump = dest / manifest.file
    before = dump.read_bytes()
    with pytest.raises(TargetError, match="not a SQLite database"):
        backups.restore_local(dest, manifest.name, dump, replace=True)
    assert dump.read_bytes() == before


def test_restore_reports_progress_while_checking_and_loading(source: Path, dest: Path, tmp_path: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    seen: dict[str, tuple[int, int]] = {}
    backups.restore_local(dest, manifest.name, tmp_path / "r.sqlite",
                          progress=lambda what, done, total: seen.__setitem__(what, (done, total)))
    assert seen["sha256"] == (manifest.size, manifest.size)
    assert seen["load"] == (manifest.size, manifest.size)


def test_two_backups_with_one_label_in_one_second_get_their_own_names(source: Path, dest: Path) -> None:
    # Each waits in the middle of its dump until the other is there too: both have picked a name
    # and neither has published it, the moment two scheduled runs can share.
    barrier = threading.Barrier(2, timeout=30)

    def meet(what: str, done: int, _total: int) -> None:
        if what == "appointments" and done == 0:
            barrier.wait()

    with ThreadPoolExecutor(2) as pool:
        made = list(pool.map(lambda _: backups.create(LocalDatabase(source), dest, now=NOW, progress=meet), range(2)))
    assert made[0].name != made[1].name
    assert sorted(m.name for m in backups.list_backups(dest)) == sorted(m.name for m in made)
    assert all(backups.verify_backup(dest, m.name).ok for m in made)


# --- what a killed run leaves behind ------------------------------------------------------------

def hung_run(call: str, at: str, tmpdir: Path) -> subprocess.Popen[str]:
    """A process that runs `call` (ops.backups.backups as `backups`) and stops for good when it reports `at`."""
    code = (f"import sys, time\nsys.path.insert(0, {str(REPO)!r})\n"
            "from pathlib import Path\nfrom ops.backups import backups\nfrom ops.targets import LocalDatabase\n"
            "def hang(what, done, total):\n"
            f"    if what == {at!r} and done == total:\n"
            "        print('ready', flush=True)\n"
            "        time.sleep(600)\n"
            f"{call}\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmpdir)})
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


def age(paths: list[Path]) -> None:
    """Make `paths` look as old as a leftover of a run killed hours ago."""
    old = time.time() - 2 * staging.STALE_AFTER
    for path in paths:
        os.utime(path, (old, old), follow_symlinks=False)


def test_a_restore_killed_mid_way_leaves_a_partial_the_next_restore_removes(
        source: Path, dest: Path, tmp_path: Path, tmpdir_: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    target = tmp_path / "target.sqlite"
    kill(hung_run(f"backups.restore_local(Path({str(dest)!r}), {manifest.name!r}, Path({str(target)!r}), "
                  "progress=hang)", "load", tmpdir_))
    leftovers = list(tmp_path.glob(".target.sqlite.*.partial*"))
    assert leftovers and not target.exists()
    backups.restore_local(dest, manifest.name, target)  # too recent to be sure: left alone
    assert all(p.exists() for p in leftovers)
    target.unlink()
    age(leftovers)
    backups.restore_local(dest, manifest.name, target)
    assert list(tmp_path.glob(".target.sqlite.*")) == [] and rows(target) == rows(source)


def test_a_backup_killed_mid_way_leaves_a_partial_the_next_backup_removes(
        source: Path, dest: Path, tmpdir_: Path) -> None:
    dest.mkdir()
    kill(hung_run(f"backups.create(LocalDatabase(Path({str(source)!r})), Path({str(dest)!r}), "
                  "progress=hang)", "users", tmpdir_))
    leftovers = list(dest.glob(".*.partial"))
    assert len(leftovers) == 1
    age(leftovers)
    made = backups.create(LocalDatabase(source), dest, now=NOW)
    assert sorted(p.name for p in dest.iterdir()) == [f"{made.name}.manifest.json", made.file]


def test_a_verify_killed_mid_way_leaves_a_scratch_copy_the_next_verify_removes(
        source: Path, dest: Path, tmpdir_: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    kill(hung_run(f"backups.verify_backup(Path({str(dest)!r}), {manifest.name!r}, progress=hang)", "load", tmpdir_))
    leftovers = list(tmpdir_.glob("bookingctl-verify-*"))
    assert len(leftovers) == 1 and (leftovers[0] / "scratch.sqlite").exists()
    age(leftovers)
    assert backups.verify_backup(dest, manifest.name).ok
    assert list(tmpdir_.iterdir()) == []


def test_a_partial_still_held_by_a_running_process_is_never_removed(
        source: Path, dest: Path, tmp_path: Path, tmpdir_: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    target = tmp_path / "target.sqlite"
    running = hung_run(f"backups.restore_local(Path({str(dest)!r}), {manifest.name!r}, Path({str(target)!r}), "
                       "progress=hang)", "load", tmpdir_)
    try:
        held = list(tmp_path.glob(".target.sqlite.*.partial"))
        age(held)
        backups.restore_local(dest, manifest.name, tmp_path / "other.sqlite")
        assert staging.sweep(tmp_path) == [] and all(p.exists() for p in held)
    finally:
        kill(running)


# --- a source that breaks its own foreign keys ----------------------------------------------------

@pytest.fixture
def orphan(source: Path) -> int:
    """An appointment of a user who does not exist (written with enforcement off, as SQLite allows); its rowid."""
    conn = sqlite3.connect(source)
    with conn:
        cursor = conn.execute("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) "
                              "VALUES ('orphan', 't1', 's1', 'ghost', '2026-12-02 09:00:00')")
    conn.close()
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def test_a_backup_of_a_database_breaking_its_foreign_keys_records_the_rows(
        source: Path, dest: Path, orphan: int) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    expected = {"count": 1, "examples": [{"table": "appointments", "rowid": orphan, "parent": "users"}]}
    assert manifest.foreign_key_violations == expected
    assert json.loads((dest / f"{manifest.name}.manifest.json").read_text())["foreign_key_violations"] == expected


def test_a_consistent_database_has_no_violations_in_its_manifest(source: Path, dest: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    assert "foreign_key_violations" not in json.loads((dest / f"{manifest.name}.manifest.json").read_text())


def test_such_a_backup_fails_verify_and_restores_only_when_allowed(
        source: Path, dest: Path, tmp_path: Path, orphan: int) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    detail = failed_checks(backups.verify_backup(dest, manifest.name))["foreign keys"]
    assert f"appointments rowid {orphan} -> users" in detail and "--allow-foreign-key-violations" in detail
    target = tmp_path / "restored.sqlite"
    with pytest.raises(BackupError, match="--allow-foreign-key-violations"):
        backups.restore_local(dest, manifest.name, target)
    assert not target.exists()
    backups.restore_local(dest, manifest.name, target, allow_foreign_key_violations=True)
    assert rows(target) == rows(source)


def test_a_remote_backup_records_the_violations_of_its_export(
        double: CloudflareDouble, lenient_client: Cloudflare, source: Path, dest: Path, orphan: int) -> None:
    d1 = double.add_database("appointmentbooking-db", source=source)
    manifest = backups.create(remote_database(ACCOUNT, d1.name, client=lenient_client), dest, now=NOW,
                              poll_interval=0)
    assert manifest.foreign_key_violations == {
        "count": 1, "examples": [{"table": "appointments", "rowid": orphan, "parent": "users"}]}


# --- the remote export: bounded in time and size ---------------------------------------------------

def test_an_export_that_never_completes_is_given_up_at_its_deadline(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path) -> None:
    double.export_polls_needed = 10**9
    started = time.monotonic()
    with pytest.raises(BackupError, match=r"export did not complete within 0\.5 s"):
        backups.create(remote, dest, now=NOW, poll_interval=0.05, limits=backups.ExportLimits(export_seconds=0.5))
    assert time.monotonic() - started < 10
    assert list(dest.iterdir()) == []


@contextmanager
def downloads_from(double: CloudflareDouble, url_of: Callable[[str], str]) -> Iterator[None]:
    """The export's signed URL becomes `url_of(token)`: a server on 127.0.0.1 other than the double."""
    export = double._export

    def pointing_elsewhere(db: D1State, body: dict[str, Any]) -> tuple[int, Any]:
        status, payload = export(db, body)
        result = (payload.get("result") or {}).get("result")
        if result and result.get("signed_url"):
            result["signed_url"] = url_of(result["signed_url"].split("/")[-1])
        return status, payload

    double._export = pointing_elsewhere  # type: ignore[method-assign]
    try:
        yield
    finally:
        double._export = export  # type: ignore[method-assign]


@pytest.mark.parametrize("mode, limits, message", [
    ("drip", backups.ExportLimits(download_seconds=1.0), r"did not finish within 1 s"),
    ("endless", backups.ExportLimits(download_bytes=5_000_000), r"more than 5000000 bytes"),
    ("bomb", backups.ExportLimits(download_bytes=5_000_000), r"more than 5000000 bytes"),
])
def test_a_download_past_its_limits_is_stopped_and_leaves_nothing(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path, mode: str,
        limits: backups.ExportLimits, message: str) -> None:
    started = time.monotonic()
    with hostile() as site, downloads_from(double, lambda _token: f"{site.url}/{mode}"), \
            pytest.raises(BackupError, match=message):
        backups.create(remote, dest, now=NOW, poll_interval=0, limits=limits)
    assert time.monotonic() - started < 15
    assert list(dest.iterdir()) == []


def test_a_gzip_encoded_download_of_a_genuine_dump_makes_a_backup(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path) -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # the genuine dump, compressed as a CDN may serve it
            body = gzip.compress(double.downloads[self.path.rsplit("/", 1)[-1]].read_bytes())
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with downloads_from(double, lambda token: f"http://127.0.0.1:{server.server_address[1]}/{token}"):
            manifest = backups.create(remote, dest, now=NOW, poll_interval=0)
    finally:
        server.shutdown()
        server.server_close()
    assert manifest.tables["appointments"] == 250
    assert backups.verify_backup(dest, manifest.name).ok


def test_upload_sends_only_the_backups_own_unchanged_files(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path, tmp_path: Path) -> None:
    double.buckets["b"] = {}
    manifest = backups.create(remote, dest, now=NOW, poll_interval=0)
    (tmp_path / "secret.txt").write_text("not a backup")
    with pytest.raises(BackupError, match="not this backup's dump"):
        backups.upload(Bucket(remote.client, ACCOUNT, "b"), dest, dataclasses.replace(manifest, file="../secret.txt"))
    (dest / manifest.file).write_bytes(b"-- changed after the backup was made\n")
    with pytest.raises(BackupError, match="sha256"):
        backups.upload(Bucket(remote.client, ACCOUNT, "b"), dest, manifest)
    assert double.buckets["b"] == {}


# --- what --replace overwrites is kept ------------------------------------------------------

def test_replace_keeps_a_backup_of_the_database_it_overwrites(source: Path, dest: Path, tmp_path: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    target = tmp_path / "dev.sqlite"
    seed(target)
    with sqlite3.connect(target) as conn:  # what only the overwritten database holds
        conn.execute("INSERT INTO tenants (id, slug, name) VALUES ('t9', 'late', 'Booked after the backup')")
    before = rows(target)
    done = backups.restore_local(dest, manifest.name, target, replace=True)
    assert rows(target) == rows(source)
    assert done.manifest == manifest and done.kept is not None and done.kept.backup is not None
    kept = backups.find(dest, done.kept.backup)[0]
    assert kept.reason == f"before restoring backup {manifest.name} into {target}"
    assert f"bookingctl backup restore {kept.name}" in done.kept.undo
    backups.restore_local(dest, kept.name, target, replace=True)  # the undo gives back what was there
    assert rows(target) == before


def test_replace_keeps_a_byte_copy_of_a_damaged_database(source: Path, dest: Path, tmp_path: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    target = tmp_path / "dev.sqlite"
    seed(target)
    with target.open("r+b") as f:  # the second page and on: SQLite's header intact, the schema not
        f.seek(4096)
        f.write(os.urandom(8192))
    damaged = target.read_bytes()
    listed = {m.name for m in backups.list_backups(dest)}
    done = backups.restore_local(dest, manifest.name, target, replace=True)
    assert rows(target) == rows(source) and integrity(target) == "ok"
    assert done.kept is not None and done.kept.backup is None and done.kept.copy is not None
    assert done.kept.copy.read_bytes() == damaged and done.kept.copy.parent == target.parent
    assert {m.name for m in backups.list_backups(dest)} == listed  # a byte copy is not passed off as a backup
    assert str(done.kept.copy) in done.kept.undo


def test_nothing_is_kept_for_a_new_or_empty_target_or_a_refused_restore(
        source: Path, dest: Path, tmp_path: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    assert backups.restore_local(dest, manifest.name, tmp_path / "new.sqlite").kept is None
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    assert backups.restore_local(dest, manifest.name, empty, replace=True).kept is None
    (dest / manifest.file).write_text("DROP TABLE users;\n")  # fails verification: nothing is replaced
    target = tmp_path / "dev.sqlite"
    seed(target)
    with pytest.raises(BackupError):
        backups.restore_local(dest, manifest.name, target, replace=True)
    assert [m.name for m in backups.list_backups(dest)] == [manifest.name]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("dev.sqlite")) == ["dev.sqlite"]


def test_a_manifest_binds_its_source_to_its_dump_and_an_edit_of_either_is_refused(source: Path, dest: Path) -> None:
    """Adversarial review M5: staging's backup relabelled another database's by editing its manifest."""
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    path = dest / f"{manifest.name}.manifest.json"
    assert json.loads(path.read_text())["source_sha256"] == backups.source_digest(manifest.sha256, manifest.source)
    rewrite_manifest(path, source={**manifest.source, "database": "/elsewhere/production.sqlite"})
    warned: list[str] = []
    assert backups.list_backups(dest, warn=warned.append) == []
    assert "source does not match source_sha256" in warned[0]
    with pytest.raises(backups.ManifestError, match="source was edited"):
        backups.find(dest, manifest.name)
    rewrite_manifest(path, source=manifest.source, sha256="0" * 64)  # the dump's hash changed, the source not
    with pytest.raises(backups.ManifestError, match="source_sha256"):
        backups.find(dest, manifest.name)


def test_two_restores_in_the_same_second_keep_two_copies_never_one_over_the_other(
        source: Path, dest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy's name is reserved when it is created, not looked up and then written."""
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    target = tmp_path / "dev.sqlite"
    seed(target)
    stamp = "20261204T120000Z"
    taken = target.with_name(f"{target.name}.replaced-{stamp}")
    taken.write_bytes(b"the other restore's copy")
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self: False if self == taken else real_exists(self))  # the race
    monkeypatch.setattr(ops.backups.restore, "_stamp", lambda: stamp)
    with target.open("r+b") as f:  # damaged, so the byte copy is what is kept
        f.seek(4096)
        f.write(os.urandom(8192))
    done = backups.restore_local(dest, manifest.name, target, replace=True)
    assert done.kept is not None and done.kept.copy is not None and done.kept.copy != taken
    assert taken.read_bytes() == b"the other restore's copy"


def test_a_backup_folder_that_cannot_be_written_refuses_the_restore_naming_it(
        source: Path, dest: Path, tmp_path: Path) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    target = tmp_path / "dev.sqlite"
    seed(target)
    before = target.read_bytes()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the backup folder would go\n")  # refuses even root, unlike permissions
    unwritable = blocker / "backups"
    with pytest.raises(BackupError, match=f"cannot keep the database it would replace.*{unwritable}"):
        backups.restore_local(unwritable, str(dest / f"{manifest.name}.manifest.json"), target, replace=True)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if ".replaced-" in p.name] == []


def test_a_restore_that_fails_after_the_safety_backup_names_it(
        source: Path, dest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = backups.create(LocalDatabase(source), dest, now=NOW)
    target = tmp_path / "dev.sqlite"
    seed(target)

    def fails(staged: Path, into: Path, lock_timeout: float) -> None:
        raise BackupError(f"{into} is in use by another process")

    monkeypatch.setattr(ops.backups.restore, "_copy_into", fails)
    with pytest.raises(BackupError, match=r"in use by another process.*unchanged.*pre-restore-"):
        backups.restore_local(dest, manifest.name, target, replace=True)


def test_a_bucket_listed_over_several_pages_is_read_whole_and_its_newest_backup_found(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path, tmp_path: Path) -> None:
    """R2 lists a page at a time (result_info.cursor): the newest backup sits past the first page."""
    bucket = Bucket(remote.client, ACCOUNT, "appointmentbooking-backups")
    double.buckets[bucket.name] = {f"aaa-noise-{i:03d}.txt": b"x" for i in range(45)}
    manifest = backups.create(remote, dest, now=NOW, poll_interval=0)
    backups.upload(bucket, dest, manifest)
    listed = list(remote.client.r2.buckets.objects.list(bucket.name, account_id=ACCOUNT))
    assert len(listed) == 47
    assert sum(path.endswith("/objects") for _, path in double.requests) == 3  # 20 + 20 + 7
    assert backups.list_r2(bucket) == [manifest.name]
    fetched = fetch_newest(bucket, tmp_path / "fetched", str(manifest.source["database"]))
    assert fetched.name == manifest.name


def test_the_r2_listing_refuses_a_page_size_out_of_range_or_a_cursor_it_never_issued(
        remote: RemoteDatabase, double: CloudflareDouble) -> None:
    import cloudflare

    double.buckets["b"] = {f"k{i}": b"x" for i in range(3)}
    for query in ({"per_page": 0}, {"per_page": 1001}, {"cursor": "aw=="}):
        with pytest.raises(cloudflare.BadRequestError):
            remote.client.r2.buckets.objects.list("b", account_id=ACCOUNT, **query)  # type: ignore[arg-type]
    assert [o.key for o in remote.client.r2.buckets.objects.list("b", account_id=ACCOUNT, per_page=2)] == [
        "k0", "k1", "k2"]


# --- the third hostile review of issue #25 (2026-12-05): hostile bucket contents -----------------------

HOSTILE_NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
BUCKET = "appointmentbooking-backups"


def _backup(remote: RemoteDatabase, dest: Path, bucket: Bucket, double: CloudflareDouble, *, label: str,
            created: dt.datetime, uploaded: str) -> Manifest:
    manifest = backups.create(remote, dest, now=created, poll_interval=0, label=label)
    backups.upload(bucket, dest, manifest)
    for key in (manifest.file, f"{manifest.name}{MANIFEST}"):
        double.object_modified[(BUCKET, key)] = uploaded
    return manifest


@pytest.fixture
def hostile_bucket(remote: RemoteDatabase, double: CloudflareDouble) -> Bucket:
    double.buckets[BUCKET] = {}
    return Bucket(remote.client, ACCOUNT, BUCKET)


def test_a_newest_manifest_whose_dump_is_missing_is_a_backup_error(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path, hostile_bucket: Bucket, tmp_path: Path) -> None:
    """The newest manifest names the database but its dump is gone (deleted, or never finished):
    the SDK's 404 escapes as cloudflare.NotFoundError, not as a BackupError naming the backup, and the
    older backup that is whole is never tried."""
    older = _backup(remote, dest, hostile_bucket, double, label="nightly", created=HOSTILE_NOW - dt.timedelta(days=1),
                    uploaded="2026-11-25T12:00:05Z")
    newer = _backup(remote, dest, hostile_bucket, double, label="nightly", created=HOSTILE_NOW,
                    uploaded="2026-11-26T12:00:05Z")
    del double.buckets[BUCKET][newer.file]
    try:
        fetched = fetch_newest(hostile_bucket, tmp_path / "fetched", str(older.source["database"]))
    except BackupError:
        return  # a clear refusal naming the backup would do
    except Exception as exc:  # what escapes is the finding
        pytest.fail(f"fetch_newest raised {type(exc).__module__}.{type(exc).__name__}: {exc}")
    assert fetched.name == older.name


def test_an_oversized_object_named_like_a_manifest_does_not_stop_the_fetch(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path, hostile_bucket: Bucket, tmp_path: Path) -> None:
    """Objects that are not a backup's manifest are skipped ("the bucket holds quarantine records
    too"), unless one is over 1 MB: then _get's BackupError escapes the loop and no backup is
    fetched, though a whole one is in the bucket."""
    good = _backup(remote, dest, hostile_bucket, double, label="nightly", created=HOSTILE_NOW,
                    uploaded="2026-11-26T12:00:05Z")
    junk = f"zz-record{MANIFEST}"
    double.buckets[BUCKET][junk] = b" " * (1024 * 1024 + 1)
    double.object_modified[(BUCKET, junk)] = "2026-11-26T13:00:00Z"
    fetched = fetch_newest(hostile_bucket, tmp_path / "fetched", str(good.source["database"]))
    assert fetched.name == good.name


def test_a_tie_in_upload_time_falls_to_the_newer_backup(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path, hostile_bucket: Bucket, tmp_path: Path) -> None:
    """Two manifests uploaded in the same second (an operator uploading two backups at once): the tie
    falls to the name in reverse, and a name starts with its label, so `pre-deploy-<a week ago>`
    beats `nightly-<today>`: the rehearsal runs on the older rows."""
    _backup(remote, dest, hostile_bucket, double, label="pre-deploy", created=HOSTILE_NOW - dt.timedelta(days=6),
              uploaded="2026-11-26T12:00:05Z")
    new = _backup(remote, dest, hostile_bucket, double, label="nightly", created=HOSTILE_NOW,
                    uploaded="2026-11-26T12:00:05Z")
    fetched = fetch_newest(hostile_bucket, tmp_path / "fetched", str(new.source["database"]))
    assert fetched.name == new.name, f"took {fetched.name} (created {fetched.created_at}) over {new.name}"


def test_fetching_never_overwrites_a_different_local_backup_of_the_same_name(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path, hostile_bucket: Bucket, tmp_path: Path) -> None:
    """Names are unique per folder, not per bucket: a backup made on this machine (never uploaded)
    and one in R2 can share `<label>-<second>` (two machines, one schedule; or a bucket writer). The
    fetch sees a local manifest that differs and replaces the local dump and manifest with R2's:
    the local backup is gone without a word."""
    import hashlib
    import json

    from ops.backups.manifest import source_digest

    local = backups.create(remote, dest, now=HOSTILE_NOW, poll_interval=0, label="nightly")
    local_dump = (dest / local.file).read_bytes()
    # R2's backup of the same name: other rows (here a dump of one table), bound and checked as any.
    other = b"CREATE TABLE tenants (id TEXT PRIMARY KEY);\n"
    sha = hashlib.sha256(other).hexdigest()
    theirs = dict(json.loads((dest / f"{local.name}{MANIFEST}").read_text()), sha256=sha, size=len(other),
                  tables={"tenants": 0}, source_sha256=source_digest(sha, local.source))
    double.buckets[BUCKET][local.file] = other
    double.buckets[BUCKET][f"{local.name}{MANIFEST}"] = json.dumps(theirs).encode()
    with pytest.raises(BackupError, match="already holds a backup named"):
        fetch_newest(hostile_bucket, dest, str(local.source["database"]))
    assert (dest / local.file).read_bytes() == local_dump, "the local backup's dump was replaced by R2's"


# --- the fourth hostile review of issue #25 (2026-12-05): fetching after the third round's fixes ---------

def test_a_newest_dump_larger_than_its_manifest_says_falls_back_to_the_older_backup(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path, hostile_bucket: Bucket, tmp_path: Path) -> None:
    """A dump that is missing or whose bytes differ is passed over for the next older whole backup
    (_Unusable); a dump LONGER than its manifest's size is not: _get raises a plain BackupError, which
    leaves the loop, and no backup is fetched though a whole one is in the bucket. (Two machines
    uploading `<label>-<second>`: the second's dump lands over the first's, its manifest never does.)"""
    older = _backup(remote, dest, hostile_bucket, double, label="nightly", created=HOSTILE_NOW - dt.timedelta(days=1),
                    uploaded="2026-11-25T12:00:05Z")
    newer = _backup(remote, dest, hostile_bucket, double, label="nightly", created=HOSTILE_NOW,
                    uploaded="2026-11-26T12:00:05Z")
    double.buckets[BUCKET][newer.file] += b"-- another machine's dump of the same name, longer\n"
    fetched = fetch_newest(hostile_bucket, tmp_path / "fetched", str(older.source["database"]))
    assert fetched.name == older.name


def test_a_local_copy_of_the_same_backup_missing_its_dump_is_not_called_a_different_backup(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path, hostile_bucket: Bucket) -> None:
    """The folder holds R2's newest backup's manifest, byte-equal, but its dump was removed (disk
    cleanup, a failed copy). fetch_newest refuses with "already holds a backup named X that is not the
    one in R2 ... Move the local one away": it is the same backup; R2 has the dump it lacks."""
    newest = _backup(remote, dest, hostile_bucket, double, label="nightly", created=HOSTILE_NOW,
                     uploaded="2026-11-26T12:00:05Z")
    (dest / newest.file).unlink()
    fetched = fetch_newest(hostile_bucket, dest, str(newest.source["database"]))
    assert fetched.name == newest.name
    assert (dest / newest.file).is_file()


def test_two_fetches_into_one_folder_do_not_remove_each_others_files(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path, hostile_bucket: Bucket, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fetch downloads into the one `dest/.fetching/` and removes the whole folder when it ends
    (`finally: shutil.rmtree(fetching)`): a second fetch into the same folder (a rehearsal with --r2 in
    CI and one by hand, or `backup fetch`) that ends first takes the first one's half-downloaded dump
    with it, and the first fails with a bare FileNotFoundError. Simulated in one process: the second
    fetch (of a database with no backup, so it ends at once) runs while the first fetches its dump."""
    newest = _backup(remote, dest, hostile_bucket, double, label="nightly", created=HOSTILE_NOW,
                     uploaded="2026-11-26T12:00:05Z")
    folder = tmp_path / "fetched"
    real_get = bucket_module._get

    def get(bucket: Bucket, key: str, path: Path, limit: int) -> None:
        if key == newest.file:
            with pytest.raises(BackupError):
                real_fetch(bucket, folder, "another-database")
        real_get(bucket, key, path, limit)

    real_fetch = bucket_module.fetch_newest
    monkeypatch.setattr(bucket_module, "_get", get)
    try:
        fetched = fetch_newest(hostile_bucket, folder, str(newest.source["database"]))
    except BackupError:
        return  # refused with a reason: acceptable
    except Exception as exc:
        pytest.fail(f"fetch_newest raised {type(exc).__module__}.{type(exc).__name__}: {exc}")
    assert fetched.name == newest.name


def test_a_tie_falls_to_the_time_at_the_end_of_the_name_not_a_date_in_the_label(
        remote: RemoteDatabase, double: CloudflareDouble, dest: Path, hostile_bucket: Bucket, tmp_path: Path) -> None:
    """LOW: _stamp takes the FIRST `\\d{8}-\\d{6}` of the key; a label may hold one (labels are
    [a-z0-9-], e.g. `before-20271231-000000`), so on a tie in upload time a week-old backup with such a
    label beats today's nightly."""
    _backup(remote, dest, hostile_bucket, double, label="before-20271231-000000",
            created=HOSTILE_NOW - dt.timedelta(days=6), uploaded="2026-11-26T12:00:05Z")
    new = _backup(remote, dest, hostile_bucket, double, label="nightly", created=HOSTILE_NOW,
                  uploaded="2026-11-26T12:00:05Z")
    fetched = fetch_newest(hostile_bucket, tmp_path / "fetched", str(new.source["database"]))
    assert fetched.name == new.name, f"took {fetched.name} (created {fetched.created_at}) over {new.name}"
