"""Security audit, administration queries and database stats on a seeded database (the operations;
the same commands through the CLI are in tests/integration/bookingctl/test_admin_cli.py).

Rows are placed on both sides of every threshold; NOW is fixed so the report is reproducible.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from cloudflare import Cloudflare

from ops.database.migrations import apply, discover
from ops.observation import audit, dbstats
from ops.targets import LocalDatabase, remote_database
from tests.helpers import ACCOUNT, REPO
from tests.helpers.cf_double import CloudflareDouble

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def ago(**delta: float) -> str:
    return (NOW - dt.timedelta(**delta)).strftime("%Y-%m-%d %H:%M:%S")


def seed(path: Path) -> None:
    db = LocalDatabase(path, must_exist=False)
    apply(db, discover(REPO / "migrations"))
    c = db.conn
    c.execute("INSERT INTO tenants (id, slug, name) VALUES ('t1', 'instyle', 'InStyle')")
    users = [("u-active", "active@x.co.za", ago(days=2)), ("u-dormant", "dormant@x.co.za", ago(days=45)),
             ("u-never", "never@x.co.za", None), ("u-edge", "edge@x.co.za", ago(days=29))]
    for uid, email, last in users:
        c.execute("INSERT INTO users (id, tenant_id, email, name, role, last_login, created_at) "
                  "VALUES (?, 't1', ?, ?, 'staff', ?, ?)", (uid, email, uid, last, ago(days=100)))
    attempts = [("10.0.0.1", 6, 1), ("10.0.0.2", 5, 1), ("10.0.0.3", 7, 25)]  # (ip, failures, hours ago)
    for ip, count, hours in attempts:
        for _ in range(count):
            c.execute("INSERT INTO auth_attempts (ip_address, success, timestamp) VALUES (?, 0, ?)",
                      (ip, ago(hours=hours)))
    for _ in range(9):
        c.execute("INSERT INTO auth_attempts (ip_address, success, timestamp) VALUES ('10.0.0.2', 1, ?)",
                  (ago(hours=1),))
    logs = [("u-active", "grant_admin", ago(days=2)), ("u-active", "elevate_role", ago(days=10)),
            ("u-active", "privilege_change", ago(days=10)), ("u-edge", "login", ago(hours=2)),
            ("u-edge", "admin_panel_view", ago(days=8))]
    for uid, action, ts in logs:
        c.execute("INSERT INTO audit_logs (user_id, action, ip_address, user_agent, timestamp) "
                  "VALUES (?, ?, '10.1.1.1', 'Mozilla', ?)", (uid, action, ts))
    keys = [("k-ok", ago(days=1), None), ("k-expired", ago(days=1), ago(days=3)), ("k-unused", ago(days=120), None),
            ("k-never", None, None)]
    for kid, used, expires in keys:
        c.execute("INSERT INTO api_keys (id, user_id, name, key_hash, last_used, expires_at, created_at) "
                  "VALUES (?, 'u-active', ?, ?, ?, ?, ?)", (kid, kid, f"hash-{kid}", used, expires, ago(days=200)))
    for i in range(101):
        c.execute("INSERT INTO api_usage_logs (api_key_id, user_id, ip_address, timestamp) "
                  "VALUES ('k-ok', 'u-active', '10.2.2.2', ?)", (ago(minutes=i * 0.5),))
    for i in range(100):
        c.execute("INSERT INTO api_usage_logs (api_key_id, user_id, ip_address, timestamp) "
                  "VALUES ('k-ok', 'u-active', '10.3.3.3', ?)", (ago(minutes=i * 0.5),))
    c.execute("INSERT INTO role_audit_log (user_id, action, resource_type, old_value, new_value, created_at) "
              "VALUES ('u-edge', 'role_change', 'user', 'staff', 'admin', ?)", (ago(days=1),))
    c.execute("INSERT INTO role_audit_log (user_id, action, resource_type, old_value, new_value, created_at) "
              "VALUES ('u-edge', 'role_change', 'user', 'customer', 'staff', ?)", (ago(days=20),))
    c.execute("INSERT INTO permissions (id, permission_name, resource_type, action) "
              "VALUES ('p1', 'appointments.manage', 'appointments', 'write')")
    c.execute("INSERT INTO user_permissions (user_id, permission_id) VALUES ('u-active', 'p1')")
    db.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "d1.sqlite"
    seed(path)
    return path


@pytest.fixture(scope="module")
def report(seeded: Path) -> audit.AuditReport:
    return audit.security_audit(LocalDatabase(seeded), now=NOW)


def column(report: audit.AuditReport, section: str, name: str) -> list[object]:
    return [row[name] for row in report.sections[section].rows]


def test_failed_logins_over_five_in_24_hours(report: audit.AuditReport) -> None:
    # 6 recent failures: flagged; exactly 5: not; 7 but 25 h ago: not; successes never count.
    assert column(report, "failed_logins", "ip_address") == ["10.0.0.1"]
    assert column(report, "failed_logins", "attempts") == [6]


def test_privilege_escalation_only_in_the_last_seven_days(report: audit.AuditReport) -> None:
    assert column(report, "privilege_escalation", "action") == ["grant_admin"]


def test_the_guides_query_returns_old_rows_through_its_precedence_bug(seeded: Path) -> None:
    rows = LocalDatabase(seeded).query(audit.GUIDE_PRIVILEGE_ESCALATION, [NOW.strftime("%Y-%m-%d %H:%M:%S")])
    assert {"elevate_role", "admin_panel_view"} <= {r["action"] for r in rows}  # 8 and 10 days old


def test_dormant_accounts_after_thirty_days_or_never(report: audit.AuditReport) -> None:
    assert sorted(column(report, "dormant_accounts", "id")) == ["u-dormant", "u-never"]
    assert dict(zip(column(report, "dormant_accounts", "id"), column(report, "dormant_accounts", "status"),
                    strict=True))["u-never"] == "Never logged in"


def test_expired_and_unused_api_keys(report: audit.AuditReport) -> None:
    statuses = dict(zip(column(report, "api_keys", "id"), column(report, "api_keys", "status"), strict=True))
    assert statuses == {"k-expired": "Expired", "k-unused": "Unused", "k-never": "Unused"}


def test_more_than_100_requests_per_hour_per_key_and_ip(report: audit.AuditReport) -> None:
    assert column(report, "suspicious_api_usage", "ip_address") == ["10.2.2.2"]
    assert column(report, "suspicious_api_usage", "request_count") == [101]


def test_role_changes_and_access_patterns_are_listed_for_review(report: audit.AuditReport) -> None:
    assert column(report, "role_changes", "new_value") == ["admin"]
    assert not report.sections["role_changes"].finding
    assert {r["user_id"] for r in report.sections["access_patterns"].rows} == {"u-edge"}


def test_finding_count_counts_problem_rows_and_not_rows_listed_for_review(report: audit.AuditReport) -> None:
    # From the seed: 1 brute-force IP, 1 recent escalation, 2 dormant accounts, 3 keys expired or
    # unused, 1 key/IP pair over 100 requests an hour. Access patterns and role changes have rows
    # too, but they are listed for review, not counted as findings.
    assert report.findings == 1 + 1 + 2 + 3 + 1
    assert report.sections["role_changes"].rows and report.sections["access_patterns"].rows


def test_thresholds_are_configurable(seeded: Path) -> None:
    strict = audit.security_audit(LocalDatabase(seeded), audit.Thresholds(failed_logins=4, requests_per_hour=99),
                                  now=NOW)
    assert column(strict, "failed_logins", "ip_address") == ["10.0.0.1", "10.0.0.2"]
    assert len(strict.sections["suspicious_api_usage"].rows) == 2


def test_the_same_audit_through_d1s_http_api(seeded: Path, double: CloudflareDouble, client: Cloudflare,
                                              tmp_path: Path) -> None:
    # D1 takes parameters as strings; without the CASTs the thresholds would never match there.
    copy = tmp_path / "copy.sqlite"
    shutil.copy(seeded, copy)
    d1 = double.add_database("appointmentbooking-db", source=copy)
    remote = audit.security_audit(remote_database(ACCOUNT, d1.name, client=client), now=NOW)
    local = audit.security_audit(LocalDatabase(seeded), now=NOW)
    assert remote.to_dict()["sections"] == local.to_dict()["sections"]


def test_user_permissions_by_email_or_id(seeded: Path) -> None:
    db = LocalDatabase(seeded)
    assert audit.user_permissions(db, "active@x.co.za") == audit.user_permissions(db, "u-active")
    assert [p["permission_name"] for p in audit.user_permissions(db, "u-active")] == ["appointments.manage"]


def test_db_stats_counts_indexes_rows_and_shows_the_tenant_query_uses_an_index(seeded: Path) -> None:
    result = dbstats.stats(LocalDatabase(seeded))
    tables = {t["table_name"]: t for t in result["tables"]}
    # 4 declared indexes plus SQLite's automatic one for the TEXT primary key.
    assert tables["appointments"]["index_count"] == 5 and tables["appointments"]["column_count"] == 9
    declared = [i["index_name"] for i in result["indexes"] if i["table_name"] == "appointments"]
    assert len(declared) == 4
    assert tables["users"]["row_count"] == 4
    assert result["size"]["size_bytes"] > 0
    assert result["tenant_query_uses_index"] is True
    assert any("idx_appointments_tenant_created" in d for d in result["tenant_query_plan"])


def test_an_audit_as_of_an_earlier_time_reports_nothing_that_happened_after_it(seeded: Path) -> None:
    earlier = audit.security_audit(LocalDatabase(seeded), now=NOW - dt.timedelta(days=4))
    # The window is the 7 days up to 4 days ago: the actions of 8 and 10 days ago, not the grant of 2 days ago.
    assert sorted(column(earlier, "privilege_escalation", "action")) == [
        "admin_panel_view", "elevate_role", "privilege_change"]
    for later in ("failed_logins", "access_patterns", "suspicious_api_usage", "role_changes"):
        assert earlier.sections[later].rows == [], later
    assert audit.api_usage(LocalDatabase(seeded), now=NOW - dt.timedelta(days=4)) == []
