"""The deployment hooks: bound to the Worker deployment, and what they do (called directly)."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloudflare import Cloudflare

from booking_shared.deploy import migrations_checksum
from booking_shared.project import Project, load_stack
from booking_shared.tokens import DEPLOYMENT
from bookingctl.planner import Plan, run_program
from ops.database.migrations import discover, pending
from ops.releases.hooks import DeployHookError, after_traffic, before_traffic
from ops.targets import remote_database
from stackconfig.deploy import DeployContext
from tests.helpers import ACCOUNT, REPO
from tests.helpers import sqlite_dump as dump
from tests.helpers.cf_double import TOKEN, CloudflareDouble, D1State, ScriptState
from tests.helpers.hostile_http import hostile, within
from tests.helpers.http_site import HEALTHY, Site, serving

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

WORKER = "appointmentbooking-api-staging"


@pytest.fixture
def d1(double: CloudflareDouble) -> D1State:
    double.add_script(WORKER, versions=2)
    return double.add_database("appointmentbooking-db-staging")


@pytest.fixture
def site() -> Iterator[Site]:
    with serving(Site()) as running_site:
        yield running_site


def context(double: CloudflareDouble, site: Site, tmp_path: Path, migrations_dir: Path, *,
            strict: bool = True) -> DeployContext:
    """The hooks' context against the double; `strict=False` for the export (its "active" status)."""
    return DeployContext(
        stack="staging", account_id=ACCOUNT, database_name="appointmentbooking-db-staging", worker_name=WORKER,
        base_url=site.url, migrations_dir=migrations_dir, backup_dir=tmp_path / "backups", verify_deadline=0,
        client_factory=lambda: Cloudflare(api_token=TOKEN, base_url=double.base_url,
                                          _strict_response_validation=strict, max_retries=1))


# --- bound in the program -------------------------------------------------------------------

def test_the_worker_deployment_carries_the_before_after_and_error_hooks(staging: Plan) -> None:
    deployment = staging.one(DEPLOYMENT)
    before, after = ["booking-before-traffic"], ["booking-after-traffic"]
    assert deployment.hooks == {"before_create": before, "before_update": before,
                                "after_create": after, "after_update": after,
                                "on_error": ["booking-deployment-failed"]}
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

def test_before_traffic_bookmarks_and_migrates_without_exporting(double: CloudflareDouble, d1: D1State, site: Site,
                                                                 tmp_path: Path) -> None:
    """By default only the Time Travel bookmark: an export would block the database's queries."""
    record = before_traffic(context(double, site, tmp_path, REPO / "migrations"), log=lambda _: None)
    assert record.bookmark and record.backup is None and record.migrations_applied == [
        m.name for m in discover(REPO / "migrations")]
    assert not [p for m, p in double.requests if p.endswith("/export")]
    with Cloudflare(api_token=TOKEN, base_url=double.base_url) as sdk:
        assert pending(remote_database(ACCOUNT, d1.name, client=sdk), discover(REPO / "migrations")) == []


def test_with_pre_deploy_export_the_dump_is_uploaded_to_the_stacks_bucket(
        double: CloudflareDouble, d1: D1State, site: Site, tmp_path: Path) -> None:
    double.buckets["appointmentbooking-backups-staging"] = {}
    ctx = dataclasses.replace(context(double, site, tmp_path, REPO / "migrations", strict=False),
                              export_bucket="appointmentbooking-backups-staging")
    record = before_traffic(ctx, log=lambda _: None)
    assert record.backup is not None
    assert set(double.buckets["appointmentbooking-backups-staging"]) == {
        f"{record.backup}.sql", f"{record.backup}.manifest.json"}


