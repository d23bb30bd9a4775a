"""The deployment hooks: bound to the Worker deployment, and what they do (called directly)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cloudflare import Cloudflare

from booking_shared.deploy import DeployContext, migrations_checksum
from booking_shared.tokens import DEPLOYMENT
from bookingctl.planner import Plan, run_program
from bookingctl.project import Project, load_stack
from ops import backups
from ops.hooks import DeployHookError, after_traffic, before_traffic
from ops.migrations import discover, pending
from ops.targets import remote_database
from tests.helpers import ACCOUNT, REPO
from tests.helpers import sqlite_dump as dump
from tests.helpers.cf_double import TOKEN, CloudflareDouble, D1State
from tests.helpers.http_site import Site, serving

WORKER = "appointmentbooking-api-staging"


@pytest.fixture
def d1(double: CloudflareDouble) -> D1State:
    double.add_script(WORKER, versions=2)
    return double.add_database("appointmentbooking-db-staging")


@pytest.fixture
def site() -> Iterator[Site]:
    with serving(Site()) as running_site:
        yield running_site


def context(double: CloudflareDouble, site: Site, tmp_path: Path, migrations_dir: Path) -> DeployContext:
    return DeployContext(
        stack="staging", account_id=ACCOUNT, database_name="appointmentbooking-db-staging", worker_name=WORKER,
        base_url=site.url, migrations_dir=migrations_dir, backup_dir=tmp_path / "backups", verify_deadline=0,
        client_factory=lambda: Cloudflare(api_token=TOKEN, base_url=double.base_url,
                                          _strict_response_validation=True, max_retries=1))


# --- bound in the program -------------------------------------------------------------------

def test_the_worker_deployment_carries_the_before_and_after_traffic_hooks(staging: Plan) -> None:
    deployment = staging.one(DEPLOYMENT)
    before, after = ["booking-before-traffic"], ["booking-after-traffic"]
    assert deployment.hooks == {"before_create": before, "before_update": before,
                                "after_create": after, "after_update": after}
    assert all(not r.hooks for r in staging.resources if r.type != DEPLOYMENT)


def test_a_migration_change_alone_changes_the_deployment(project: Project, staging: Plan, tmp_path: Path) -> None:
    """Adding a migration file, with no other change, gives the deployment new inputs: it is replaced,
    so the hooks (which apply the migration) run."""
    message = staging.one(DEPLOYMENT).value("annotations", "workersMessage")
    assert migrations_checksum(REPO / "migrations")[:12] in message
    # The same program and stack file, in a project whose migrations/ has one more file.
    root = tmp_path / "project"
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "worker/src/index.js"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes((REPO / name).read_bytes())
    (root / "migrations").mkdir()
    for migration in (REPO / "migrations").glob("*.sql"):
        (root / "migrations" / migration.name).write_bytes(migration.read_bytes())
    (root / "migrations" / "0999_next.sql").write_text("CREATE TABLE next (id INTEGER);")
    copy = Project(root=root, name=project.name, main=project.main)
    settings = load_stack(copy, "staging")
    replanned = run_program(copy, "staging", settings.flat, settings.secret_keys).one(DEPLOYMENT)
    assert replanned.value("annotations") != staging.one(DEPLOYMENT).value("annotations")
    assert migrations_checksum(root / "migrations")[:12] in replanned.value("annotations", "workersMessage")
    # Nothing else about the deployment changed.
    assert replanned.value("versions") == staging.one(DEPLOYMENT).value("versions")


# --- before traffic -------------------------------------------------------------------------

def test_before_traffic_bookmarks_backs_up_and_migrates(double: CloudflareDouble, d1: D1State, site: Site,
                                                        tmp_path: Path) -> None:
    record = before_traffic(context(double, site, tmp_path, REPO / "migrations"), log=lambda _: None)
    assert record.bookmark and record.migrations_applied == ["0001_initial_schema.sql"]
    [manifest] = backups.list_backups(tmp_path / "backups")
    assert manifest.name == record.backup and manifest.reason == "pre-deploy staging"
    with Cloudflare(api_token=TOKEN, base_url=double.base_url) as sdk:
        assert pending(remote_database(ACCOUNT, d1.name, client=sdk), discover(REPO / "migrations")) == []


def test_failed_migration_stops_the_deployment_and_restores(double: CloudflareDouble, d1: D1State, site: Site,
                                                            tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_ok.sql").write_text("CREATE TABLE ok (id INTEGER);")
    (folder / "0002_broken.sql").write_text("INSERT INTO missing VALUES (1);")
    before = dump(d1.path)
    with pytest.raises(DeployHookError, match=r"stopped before traffic moved.*0002_broken\.sql"):
        before_traffic(context(double, site, tmp_path, folder), log=lambda _: None)
    assert dump(d1.path) == before
    assert len(backups.list_backups(tmp_path / "backups")) == 1  # the backup was taken first
    assert not [p for m, p in double.requests if m == "POST" and p.endswith("/deployments")]


# --- after traffic --------------------------------------------------------------------------

def test_after_traffic_passes_a_healthy_deployment(double: CloudflareDouble, d1: D1State, site: Site,
                                                   tmp_path: Path) -> None:
    report = after_traffic(context(double, site, tmp_path, REPO / "migrations"), log=lambda _: None)
    assert report["ok"] is True
    assert len(double.scripts[WORKER].deployments) == 2  # no rollback


def test_failed_verification_rolls_the_worker_back_and_fails_the_update(
        double: CloudflareDouble, d1: D1State, site: Site, tmp_path: Path) -> None:
    site.health_status = 503
    site.health_body = {"status": "error", "database": {"status": "error"}}
    before = dump(d1.path)
    old, new = (v["id"] for v in double.scripts[WORKER].versions)
    with pytest.raises(DeployHookError) as info:
        after_traffic(context(double, site, tmp_path, REPO / "migrations"), log=lambda _: None)
    message = str(info.value)
    assert "api_health" in message and f"from version {new} to {old}" in message
    newest = double.scripts[WORKER].deployments[-1]
    assert newest["versions"] == [{"version_id": old, "percentage": 100.0}]
    assert dump(d1.path) == before  # the database was not touched
