"""migrations/0001 on real SQLite: it applies, and the admin guide's own queries run against it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from tests.helpers import REPO

SCHEMA = REPO / "migrations" / "0001_initial_schema.sql"
GUIDE_TABLES = {"tenants", "users", "services", "appointments", "sessions", "permissions", "user_permissions",
                "role_audit_log", "api_keys", "api_usage_logs", "auth_attempts", "audit_logs"}

# The guide's administration and monitoring queries, as written there (with the privilege
# escalation query's OR/AND precedence bracketed, which is the guide's intent).
GUIDE_QUERIES = {
    "list users": "SELECT u.id, u.email, u.name, u.role, u.tenant_id, u.status, u.created_at, u.last_login "
                  "FROM users u ORDER BY u.created_at DESC",
    "user permissions": "SELECT u.email, p.permission_name, p.resource_type, p.action FROM users u "
                        "JOIN user_permissions up ON u.id = up.user_id JOIN permissions p ON up.permission_id = p.id "
                        "WHERE u.id = 'u1' ORDER BY p.permission_name",
    "role changes": "SELECT ral.user_id, u.email, ral.action, ral.resource_type, ral.old_value, ral.new_value, "
                    "ral.created_at FROM role_audit_log ral JOIN users u ON ral.user_id = u.id "
                    "WHERE ral.created_at > datetime('now', '-7 days') ORDER BY ral.created_at DESC",
    "dormant": "SELECT id, email, name, last_login, created_at FROM users "
               "WHERE last_login < datetime('now', '-30 days') OR last_login IS NULL",
    "api keys": "SELECT id, user_id, name, last_used, expires_at FROM api_keys ORDER BY created_at DESC",
    "api usage": "SELECT DATE(timestamp) AS date, COUNT(*), COUNT(DISTINCT user_id), AVG(response_time_ms) "
                 "FROM api_usage_logs WHERE timestamp > datetime('now', '-30 days') GROUP BY DATE(timestamp)",
    "suspicious": "SELECT user_id, ip_address, COUNT(*) AS request_count FROM api_usage_logs "
                  "WHERE timestamp > datetime('now', '-1 hour') "
                  "GROUP BY user_id, ip_address HAVING request_count > 100",
    "failed logins": "SELECT ip_address, COUNT(*) AS attempts FROM auth_attempts WHERE success = 0 "
                     "AND timestamp > datetime('now', '-24 hours') GROUP BY ip_address HAVING attempts > 5",
    "escalation": "SELECT user_id, action, resource_type, timestamp, ip_address FROM audit_logs "
                  "WHERE (action LIKE '%admin%' OR action LIKE '%elevate%' OR action LIKE '%privilege%') "
                  "AND timestamp > datetime('now', '-7 days')",
    "access patterns": "SELECT user_id, COUNT(*), COUNT(DISTINCT ip_address), COUNT(DISTINCT user_agent) "
                       "FROM audit_logs WHERE timestamp > datetime('now', '-24 hours') GROUP BY user_id",
    "daily bookings": "SELECT COUNT(*), SUM(CASE WHEN DATE(created_at) = DATE('now') THEN 1 ELSE 0 END), "
                      "SUM(CASE WHEN DATE(created_at) >= DATE('now', '-7 days') THEN 1 ELSE 0 END) FROM appointments",
}


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.executescript(SCHEMA.read_text())
    yield conn
    conn.close()


def test_initial_migration_creates_every_table_the_guide_queries(db: sqlite3.Connection) -> None:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables >= GUIDE_TABLES


def test_initial_migration_has_no_explicit_transaction() -> None:
    # The D1 HTTP API rejects BEGIN/COMMIT; the guide's template has them.
    text = "\n".join(line.split("--")[0] for line in SCHEMA.read_text().splitlines()).upper()
    assert "BEGIN" not in text and "COMMIT" not in text


@pytest.mark.parametrize("name", sorted(GUIDE_QUERIES))
def test_guide_query_prepares_against_the_schema_and_names_its_columns(db: sqlite3.Connection, name: str) -> None:
    """Every table and column the guide's query reads exists (SQLite refuses to prepare it otherwise)."""
    cursor = db.execute(GUIDE_QUERIES[name])
    assert cursor.description and all(column[0] for column in cursor.description)
    # An empty schema: the query ran over nothing (an aggregate answers one row of zeros and NULLs).
    assert all(value in (0, None) for row in cursor.fetchall() for value in row)


def test_appointments_by_tenant_query_uses_an_index(db: sqlite3.Connection) -> None:
    plan = db.execute(
        "EXPLAIN QUERY PLAN SELECT a.*, s.name AS service_name, u.name AS user_name FROM appointments a "
        "JOIN services s ON a.service_id = s.id JOIN users u ON a.user_id = u.id "
        "WHERE a.tenant_id = ? AND a.created_at > datetime('now', '-7 days') "
        "ORDER BY a.created_at DESC LIMIT 100", ("t1",)).fetchall()
    details = " ".join(row[3] for row in plan)
    assert "idx_appointments_tenant_created" in details, details
    assert "SCAN a" not in details


def test_foreign_keys_reject_an_appointment_for_an_unknown_tenant(db: sqlite3.Connection) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) "
                   "VALUES ('a1', 'nope', 'nope', 'nope', '2026-12-01 10:00:00')")
