"""Two salons in one database, for the tenant-scoped restore: InStyle (A) and Glow (B).

Which rows are A's is spelt out here by hand, independently of `ops.tenants.tenant_restore`'s own
derivation, so the tests judge that code against an outside answer.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from ops.database.migrations import apply, discover
from ops.targets import LocalDatabase
from tests.helpers import REPO

A, B = "instyle", "glow"

# Tenant A's rows in each table; everything else (B's rows, global rows, the row A shares with B)
# must be byte-identical after a restore of A.
A_ROWS = {
    "tenants": "id = 'tA'",
    "users": "tenant_id = 'tA'",
    "services": "tenant_id = 'tA'",
    "appointments": "tenant_id = 'tA'",
    "sessions": "user_id IN ('uA1', 'uA2')",
    "user_permissions": "user_id IN ('uA1', 'uA2')",
    # The role change of an A user made by a B owner is shared: not A's alone, so not restored.
    "role_audit_log": "user_id IN ('uA1', 'uA2') AND COALESCE(changed_by, '') NOT IN ('uB1', 'uB2', 'uX')",
    "api_keys": "user_id IN ('uA1', 'uA2')",
    "api_usage_logs": "api_key_id = 'kA'",
    "audit_logs": "tenant_id = 'tA'",
}
APPOINTMENTS = 150


def seed(path: Path) -> None:
    """The real schema with both salons' rows, awkward text included (quotes, newlines, unicode)."""
    db = LocalDatabase(path, must_exist=False)
    apply(db, discover(REPO / "migrations"))
    with db.transaction() as c:
        c.execute("INSERT INTO tenants (id, slug, name, hostname) VALUES "
                  "('tA', 'instyle', 'InStyle', 'www.instylehairboutique.co.za'), ('tB', 'glow', 'Glow', 'glow.co.za')")
        c.execute("INSERT INTO users (id, tenant_id, email, name, role) VALUES "
                  "('uA1', 'tA', 'thandi@instyle.co.za', 'Thandi O''Neill', 'owner'), "
                  "('uA2', 'tA', 'sipho@example.co.za', 'Sipho Ndlovu 💇', 'customer'), "
                  "('uB1', 'tB', 'lerato@glow.co.za', 'Lerato', 'owner'), "
                  "('uB2', 'tB', 'naledi@example.co.za', 'Naledi', 'customer'), "
                  "('uX', 'tB', 'zanele@example.co.za', 'Zanele (a Glow customer who books at InStyle too)', "
                  "'customer'), ('uP', NULL, 'admin@platform.co.za', 'Platform admin', 'admin')")
        c.execute("INSERT INTO services (id, tenant_id, name, duration_minutes, price_cents) VALUES "
                  "('sA1', 'tA', 'Silk press; wash & style', 90, 45000), ('sB1', 'tB', 'Braids', 240, 90000)")
        for i in range(APPOINTMENTS):
            c.execute("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at, notes) "
                      "VALUES (?, 'tA', 'sA1', 'uA2', '2026-12-01 10:00:00', ?)",
                      (f"aA{i}", None if i % 3 else f"line one\nline 'two' {i}"))
            c.execute("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) "
                      "VALUES (?, 'tB', 'sB1', 'uB2', '2026-12-02 10:00:00')", (f"aB{i}",))
        c.execute("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) "
                  "VALUES ('aAX', 'tA', 'sA1', 'uX', '2026-12-03 09:00:00')")
        c.execute("INSERT INTO sessions (id, user_id, expires_at) VALUES "
                  "('ssA', 'uA2', '2026-12-30 00:00:00'), ('ssB', 'uB2', '2026-12-30 00:00:00')")
        c.execute("INSERT INTO permissions (id, permission_name, resource_type, action) "
                  "VALUES ('p1', 'book', 'appointments', 'create')")
        c.execute("INSERT INTO user_permissions (user_id, permission_id) VALUES ('uA1', 'p1'), ('uB1', 'p1')")
        c.execute("INSERT INTO role_audit_log (user_id, changed_by, action) VALUES "
                  "('uA2', 'uA1', 'grant'), ('uB2', 'uB1', 'grant'), ('uA2', 'uB1', 'grant'), ('uA1', 'uP', 'grant')")
        c.execute("INSERT INTO api_keys (id, user_id, name, key_hash) VALUES ('kA', 'uA1', 'a', 'hA'), "
                  "('kB', 'uB1', 'b', 'hB')")
        c.execute("INSERT INTO api_usage_logs (api_key_id, endpoint) VALUES ('kA', '/api/bookings'), "
                  "('kB', '/api/bookings'), (NULL, '/api/health')")
        c.execute("INSERT INTO audit_logs (tenant_id, action) VALUES ('tA', 'login'), ('tB', 'login'), (NULL, 'boot')")
    db.close()


def mistakes_since_the_backup(path: Path) -> None:
    """What happens after the backup: A loses appointments and a session and has a price changed by
    mistake, and books anew; B keeps working (a booking, a cancellation, a new user)."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM appointments WHERE tenant_id = 'tA' AND id IN ('aA1', 'aA2', 'aA3', 'aA40')")
        conn.execute("DELETE FROM sessions WHERE id = 'ssA'")
        conn.execute("UPDATE services SET price_cents = 1 WHERE id = 'sA1'")
        conn.execute("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) "
                     "VALUES ('aAnew', 'tA', 'sA1', 'uA2', '2026-12-09 10:00:00')")
        conn.execute("UPDATE appointments SET status = 'cancelled' WHERE id = 'aB5'")
        conn.execute("DELETE FROM appointments WHERE id = 'aB6'")
        conn.execute("INSERT INTO users (id, tenant_id, email, name) VALUES ('uB3', 'tB', 'new@glow.co.za', 'New')")
        conn.execute("DELETE FROM role_audit_log WHERE user_id = 'uA2' AND changed_by = 'uB1'")
    conn.close()


def others_digest(path: Path) -> str:
    """sha256 over every row that is not tenant A's, table by table, each row as SQLite quotes it."""
    conn = sqlite3.connect(path)
    digest = hashlib.sha256()
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for table in tables:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            quoted = " || ',' || ".join(f'quote("{c}")' for c in columns)
            where = f"NOT ({A_ROWS[table]})" if table in A_ROWS else "1"
            digest.update(table.encode())
            for (row,) in conn.execute(f'SELECT {quoted} FROM "{table}" WHERE {where} ORDER BY {quoted}'):
                digest.update(row.encode() + b"\n")
    finally:
        conn.close()
    return digest.hexdigest()


def appointment_ids(path: Path, tenant: str) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM appointments WHERE tenant_id = ?", (tenant,))}
    finally:
        conn.close()
