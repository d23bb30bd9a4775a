"""Tenant-scoped restore under awkward schemas and backups: a plan that passes must not fail mid-write,
and `delete_missing` never erases what happened since the backup (issue #22: M5, M8)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from cloudflare import Cloudflare

from ops.backups import backups
from ops.targets import LocalDatabase, remote_database
from ops.tenants.tenant_restore import TenantRestoreInputError, apply_restore, plan_restore
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.tenants import appointment_ids, others_digest, seed
from tests.integration.ops import test_tenant_restore as base

# Scratch copies in the test's folder, and the backup folder, as the other restore tests have them.
tmpdir_ = base.tmpdir_
dest = base.dest
plan_for, counts = base.plan_for, base.counts


def execute(path: Path, *sql: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        for statement in sql:
            conn.execute(statement)
    conn.close()


def backed_up(path: Path, dest: Path) -> str:
    with LocalDatabase(path) as db:
        return backups.create(db, dest, label="daily").name


# --- M5: rows of a table that references itself -------------------------------------------------

@pytest.fixture
def rescheduled(tmp_path: Path, dest: Path) -> tuple[Path, str]:
    """A later migration's self-reference: aA10 was rescheduled from aA9 (which sorts after it) and aA9
    from aA100. All three are lost after the backup."""
    path = tmp_path / "d1.sqlite"
    seed(path)
    execute(path, "ALTER TABLE appointments ADD COLUMN rescheduled_from TEXT REFERENCES appointments(id)",
            "UPDATE appointments SET rescheduled_from = 'aA9' WHERE id = 'aA10'",
            "UPDATE appointments SET rescheduled_from = 'aA100' WHERE id = 'aA9'")
    name = backed_up(path, dest)
    execute(path, "PRAGMA foreign_keys = ON", "DELETE FROM appointments WHERE id IN ('aA10', 'aA9', 'aA100')")
    return path, name


def test_rows_referencing_rows_of_their_own_table_are_written_after_them(
        rescheduled: tuple[Path, str], dest: Path) -> None:
    path, name = rescheduled
    before = others_digest(path)
    with LocalDatabase(path) as db:
        plan = plan_for(db, dest, name)
        assert plan.conflicts == []
        apply_restore(db, plan, safety_dest=dest)
    assert {"aA10", "aA9", "aA100"} <= appointment_ids(path, "tA")
    assert others_digest(path) == before


def test_deleting_rows_that_reference_each_other_in_one_table_deletes_the_referencing_ones_first(
        tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "d1.sqlite"
    seed(path)
    execute(path, "ALTER TABLE appointments ADD COLUMN rescheduled_from TEXT REFERENCES appointments(id)")
    name = backed_up(path, dest)
    # Since the backup: aN1, then aN2 rescheduled from it (aN2 sorts after aN1, so key order deletes aN1 first).
    execute(path, "INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) "
                  "VALUES ('aN1', 'tA', 'sA1', 'uA2', '2026-12-10 10:00:00')",
            "INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at, rescheduled_from) "
            "VALUES ('aN2', 'tA', 'sA1', 'uA2', '2026-12-11 10:00:00', 'aN1')")
    with LocalDatabase(path) as db:
        plan = plan_for(db, dest, name, delete_missing=True)
        assert plan.conflicts == []
        apply_restore(db, plan, safety_dest=dest)
    assert not {"aN1", "aN2"} & appointment_ids(path, "tA")


def test_rows_of_one_table_that_reference_each_other_in_a_cycle_are_refused_in_the_plan(
        tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "d1.sqlite"
    seed(path)
    execute(path, "ALTER TABLE appointments ADD COLUMN rescheduled_from TEXT REFERENCES appointments(id)",
            "UPDATE appointments SET rescheduled_from = 'aA9' WHERE id = 'aA10'",
            "UPDATE appointments SET rescheduled_from = 'aA10' WHERE id = 'aA9'")
    name = backed_up(path, dest)
    execute(path, "DELETE FROM appointments WHERE id IN ('aA10', 'aA9')")
    with LocalDatabase(path) as db:
        plan = plan_for(db, dest, name)
    assert any("aA10" in c and "aA9" in c and "cycle" in c for c in plan.conflicts), plan.conflicts


# --- M5: D1's statement limit ------------------------------------------------------------------

def test_a_row_too_long_for_one_d1_statement_is_refused_before_anything_is_written(
        tmp_path: Path, dest: Path, double: CloudflareDouble, client: Cloudflare) -> None:
    path = tmp_path / "d1.sqlite"
    seed(path)
    # 300 KB of notes: D1 stores rows up to 2 MB, but takes statements of 100 KB at most.
    execute(path, "UPDATE appointments SET notes = printf('%.300000c', 'x') WHERE id = 'aA5'")
    name = backed_up(path, dest)
    execute(path, "DELETE FROM appointments WHERE id = 'aA5'")
    copy = tmp_path / "remote.sqlite"
    shutil.copy(path, copy)
    state = double.add_database("appointmentbooking-db", source=copy)
    db = remote_database(ACCOUNT, state.name, client=client)
    plan = plan_for(db, dest, name)
    [conflict] = [c for c in plan.conflicts if "aA5" in c]
    assert "100,000" in conflict and "appointments" in conflict
    assert all(s.lstrip().upper().startswith(("SELECT", "PRAGMA")) for s in double.sql)
    # The same backup into a local file (no D1 limit) restores it.
    with LocalDatabase(path) as local:
        apply_restore(local, plan_for(local, dest, name), safety_dest=dest)
    assert "aA5" in appointment_ids(path, "tA")


# --- M5: where the backup was taken ------------------------------------------------------------

def test_a_backup_of_a_local_file_is_refused_for_a_stacks_d1_unless_allowed(
        tmp_path: Path, dest: Path, double: CloudflareDouble, client: Cloudflare) -> None:
    dev = tmp_path / "dev.sqlite"
    seed(dev)
    execute(dev, "INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at, notes) "
                 "VALUES ('TEST-BOOKING', 'tA', 'sA1', 'uA2', '2026-12-24 10:00:00', 'QA test booking')")
    name = backed_up(dev, dest)
    live = tmp_path / "live.sqlite"
    seed(live)
    state = double.add_database("appointmentbooking-db", source=live)
    db = remote_database(ACCOUNT, state.name, client=client)
    with backups.loaded(dest, name) as (manifest, scratch), pytest.raises(TenantRestoreInputError) as info:
        plan_restore(db, scratch, "instyle", backup_name=manifest.name, source=manifest.source)
    assert str(dev) in str(info.value) and "--allow-local-source" in str(info.value)
    with backups.loaded(dest, name) as (manifest, scratch):
        plan = plan_restore(db, scratch, "instyle", backup_name=manifest.name, source=manifest.source,
                            allow_local_source=True)
    assert plan.conflicts == [] and counts(plan, "appointments")["insert"] == 1


# --- M8: logs are never deleted ------------------------------------------------------------------

def test_delete_missing_keeps_the_log_rows_written_since_the_backup(tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "d1.sqlite"
    seed(path)
    name = backed_up(path, dest)
    execute(path, "INSERT INTO audit_logs (tenant_id, action) VALUES ('tA', 'tenant.removed (forced): owner asked')",
            "INSERT INTO role_audit_log (user_id, changed_by, action) VALUES ('uA2', 'uA1', 'elevate to admin')",
            "INSERT INTO api_usage_logs (api_key_id, endpoint) VALUES ('kA', '/api/export')",
            "INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) "
            "VALUES ('aAnew', 'tA', 'sA1', 'uA2', '2026-12-09 10:00:00')")
    with LocalDatabase(path) as db:
        plan = plan_for(db, dest, name, delete_missing=True)
        assert plan.conflicts == []
        apply_restore(db, plan, safety_dest=dest)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM audit_logs WHERE action LIKE 'tenant.removed%'").fetchone() == (1,)
        assert conn.execute("SELECT COUNT(*) FROM role_audit_log WHERE action = 'elevate to admin'").fetchone() == (1,)
        assert conn.execute("SELECT COUNT(*) FROM api_usage_logs WHERE endpoint = '/api/export'").fetchone() == (1,)
    finally:
        conn.close()
    assert "aAnew" not in appointment_ids(path, "tA")  # what is not a log still goes
    shown = {t["table"]: t for t in plan.to_dict()["tables"]}
    assert shown["audit_logs"]["keep"] == 1 and "delete" not in shown["audit_logs"]
    assert shown["appointments"]["delete"] == 1
