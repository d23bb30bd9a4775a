"""The guide's security and administration queries, corrected, as functions over a database target.

Numeric parameters are CAST in SQL: D1's HTTP API takes parameters as strings only, and SQLite
orders any integer below any text, so `COUNT(*) > ?` bound to '5' would silently never be true.

Every query is parameterised (values never pasted into SQL) and takes the reference time `now` as a
parameter instead of SQLite's `'now'`, so a report can be reproduced and tested. Fixes:

- privilege escalation: the guide wrote `a OR b OR c AND recent`, which SQLite reads as
  `a OR b OR (c AND recent)` and so returned every old admin/elevate row; the time filter now
  applies to all three patterns;
- table statistics: the guide's index count read a non-existent `sqlite_master.tblname` column.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ops.targets import Database, require_tables

# The tables each query reads; a database without them was never migrated (the commands say so).
AUDIT_TABLES = ("auth_attempts", "audit_logs", "users", "api_keys", "api_usage_logs", "role_audit_log")


@dataclass(frozen=True)
class Thresholds:
    failed_logins: int = 5  # more than this many failed logins per IP in 24 h is a finding
    dormant_days: int = 30
    unused_key_days: int = 90
    requests_per_hour: int = 100  # per API key and IP


@dataclass
class Section:
    title: str
    rows: list[dict[str, Any]]
    finding: bool  # True: rows here are problems; False: listed for review only

    @property
    def flagged(self) -> bool:
        return self.finding and bool(self.rows)


@dataclass
class AuditReport:
    database: str
    generated_at: str
    sections: dict[str, Section] = field(default_factory=dict)

    @property
    def findings(self) -> int:
        return sum(len(s.rows) for s in self.sections.values() if s.finding)

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "generatedAt": self.generated_at, "findings": self.findings,
                # `kind` is what the section lists, `findings` how many problems it holds: one boolean
                # for the kind was read as "found something" on sections with no rows.
                "sections": {k: {"title": s.title, "kind": "finding" if s.finding else "review",
                                 "findings": len(s.rows) if s.finding else 0, "rows": s.rows}
                             for k, s in self.sections.items()}}


def _now(now: dt.datetime | None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M:%S")


FAILED_LOGINS = """
SELECT ip_address, COUNT(*) AS attempts, MIN(timestamp) AS first_attempt, MAX(timestamp) AS last_attempt
FROM auth_attempts
WHERE success = 0 AND timestamp > datetime(?, '-24 hours') AND datetime(timestamp) <= datetime(?)
GROUP BY ip_address
HAVING COUNT(*) > CAST(? AS INTEGER)
ORDER BY attempts DESC, ip_address"""

# The guide's version, kept to show (and test) the precedence bug it had.
GUIDE_PRIVILEGE_ESCALATION = """
SELECT user_id, action, resource_type, timestamp, ip_address FROM audit_logs
WHERE action LIKE '%admin%' OR action LIKE '%elevate%' OR action LIKE '%privilege%'
  AND timestamp > datetime(?, '-7 days')
ORDER BY timestamp DESC"""

PRIVILEGE_ESCALATION = """
SELECT user_id, action, resource_type, timestamp, ip_address FROM audit_logs
WHERE (action LIKE '%admin%' OR action LIKE '%elevate%' OR action LIKE '%privilege%')
  AND timestamp > datetime(?, '-7 days') AND datetime(timestamp) <= datetime(?)
ORDER BY timestamp DESC"""

ACCESS_PATTERNS = """
SELECT user_id, COUNT(*) AS total_access, COUNT(DISTINCT ip_address) AS unique_ips,
       COUNT(DISTINCT user_agent) AS unique_agents, MIN(timestamp) AS first_access, MAX(timestamp) AS last_access
FROM audit_logs
WHERE timestamp > datetime(?, '-24 hours') AND datetime(timestamp) <= datetime(?)
GROUP BY user_id
ORDER BY total_access DESC"""

DORMANT = """
SELECT id, email, name, role, last_login, created_at,
       CASE WHEN last_login IS NULL THEN 'Never logged in' ELSE 'Dormant' END AS status
FROM users
WHERE (last_login IS NULL OR last_login < datetime(?, '-' || ? || ' days'))
  AND (created_at IS NULL OR datetime(created_at) <= datetime(?))
ORDER BY last_login IS NOT NULL, last_login, email"""

API_KEYS = """
SELECT id, user_id, name, created_at, last_used, expires_at,
       CASE WHEN expires_at IS NOT NULL AND expires_at < ? THEN 'Expired'
            WHEN last_used IS NULL OR last_used < datetime(?, '-' || ? || ' days') THEN 'Unused'
            ELSE 'Active' END AS status
FROM api_keys
WHERE created_at IS NULL OR datetime(created_at) <= datetime(?)
ORDER BY created_at DESC"""

SUSPICIOUS_USAGE = """
SELECT api_key_id, user_id, ip_address, COUNT(*) AS request_count,
       MIN(timestamp) AS first_request, MAX(timestamp) AS last_request
