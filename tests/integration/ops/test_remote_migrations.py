"""Migrations on a remote D1 through the real `cloudflare` SDK against the stateful API double."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cloudflare
import pytest
from cloudflare import Cloudflare

from ops.database.migrations import MigrationError, apply, discover, pending, status
from ops.targets import RemoteDatabase, TargetError, remote_database
from tests.helpers import ACCOUNT, REPO
from tests.helpers import sqlite_dump as dump
from tests.helpers.cf_double import CloudflareDouble, D1State, Fault

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

# The repository's migrations, in order: what applying them all applies.
COMMITTED = [m.name for m in discover(REPO / "migrations")]


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
    assert result.applied == COMMITTED and result.bookmark
    states, _ = status(db, discover(REPO / "migrations"))
    assert all(state.applied for state in states)
    assert "CREATE TABLE appointments" in "\n".join(dump(d1.path))


def two_more(tmp_path: Path) -> Path:
    """The committed migrations, a good 0002 and a 0003 that fails on its second statement."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_initial_schema.sql").write_text((REPO / "migrations" / "0001_initial_schema.sql").read_text())
    (folder / "0002_loyalty.sql").write_text("CREATE TABLE loyalty (user_id TEXT);\nINSERT INTO loyalty VALUES ('u');")
    (folder / "0003_broken.sql").write_text("ALTER TABLE tenants ADD COLUMN plan TEXT;\nINSERT INTO nope VALUES (1);")
    return folder


def test_failed_remote_migration_is_never_restored_and_leaves_nothing_of_itself(
        db: RemoteDatabase, d1: D1State, tmp_path: Path) -> None:
    apply(db, discover(REPO / "migrations"))
    db.query("INSERT INTO tenants (id, slug, name) VALUES ('t1', 'instyle', 'InStyle')")
    folder = two_more(tmp_path)
    with pytest.raises(MigrationError) as info:
        apply(db, discover(folder))
    message = str(info.value)
    assert "0003_broken.sql failed" in message and "was NOT restored" in message
    assert "0002_loyalty.sql stay applied" in message and "bookingctl backup restore --stack" in message
    # D1 ran 0003 as one transaction: its ALTER TABLE is not there; 0002 stays, recorded.
    conn = sqlite3.connect(d1.path)
    assert "plan" not in {r[1] for r in conn.execute("PRAGMA table_info(tenants)")}
    assert conn.execute("SELECT COUNT(*) FROM tenants").fetchone() == (1,)
    assert [m.name for m in pending(db, discover(folder))] == ["0003_broken.sql"]


def test_restore_on_failure_opts_in_to_the_restore(db: RemoteDatabase, d1: D1State, double: CloudflareDouble,
                                                    tmp_path: Path) -> None:
    apply(db, discover(REPO / "migrations"))
    before = dump(d1.path)
    with pytest.raises(MigrationError, match=r"was restored to bookmark .* erasing every write since"):
        apply(db, discover(two_more(tmp_path)), restore_on_failure=True)
    assert dump(d1.path) == before
    assert [p for m, p in double.requests if p.endswith("/time_travel/restore")]


def test_rate_limits_and_server_errors_are_retried(db: RemoteDatabase, double: CloudflareDouble) -> None:
    double.inject(Fault("POST", r"/query$", status=429))
    double.inject(Fault("GET", r"/time_travel/bookmark$", status=503))
    assert apply(db, discover(REPO / "migrations")).applied == COMMITTED
    assert sum(1 for m, p in double.requests if m == "GET" and p.endswith("/bookmark")) >= 2


def test_persistent_failure_before_any_change_leaves_nothing_applied(
        db: RemoteDatabase, double: CloudflareDouble, d1: D1State) -> None:
    before = dump(d1.path)
    double.inject(Fault("POST", r"/query$", status=500, times=10))
    with pytest.raises(MigrationError, match="Nothing was changed"):
        apply(db, discover(REPO / "migrations"))
    assert dump(d1.path) == before


