"""Rollback-safe migrations against the API double: the remote check, overrides, the hook's gate, and
a failed migration that never rewinds the bookings written while it ran."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloudflare import Cloudflare

from booking_shared.migration_files import text_sha256
from ops.database.migration_check import check_local, check_remote
from ops.database.migrations import UNSAFE_TABLE, MigrationError, Override, apply, discover, pending
from ops.releases.gate import own_queries
from ops.releases.hooks import DeployHookError, before_traffic
from ops.targets import RemoteDatabase, remote_database
from stackconfig.deploy import DeployContext
from tests.helpers import ACCOUNT, REPO
from tests.helpers.cf_double import TOKEN, CloudflareDouble, D1State
from tests.helpers.http_site import Site, serving
from tests.helpers.migrations import folder_with

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

DROP_AUTH = "-- auth attempts move to the security service\nDROP TABLE auth_attempts;\n"


@pytest.fixture
def d1(double: CloudflareDouble) -> D1State:
    return double.add_database("appointmentbooking-db-staging")


@pytest.fixture
def db(client: Cloudflare, d1: D1State) -> RemoteDatabase:
    database = remote_database(ACCOUNT, d1.name, client=client, stack="staging")
    apply(database, discover(REPO / "migrations"))
    return database



def test_the_remote_check_reads_only_and_judges_as_the_local_one(
        db: RemoteDatabase, d1: D1State, double: CloudflareDouble, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_add": "ALTER TABLE tenants ADD COLUMN plan TEXT;\n",
                                      "0003_drop_auth": DROP_AUTH})
    before, requests = d1.path.read_bytes(), len(double.requests)
    remote = check_remote(db, discover(folder, strict=False), own_queries())
    new = double.sql[-(len(double.requests) - requests):]
    assert new and all(sql.lstrip().upper().startswith("SELECT") for sql in new)
    assert not [p for _, p in double.requests[requests:] if "time_travel" in p]
    assert d1.path.read_bytes() == before
    local = check_local(d1.path, discover(folder, strict=False), own_queries())
    assert remote.to_dict()["migrations"] == local.to_dict()["migrations"]
    assert remote.verdict == "unsafe" and [m.cls for m in remote.migrations] == ["expand", "contract"]
    [broken, *_] = [f for f in remote.migrations[1].findings if f.rule == "serving-query-breaks"]
    assert broken.line == 2 and "no such table: auth_attempts" in broken.message


def test_an_override_is_recorded_in_the_same_request_as_its_migration(
        db: RemoteDatabase, d1: D1State, double: CloudflareDouble, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_drop_auth": DROP_AUTH})
    override = Override("auth attempts moved to the security service in release 41", "serving-query-breaks ...",
                        "bookingctl migrate apply --allow-unsafe")
    apply(db, discover(folder), overrides={"0002_drop_auth.sql": override})
    [request] = [sql for sql in double.sql if "DROP TABLE auth_attempts" in sql]
    assert "INSERT INTO d1_migrations" in request and f"INSERT INTO {UNSAFE_TABLE}" in request
    row = sqlite3.connect(d1.path).execute(f"SELECT name, reason, approved_via FROM {UNSAFE_TABLE}").fetchone()
    assert row == ("0002_drop_auth.sql", override.reason, override.approved_via)


class Writer:
    """The serving version, taking bookings through D1's API while a migration runs."""

    def __init__(self, db: RemoteDatabase) -> None:
        self.db, self.written, self.stop = db, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            booking = f"a{len(self.written)}"
            self.db.query("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) "
                          "VALUES (?, 't1', 's1', 'u1', '2026-12-01 10:00:00')", [booking])
            self.written.append(booking)  # only once D1 answered: a booking the customer was told about

    def wait_for(self, count: int) -> None:
        target = len(self.written) + count
        while len(self.written) < target and self.thread.is_alive():
            self.stop.wait(0.005)


@pytest.fixture
def writer(client: Cloudflare, d1: D1State, db: RemoteDatabase) -> Iterator[Writer]:
    # The bookings' tenant, service and customer: D1 enforces foreign keys on every query.
    db.execute("INSERT INTO tenants (id, slug, name) VALUES ('t1', 't1', 'Salon');"
               "INSERT INTO services (id, tenant_id, name, duration_minutes) VALUES ('s1', 't1', 'Cut', 30);"
               "INSERT INTO users (id, tenant_id, email, name) VALUES ('u1', 't1', 'u1@example.co.za', 'U');")
    with Cloudflare(api_token=TOKEN, base_url=client.base_url, max_retries=0) as own:
        running = Writer(RemoteDatabase(own, ACCOUNT, d1.uuid, d1.name))
        running.thread.start()
        yield running
        running.stop.set()
        running.thread.join(5)


def test_a_failed_migration_loses_no_booking_written_while_it_ran(
        db: RemoteDatabase, d1: D1State, writer: Writer, tmp_path: Path) -> None:
    writer.wait_for(3)
    folder = folder_with(tmp_path, **{
        "0002_loyalty": "CREATE TABLE loyalty (user_id TEXT);\n",
        "0003_broken": "ALTER TABLE appointments ADD COLUMN reminder TEXT;\nINSERT INTO nope VALUES (1);\n"})

    def log(line: str) -> None:
        if "applying 0003" in line:
            writer.wait_for(5)  # bookings land between the bookmark and the failure

    with pytest.raises(MigrationError) as info:
        apply(db, discover(folder), log=log)
    writer.wait_for(2)
    writer.stop.set()
    writer.thread.join(5)
    stored = {r[0] for r in sqlite3.connect(d1.path).execute("SELECT id FROM appointments")}
    assert set(writer.written) <= stored and len(writer.written) >= 10
    message = str(info.value)
    assert "was NOT restored" in message and "row(s) by appointments.created_at" in message
    assert f"bookingctl backup restore --stack staging --bookmark {message.split('bookmark ')[1].split(';')[0]}" \
        in message
    assert [m.name for m in pending(db, discover(folder))] == ["0003_broken.sql"]


