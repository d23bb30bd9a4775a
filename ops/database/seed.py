"""Realistic fake data for two salons in a local database: what `bookingctl db seed` writes.

Deterministic: the same `as_of` gives the same rows, byte for byte (ids and choices come from a
seeded random generator; times are offsets from `as_of`), so a local report or audit reads the
same on every machine. Times are recent relative to `as_of` because every report and audit query
looks back from now (7 days of bookings, 24 hours of failed logins, 1 hour of API traffic).

What it covers, so every read command has something to show: two active salons (the production
domain and a Cloudflare for SaaS salon on widget 0), owners, staff, an admin, customers (some
dormant, one disabled), services, appointments in every status over the past 30 and next 14 days,
sessions, permissions, role changes, API keys and their usage (a burst in the last hour, 5xx
answers), login attempts (a failed-login burst from one address) and admin actions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from booking_shared.errors import InputError
from ops.targets import LocalDatabase, TargetError, require_tables

# Every table of migrations/ this writes; a database missing one has not been migrated.
TABLES = ("tenants", "users", "services", "appointments", "sessions", "permissions", "user_permissions",
          "role_audit_log", "api_keys", "api_usage_logs", "auth_attempts", "audit_logs")
SEED = 21

SALONS = (
    # slug, name, hostname, turnstile_widget (None: the site widget's hostname, not a SaaS salon)
    ("instyle", "InStyle Hair Boutique", "www.instylehairboutique.co.za", None),
    ("glamour", "Glamour Salon", "book.glamoursalon.co.za", 0),
)
SERVICES = (("Wash and blow-dry", 45, 25_000), ("Cut and style", 60, 38_000), ("Full colour", 120, 95_000),
            ("Braids", 180, 120_000), ("Gel nails", 60, 30_000))
FIRST = ("Thandi", "Lerato", "Naledi", "Zanele", "Ayesha", "Chloé", "Fatima", "Palesa", "Sipho", "Karabo",
         "Megan", "Anele", "Riya", "Nomsa", "Jessica", "Lindiwe", "Bongani", "Amahle", "Keisha", "Ilse")
LAST = ("Nkosi", "Dlamini", "van der Merwe", "Naidoo", "Mokoena", "Botha", "Khumalo", "O'Neill", "Pillay",
        "Mahlangu", "Smith", "Jacobs", "Ndlovu", "Coetzee", "Molefe")
PERMISSIONS = (("bookings:read", "booking", "read"), ("bookings:write", "booking", "write"),
               ("services:write", "service", "write"), ("staff:manage", "user", "manage"),
               ("reports:read", "report", "read"), ("tenant:admin", "tenant", "admin"))
AGENTS = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Safari/604.1",
          "Mozilla/5.0 (Linux; Android 15) Chrome/131.0 Mobile", "Mozilla/5.0 (Windows NT 10.0) Firefox/133.0")


class SeedError(InputError):
    """The database cannot be seeded as it is (not empty); the message says what to do."""


@dataclass(frozen=True)
class SeedResult:
    rows: dict[str, int]


def _at(as_of: dt.datetime, **delta: float) -> str:
    """SQLite's 'YYYY-MM-DD HH:MM:SS' (UTC), `delta` before `as_of` (negative: after)."""
    return (as_of - dt.timedelta(**delta)).strftime("%Y-%m-%d %H:%M:%S")


