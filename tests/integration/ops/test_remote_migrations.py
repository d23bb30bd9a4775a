"""Migrations on a remote D1 through the real `cloudflare` SDK against the stateful API double."""

from __future__ import annotations

from pathlib import Path

import cloudflare
import pytest
from cloudflare import Cloudflare

from ops.migrations import MigrationError, apply, discover, pending, status
from ops.targets import RemoteDatabase, TargetError, remote_database
from tests.helpers import ACCOUNT, REPO
from tests.helpers import sqlite_dump as dump
from tests.helpers.cf_double import TOKEN, CloudflareDouble, D1State, Fault


@pytest.fixture
def d1(double: CloudflareDouble) -> D1State:
    return double.add_database("appointmentbooking-db-staging")


@pytest.fixture
def db(client: Cloudflare, d1: D1State) -> RemoteDatabase:
    return remote_database(ACCOUNT, d1.name, client=client)


def test_database_is_found_by_name(db: RemoteDatabase, d1: D1State) -> None:
    assert db.database_id == d1.uuid


def test_unknown_database_name_is_a_clear_error(client: Cloudflare) -> None:
    with pytest.raises(TargetError, match="no D1 database named 'appointmentbooking-db'"):
        remote_database(ACCOUNT, "appointmentbooking-db", client=client)


def test_remote_apply_records_migrations_and_returns_the_bookmark(db: RemoteDatabase, d1: D1State) -> None:
    result = apply(db, discover(REPO / "migrations"))
    assert result.applied == ["0001_initial_schema.sql"] and result.bookmark
    [state], _ = status(db, discover(REPO / "migrations"))
    assert state.applied
    assert "CREATE TABLE appointments" in "\n".join(dump(d1.path))


def test_failed_remote_migration_restores_the_bookmark(db: RemoteDatabase, d1: D1State, tmp_path: Path) -> None:
    apply(db, discover(REPO / "migrations"))
    db.query("INSERT INTO tenants (id, slug, name) VALUES ('t1', 'instyle', 'InStyle')")
    before = dump(d1.path)
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_initial_schema.sql").write_text((REPO / "migrations" / "0001_initial_schema.sql").read_text())
    (folder / "0002_loyalty.sql").write_text("CREATE TABLE loyalty (user_id TEXT);\nINSERT INTO loyalty VALUES ('u');")
    (folder / "0003_broken.sql").write_text("ALTER TABLE tenants ADD COLUMN plan TEXT;\nINSERT INTO nope VALUES (1);")
    with pytest.raises(MigrationError) as info:
        apply(db, discover(folder))
    assert "0003_broken.sql failed" in str(info.value) and "was restored to bookmark" in str(info.value)
    # 0002 and half of 0003 had been applied by the (non-atomic) requests; the restore undid them.
    assert dump(d1.path) == before
    assert [m.name for m in pending(db, discover(folder))] == ["0002_loyalty.sql", "0003_broken.sql"]


def test_rate_limits_and_server_errors_are_retried(db: RemoteDatabase, double: CloudflareDouble) -> None:
    double.inject(Fault("POST", r"/query$", status=429))
    double.inject(Fault("GET", r"/time_travel/bookmark$", status=503))
    assert apply(db, discover(REPO / "migrations")).applied == ["0001_initial_schema.sql"]
    assert sum(1 for m, p in double.requests if m == "GET" and p.endswith("/bookmark")) >= 2


def test_persistent_failure_before_any_change_leaves_nothing_applied(
        db: RemoteDatabase, double: CloudflareDouble, d1: D1State) -> None:
    before = dump(d1.path)
    double.inject(Fault("POST", r"/query$", status=500, times=10))
    with pytest.raises(MigrationError, match="Nothing was changed"):
        apply(db, discover(REPO / "migrations"))
    assert dump(d1.path) == before


def test_failure_after_the_bookmark_restores_it(db: RemoteDatabase, double: CloudflareDouble, d1: D1State) -> None:
    before = dump(d1.path)
    # The first query (reading d1_migrations) passes; creating the table then fails for good.
    double.inject(Fault("POST", r"/query$", status=200))
    double.inject(Fault("POST", r"/query$", status=500, times=10))
    with pytest.raises(MigrationError, match="restored to bookmark"):
        apply(db, discover(REPO / "migrations"))
    assert dump(d1.path) == before


def test_the_double_rejects_explicit_transactions_like_d1(db: RemoteDatabase) -> None:
    with pytest.raises(cloudflare.BadRequestError, match="BEGIN TRANSACTION"):
        db.execute("BEGIN TRANSACTION;\nCREATE TABLE t (x);\nCOMMIT;")


def test_wrong_token_is_refused(double: CloudflareDouble, d1: D1State) -> None:
    with Cloudflare(api_token="wrong", base_url=double.base_url, _strict_response_validation=True,
                    max_retries=0) as sdk, pytest.raises(cloudflare.PermissionDeniedError):
        remote_database(ACCOUNT, d1.name, client=sdk)


def test_a_response_slower_than_the_client_timeout_is_retried(double: CloudflareDouble, d1: D1State) -> None:
    # The first query hangs past the SDK's timeout; the SDK gives up on it and retries.
    double.inject(Fault("POST", r"/query$", status=200, delay=1.5))
    with Cloudflare(api_token=TOKEN, base_url=double.base_url, _strict_response_validation=True,
                    max_retries=2, timeout=0.5) as sdk:
        db = remote_database(ACCOUNT, d1.name, client=sdk)
        assert apply(db, discover(REPO / "migrations")).applied == ["0001_initial_schema.sql"]
    queries = [p for m, p in double.requests if m == "POST" and p.endswith("/query")]
    assert len(queries) >= 3  # the timed-out attempt, its retry, and the migration itself
