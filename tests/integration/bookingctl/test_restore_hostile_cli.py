"""`bookingctl restore tenant --stack` with a backup of a local file (issue #22, M5): a dev or test copy
seeded with the same ids must not reach a stack's D1 without being asked for."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ops.backups import backups
from ops.targets import LocalDatabase
from tests.helpers import sqlite_dump
from tests.helpers.cf_double import TOKEN, CloudflareDouble
from tests.helpers.tenants import seed
from tests.integration.bookingctl import test_restore_cli as base

tmpdir_ = base.tmpdir_
run = base.run


@pytest.fixture
def dev_backup(tmp_path: Path) -> tuple[Path, str]:
    """A backup of a local dev copy holding a QA booking: (backup folder, name)."""
    dev, dest = tmp_path / "dev.sqlite", tmp_path / "backups"
    seed(dev)
    conn = sqlite3.connect(dev)
    with conn:
        conn.execute("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at, notes) "
                     "VALUES ('TEST-BOOKING', 'tA', 'sA1', 'uA2', '2026-12-24 10:00:00', 'QA test booking')")
    conn.close()
    with LocalDatabase(dev) as db:
        return dest, backups.create(db, dest, label="dev").name


@pytest.fixture
def staging(tmp_path: Path, double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Staging's D1 on the API double: the same salons, without the QA booking."""
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    seed(tmp_path / "staging.sqlite")
    return double.add_database("appointmentbooking-db-staging", source=tmp_path / "staging.sqlite").path


def test_a_backup_of_a_local_file_is_refused_for_a_stack_and_nothing_is_written(
        dev_backup: tuple[Path, str], staging: Path, double: CloudflareDouble) -> None:
    dest, name = dev_backup
    before = sqlite_dump(staging)
    code, _, err = run("restore", "tenant", "instyle", "--from", name, "--dest", str(dest), "--stack", "staging",
                       "--yes")
    assert code == 2, err
    assert "dev.sqlite" in err and "--allow-local-source" in err
    assert sqlite_dump(staging) == before
    assert not [p for p in double.requests if p[1].endswith("/time_travel/bookmark")]


def test_allow_local_source_takes_the_backup_of_a_local_file(
        dev_backup: tuple[Path, str], staging: Path) -> None:
    dest, name = dev_backup
    code, out, err = run("restore", "tenant", "instyle", "--from", name, "--dest", str(dest), "--stack", "staging",
                         "--allow-local-source", "--yes", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["applied"] >= 1
    conn = sqlite3.connect(staging)
    try:
        assert conn.execute("SELECT notes FROM appointments WHERE id = 'TEST-BOOKING'").fetchone() == (
            "QA test booking",)
    finally:
        conn.close()