def test_failure_after_the_bookmark_is_not_restored(db: RemoteDatabase, double: CloudflareDouble,
                                                     d1: D1State) -> None:
    before = dump(d1.path)
    # The first query (reading d1_migrations) passes; creating the table then fails for good.
    double.inject(Fault("POST", r"/query$", status=200))
    double.inject(Fault("POST", r"/query$", status=500, times=10))
    with pytest.raises(MigrationError, match=r"no migration of this run was applied.*NOT restored"):
        apply(db, discover(REPO / "migrations"))
    assert dump(d1.path) == before
    assert not [p for m, p in double.requests if p.endswith("/time_travel/restore")]


def test_the_double_rejects_explicit_transactions_like_d1(db: RemoteDatabase) -> None:
    with pytest.raises(cloudflare.BadRequestError, match="BEGIN TRANSACTION"):
        db.execute("BEGIN TRANSACTION;\nCREATE TABLE t (x);\nCOMMIT;")


def test_wrong_token_is_refused(double: CloudflareDouble, d1: D1State) -> None:
    with Cloudflare(api_token="wrong", base_url=double.base_url, _strict_response_validation=True,
                    max_retries=0) as sdk, pytest.raises(cloudflare.PermissionDeniedError):
        remote_database(ACCOUNT, d1.name, client=sdk)


# Requests to /query in one apply: the read of d1_migrations (pending), CREATE TABLE IF NOT EXISTS,
# then one request per migration.
MIGRATION_REQUEST = 2


def test_a_migration_applied_before_its_answer_was_lost_is_not_sent_again(
        db: RemoteDatabase, double: CloudflareDouble, d1: D1State) -> None:
    """The review's flaky case made deterministic: D1 applied the migration, the client never heard.
    A blind retry would fail on "table exists" and rewind the database; reading d1_migrations
    shows it landed."""
    double.inject(Fault("POST", r"/query$", status=0, applied=True, skip=MIGRATION_REQUEST))
    assert apply(db, discover(REPO / "migrations")).applied == COMMITTED
    assert sum("CREATE TABLE appointments" in sql for sql in double.sql) == 1  # sent once, never again
    assert not [p for m, p in double.requests if p.endswith("/time_travel/restore")]
    rows = sqlite3.connect(d1.path).execute("SELECT name FROM d1_migrations").fetchall()
    assert [name for (name,) in rows] == COMMITTED