FROM api_usage_logs
WHERE timestamp > datetime(?, '-1 hour') AND datetime(timestamp) <= datetime(?)
GROUP BY api_key_id, user_id, ip_address
HAVING COUNT(*) > CAST(? AS INTEGER)
ORDER BY request_count DESC"""

ROLE_CHANGES = """
SELECT ral.user_id, u.email, ral.action, ral.resource_type, ral.old_value, ral.new_value, ral.created_at
FROM role_audit_log ral JOIN users u ON ral.user_id = u.id
WHERE ral.created_at > datetime(?, '-7 days') AND datetime(ral.created_at) <= datetime(?)
ORDER BY ral.created_at DESC"""

API_USAGE_BY_DAY = """
SELECT DATE(timestamp) AS date, COUNT(*) AS request_count, COUNT(DISTINCT user_id) AS unique_users,
       ROUND(AVG(response_time_ms), 1) AS avg_response_time_ms
FROM api_usage_logs
WHERE timestamp > datetime(?, '-30 days') AND datetime(timestamp) <= datetime(?)
GROUP BY DATE(timestamp)
ORDER BY date DESC"""

USERS = """
SELECT id, email, name, role, tenant_id, status, created_at, last_login FROM users ORDER BY created_at DESC"""

USER_EXISTS = "SELECT 1 AS found FROM users WHERE id = ? OR email = ?"

USER_PERMISSIONS = """
SELECT u.email, p.permission_name, p.resource_type, p.action
FROM users u
JOIN user_permissions up ON u.id = up.user_id
JOIN permissions p ON up.permission_id = p.id
WHERE u.id = ? OR u.email = ?
ORDER BY p.permission_name"""


def security_audit(db: Database, thresholds: Thresholds | None = None,
                   now: dt.datetime | None = None) -> AuditReport:
    """The guide's security audit, corrected; sections marked `finding` count as problems.

    Every window ends at `now` (default: the current time) as well as starting before it, so an
    audit as of an earlier time (`--as-of`) reports nothing that happened after it.
    """
    require_tables(db, AUDIT_TABLES)
    t = thresholds or Thresholds()
    at = _now(now)
    report = AuditReport(database=db.label, generated_at=at)
    report.sections["failed_logins"] = Section(
        f"IPs with more than {t.failed_logins} failed logins in 24 h",
        db.query(FAILED_LOGINS, [at, at, t.failed_logins]), finding=True)
    report.sections["privilege_escalation"] = Section(
        "Admin, elevate or privilege actions in the last 7 days", db.query(PRIVILEGE_ESCALATION, [at, at]),
        finding=True)
    report.sections["dormant_accounts"] = Section(
        f"Accounts not used for {t.dormant_days} days or never", dormant(db, t, now), finding=True)
    keys = api_keys(db, t, now)
    report.sections["api_keys"] = Section(
        f"API keys expired, or unused for {t.unused_key_days} days", [k for k in keys if k["status"] != "Active"],
        finding=True)
    report.sections["suspicious_api_usage"] = Section(
        f"More than {t.requests_per_hour} requests in the last hour per key and IP",
        db.query(SUSPICIOUS_USAGE, [at, at, t.requests_per_hour]), finding=True)
    report.sections["access_patterns"] = Section(
        "Access per user in the last 24 h (for review)", db.query(ACCESS_PATTERNS, [at, at]), finding=False)
    report.sections["role_changes"] = Section(
        "Role changes in the last 7 days (for review)", db.query(ROLE_CHANGES, [at, at]), finding=False)
    return report


def dormant(db: Database, thresholds: Thresholds | None = None,
            now: dt.datetime | None = None) -> list[dict[str, Any]]:
    require_tables(db, ("users",))
    t = thresholds or Thresholds()
    at = _now(now)
    return db.query(DORMANT, [at, t.dormant_days, at])


def api_keys(db: Database, thresholds: Thresholds | None = None,
             now: dt.datetime | None = None) -> list[dict[str, Any]]:
    require_tables(db, ("api_keys",))
    t = thresholds or Thresholds()
    at = _now(now)
    return db.query(API_KEYS, [at, at, t.unused_key_days, at])


def api_usage(db: Database, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    require_tables(db, ("api_usage_logs",))
    at = _now(now)
    return db.query(API_USAGE_BY_DAY, [at, at])


def users(db: Database) -> list[dict[str, Any]]:
    require_tables(db, ("users",))
    return db.query(USERS)


def user_permissions(db: Database, user: str) -> list[dict[str, Any]] | None:
    """Permissions of a user given by id or email; None when there is no such user."""
    require_tables(db, ("users", "user_permissions", "permissions"))
    if not db.query(USER_EXISTS, [user, user]):
        return None
    return db.query(USER_PERMISSIONS, [user, user])