# --- the deploy hook ------------------------------------------------------------------------------

@pytest.fixture
def site() -> Iterator[Site]:
    with serving(Site()) as running_site:
        yield running_site


def context(double: CloudflareDouble, site: Site, tmp_path: Path, folder: Path) -> DeployContext:
    return DeployContext(
        stack="staging", account_id=ACCOUNT, database_name="appointmentbooking-db-staging",
        worker_name="appointmentbooking-api-staging", base_url=site.url, migrations_dir=folder,
        backup_dir=tmp_path / "backups", verify_deadline=0,
        client_factory=lambda: Cloudflare(api_token=TOKEN, base_url=double.base_url,
                                          _strict_response_validation=True, max_retries=1))


def test_the_hook_refuses_an_unsafe_migration_before_applying_anything(
        db: RemoteDatabase, d1: D1State, double: CloudflareDouble, site: Site, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_add": "ALTER TABLE tenants ADD COLUMN plan TEXT;\n",
                                      "0003_drop_auth": DROP_AUTH})
    with pytest.raises(DeployHookError, match=r"0003_drop_auth.sql \(contract\).*Nothing was applied.*"
                                              r"booking:approvedUnsafeMigrations"):
        before_traffic(context(double, site, tmp_path, folder), log=lambda _: None)
    assert [m.name for m in pending(db, discover(folder))] == ["0002_add.sql", "0003_drop_auth.sql"]
    assert not [p for _, p in double.requests if p.endswith("/time_travel/restore")]


def test_the_hook_applies_an_approved_unsafe_migration_and_records_why(
        db: RemoteDatabase, d1: D1State, double: CloudflareDouble, site: Site, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_drop_auth": DROP_AUTH})
    reason = "auth attempts moved to the security service in release 41"
    sha256 = text_sha256(DROP_AUTH)
    ctx = dataclasses.replace(context(double, site, tmp_path, folder),
                              approved_unsafe_migrations=(("0002_drop_auth.sql", reason, sha256),))
    lines: list[str] = []
    record = before_traffic(ctx, log=lines.append)
    assert record.migrations_applied == ["0002_drop_auth.sql"]
    assert any("UNSAFE migration 0002_drop_auth.sql applied on approval" in line and reason in line for line in lines)
    row = sqlite3.connect(d1.path).execute(f"SELECT name, reason, findings FROM {UNSAFE_TABLE}").fetchone()
    assert row[:2] == ("0002_drop_auth.sql", reason) and "serving-query-breaks" in row[2]


def test_an_approval_of_another_version_of_the_file_lets_nothing_through(
        db: RemoteDatabase, d1: D1State, double: CloudflareDouble, site: Site, tmp_path: Path) -> None:
    # Approved when it dropped one table; two more DROPs were added to the same file afterwards.
    folder = folder_with(tmp_path, **{"0002_drop_auth": DROP_AUTH + "DROP TABLE sessions;\n"})
    reason = "auth attempts moved to the security service in release 41"
    for approval in (("0002_drop_auth.sql", reason, text_sha256(DROP_AUTH)), ("0002_drop_auth.sql", reason)):
        ctx = dataclasses.replace(context(double, site, tmp_path, folder), approved_unsafe_migrations=(approval,))
        with pytest.raises(DeployHookError, match=r"approves 0002_drop_auth.sql with sha256 .*another version"):
            before_traffic(ctx, log=lambda _: None)
    assert [m.name for m in pending(db, discover(folder))] == ["0002_drop_auth.sql"]


def test_the_hook_prepares_the_stacks_corpus_too(
        db: RemoteDatabase, double: CloudflareDouble, site: Site, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_drop_notes": "ALTER TABLE appointments DROP COLUMN notes;\n"})
    corpus = tmp_path / "app-queries.sql"
    corpus.write_text("SELECT id, notes FROM appointments WHERE id = ?;\n")
    safe = context(double, site, tmp_path, folder)
    with pytest.raises(DeployHookError, match=r"app-queries\.sql:1 no longer prepares"):
        before_traffic(dataclasses.replace(safe, serving_queries=(corpus,)), log=lambda _: None)
    assert before_traffic(safe, log=lambda _: None).migrations_applied == ["0002_drop_notes.sql"]


def test_an_unreadable_corpus_stops_the_hook_with_a_deploy_error_naming_the_file(
        db: RemoteDatabase, double: CloudflareDouble, site: Site, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_add": "ALTER TABLE tenants ADD COLUMN plan TEXT;\n"})
    corpus = tmp_path / "app-queries.sql"
    corpus.write_bytes(b"SELECT notes FROM appointments WHERE id = '\xff';\n")
    ctx = dataclasses.replace(context(double, site, tmp_path, folder), serving_queries=(corpus,))
    with pytest.raises(DeployHookError, match=r"app-queries\.sql: not UTF-8"):
        before_traffic(ctx, log=lambda _: None)
    assert [m.name for m in pending(db, discover(folder))] == ["0002_add.sql"]