def test_a_migration_lost_before_it_was_applied_is_not_resent_and_nothing_of_it_is_applied(
        db: RemoteDatabase, double: CloudflareDouble, d1: D1State) -> None:
    double.inject(Fault("POST", r"/query$", status=0, skip=MIGRATION_REQUEST))  # dropped, nothing done
    with pytest.raises(MigrationError, match=r"got no answer.*does not record it.*was not applied.*NOT restored"):
        apply(db, discover(REPO / "migrations"))
    assert sum("CREATE TABLE appointments" in sql for sql in double.sql) == 1  # sent once, never again
    tables = {r[0] for r in sqlite3.connect(d1.path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "appointments" not in tables and [m.name for m in pending(db, discover(REPO / "migrations"))] == COMMITTED


def test_a_rate_limited_migration_is_sent_once_more(db: RemoteDatabase, double: CloudflareDouble) -> None:
    double.inject(Fault("POST", r"/query$", status=429, skip=MIGRATION_REQUEST))
    assert apply(db, discover(REPO / "migrations")).applied == COMMITTED


def test_a_rate_limited_migration_whose_second_answer_is_lost_is_read_back_not_raised_raw(
        db: RemoteDatabase, double: CloudflareDouble, d1: D1State) -> None:
    """The migration runner's and the tenant restore's write-once blocks differed: after a 429, the
    runner's second send had no lost-answer handling, so a migration D1 applied escaped as a raw
    connection error (the restore's copy handled it). One helper now serves both."""
    double.inject(Fault("POST", r"/query$", status=429, skip=MIGRATION_REQUEST))
    double.inject(Fault("POST", r"/query$", status=0, applied=True))  # the resend lands, its answer is lost
    assert apply(db, discover(REPO / "migrations")).applied == COMMITTED
    assert sum("CREATE TABLE appointments" in sql for sql in double.sql) == 2  # the 429'd send and the resend
    rows = sqlite3.connect(d1.path).execute("SELECT name FROM d1_migrations").fetchall()
    assert [name for (name,) in rows] == COMMITTED


def _with_0002(tmp_path: Path, sql: str) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_initial_schema.sql").write_text((REPO / "migrations" / "0001_initial_schema.sql").read_text())
    (folder / "0002_case.sql").write_text(sql)
    return folder


def test_a_migration_ending_in_an_unclosed_comment_is_applied_once_and_recorded(
        db: RemoteDatabase, d1: D1State, tmp_path: Path) -> None:
    apply(db, discover(REPO / "migrations")[:1])
    with sqlite3.connect(d1.path) as conn:
        conn.execute("INSERT INTO tenants (id, slug, name) VALUES ('t1', 's', 'n')")
        conn.execute("INSERT INTO services (id, tenant_id, name, duration_minutes, price_cents) "
                     "VALUES ('s1', 't1', 'cut', 30, 10000)")
    folder = _with_0002(tmp_path, "UPDATE services SET price_cents = price_cents * 2 WHERE active = 1 "
                                  "/* double the prices, as agreed\n")
    for _ in range(3):  # the comment used to swallow the d1_migrations row: every run doubled again
        apply(db, discover(folder))
    with sqlite3.connect(d1.path) as conn:
        assert conn.execute("SELECT price_cents FROM services").fetchone()[0] == 20000
        assert "0002_case.sql" in {r[0] for r in conn.execute("SELECT name FROM d1_migrations")}


def test_a_last_statement_without_a_semicolon_is_applied_and_recorded_remotely(
        db: RemoteDatabase, d1: D1State, tmp_path: Path) -> None:
    apply(db, discover(REPO / "migrations")[:1])
    result = apply(db, discover(_with_0002(tmp_path, "CREATE TABLE extra (a TEXT)\n-- done")))
    assert result.applied == ["0002_case.sql"]
    with sqlite3.connect(d1.path) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'extra'").fetchone() == (1,)


def _with_check(tmp_path: Path, check: str, statement: str) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_initial_schema.sql").write_text((REPO / "migrations" / "0001_initial_schema.sql").read_text())
    (folder / "0002_checked.sql").write_text(f"-- check: {check}\n{statement}\n")
    return folder


def test_a_check_false_after_the_statements_makes_d1_keep_none_of_the_migration(
        tmp_path: Path, db: RemoteDatabase, d1: D1State) -> None:
    apply(db, discover(REPO / "migrations"))
    folder = _with_check(tmp_path, "SELECT count(*) = 0 FROM tenants -- no tenant is added by this migration",
                         "INSERT INTO tenants (id, slug, name) VALUES ('t-x', 'x', 'X');")
    with pytest.raises(MigrationError, match="a `-- check:` of 0002_checked.sql answered false after its statements "
                                             r"\(no tenant is added by this migration\)"):
        apply(db, discover(folder))
    rows = sqlite3.connect(d1.path).execute("SELECT count(*) FROM tenants WHERE id = 't-x'").fetchone()
    assert rows == (0,) and "0002_checked.sql" not in {s.name for s in status(db, discover(folder))[0] if s.applied}


def test_a_check_false_before_the_migration_sends_none_of_it(tmp_path: Path, db: RemoteDatabase,
                                                             d1: D1State) -> None:
    apply(db, discover(REPO / "migrations"))
    folder = _with_check(tmp_path, "SELECT count(*) > 1000 FROM tenants -- the salons to migrate exist",
                         "INSERT INTO tenants (id, slug, name) VALUES ('t-x', 'x', 'X');")
    with pytest.raises(MigrationError, match=r"0002_checked.sql:1: check failed before the migration .*"
                                             "the salons to migrate exist"):
        apply(db, discover(folder))
    assert sqlite3.connect(d1.path).execute("SELECT count(*) FROM tenants WHERE id = 't-x'").fetchone() == (0,)
