"""Tenant-scoped restore: one salon's rows back from a backup, every other salon's rows untouched.

Locally against SQLite files, and remotely through the Cloudflare API double with the strict SDK.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from cloudflare import Cloudflare

from ops.backups import backups
from ops.targets import Database, LocalDatabase, UncertainWriteError, remote_database
from ops.tenants.tenant_restore import (
    RestorePlan,
    TenantRestoreError,
    TenantRestoreInputError,
    apply_restore,
    plan_restore,
    tenant_scope,
)
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import CloudflareDouble, Fault
from tests.helpers.tenants import A, appointment_ids, mistakes_since_the_backup, others_digest, seed

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def tmpdir_(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scratch copies of backups go to the test's own temporary folder (and are swept from there)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "backups"


@pytest.fixture
def live(tmp_path: Path, dest: Path) -> tuple[Path, str]:
    """A database of two salons, its backup, then a day of mistakes and bookings: (file, backup name)."""
    path = tmp_path / "d1.sqlite"
    seed(path)
    with LocalDatabase(path) as db:
        name = backups.create(db, dest, label="daily").name
    mistakes_since_the_backup(path)
    return path, name


def plan_for(db: Database, dest: Path, name: str, slug: str = A, *, tables: list[str] | None = None,
             delete_missing: bool = False) -> RestorePlan:
    with backups.loaded(dest, name) as (manifest, scratch):
        return plan_restore(db, scratch, slug, backup_name=manifest.name, tables=tables,
                            delete_missing=delete_missing)


def counts(plan: RestorePlan, table: str) -> dict[str, int]:
    [change] = [c for c in plan.changes if c.table == table]
    return {"insert": change.insert, "update": change.update, "unchanged": change.unchanged,
            "only_now": change.only_now, "shared": change.shared}


# --- the scope, from the schema -------------------------------------------------------------

def test_the_tenant_scope_follows_foreign_keys_from_tenants_parents_first(live: tuple[Path, str]) -> None:
    conn = sqlite3.connect(live[0])
    scope = [t.name for t in tenant_scope(conn)]
    conn.close()
    assert set(scope) == {"tenants", "users", "services", "appointments", "sessions", "user_permissions",
                          "role_audit_log", "api_keys", "api_usage_logs", "audit_logs"}
    assert "permissions" not in scope and "auth_attempts" not in scope  # global tables
    for parent, child in [("tenants", "users"), ("users", "appointments"), ("services", "appointments"),
                          ("users", "sessions"), ("api_keys", "api_usage_logs")]:
        assert scope.index(parent) < scope.index(child), (parent, child, scope)


# --- local ------------------------------------------------------------------------------------

def test_a_local_tenant_restore_brings_back_a_deleted_appointments_and_leaves_b_byte_identical(
        live: tuple[Path, str], dest: Path) -> None:
    path, name = live
    before = others_digest(path)
    with LocalDatabase(path) as db:
        plan = plan_for(db, dest, name)
        assert counts(plan, "appointments") == {"insert": 4, "update": 0, "unchanged": APPOINTMENTS_KEPT,
                                                "only_now": 1, "shared": 0}
        assert counts(plan, "services")["update"] == 1 and counts(plan, "sessions")["insert"] == 1
        assert counts(plan, "role_audit_log")["shared"] == 1
        result = apply_restore(db, plan, safety_dest=dest)
    assert {"aA1", "aA2", "aA3", "aA40"} <= appointment_ids(path, "tA")
    assert "aAnew" in appointment_ids(path, "tA")  # booked after the backup: kept by default
    assert others_digest(path) == before
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT price_cents FROM services WHERE id = 'sA1'").fetchone() == (45000,)
    assert conn.execute("SELECT COUNT(*) FROM sessions WHERE id = 'ssA'").fetchone() == (1,)
    # The role change A shares with B was deleted after the backup; it is not A's alone to bring back.
    assert conn.execute("SELECT COUNT(*) FROM role_audit_log WHERE changed_by = 'uB1' AND user_id = 'uA2'"
                        ).fetchone() == (0,)
    conn.close()
    assert result.safety_backup is not None and result.safety_backup.startswith("pre-tenant-restore-")
    assert backups.verify_backup(dest, result.safety_backup).ok


APPOINTMENTS_KEPT = 150 + 1 - 4  # A's seeded appointments and the cross-salon one, less the four deleted


def test_restoring_again_changes_nothing(live: tuple[Path, str], dest: Path) -> None:
    path, name = live
    with LocalDatabase(path) as db:
        apply_restore(db, plan_for(db, dest, name), safety_dest=dest)
        again = plan_for(db, dest, name)
    assert again.writes == 0 and again.conflicts == []


def test_delete_missing_removes_only_the_tenants_rows_the_backup_lacks(live: tuple[Path, str], dest: Path) -> None:
    path, name = live
    before = others_digest(path)
    with LocalDatabase(path) as db:
        apply_restore(db, plan_for(db, dest, name, delete_missing=True), safety_dest=dest)
    assert "aAnew" not in appointment_ids(path, "tA")
    assert others_digest(path) == before


def test_tables_limits_the_restore_to_the_named_tables(live: tuple[Path, str], dest: Path) -> None:
    path, name = live
    with LocalDatabase(path) as db:
        plan = plan_for(db, dest, name, tables=["appointments"])
        assert [c.table for c in plan.changes] == ["appointments"]
        apply_restore(db, plan, safety_dest=dest)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT price_cents FROM services WHERE id = 'sA1'").fetchone() == (1,)  # not restored
    conn.close()


def test_a_backup_row_whose_key_another_tenant_holds_now_refuses_the_whole_restore(
        live: tuple[Path, str], dest: Path) -> None:
    path, name = live
    conn = sqlite3.connect(path)
    with conn:  # A's deleted appointment id reused by B since the backup
        conn.execute("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) "
                     "VALUES ('aA1', 'tB', 'sB1', 'uB2', '2026-12-05 10:00:00')")
    conn.close()
    before = others_digest(path)
    with LocalDatabase(path) as db:
        plan = plan_for(db, dest, name)
        assert any("appointments id='aA1'" in c for c in plan.conflicts), plan.conflicts
        with pytest.raises(TenantRestoreError, match="not restoring tenant instyle"):
            apply_restore(db, plan, safety_dest=dest)
    assert others_digest(path) == before
    assert "aA2" not in appointment_ids(path, "tA")  # nothing at all was written


def test_a_unique_value_another_row_took_since_is_a_conflict(live: tuple[Path, str], dest: Path) -> None:
    path, name = live
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM sessions WHERE user_id = 'uA2'")
        conn.execute("DELETE FROM role_audit_log WHERE user_id = 'uA2' OR changed_by = 'uA2'")
        conn.execute("DELETE FROM appointments WHERE user_id = 'uA2'")
        conn.execute("DELETE FROM users WHERE id = 'uA2'")
        conn.execute("INSERT INTO users (id, tenant_id, email, name) VALUES ('uB9', 'tB', 'sipho@example.co.za', 'S')")
    conn.close()
    with LocalDatabase(path) as db:
        plan = plan_for(db, dest, name)
    assert any("sipho@example.co.za" in c and "unique" in c for c in plan.conflicts), plan.conflicts


def test_a_slug_the_backup_does_not_have_is_bad_input(live: tuple[Path, str], dest: Path) -> None:
    path, name = live
    with LocalDatabase(path) as db, pytest.raises(TenantRestoreInputError, match=r"no tenant with slug 'nosuch'.*glow"):
        plan_for(db, dest, name, slug="nosuch")


def test_an_unknown_table_is_bad_input(live: tuple[Path, str], dest: Path) -> None:
    path, name = live
    with LocalDatabase(path) as db, pytest.raises(TenantRestoreInputError, match="permissions: not a table holding"):
        plan_for(db, dest, name, tables=["permissions"])


def test_a_changed_dump_is_refused_before_anything_is_read(live: tuple[Path, str], dest: Path) -> None:
    path, name = live
    with (dest / f"{name}.sql").open("a") as f:
        f.write("-- edited\n")
    with LocalDatabase(path) as db, pytest.raises(backups.BackupError, match="sha256"):
        plan_for(db, dest, name)


# --- remote, through the API double ----------------------------------------------------------

@pytest.fixture
def remote(live: tuple[Path, str], double: CloudflareDouble, client: Cloudflare) -> tuple[Database, Path, str]:
    path, name = live
    state = double.add_database("appointmentbooking-db", source=path)
    return remote_database(ACCOUNT, state.name, client=client), state.path, name


def test_a_remote_tenant_restore_brings_back_a_deleted_appointments_and_leaves_b_byte_identical(
        remote: tuple[Database, Path, str], dest: Path, double: CloudflareDouble) -> None:
    db, d1_file, name = remote
    before = others_digest(d1_file)
    plan = plan_for(db, dest, name)
    start, reads = len(double.requests), len(double.sql)
    result = apply_restore(db, plan, safety_dest=dest)
    assert {"aA1", "aA2", "aA3", "aA40", "aAnew"} <= appointment_ids(d1_file, "tA")
    assert others_digest(d1_file) == before
    # The Time Travel bookmark first, then only the write batches.
    [(method, path), *writes] = double.requests[start:]
    assert (method, path.rsplit("/", 2)[-2:]) == ("GET", ["time_travel", "bookmark"]) and result.bookmark
    assert writes and all(m == "POST" and p.endswith("/query") for m, p in writes)
    assert all(s.startswith("INSERT INTO") for s in double.sql[reads:])


def test_a_remote_dry_run_plan_reads_and_writes_nothing(
        remote: tuple[Database, Path, str], dest: Path, double: CloudflareDouble) -> None:
    db, d1_file, name = remote
    before = d1_file.read_bytes()
    plan_for(db, dest, name)
    assert d1_file.read_bytes() == before
    assert all(s.lstrip().upper().startswith(("SELECT", "PRAGMA")) for s in double.sql)


def test_a_remote_batch_whose_answer_is_lost_is_not_resent_and_says_how_to_finish(
        remote: tuple[Database, Path, str], dest: Path, double: CloudflareDouble) -> None:
    db, d1_file, name = remote
    plan = plan_for(db, dest, name)
    writes_before = len(double.sql)
    double.inject(Fault("POST", r"/query$", status=0, applied=True))
    with pytest.raises(UncertainWriteError) as info:
        apply_restore(db, plan, safety_dest=dest)
    assert len(double.sql) == writes_before + 1  # sent once, never retried by the SDK
    assert "run the same `bookingctl restore tenant` again" in str(info.value)
    assert "--bookmark" in str(info.value)
    # Running it again finishes the job (upserts are idempotent).
    apply_restore(db, plan_for(db, dest, name), safety_dest=dest)
    assert {"aA1", "aA2", "aA3", "aA40"} <= appointment_ids(d1_file, "tA")


def test_restored_rows_go_in_batches(live: tuple[Path, str], dest: Path, tmp_path: Path,
                                     double: CloudflareDouble, client: Cloudflare) -> None:
    path, name = live
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM appointments WHERE tenant_id = 'tA'")
    conn.close()
    copy = tmp_path / "copy.sqlite"
    shutil.copy(path, copy)
    state = double.add_database("appointmentbooking-db", source=copy)
    db = remote_database(ACCOUNT, state.name, client=client)
    plan = plan_for(db, dest, name)
    reads = len(double.sql)
    apply_restore(db, plan, safety_dest=dest)
    writes = double.sql[reads:]
    assert len(writes) >= 2 and all(w.count("INSERT INTO") <= 100 for w in writes)
    assert len(appointment_ids(state.path, "tA")) == 151
