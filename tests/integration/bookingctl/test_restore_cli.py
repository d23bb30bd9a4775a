"""`bookingctl restore tenant` end to end on local files: preview, dry run, restore, bad input."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from ops.backups import backups
from ops.targets import LocalDatabase
from tests.helpers import REPO, sqlite_dump
from tests.helpers.backups import relabel
from tests.helpers.cf_double import TOKEN, CloudflareDouble
from tests.helpers.tenants import appointment_ids, mistakes_since_the_backup, others_digest, seed

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project-dir", str(REPO)])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def tmpdir_(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


@pytest.fixture
def live(tmp_path: Path) -> tuple[Path, Path, str]:
    """(database, backup folder, backup name): two salons backed up, then a day of mistakes."""
    path, dest = tmp_path / "d1.sqlite", tmp_path / "backups"
    seed(path)
    with LocalDatabase(path) as db:
        name = backups.create(db, dest, label="daily").name
    mistakes_since_the_backup(path)
    return path, dest, name


def test_dry_run_previews_the_changes_and_writes_nothing(live: tuple[Path, Path, str]) -> None:
    path, dest, name = live
    before = sqlite_dump(path)
    code, out, err = run("restore", "tenant", "instyle", "--from", name, "--dest", str(dest), "--local", str(path),
                         "--dry-run", "-f", "json")
    assert code == 0, err
    plan = json.loads(out)
    [appointments] = [t for t in plan["tables"] if t["table"] == "appointments"]
    assert appointments["insert"] == 4 and appointments["keep"] == 1
    assert plan["writes"] == 6 and plan["conflicts"] == []
    assert sqlite_dump(path) == before
    assert sorted(p.name for p in dest.iterdir() if p.name.startswith("pre-tenant")) == []  # no safety backup either
    assert "nothing was written" in err


def test_restore_brings_tenant_a_back_and_names_the_safety_backup(live: tuple[Path, Path, str]) -> None:
    path, dest, name = live
    others = others_digest(path)
    code, out, err = run("restore", "tenant", "instyle", "--from", name, "--dest", str(dest), "--local", str(path),
                         "--yes")
    assert code == 0, err
    assert "appointments" in out and "restored tenant instyle" in err and "safety backup before it: " \
        "pre-tenant-restore-" in err
    assert {"aA1", "aA2", "aA3", "aA40", "aAnew"} <= appointment_ids(path, "tA")
    assert others_digest(path) == others


def test_a_bad_slug_exits_2_with_one_error_line_and_writes_nothing(live: tuple[Path, Path, str]) -> None:
    """The CLI's side of the restore's input checks. A slug or table the backup lacks is the same
    TenantRestoreInputError, asserted on the operation (tests/integration/ops/test_tenant_restore.py)."""
    path, dest, name = live
    before = sqlite_dump(path)
    code, _, err = run("restore", "tenant", "NoSuch", "--from", name, "--dest", str(dest), "--local", str(path),
                       "--yes")
    assert code == 2 and err.startswith("error: ") and "tenant slug 'NoSuch'" in err, (code, err)
    assert sqlite_dump(path) == before


def test_an_unknown_backup_exits_2(live: tuple[Path, Path, str]) -> None:
    path, dest, _ = live
    code, _, err = run("restore", "tenant", "instyle", "--from", "backup-19990101-000000", "--dest", str(dest),
                       "--local", str(path), "--yes")
    assert code == 2 and "no backup 'backup-19990101-000000'" in err, (code, err)


def test_a_conflict_exits_1_after_the_preview_and_writes_nothing(live: tuple[Path, Path, str]) -> None:
    path, dest, name = live
    import sqlite3

    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) "
                     "VALUES ('aA1', 'tB', 'sB1', 'uB2', '2026-12-05 10:00:00')")
    conn.close()
    before = sqlite_dump(path)
    code, out, err = run("restore", "tenant", "instyle", "--from", name, "--dest", str(dest), "--local", str(path),
                         "--yes")
    assert code == 1 and "nothing was written" in err and "aA1" in err, (code, err)
    assert "appointments" in out  # the preview was shown
    assert sqlite_dump(path) == before


def test_a_backup_of_another_stacks_database_is_refused_before_anything_is_written(
        live: tuple[Path, Path, str], double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    path, dest, name = live
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    production = double.add_database("appointmentbooking-db", source=path)  # Pulumi.production.yaml's D1
    # The backup was taken of staging's D1, as `backup create --stack staging` records it.
    relabel(dest / f"{name}.manifest.json", {"kind": "remote", "database": "appointmentbooking-db-staging",
                                              "databaseId": "0" * 32, "bookmark": None})
    before = sqlite_dump(production.path)
    code, _, err = run("restore", "tenant", "instyle", "--from", name, "--dest", str(dest), "--stack", "production",
                       "--yes")
    assert code == 2, err
    assert "appointmentbooking-db-staging" in err and "not of appointmentbooking-db," in err
    assert "backup list --stack production" in err
    assert sqlite_dump(production.path) == before
    assert not [p for p in double.requests if p[1].endswith("/time_travel/bookmark")]


@pytest.mark.parametrize(("how", "says"), [
    ("edited", "source does not match source_sha256"),
    ("unbound", "does not bind its source to its dump"),
    ("nameless", "names no source.database"),
])
def test_a_backup_whose_source_cannot_be_trusted_is_refused_before_anything_is_written(
        live: tuple[Path, Path, str], double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch,
        how: str, says: str) -> None:
    """Staging's backup relabelled production's by editing the manifest (adversarial review M5, case 10),
    a manifest without the binding, and one naming no database, all into production's D1."""
    path, dest, name = live
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    production = double.add_database("appointmentbooking-db", source=path)
    manifest = dest / f"{name}.manifest.json"
    staging = {"kind": "remote", "database": "appointmentbooking-db-staging", "databaseId": "0" * 32, "bookmark": None}
    relabel(manifest, staging)
    if how == "edited":
        data = json.loads(manifest.read_text())
        data["source"]["database"] = "appointmentbooking-db"
        manifest.write_text(json.dumps(data))
    else:
        relabel(manifest, {**staging, "database": "appointmentbooking-db" if how == "unbound" else None},
                bind=how == "nameless")
    before = sqlite_dump(production.path)
    code, _, err = run("restore", "tenant", "instyle", "--from", name, "--dest", str(dest), "--stack", "production",
                       "--dry-run")
    assert code in (1, 2) and says in err, (code, err)
    assert sqlite_dump(production.path) == before