def test_a_migration_the_check_calls_unsafe_stops_the_deployment_before_anything_is_applied(
        double: CloudflareDouble, d1: D1State, site: Site, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_ok.sql").write_text("CREATE TABLE ok (id INTEGER);")
    (folder / "0002_broken.sql").write_text("INSERT INTO missing VALUES (1);")
    before = dump(d1.path)
    with pytest.raises(DeployHookError, match=r"stopped before traffic moved.*0002_broken\.sql.*apply-failed"):
        before_traffic(context(double, site, tmp_path, folder), log=lambda _: None)
    assert dump(d1.path) == before
    assert not [p for m, p in double.requests if m == "POST" and p.endswith("/deployments")]


def test_a_migration_that_fails_on_live_data_stops_the_deployment_and_is_never_restored(
        double: CloudflareDouble, d1: D1State, site: Site, tmp_path: Path) -> None:
    """The check passes (its scratch copy has no rows), D1 refuses the live data: the hook stops, and
    leaves the bookings the serving version took since its bookmark where they are."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_initial_schema.sql").write_bytes((REPO / "migrations" / "0001_initial_schema.sql").read_bytes())
    before_traffic(context(double, site, tmp_path, folder), log=lambda _: None)
    conn = sqlite3.connect(d1.path)
    conn.executemany("INSERT INTO tenants (id, slug, name) VALUES (?, ?, 'InStyle')", [("t1", "a"), ("t2", "b")])
    conn.commit()
    (folder / "0002_unique_names.sql").write_text("CREATE UNIQUE INDEX idx_tenants_name ON tenants(name);\n")
    with pytest.raises(DeployHookError, match=r"stopped before traffic moved.*0002_unique_names\.sql failed.*"
                                              r"NOT restored.*bookingctl backup restore --stack staging"):
        before_traffic(context(double, site, tmp_path, folder), log=lambda _: None)
    assert not [p for _, p in double.requests if p.endswith("/time_travel/restore")]
    assert conn.execute("SELECT COUNT(*) FROM tenants").fetchone() == (2,)


# --- after traffic --------------------------------------------------------------------------

def newest(double: CloudflareDouble) -> tuple[str, str]:
    """(deployment id, version id) of the deployment serving now: the one `pulumi up` just created."""
    deployment = double.scripts[WORKER].deployments[-1]
    return deployment["id"], deployment["versions"][0]["version_id"]


def test_after_traffic_passes_when_the_new_version_answers_healthy(double: CloudflareDouble, d1: D1State,
                                                                  site: Site, tmp_path: Path) -> None:
    deployment_id, version = newest(double)
    site.health_body = {**HEALTHY, "version": version}
    report = after_traffic(context(double, site, tmp_path, REPO / "migrations"), deployment_id=deployment_id,
                           version_id=version, log=lambda _: None)
    assert report["ok"] is True
    assert len(double.scripts[WORKER].deployments) == 2  # no rollback


def test_a_healthy_answer_from_the_old_version_does_not_pass_verification(
        double: CloudflareDouble, d1: D1State, site: Site, tmp_path: Path) -> None:
    """While the deployment propagates the old code may still answer; it proves nothing about the new one."""
    deployment_id, version = newest(double)
    old = double.scripts[WORKER].versions[0]["id"]
    site.health_body = {**HEALTHY, "version": old}
    with pytest.raises(DeployHookError, match=f"waiting for version {version}"):
        after_traffic(context(double, site, tmp_path, REPO / "migrations"), deployment_id=deployment_id,
                      version_id=version, log=lambda _: None)


def test_the_first_deployment_is_left_to_verify_after_the_update(double: CloudflareDouble, d1: D1State,
                                                                 site: Site, tmp_path: Path) -> None:
    """A fresh stack: no earlier deployment to roll back to, and the routes come after this hook."""
    double.scripts[WORKER] = ScriptState()
    double.add_script(WORKER, versions=1)
    deployment_id, version = newest(double)
    site.health_status = 404  # no route serves the Worker yet
    lines: list[str] = []
    report = after_traffic(context(double, site, tmp_path, REPO / "migrations"), deployment_id=deployment_id,
                           version_id=version, log=lines.append)
    assert report == {"firstDeployment": True, "verified": False}
    assert site.hits == [] and len(double.scripts[WORKER].deployments) == 1
    assert any("bookingctl verify --stack staging" in line for line in lines)


def test_failed_verification_rolls_the_worker_back_and_fails_the_update(
        double: CloudflareDouble, d1: D1State, site: Site, tmp_path: Path) -> None:
    site.health_status = 503
    site.health_body = {"status": "error", "database": {"status": "error"}}
    before = dump(d1.path)
    deployment_id, new = newest(double)
    old = double.scripts[WORKER].versions[0]["id"]
    with pytest.raises(DeployHookError) as info:
        after_traffic(context(double, site, tmp_path, REPO / "migrations"), deployment_id=deployment_id,
                      version_id=new, log=lambda _: None)
    message = str(info.value)
    assert "api_health" in message and f"version {new} failed" in message and f"back to version {old}" in message
    assert "does NOT verify healthy either" in message  # the site still fails after the rollback
    assert double.scripts[WORKER].deployments[-1]["versions"] == [{"version_id": old, "percentage": 100.0}]
    assert dump(d1.path) == before  # the database was not touched


def test_the_hook_never_forces_a_rollback_past_changed_secrets(double: CloudflareDouble, d1: D1State, site: Site,
                                                              tmp_path: Path) -> None:
    double.scripts[WORKER] = ScriptState()
    double.add_script(WORKER, versions=2, stale_secrets_before=2)
    deployment_id, new = newest(double)
    site.health_status = 503
    with pytest.raises(DeployHookError, match=r"rollback was refused.*10220.*still serves"):
        after_traffic(context(double, site, tmp_path, REPO / "migrations"), deployment_id=deployment_id,
                      version_id=new, log=lambda _: None)
    assert len(double.scripts[WORKER].deployments) == 2  # nothing was forced


# --- a hostile site can neither hang the update nor skip the rollback ----------------------------

@pytest.mark.parametrize(("behaviour", "why"), [
    ("drip", "timed out: no complete answer within 1 s"),
    ("deep", "body is not a usable JSON object (nested deeper than 32 levels)"),
])
def test_after_traffic_on_a_hostile_site_rolls_back_within_its_deadline(
        double: CloudflareDouble, d1: D1State, site: Site, tmp_path: Path, behaviour: str, why: str) -> None:
    deployment_id, new = newest(double)
    old = double.scripts[WORKER].versions[0]["id"]
    with hostile() as server:
        server.drip_length, server.depth = 1000, 5_000
        ctx = dataclasses.replace(context(double, site, tmp_path, REPO / "migrations"),
                                  base_url=f"{server.url}/{behaviour}", verify_deadline=1)

        def update() -> DeployHookError:
            with pytest.raises(DeployHookError) as info:
                after_traffic(ctx, deployment_id=deployment_id, version_id=new, log=lambda _: None)
            return info.value

        error, elapsed = within(60, update)
    assert why in str(error) and f"back to version {old}" in str(error)
    assert double.scripts[WORKER].deployments[-1]["versions"] == [{"version_id": old, "percentage": 100.0}]
    # Two verifications (before and after the rollback), each of two requests cut at 1 s, plus API calls.
    assert elapsed < 2 * 2 * 1 + 4, elapsed


def test_a_migration_only_deploy_that_fails_is_never_rolled_back_to_older_code(
        double: CloudflareDouble, d1: D1State, site: Site, tmp_path: Path) -> None:
    """The deployment before this one served the same version: the change was a migration (or a
    redeploy), an older version never ran against the new schema, so the Worker is left alone."""
    _, v2 = (v["id"] for v in double.scripts[WORKER].versions)
    script = double.scripts[WORKER]
    script.deployments.append(double._deployment([(v2, 100.0)], "api"))  # the migration-only redeploy
    deployment_id = script.deployments[-1]["id"]
    site.health_status = 503
    with pytest.raises(DeployHookError, match=r"served the same version.*cannot undo it.*bookmark"):
        after_traffic(context(double, site, tmp_path, REPO / "migrations"), deployment_id=deployment_id,
                      version_id=v2, log=lambda _: None)
    assert len(script.deployments) == 3 and script.deployments[-1]["versions"][0]["version_id"] == v2


def test_the_rollback_goes_to_exactly_the_version_that_served_before(
        double: CloudflareDouble, d1: D1State, site: Site, tmp_path: Path) -> None:
    double.scripts[WORKER] = ScriptState()
    double.add_script(WORKER, versions=3)  # v1, v2, v3 deployed in turn; v3 is new and fails
    _, v2, v3 = (v["id"] for v in double.scripts[WORKER].versions)
    deployment_id, _ = newest(double)
    site.health_status = 503
    with pytest.raises(DeployHookError, match=f"back to version {v2}"):
        after_traffic(context(double, site, tmp_path, REPO / "migrations"), deployment_id=deployment_id,
                      version_id=v3, log=lambda _: None)


def test_the_deploy_hook_applies_and_records_migrations_where_the_projects_wrangler_file_says(
        double: CloudflareDouble, d1: D1State, site: Site, tmp_path: Path) -> None:
    """`migrations_dir`, `migrations_pattern` and `migrations_table` of a wrangler file are read by the
    hook's context as by `bookingctl migrate` (issue 21 point 3): same files, same tracking table."""
    from bookingctl.options import load_stack_config

    root = tmp_path / "project"
    for migration in (REPO / "migrations").glob("*.sql"):
        # wrangler's nested layout: a numbered folder per migration, the file inside it.
        (root / "db" / migration.stem).mkdir(parents=True)
        (root / "db" / migration.stem / "up.sql").write_bytes(migration.read_bytes())
    (root / "wrangler.jsonc").write_text('{"name": "x", "d1_databases": [{"binding": "DB", "database_name": "d",'
                                         ' "database_id": "x", "migrations_dir": "db",'
                                         ' "migrations_pattern": "db/*/up.sql",'
                                         ' "migrations_table": "booking_migrations"}]}')
    found = DeployContext.of(load_stack_config("staging", REPO), root)
    assert (found.migrations_dir, found.migrations_pattern, found.migrations_table) == (
        root / "db", "*/up.sql", "booking_migrations")
    ctx = dataclasses.replace(context(double, site, tmp_path, found.migrations_dir),
                              migrations_pattern=found.migrations_pattern, migrations_table=found.migrations_table)
    record = before_traffic(ctx, log=lambda _: None)
    assert record.migrations_applied == [f"{m.stem}/up.sql" for m in sorted((REPO / "migrations").glob("*.sql"))]
    with sqlite3.connect(d1.path) as conn:
        recorded = [r[0] for r in conn.execute("SELECT name FROM booking_migrations ORDER BY id")]
        assert recorded == record.migrations_applied
        assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'd1_migrations'").fetchone()[0] == 0