def rows(as_of: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    """The rows to insert, table by table, for `as_of` (an aware UTC time)."""
    rng = random.Random(SEED)
    as_of = as_of.astimezone(dt.UTC).replace(microsecond=0)

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def ip() -> str:
        return f"198.51.100.{rng.randrange(2, 250)}"  # TEST-NET-2 (RFC 5737): never a real client

    data: dict[str, list[dict[str, Any]]] = {table: [] for table in TABLES}
    data["permissions"] = [{"id": f"perm-{name.replace(':', '-')}", "permission_name": name,
                            "resource_type": kind, "action": action} for name, kind, action in PERMISSIONS]
    for slug, name, hostname, widget in SALONS:
        tenant = f"tenant-{slug}"
        data["tenants"].append({"id": tenant, "slug": slug, "name": name, "hostname": hostname, "status": "active",
                                "created_at": _at(as_of, days=400 if slug == "instyle" else 120),
                                "turnstile_widget": widget})
        people: list[dict[str, Any]] = []
        for n, role in enumerate(["owner", "admin", "staff", "staff", "staff"] + ["customer"] * 20):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            domain = hostname.removeprefix("www.").removeprefix("book.")
            email = (f"{first}.{last}".lower().replace(" ", "").replace("'", "").replace("é", "e")
                     + f".{n}@{'example.com' if role == 'customer' else domain}")
            dormant = role == "customer" and n % 6 == 0  # no login for 120+ days: `users dormant` lists them
            people.append({
                "id": new_id(), "tenant_id": tenant, "email": email, "name": f"{first} {last}", "role": role,
                "status": "disabled" if n == 24 else "active",
                "created_at": _at(as_of, days=rng.randrange(150, 380)),
                "last_login": None if n == 23 else _at(as_of, days=rng.randrange(120, 200) if dormant
                                                       else rng.uniform(0, 20))})
        data["users"] += people
        staff = [p for p in people if p["role"] != "customer"]
        customers = [p for p in people if p["role"] == "customer" and p["status"] == "active"]
        services = [{"id": new_id(), "tenant_id": tenant, "name": s, "duration_minutes": minutes,
                     "price_cents": price, "active": 0 if s == "Braids" and slug == "glamour" else 1,
                     "created_at": _at(as_of, days=110)} for s, minutes, price in SERVICES]
        data["services"] += services
        for _ in range(70):
            days_ago = rng.uniform(-14, 30)  # starts from 30 days ago to two weeks ahead
            starts = (as_of - dt.timedelta(days=days_ago)).replace(minute=rng.choice((0, 30)), second=0)
            starts = starts.replace(hour=rng.randrange(8, 17))
            past = starts < as_of
            status = (rng.choices(("completed", "no_show", "cancelled"), (8, 1, 1))[0] if past
                      else rng.choices(("booked", "confirmed", "cancelled"), (5, 4, 1))[0])
            booked = max(days_ago, 0) + rng.uniform(0.1, 10)
            data["appointments"].append({
                "id": new_id(), "tenant_id": tenant, "service_id": rng.choice(services)["id"],
                "user_id": rng.choice(customers)["id"], "starts_at": starts.strftime("%Y-%m-%d %H:%M:%S"),
                "status": status,
                "payment_reference": (f"PSK_{rng.getrandbits(40):010x}" if status in ("confirmed", "completed")
                                      else None),
                "notes": rng.choice((None, None, "Allergic to ammonia; use the gentle dye", "Prefers Saturday")),
                "created_at": _at(as_of, days=booked)})
        for person in staff + customers[:6]:
            data["sessions"].append({"id": hashlib.sha256(new_id().encode()).hexdigest(), "user_id": person["id"],
                                     "created_at": _at(as_of, hours=rng.uniform(1, 20)),
                                     "expires_at": _at(as_of, hours=-rng.uniform(4, 24 * 7)),
                                     "ip_address": ip(), "user_agent": rng.choice(AGENTS)})
        owner, admin = staff[0], staff[1]
        for person in staff:
            granted = PERMISSIONS if person["role"] in ("owner", "admin") else PERMISSIONS[:2]
            data["user_permissions"] += [{"user_id": person["id"], "permission_id": f"perm-{p[0].replace(':', '-')}",
                                          "granted_at": _at(as_of, days=100)} for p in granted]
        data["role_audit_log"] += [
            {"user_id": staff[2]["id"], "changed_by": owner["id"], "action": "role_change", "resource_type": "user",
             "old_value": "customer", "new_value": "staff", "created_at": _at(as_of, days=3)},
            {"user_id": admin["id"], "changed_by": owner["id"], "action": "role_change", "resource_type": "user",
             "old_value": "staff", "new_value": "admin", "created_at": _at(as_of, days=40)}]
        key = {"id": new_id(), "user_id": owner["id"], "name": f"{slug} calendar sync",
               "key_hash": hashlib.sha256(f"{slug}-key".encode()).hexdigest(), "created_at": _at(as_of, days=90),
               "last_used": _at(as_of, minutes=5), "expires_at": _at(as_of, days=-275)}
        data["api_keys"].append(key)
        sync_ip = ip()
        for _ in range(120):
            data["api_usage_logs"].append({
                "api_key_id": key["id"], "user_id": owner["id"], "ip_address": sync_ip,
                "endpoint": rng.choice(("/api/bookings", "/api/services", "/api/availability")),
                "status_code": rng.choices((200, 201, 404, 500, 503), (80, 10, 5, 3, 2))[0],
                "response_time_ms": rng.randrange(18, 400), "timestamp": _at(as_of, hours=rng.uniform(0, 24 * 30))})
        if slug == "instyle":
            # A client polling far too often in the last hour: `audit security` reports the burst.
            data["api_usage_logs"] += [{"api_key_id": key["id"], "user_id": owner["id"], "ip_address": sync_ip,
                                        "endpoint": "/api/availability", "status_code": 200, "response_time_ms": 25,
                                        "timestamp": _at(as_of, minutes=50 - i * 0.4)} for i in range(120)]
        for person in staff + customers:
            for _ in range(rng.randrange(1, 4)):
                data["auth_attempts"].append({"email": person["email"], "ip_address": ip(), "success": 1,
                                              "user_agent": rng.choice(AGENTS),
                                              "timestamp": _at(as_of, hours=rng.uniform(0, 24 * 14))})
        data["audit_logs"] += [
            {"tenant_id": tenant, "user_id": admin["id"], "action": action, "resource_type": kind,
             "resource_id": None, "ip_address": ip(), "user_agent": rng.choice(AGENTS),
             "timestamp": _at(as_of, hours=hours)}
            for action, kind, hours in (("admin_login", "session", 2), ("service_update", "service", 5),
                                        ("privilege_grant", "user", 30), ("booking_cancel", "appointment", 9))]
    # Someone guessing passwords from one address in the last 24 hours (over the audit's threshold).
    target = data["users"][0]["email"]
    data["auth_attempts"] += [{"email": target, "ip_address": "203.0.113.66", "success": 0,
                               "user_agent": "python-requests/2.32", "timestamp": _at(as_of, minutes=300 - i * 7)}
                              for i in range(25)]
    return data


def seed(db: LocalDatabase, as_of: dt.datetime) -> SeedResult:
    """Write `rows(as_of)` into a migrated, empty local database, in one transaction."""
    require_tables(db, TABLES)
    present = {t: int(db.query(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"]) for t in TABLES}  # fixed names
    if any(present.values()):
        filled = ", ".join(f"{t} ({n})" for t, n in present.items() if n)
        raise SeedError(f"{db.label} already has rows in {filled}: seed only an empty, migrated database "
                        f"(remove the file and run `bookingctl migrate apply {db.fix_target}` first)")
    data = rows(as_of)
    columns = {t: [str(r["name"]) for r in db.query(f"PRAGMA table_info({t})")] for t in TABLES}
    with db.transaction() as conn:
        for table, records in data.items():
            for record in records:
                _insert(conn, table, record, columns[table])
    return SeedResult({table: len(records) for table, records in data.items()})


def _insert(conn: Any, table: str, record: dict[str, Any], columns: Sequence[str]) -> None:
    unknown = set(record) - set(columns)
    if unknown:
        raise TargetError(f"table {table} has no column(s) {', '.join(sorted(unknown))}: apply the migrations first")
    names = list(record)
    conn.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                 [record[n] for n in names])
