"""A stateful double of the parts of the Cloudflare API the operations use, on 127.0.0.1.

Real SQLite per D1 database; Time Travel bookmarks are snapshots (one taken before every write,
so restore-by-timestamp has history); export is a polling job whose dump is served from a signed
URL; Workers keep versions and deployments; zones with Cloudflare for SaaS keep custom hostnames
(paginated, moving from pending to active after some reads, or to a blocked state) and a fallback
origin; Turnstile widgets (listed, read and replaced whole, with the Free plan's per-widget
hostname limit unless a test raises it to Enterprise's). Answers mirror the API (the envelope, the in-progress
export status "active", the latest 10 deployments newest first); most tests drive it through the
SDK with `_strict_response_validation=True`, so a response the SDK's models reject fails them.
Faults are injected per request: 429, 5xx, slow responses, an export that fails, a download cut
short, and a request that is applied before its answer is lost (`Fault(applied=True)`), which is
what makes blind retries of writes dangerous.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, get_args
from urllib.parse import ParseResult, parse_qs, urlparse

from cloudflare.types.rulesets.phase import Phase

from booking_shared.edge import RATELIMIT_PHASE
from booking_shared.limits import (
    D1_STATEMENT_BYTES,
    TURNSTILE_MIN_HOSTNAMES_PER_WIDGET,
    TURNSTILE_WIDGETS_PER_ACCOUNT,
    RateLimitRule,
    ZonePlan,
    rate_limit_problems,
    turnstile_hostname_limit,
)
from booking_shared.naming import requests_dataset
from ops.sqlscript import is_transaction_control, split_statements
from tests.helpers import analytics_engine, cf_openapi, graphql_analytics, worker_traffic
from tests.helpers.d1_export import D1ExportError, export_text
from tests.helpers.worker_traffic import Served, Traffic

TOKEN = "test-token-not-a-real-secret"


@dataclass
class Fault:
    method: str
    path: str  # regex on the path
    status: int = 500
    delay: float = 0.0  # seconds to sleep before answering (timeouts)
    truncate: bool = False  # downloads: send half the body, then close
    # status 0: drop the connection without an answer. applied: do the request first, then fail it
    # (the answer is lost: the write happened although the client sees an error).
    applied: bool = False
    times: int = 1
    skip: int = 0  # let this many matching requests through untouched first
    # Sent as `retry-after-ms` with an injected error, which the SDK obeys instead of its exponential
    # backoff: storms exhaust the SDK's retries in milliseconds, so the tests stay fast.
    retry_after_ms: int = 5
    # Answer these bytes (with `status`, as application/json) instead: an API answering garbage.
    body: bytes | None = None


@dataclass
class D1State:
    uuid: str
    name: str
    path: Path
    snapshots: list[tuple[float, str, Path]] = field(default_factory=list)  # (time, bookmark, file)
    exports: dict[str, int] = field(default_factory=dict)  # at_bookmark -> polls so far


@dataclass
class ScriptState:
    versions: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    # Versions uploaded before the last secret change: deploying them needs force (error 10220).
    stale_secret_versions: set[str] = field(default_factory=set)
    # The Worker's requests per minute over all versions, split by the deployment serving at the time.
    requests_per_minute: float = 100.0
    traffic: dict[str, Traffic] = field(default_factory=dict)
    # (from when, version -> percentage): every change of the serving split, oldest first.
    share_history: list[tuple[dt.datetime, dict[str, float]]] = field(default_factory=list)

    def shares(self) -> dict[str, float]:
        """Version -> percentage of the newest deployment (what serves now)."""
        if not self.deployments:
            return {}
        newest = max(self.deployments, key=lambda d: d["created_on"])
        return {v["version_id"]: float(v["percentage"]) for v in newest["versions"]}


@dataclass
class SaasZoneState:
    """A zone with Cloudflare for SaaS: its custom hostnames (by id) and its fallback origin."""

    zone_id: str  # the zone itself (its name and plan) is double.zones[zone_id]
    hostnames: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> the API's object
    polls: dict[str, int] = field(default_factory=dict)  # id -> reads so far (states move on reads)
    fallback_origin: dict[str, Any] | None = None
    fallback_polls: int = 0
    # GET custom_hostnames/quota: the API reports both per zone (test values; see dispatch_doctor_reads).
    quota_allocated: int = 100
    quota_hard_cap: int = 5000


# --- API tokens and permission groups ------------------------------------------------------------
#
# Sources: a token's policies (effect, permission_groups {id, name}, resources) and how they are
# evaluated ("1. Explicit DENY Policies; 2. Explicit ALLOW Policies; 3. Implicit DENY ALL"), and the
# resource keys (`com.cloudflare.api.account.<id>`, `...account.zone.<id>`, all zones of an account as
# `{"com.cloudflare.api.account.<id>": {"com.cloudflare.api.account.zone.*": "*"}}`, the user as
# `com.cloudflare.api.user.<tag>`): cloudflare-docs fundamentals/api/how-to/create-via-api.mdx
# (12de1227). Group names as the API spells them, and which resource type each is scoped to (the
# table it is listed in): fundamentals/api/reference/permissions.mdx and its partials
# account-permissions-table.mdx (04047ca5), zone-permissions-table.mdx (077e0a3f),
# user-permissions-table.mdx. Group ids are made up here (uuid5 of the name): the API's ids are not
# published per group. Verify answers carry {id, status, expires_on, not_before} (the SDK's
# TokenVerifyResponse); token details are the SDK's shared `Token`.

ACCOUNT_GROUPS = ("Account Analytics Read", "Account Settings Read", "Account Settings Write", "D1 Read", "D1 Write",
                  "Notifications Read", "Notifications Write", "Pages Read", "Pages Write", "Turnstile Sites Read",
                  "Turnstile Sites Write", "Workers R2 Storage Read", "Workers R2 Storage Write",
                  "Workers Scripts Read", "Workers Scripts Write", "Account API Tokens Read")
ZONE_GROUPS = ("Zone Read", "DNS Read", "DNS Write", "Workers Routes Read", "Workers Routes Write", "Zone WAF Read",
               "Zone WAF Write", "Health Checks Read", "Health Checks Write", "SSL and Certificates Read",
               "SSL and Certificates Write")
USER_GROUPS = ("API Tokens Read",)


def group(name: str) -> dict[str, Any]:
    return {"id": uuid.uuid5(uuid.NAMESPACE_URL, f"cf-permission-group:{name}").hex, "name": name}


def policy(names: Iterable[str], resources: dict[str, Any], effect: str = "allow") -> dict[str, Any]:
    """A token policy as the API returns it."""
    return {"id": uuid.uuid4().hex, "effect": effect, "permission_groups": [group(n) for n in names],
            "resources": resources}


@dataclass
class TokenState:
    """An API token: a user token or an account owned one, its status and its policies."""

    token_id: str
    kind: str  # "user" | "account"
    policies: list[dict[str, Any]]
    status: str = "active"
    expires_on: str | None = None

    @classmethod
    def full(cls, account_id: str, *, kind: str = "user", leave_out: Iterable[str] = (),
             read_self: bool = True) -> TokenState:
        """A token with every group the project uses on the account and all its zones, less `leave_out`;
        `read_self`: it may read its own policies (API Tokens Read / Account API Tokens Read)."""
        gone = set(leave_out) | (set() if read_self else {"API Tokens Read", "Account API Tokens Read"})
        account = f"com.cloudflare.api.account.{account_id}"
        policies = [policy([g for g in ACCOUNT_GROUPS if g not in gone], {account: "*"}),
                    policy([g for g in ZONE_GROUPS if g not in gone],
                           {account: {"com.cloudflare.api.account.zone.*": "*"}})]
        if kind == "user" and read_self:
            user = "com.cloudflare.api.user.9a7806061c88ada191ed06f989cc3dac"
            policies.append(policy(USER_GROUPS, {user: "*"}))
        return cls(uuid.uuid4().hex, kind, policies)

    def granted(self, scope: str, account_id: str) -> set[str]:
        """Group names granted on `scope` ("account", "user" or a zone id): allowed minus denied."""
        account_keys = (f"com.cloudflare.api.account.{account_id}", "com.cloudflare.api.account.*")
        zone_keys = (f"com.cloudflare.api.account.zone.{scope}", "com.cloudflare.api.account.zone.*")
        allowed: set[str] = set()
        denied: set[str] = set()
        for p in self.policies:
            resources = p["resources"]
            if scope == "user":
                covered = any(k.startswith("com.cloudflare.api.user.") and v == "*" for k, v in resources.items())
                kinds: tuple[str, ...] = USER_GROUPS
            elif scope == "account":
                covered = any(resources.get(k) == "*" for k in account_keys)
                kinds = ACCOUNT_GROUPS
            else:
                covered = any(resources.get(k) == "*" for k in zone_keys) or any(
                    isinstance(resources.get(k), dict) and any(resources[k].get(z) == "*" for z in zone_keys)
                    for k in account_keys)
                kinds = ZONE_GROUPS
            # "a permission group in a policy will only apply to the resource type it is scoped for"
            names = {g["name"] for g in p["permission_groups"] if g["name"] in kinds}
            if covered:
                (denied if p["effect"] == "deny" else allowed).update(names)
        return allowed - denied


# Reads the double checks a token's permissions for: (method, path pattern, whether group 1 is a zone
# id, the groups any one of which the API accepts). Sources: the API reference's "Accepted
# Permissions (at least one required)" (List D1 Databases; List Turnstile Widgets; List Health
# Checks) and pulumi-cloudflare 6.23.1's per-resource lists (get_zone.py, custom_hostname.py,
# workers_deployment.py, r2_bucket.py). The http_ratelimit entry point's read: "Zone WAF" is the
# zone permission for the WAF, whose phase http_ratelimit is (waf/reference/phases.mdx). Routes not
# listed here are not permission-checked: add a row, with its source, when a test needs one.
ZONE_READ = ("Zone Read", "DNS Read", "DNS Write", "Workers Routes Read", "Workers Routes Write",
             "SSL and Certificates Read", "SSL and Certificates Write", "Zone WAF Read", "Zone WAF Write")
READ_PERMISSIONS: tuple[tuple[str, str, bool, tuple[str, ...]], ...] = (
    ("GET", r"/accounts/[^/]+/d1/database", False, ("D1 Read", "D1 Write")),
    ("GET", r"/accounts/[^/]+/r2/buckets/[^/]+", False, ("Workers R2 Storage Read", "Workers R2 Storage Write")),
    ("GET", r"/accounts/[^/]+/challenges/widgets(?:/[^/]+)?", False,
     ("Turnstile Sites Read", "Turnstile Sites Write", "Account Settings Read", "Account Settings Write")),
    ("GET", r"/accounts/[^/]+/workers/scripts/[^/]+/(?:deployments|versions)", False,
     ("Workers Scripts Read", "Workers Scripts Write")),
    ("GET", r"/zones/([^/]+)", True, ZONE_READ),
    ("GET", r"/zones/([^/]+)/rulesets/phases/http_ratelimit/entrypoint", True, ("Zone WAF Read", "Zone WAF Write")),
    ("GET", r"/zones/([^/]+)/custom_hostnames(?:/quota)?", True,
     ("SSL and Certificates Read", "SSL and Certificates Write")),
)


@dataclass
class ZoneState:
    """A zone's plan and its rulesets (the "zone rulesets" section below): what `doctor` reads."""

    zone_id: str
    plan: ZonePlan = "free"
    name: str = "example.co.za"
    rulesets: list[dict[str, Any]] = field(default_factory=list)  # as the API returns them, rules included

    def entry_point(self, phase: str) -> dict[str, Any] | None:
        return next((r for r in self.rulesets if r["kind"] == "zone" and r["phase"] == phase), None)


class CloudflareDouble:
    def __init__(self, root: Path, account_id: str) -> None:
        self.root, self.account_id = root, account_id
        self.databases: dict[str, D1State] = {}
        self.scripts: dict[str, ScriptState] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        # What the OpenAPI document refuses (tests/helpers/cf_openapi.py): requests the API would reject
        # and answers of the double that do not fit it; tests/conftest.py fails the test that caused one.
        self.violations: list[str] = []
        self.sql: list[str] = []  # the SQL of every /query request, in order (applied or not)
        self.restores: list[float] = []
        self.downloads: dict[str, Path] = {}
        self.buckets: dict[str, dict[str, bytes]] = {}
        self.graphql_errors: str | None = None  # set: every GraphQL query answers this error
        # Analytics (tests/helpers/worker_traffic.py): the double's wall clock, how late served requests
        # become visible to queries, and the adaptive datasets' sample interval (1: unsampled, as at low volume).
        self.now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        self.ingestion_delay = dt.timedelta(minutes=3)
        self.sample_interval = 1
        # Workers Analytics Engine (tests/helpers/analytics_engine.py): dataset -> the script whose Worker
        # writes it (add_script binds each script's requests dataset, as infra/worker.py does).
        self.analytics_engine_datasets: dict[str, str] = {}
        self.export_polls_needed = 2
        self.export_fails = False
        # The HTTP status of error 10220 is not documented (wrangler's tests use 400); tests vary it.
        self.secrets_changed_status = 400
        self.lock = threading.RLock()
        self._seq = 0
        # Cloudflare for SaaS (see "custom hostnames" below): zones by id; a custom hostname becomes
        # active after this many reads, unless its hostname is in `blocked_hostnames` (hostname ->
        # "validation_timed_out", the salon never published the records, or "blocked", Cloudflare refuses it).
        self.saas_zones: dict[str, SaasZoneState] = {}
        self.custom_hostname_polls_needed = 2
        self.blocked_hostnames: dict[str, str] = {}
        # Turnstile (see "Turnstile widgets" below): widgets by sitekey, and how many hostnames a
        # widget may list: the Free plan's 15 (booking_shared.limits); tests of Enterprise set 200.
        self.turnstile_widgets: dict[str, dict[str, Any]] = {}
        self.turnstile_hostname_limit: int = turnstile_hostname_limit("free")
        # API tokens (see "API tokens and permissions" below): by value; TOKEN is a user token
        # granted every permission group the project uses, on the account and all its zones.
        self.tokens: dict[str, TokenState] = {TOKEN: TokenState.full(self.account_id)}
        # Zones with a plan and rulesets (see "zone rulesets" below), by zone id: `add_zone`.
        self.zones: dict[str, ZoneState] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- lifecycle and set-up ------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/client/v4"

    def start(self) -> CloudflareDouble:
        self.thread.start()
        _started.append(self)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_database(self, name: str, source: Path | None = None) -> D1State:
        db_id = str(uuid.uuid4())
        path = self.root / f"{db_id}.sqlite"
        if source is not None:
            shutil.copy(source, path)
        else:
            sqlite3.connect(path).close()
        state = D1State(db_id, name, path)
        self.databases[db_id] = state
        return state

    def add_version(self, name: str) -> str:
        """Upload one more version of script `name` (what `pulumi up` does before deploying); its id."""
        script = self.scripts[name]
        number = max((v["number"] for v in script.versions), default=0) + 1
        version_id = str(uuid.uuid4())
        created = (dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(hours=number)).isoformat()
        script.versions.append({"id": version_id, "number": number,
                                "metadata": {"created_on": created, "source": "terraform",
                                             "author_email": "ci@example.co.za"}})
        return version_id

    def add_script(self, name: str, versions: int, *, stale_secrets_before: int | None = None) -> ScriptState:
        script = ScriptState()
        for number in range(1, versions + 1):
            version_id = str(uuid.uuid4())
            created = (dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(hours=number)).isoformat()
            script.versions.append({"id": version_id, "number": number,
                                    "metadata": {"created_on": created, "source": "terraform",
                                                 "author_email": "ci@example.co.za"}})
            if stale_secrets_before is not None and number < stale_secrets_before:
                script.stale_secret_versions.add(version_id)
            script.deployments.append(self._deployment([(version_id, 100.0)], "terraform"))
            script.share_history.append((self.now(), {version_id: 100.0}))
        self.scripts[name] = script
        self.analytics_engine_datasets[requests_dataset(name)] = name
        return script

    def _deployment(self, versions: list[tuple[str, float]], source: str) -> dict[str, Any]:
        self._seq += 1
        created = dt.datetime(2026, 11, 2, tzinfo=dt.UTC) + dt.timedelta(minutes=self._seq)
        return {"id": str(uuid.uuid4()), "created_on": created.isoformat(), "source": source,
                "strategy": "percentage", "versions": [{"version_id": v, "percentage": p} for v, p in versions],
                "annotations": {"workers/message": "deployed"}}

    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and re.search(fault.path, path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # --- D1 --------------------------------------------------------------------------------

    def snapshot(self, db: D1State) -> str:
        with self.lock:
            self._seq += 1
            bookmark = f"{self._seq:08d}-{uuid.uuid4().hex[:8]}"
            copy = self.root / f"{db.uuid}.{bookmark}.snapshot"
            src, dst = sqlite3.connect(db.path), sqlite3.connect(copy)
            src.backup(dst)
            src.close()
            dst.close()
            db.snapshots.append((time.time(), bookmark, copy))
            return bookmark

    def _query(self, db: D1State, body: dict[str, Any]) -> tuple[int, Any]:
        sql, params = str(body.get("sql") or ""), list(body.get("params") or [])
        statements = split_statements(sql)
        for statement in statements:
            # "Maximum SQL statement length: 100,000 bytes (100 KB)", for each statement of a batch alike
            # (cloudflare-docs src/content/docs/d1/platform/limits.mdx @ d532f313). The wording of D1's
            # refusal is not published; the status and code are those of its other SQL errors here.
            if len(statement.sql.encode()) > D1_STATEMENT_BYTES:
                return 400, _error(7500, f"statement too long: {len(statement.sql.encode())} bytes, D1 takes at most "
                                         f"{D1_STATEMENT_BYTES}: SQLITE_TOOBIG")
            if is_transaction_control(statement):
                return 400, _error(7500, "To execute a transaction, please use the state.storage.transaction() "
                                         "or state.storage.transactionSync() APIs instead of the SQL BEGIN "
                                         "TRANSACTION or SAVEPOINT statements.")
        if any(not s.sql.lstrip().upper().startswith(("SELECT", "PRAGMA", "EXPLAIN")) for s in statements):
            self.snapshot(db)  # Time Travel history: the state before every write
        conn = sqlite3.connect(db.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        results = []
        try:
            # One request, one transaction, as on D1: wrangler sends a migration and its d1_migrations
            # row in one /query request and documents that a failing migration "will be rolled back"
            # (workers-sdk packages/wrangler/src/d1/migrations/apply.ts; see ops/migrations.py).
            conn.execute("BEGIN")
            for statement in statements:
                started = time.perf_counter()
                cursor = conn.execute(statement.sql, params if len(statements) == 1 else [])
                rows = [dict(r) for r in cursor.fetchall()]
                results.append({"results": rows, "success": True, "meta": {
                    "changed_db": conn.total_changes > 0, "changes": cursor.rowcount if cursor.rowcount > 0 else 0,
                    "duration": round((time.perf_counter() - started) * 1000, 3),
                    "last_row_id": cursor.lastrowid or 0, "rows_read": len(rows),
                    "rows_written": max(cursor.rowcount, 0), "served_by_primary": True,
                    "served_by_region": "WEUR", "size_after": db.path.stat().st_size}})
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # nothing of a failed request stays applied
            return 400, _error(7500, f"{exc}: SQLITE_ERROR")
        finally:
            conn.close()
        return 200, {"success": True, "errors": [], "messages": [], "result": results}

    @staticmethod
    def _at(db: D1State, timestamp: str) -> str | None:
        """The bookmark of the state at `timestamp`: the last snapshot taken at or before it."""
        at = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
        older = [b for t, b, _ in db.snapshots if t <= at]
        return older[-1] if older else None

    def _bookmark(self, db: D1State, query: dict[str, list[str]]) -> tuple[int, Any]:
        if "timestamp" in query:
            bookmark = self._at(db, query["timestamp"][0])
            if bookmark is None:
                return 400, _error(7400, "no Time Travel history at that timestamp")
            return 200, _ok({"bookmark": bookmark})
        return 200, _ok({"bookmark": self.snapshot(db)})

    def _restore(self, db: D1State, query: dict[str, list[str]]) -> tuple[int, Any]:
        now = time.time()
        with self.lock:
            self.restores = [t for t in self.restores if now - t < 600]
            if len(self.restores) >= 10:
                return 429, _error(7429, "Too many restores: at most 10 per 10 minutes")
            self.restores.append(now)
        bookmark = (query.get("bookmark") or [""])[0]
        if "timestamp" in query:
            bookmark = self._at(db, query["timestamp"][0]) or ""
            if not bookmark:
                return 400, _error(7400, "no Time Travel history at that timestamp")
        target = next((path for _, b, path in db.snapshots if b == bookmark), None)
        if target is None:
            return 400, _error(7404, f"unknown bookmark {bookmark}")
        previous = self.snapshot(db)
        src, dst = sqlite3.connect(target), sqlite3.connect(db.path)
        src.backup(dst)
        src.close()
        dst.close()
        # `bookmark` is "the new bookmark representing the state of the database after the restore"
        # (SDK types/d1/database/time_travel_restore_response.py), not the target.
        return 200, _ok({"bookmark": self.snapshot(db), "previous_bookmark": previous,
                         "message": f"Restored database {db.uuid} to bookmark {bookmark}"})

    def _export(self, db: D1State, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("output_format") != "polling":
            return 400, _error(7400, "output_format must be polling")
        at = body.get("current_bookmark") or self.snapshot(db)
        polls = db.exports.get(at, 0) + 1
        db.exports[at] = polls
        if polls < self.export_polls_needed:
            # In progress, as the API says it (wrangler's types: "active"); the SDK's model lists only
            # complete/error, so strict validation would reject this answer.
            return 200, _ok({"success": True, "type": "export", "at_bookmark": at, "status": "active",
                             "messages": [f"Generating export (poll {polls})"]})
        if self.export_fails:
            return 200, _ok({"success": False, "type": "export", "at_bookmark": at, "status": "error",
                             "error": "export failed: the database was busy", "messages": []})
        snapshot = next(path for _, b, path in db.snapshots if b == at)
        token = uuid.uuid4().hex
        dump = self.root / f"{token}.sql"
        conn = sqlite3.connect(snapshot)
        try:
            # D1's own export format, not iterdump()'s (tests/helpers/d1_export.py names the source).
            dump.write_text(export_text(conn), encoding="utf-8")
        except D1ExportError as exc:
            return 200, _ok({"success": False, "type": "export", "at_bookmark": at, "status": "error",
                             "error": str(exc), "messages": []})
        finally:
            conn.close()
        self.downloads[token] = dump
        return 200, _ok({"success": True, "type": "export", "at_bookmark": at, "status": "complete",
                         "messages": ["Export complete"],
                         "result": {"filename": f"{db.name}-{at}.sql",
                                    "signed_url": self.base_url.replace("/client/v4", f"/__downloads/{token}")}})

    # --- Workers ---------------------------------------------------------------------------

    def _deploy(self, script: ScriptState, body: dict[str, Any], force: bool) -> tuple[int, Any]:
        versions = body.get("versions") or []
        known = {v["id"] for v in script.versions}
        if not versions or sum(float(v.get("percentage", 0)) for v in versions) != 100:
            return 400, _error(10021, "percentages must add up to 100")
        for v in versions:
            if v.get("version_id") not in known:
                return 404, _error(10007, f"version {v.get('version_id')} not found")
            if v["version_id"] in script.stale_secret_versions and not force:
                return self.secrets_changed_status, _error(
                    10220, "A secret has changed since this version was active. If you are sure this is ok, add a "
                           "?force=true query parameter to allow the rollback. The following secrets have changed: "
                           "PAYSTACK_SECRET_KEY")
        if len(versions) > 2:
            return 400, _error(10021, "a deployment can consist of one or two versions")
        deployment = self._deployment([(v["version_id"], float(v["percentage"])) for v in versions], "api")
        message = (body.get("annotations") or {}).get("workers/message")
        if isinstance(message, str):  # "Truncated to 1000 bytes if longer" (see cf_openapi.AMENDMENTS)
            deployment["annotations"] = {"workers/message": message.encode()[:1000].decode(errors="ignore")}
        script.deployments.append(deployment)
        script.share_history.append((self.now(), {v["version_id"]: float(v["percentage"]) for v in versions}))
        return 200, _ok(deployment)

    # --- HTTP ------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle's algorithm on, the body waits for the
            # client's delayed ACK (~40 ms a request), which made 100 onboardings take half a minute.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send_bytes(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _send_text(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _send_raw(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                url = urlparse(self.path)
                double.requests.append((method, url.path))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if url.path.endswith("/query") and raw:
                    double.sql.append(str(json.loads(raw).get("sql", "")))
                refused = double.check_request(method, url, self.headers.get("Content-Type"), raw)
                if refused is not None:
                    return self._send(400, refused)
                fault = double._take_fault(method, url.path)
                if url.path.startswith("/__downloads/"):
                    return self._download(url.path.rsplit("/", 1)[-1], fault)
                if fault is not None and fault.applied:
                    body = json.loads(raw) if raw else {}
                    double.dispatch(method, url.path, parse_qs(url.query), body)  # it happened...
                    if fault.status == 0:  # ...and the answer is lost with the connection
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return None
                    return self._send(fault.status, _error(fault.status, "injected fault after applying"))
                if fault is not None:
                    if fault.delay:
                        time.sleep(fault.delay)
                    if fault.body is not None:
                        return self._send_raw(fault.status, fault.body)
                    if fault.status == 0:  # the connection drops before anything is done
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return None
                    if fault.status != 200:
                        return self._send(fault.status, _error(fault.status, "injected fault"),
                                          {"retry-after-ms": str(fault.retry_after_ms)})
                token = double.token_of(self.headers.get("Authorization"))
                if token is None or not double.permitted(token, method, url.path):
                    return self._send(403, _error(10000, "Authentication error"))
                if url.path.startswith(("/client/v4/user/tokens", f"/client/v4/accounts/{double.account_id}/tokens")):
                    return self._send(*double.dispatch_tokens(token, method, url.path))
                if method == "PUT" and "/r2/buckets/" in url.path:
                    status, payload = double.put_object(url.path, raw)
                    return self._send(status, double.check_response(method, url.path, status, payload))
                if method == "POST" and url.path == "/client/v4/graphql":
                    return self._send(*double.graphql(json.loads(raw) if raw else {}))
                if method == "POST" and url.path == f"/client/v4/accounts/{double.account_id}/analytics_engine/sql":
                    status, answer = analytics_engine.answer(raw.decode("utf-8", "replace"), double._datasets())
                    if isinstance(answer, str):
                        return self._send_text(status, answer)
                    return self._send(status, answer)
                stored = double.get_object(url.path) if method == "GET" else None
                if stored is not None:
                    return self._send_bytes(stored)
                body = json.loads(raw) if raw else {}
                status, payload = double.dispatch(method, url.path, parse_qs(url.query), body)
                self._send(status, double.check_response(method, url.path, status, payload))

            def _download(self, token: str, fault: Fault | None) -> None:
                path = double.downloads.get(token)
                if path is None:
                    return self._send(404, _error(404, "expired or unknown signed URL"))
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/sql")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if fault is not None and fault.truncate:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

            def do_DELETE(self) -> None:
                self._route("DELETE")

            def do_PATCH(self) -> None:
                self._route("PATCH")

        return Handler

    # --- the OpenAPI document: one check of every REST request and answer -------------------

    def check_request(self, method: str, url: ParseResult, content_type: str | None, raw: bytes) -> Any:
        """None, or the API's 400 answer to a request its OpenAPI document refuses (recorded)."""
        if not url.path.startswith(cf_openapi.BASE_PATH + "/"):
            return None  # signed download URLs: storage, not the API (see cf_openapi)
        path = url.path.removeprefix(cf_openapi.BASE_PATH)
        problem = cf_openapi.load().problem_with_request(method, path, parse_qs(url.query, keep_blank_values=True),
                                                         content_type, raw)
        if problem is None:
            return None
        with self.lock:
            self.violations.append(f"request {method} {url.path}?{url.query}: {problem}")
        return _error(cf_openapi.REFUSED_CODE, problem)

    def check_response(self, method: str, path: str, status: int, payload: Any) -> Any:
        """`payload`, after recording (as a bug of the double) where it does not fit the document."""
        problem = cf_openapi.load().problem_with_response(method, path.removeprefix(cf_openapi.BASE_PATH), status,
                                                          payload)
        if problem is not None:
            with self.lock:
                self.violations.append(f"the double's answer to {method} {path}: {problem}")
        return payload

    def put_object(self, path: str, data: bytes) -> tuple[int, Any]:
        match = re.fullmatch(rf"/client/v4/accounts/{self.account_id}/r2/buckets/([^/]+)/objects/(.+)", path)
        if match is None or match.group(1) not in self.buckets:
            return 404, _error(10006, "The specified bucket does not exist.")
        self.buckets[match.group(1)][match.group(2)] = data
        return 200, _ok({"key": match.group(2), "etag": uuid.uuid4().hex, "size": str(len(data)),
                         "uploaded": dt.datetime.now(dt.UTC).isoformat(), "storage_class": "Standard"})

    def get_object(self, path: str) -> bytes | None:
        """An R2 object's bytes for GET .../r2/buckets/B/objects/KEY (None: not such a path or no such key)."""
        match = re.fullmatch(rf"/client/v4/accounts/{self.account_id}/r2/buckets/([^/]+)/objects/(.+)", path)
        if match is None:
            return None
        with self.lock:
            return self.buckets.get(match.group(1), {}).get(match.group(2))

    # --- GraphQL Analytics: workersInvocationsAdaptive (tests/helpers/graphql_analytics.py) ----

    def served(self, script_name: str, since: dt.datetime, until: dt.datetime) -> list[Served]:
        """What `script_name`'s versions served in [since, until] that analytics show by now (late rows left out)."""
        with self.lock:
            script = self.scripts.get(script_name)
            if script is None:
                return []
            return worker_traffic.served(list(script.share_history), script.requests_per_minute,
                                         dict(script.traffic), since, until, self.now() - self.ingestion_delay)

    def graphql(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(status, body) of POST /graphql: validated against the published schema, then executed."""
        if self.graphql_errors:
            status, answer = graphql_analytics.answer(body, self._analytics())
            if status != 200:
                return status, answer  # an invalid query is refused before any outage could answer
            return 200, {"data": None, "errors": [{"message": self.graphql_errors, "path": ["viewer", "accounts"],
                                                   "extensions": {"timestamp": self.now().isoformat()}}]}
        return graphql_analytics.answer(body, self._analytics())

    def _analytics(self) -> graphql_analytics.Dataset:
        return graphql_analytics.Dataset(self.account_id, self.served, self.sample_interval, self.now)

    def _datasets(self) -> analytics_engine.Datasets:
        with self.lock:
            return analytics_engine.Datasets(dict(self.analytics_engine_datasets), self.served, self.sample_interval)

    def dispatch(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> tuple[int, Any]:
        doctor_read = self.dispatch_doctor_reads(method, path)
        if doctor_read is not None:
            return doctor_read
        if path.startswith("/client/v4/zones/"):
            rest = path.removeprefix("/client/v4/zones/")
            with self.lock:
                if _ZONE_OR_RULESETS.fullmatch(rest):
                    return self.dispatch_zone_rulesets(method, rest, query, body)
                return self.dispatch_zone(method, rest, query, body)
        prefix = f"/client/v4/accounts/{self.account_id}"
        if not path.startswith(prefix):
            return 404, _error(7003, "Could not route to this account")
        rest = path[len(prefix):]
        with self.lock:
            if method == "GET" and rest == "/d1/database":
                # `name` is "a database name to search for" (the SDK's DatabaseListParams): read as a
                # substring search, the harder answer for a caller, who must match the exact name.
                # `page`/`per_page` page the list; the SDK asks for page n+1 until a page is empty
                # (V4PagePaginationArray). The default page size is not published: any one pages alike.
                name = (query.get("name") or [""])[0]
                page = int(float((query.get("page") or ["1"])[0]))
                per_page = int(float((query.get("per_page") or ["100"])[0]))
                if page < 1 or per_page < 1:
                    return 400, _error(7400, "page and per_page must be positive")
                everything = [{"uuid": d.uuid, "name": d.name, "version": "production",
                               "created_at": "2026-01-01T00:00:00Z"}
                              for d in self.databases.values() if name in d.name]
                found = everything[(page - 1) * per_page: page * per_page]
                return 200, {"success": True, "errors": [], "messages": [], "result": found,
                             "result_info": {"count": len(found), "page": page, "per_page": per_page,
                                             "total_count": len(everything)}}
            match = re.fullmatch(r"/d1/database/([^/]+)(/.*)", rest)
            if match:
                db = self.databases.get(match.group(1))
                if db is None:
                    return 404, _error(7404, "database not found")
                action = match.group(2)
                if method == "POST" and action == "/query":
                    return self._query(db, body)
                if method == "GET" and action == "/time_travel/bookmark":
                    return self._bookmark(db, query)
                if method == "POST" and action == "/time_travel/restore":
                    return self._restore(db, query)
                if method == "POST" and action == "/export":
                    return self._export(db, body)
            match = re.fullmatch(r"/r2/buckets/([^/]+)/objects", rest)
            if match and method == "GET":
                objects = self.buckets.get(match.group(1))
                if objects is None:
                    return 404, _error(10006, "The specified bucket does not exist.")
                prefix = (query.get("prefix") or [""])[0]
                found = [{"key": k, "size": len(v), "etag": "e", "storage_class": "Standard",
                          "last_modified": "2026-11-26T00:00:00Z"} for k, v in sorted(objects.items())
                         if k.startswith(prefix)]
                return 200, {"success": True, "errors": [], "messages": [], "result": found,
                             "result_info": {"is_truncated": False, "per_page": 1000}}
            match = re.fullmatch(r"/workers/scripts/([^/]+)/(versions|deployments)", rest)
            if match:
                script = self.scripts.get(match.group(1))
                if script is None:
                    return 404, _error(10007, "script not found")
                if match.group(2) == "versions" and method == "GET":
                    # Paginated like the API: the SDK asks for the next page until one is empty.
                    everything = sorted(script.versions, key=lambda v: -v["number"])
                    page = int((query.get("page") or ["1"])[0])
                    per_page = int((query.get("per_page") or ["20"])[0])
                    items = everything[(page - 1) * per_page: page * per_page]
                    # No `result_info`: the document's worker-versions-list-versions answer has none.
                    return 200, {"success": True, "errors": [], "messages": [], "result": {"items": items}}
                if match.group(2) == "deployments" and method == "GET":
                    # The API lists the latest deployments, newest (the one serving) first.
                    newest_first = sorted(script.deployments, key=lambda d: d["created_on"], reverse=True)
                    return 200, _ok({"deployments": newest_first[:10]})
                if match.group(2) == "deployments" and method == "POST":
                    return self._deploy(script, body, (query.get("force") or ["false"])[0] == "true")
            if rest == "/challenges/widgets" or rest.startswith("/challenges/widgets/"):
                return self.dispatch_turnstile(method, rest.removeprefix("/challenges/widgets"), query, body)
        return 404, _error(7000, f"No route for {method} {path}")


    # --- custom hostnames (Cloudflare for SaaS), zone-scoped --------------------------------

    def add_saas_zone(self, zone_id: str, name: str = "saas.example.co.za", *,
                      plan: ZonePlan = "free") -> SaasZoneState:
        """A zone with Cloudflare for SaaS; it is also a zone (GET /zones/{id}, its rulesets) like any other."""
        state = SaasZoneState(zone_id)
        self.saas_zones[zone_id] = state
        if zone_id not in self.zones:
            self.add_zone(zone_id, plan, name=name)
        return state

    def dispatch_zone(self, method: str, rest: str, query: dict[str, list[str]],
                      body: dict[str, Any]) -> tuple[int, Any]:
        """`/zones/{zone}/custom_hostnames[...]`: list (paginated), create, get, delete, fallback origin.

        The zone itself (GET /zones/{zone}) and its rulesets are `dispatch_zone_rulesets`'s."""
        match = re.fullmatch(r"([^/]+)/custom_hostnames(?:/([^/]+))?", rest)
        if match is None:
            return 404, _error(7000, f"No route for {method} /zones/{rest}")
        zone = self.saas_zones.get(match.group(1))
        if zone is None:
            return 404, _error(7003, "Could not route to /zones/" + rest + ", perhaps your object identifier is "
                                     "invalid?")
        item = match.group(2)
        if item == "fallback_origin":
            return self._fallback_origin(zone, method, body)
        if item is None and method == "GET":
            return self._list_custom_hostnames(zone, query)
        if item is None and method == "POST":
            return self._create_custom_hostname(zone, body)
        if item is not None and item in zone.hostnames:
            if method == "GET":
                return 200, _ok(self._read_custom_hostname(zone, item))
            if method == "PATCH":
                return 200, _ok(self._edit_custom_hostname(zone, item, body))
            if method == "DELETE":
                del zone.hostnames[item]
                # The SDK casts the whole body to CustomHostnameDeleteResponse (no envelope).
                return 200, {"id": item}
        if item is not None:
            return 404, _error(1436, "The custom hostname was not found.")
        return 404, _error(7000, f"No route for {method} /zones/{rest}")

    def _create_custom_hostname(self, zone: SaasZoneState, body: dict[str, Any]) -> tuple[int, Any]:
        hostname = str(body.get("hostname") or "")
        ssl = body.get("ssl") or {}
        if not hostname:
            return 400, _error(1400, "hostname is required")
        if ssl.get("method") not in ("http", "txt", "email") or ssl.get("type") != "dv":
            return 400, _error(1416, "ssl.method must be http, txt or email and ssl.type dv")
        if any(h["hostname"] == hostname for h in zone.hostnames.values()):
            return 409, _error(1406, "Duplicate custom hostname found.")
        # The quota's hard_cap is "the maximum number of custom hostnames allowed before create
        # requests are rejected" (the SDK's QuotaGetResponse); the status and code of that refusal are
        # not published, so callers may rely only on a 4xx (400 here).
        if len(zone.hostnames) >= zone.quota_hard_cap:
            return 400, _error(1400, f"custom hostname quota exceeded: the zone's hard cap is {zone.quota_hard_cap}")
        hostname_id = str(uuid.uuid4())
        zone.hostnames[hostname_id] = {
            "id": hostname_id, "hostname": hostname, "created_at": "2026-11-27T08:00:00Z", "status": "pending",
            "verification_errors": ["custom hostname does not CNAME to this zone."],
            "ownership_verification": {"type": "txt", "name": f"_cf-custom-hostname.{hostname}",
                                       "value": str(uuid.uuid4())},
            "ownership_verification_http": {
                "http_url": f"http://{hostname}/.well-known/cf-custom-hostname-challenge/{hostname_id}",
                "http_body": str(uuid.uuid4())},
            "ssl": {"id": str(uuid.uuid4()), "type": "dv", "method": ssl["method"], "status": "pending_validation",
                    "bundle_method": "ubiquitous", "certificate_authority": "google", "wildcard": False,
                    "settings": {"min_tls_version": (ssl.get("settings") or {}).get("min_tls_version", "1.0")},
                    "validation_records": [{"status": "pending", "txt_name": f"_acme-challenge.{hostname}",
                                            "txt_value": uuid.uuid4().hex}]},
        }
        zone.polls[hostname_id] = 0
        return 200, _ok(zone.hostnames[hostname_id])

    def _edit_custom_hostname(self, zone: SaasZoneState, hostname_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """A PATCH with `ssl` restarts a certificate validation that timed out, with a new record."""
        record = zone.hostnames[hostname_id]
        if body.get("ssl") and record["ssl"]["status"].endswith("_timed_out"):
            record["ssl"]["status"] = "pending_validation"
            record["ssl"].pop("validation_errors", None)
            record["ssl"]["validation_records"] = [{"status": "pending", "txt_name": f"_acme-challenge."
                                                    f"{record['hostname']}", "txt_value": uuid.uuid4().hex}]
            zone.polls[hostname_id] = 0
            self.blocked_hostnames.pop(record["hostname"], None)  # the salon has published the records now
        return record

    def _read_custom_hostname(self, zone: SaasZoneState, hostname_id: str) -> dict[str, Any]:
        """The hostname as a read sees it; each read is a poll that moves it along its states."""
        record = zone.hostnames[hostname_id]
        zone.polls[hostname_id] += 1
        if zone.polls[hostname_id] < self.custom_hostname_polls_needed or record["status"] != "pending":
            return record
        outcome = self.blocked_hostnames.get(record["hostname"])
        if outcome == "blocked":
            record["status"] = "blocked"
            record["verification_errors"] = ["The hostname is blocked: it matches a high-risk domain; contact "
                                              "support."]
        elif outcome == "validation_timed_out":
            record["ssl"]["status"] = "validation_timed_out"
            record["ssl"]["validation_errors"] = [{"message": "TXT record not found at _acme-challenge."
                                                              f"{record['hostname']}"}]
        else:
            record["status"] = "active"
            record.pop("verification_errors", None)
            record["ssl"]["status"] = "active"
            record["ssl"].pop("validation_records", None)
        return record

    def _list_custom_hostnames(self, zone: SaasZoneState, query: dict[str, list[str]]) -> tuple[int, Any]:
        page = int(float((query.get("page") or ["1"])[0]))
        per_page = int(float((query.get("per_page") or ["20"])[0]))
        if not 5 <= per_page <= 50:
            return 400, _error(1004, "per_page must be between 5 and 50")
        exact = (query.get("hostname.exact") or [None])[0]
        wanted = (query.get("id") or [None])[0]
        matching = [i for i, h in sorted(zone.hostnames.items(), key=lambda kv: kv[1]["hostname"])
                    if exact in (None, h["hostname"]) and wanted in (None, i)]
        items = [self._read_custom_hostname(zone, i) for i in matching[(page - 1) * per_page: page * per_page]]
        return 200, {"success": True, "errors": [], "messages": [], "result": items,
                     "result_info": {"page": page, "per_page": per_page, "count": len(items),
                                     "total_count": len(matching)}}

    def _fallback_origin(self, zone: SaasZoneState, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "PUT":
            origin = str(body.get("origin") or "")
            if not origin:
                return 400, _error(1400, "origin is required")
            zone.fallback_origin = {"origin": origin, "status": "pending_deployment", "errors": [],
                                    "created_at": "2026-11-27T08:00:00Z", "updated_at": "2026-11-27T08:00:00Z"}
            zone.fallback_polls = 0
            return 200, _ok(zone.fallback_origin)
        if zone.fallback_origin is None:
            return 404, _error(1551, "No fallback origin has been set for this zone.")
        if method == "GET":
            zone.fallback_polls += 1
            if zone.fallback_polls >= self.custom_hostname_polls_needed:
                zone.fallback_origin["status"] = "active"
            return 200, _ok(zone.fallback_origin)
        if method == "DELETE":
            gone, zone.fallback_origin = zone.fallback_origin, None
            return 200, _ok({**gone, "status": "pending_deletion"})
        return 404, _error(7000, f"No route for {method} fallback_origin")

    # --- zone rulesets and the zone's plan ----------------------------------------------------
    #
    # `GET /zones/{zone}` (the SDK's `Zone`, with `plan`), `GET /zones/{zone}/rulesets` (list, cursor
    # pagination as the SDK's `SyncCursorPagination` reads it), `GET .../rulesets/{id}`, `GET
    # .../rulesets/phases/{phase}/entrypoint` and `POST .../rulesets` (create). Sources:
    # - One entry point per phase: cloudflare-docs ruleset-engine/about/rulesets.mdx ("Each phase has
    #   at most one entry point ruleset at the account level and at the zone level"). A second create
    #   answers 400 with code 20217, "'zone' is not a valid value for kind because exceeded maximum
    #   number of zone rulesets for phase http_ratelimit" and `source.pointer` "/kind", as real API
    #   output shows it (terraform-provider-cloudflare issues 3444 and 6273).
    # - No entry point yet: code 10003, "could not find entrypoint ruleset in the <phase> phase" (a
    #   real response quoted in ibm-mas/ansible-devops pull 2403); 404, the status the provider's
    #   Read treats as "gone" (internal/services/ruleset/resource.go).
    # - What a zone's plan holds in http_ratelimit: booking_shared/limits.py (the availability table).
    #   A refused rule answers 400 with one error per problem, each with the JSON pointer of the field
    #   and the API's wording for a refused value ("'<value>' is not a valid value for <field>
    #   because <reason>", as quoted in cloudflare-docs issue 23641 for a field a rule may not use).
    #   The code of those refusals is not published: 20217, the one published for this wording, is
    #   reused, so callers should rely on the status, the pointer and the wording, not the code.
    # - Zone plan ids: the zone's `plan.legacy_id` ("free", "pro", "business", "enterprise") and
    #   `plan.name` ("Free Website", ...), as terraform-provider-cloudflare v4 reads them
    #   (internal/sdkv2provider/resource_cloudflare_zone.go, 7e32ab38).
    # Only `kind: zone` rulesets (phase entry points) are modelled: another kind is refused (400).

    ZONE_PLAN_NAMES: ClassVar[dict[str, str]] = {"free": "Free Website", "pro": "Pro Website",
                                                 "business": "Business Website", "enterprise": "Enterprise Website"}

    def add_zone(self, zone_id: str, plan: ZonePlan = "free", *, name: str = "example.co.za",
                 rulesets: list[dict[str, Any]] | None = None) -> ZoneState:
        """A zone on `plan`; `rulesets` as `ruleset(...)` builds them (e.g. a dashboard-made entry point)."""
        state = ZoneState(zone_id, plan, name, list(rulesets or []))
        self.zones[zone_id] = state
        return state

    def ruleset(self, phase: str, rules: list[dict[str, Any]] | None = None, *, name: str = "default",
                description: str = "") -> dict[str, Any]:
        """A zone entry point as the API stores it (ids, versions, timestamps filled in), not yet in a zone."""
        with self.lock:
            self._seq += 1
            stamp = (dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=self._seq)).isoformat()
        stored = []
        for rule in rules or []:
            rule_id = uuid.uuid4().hex
            # "ref: The reference of the rule (the rule's ID by default)" (the SDK's BlockRule).
            stored.append({"enabled": True, "description": "", **rule, "id": rule_id, "ref": rule.get("ref") or rule_id,
                           "version": "1", "last_updated": stamp})
        return {"id": uuid.uuid4().hex, "kind": "zone", "phase": phase, "name": name, "description": description,
                "version": "1", "last_updated": stamp, "rules": stored}

    def dispatch_zone_rulesets(self, method: str, rest: str, query: dict[str, list[str]],
                               body: dict[str, Any]) -> tuple[int, Any]:
        match = _ZONE_OR_RULESETS.fullmatch(rest)
        assert match is not None
        zone = self.zones.get(match.group(1))
        if zone is None:
            return 404, _error(7003, f"Could not route to /zones/{rest}, perhaps your object identifier is invalid?")
        tail = match.group(2) or ""
        if tail == "" and method == "GET":
            return 200, _ok(self._zone_object(zone))
        if tail == "/rulesets" and method == "GET":
            return self._list_rulesets(zone, query)
        if tail == "/rulesets" and method == "POST":
            return self._create_ruleset(zone, body)
        phase = re.fullmatch(r"/rulesets/phases/([^/]+)/entrypoint", tail)
        if phase and method == "GET":
            found = zone.entry_point(phase.group(1))
            if found is None:
                return 404, _error(10003, f"could not find entrypoint ruleset in the {phase.group(1)} phase")
            return 200, _ok(found)
        one = re.fullmatch(r"/rulesets/([0-9a-f]{32})", tail)
        if one and method == "GET":
            found = next((r for r in zone.rulesets if r["id"] == one.group(1)), None)
            return (200, _ok(found)) if found else (404, _error(10003, "could not find ruleset"))
        return 404, _error(7000, f"No route for {method} /zones/{rest}")

    def _zone_object(self, zone: ZoneState) -> dict[str, Any]:
        # Every field the SDK's `Zone` requires; the plan as terraform-provider-cloudflare v4 reads it.
        return {"id": zone.zone_id, "name": zone.name, "status": "active", "paused": False, "type": "full",
                "account": {"id": self.account_id, "name": "salon account"},
                "created_on": "2026-01-01T00:00:00Z", "modified_on": "2026-01-01T00:00:00Z",
                "activated_on": "2026-01-01T00:00:00Z", "development_mode": 0, "meta": {},
                "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
                "original_dnshost": None, "original_name_servers": None, "original_registrar": None,
                "owner": {"type": "user"},  # id/name are non-nullable strings in the document (zones_zone): left out
                "plan": {"id": uuid.uuid5(uuid.NAMESPACE_URL, zone.plan).hex, "legacy_id": zone.plan,
                         "name": self.ZONE_PLAN_NAMES[zone.plan], "is_subscribed": zone.plan != "free",
                         "can_subscribe": False, "currency": "USD", "frequency": "", "price": 0,
                         "externally_managed": False, "legacy_discount": False}}

    def _list_rulesets(self, zone: ZoneState, query: dict[str, list[str]]) -> tuple[int, Any]:
        # `cursor` and `per_page` are the list's query parameters (the SDK's rulesets.list); the
        # cursor is opaque to callers, here the offset of the next page.
        per_page = int((query.get("per_page") or ["20"])[0])
        start = int((query.get("cursor") or ["0"])[0])
        if per_page < 1:
            return 400, _error(20217, f"'{per_page}' is not a valid value for per_page")
        # The list leaves the rules out (the SDK's RulesetListResponse has none).
        page = [{k: v for k, v in r.items() if k != "rules"} for r in zone.rulesets[start:start + per_page]]
        more = start + per_page < len(zone.rulesets)
        return 200, {"success": True, "errors": [], "messages": [], "result": page,
                     "result_info": {"count": len(page), "per_page": per_page,
                                     **({"cursor": str(start + per_page)} if more else {})}}

    def _create_ruleset(self, zone: ZoneState, body: dict[str, Any]) -> tuple[int, Any]:
        kind, phase, name = body.get("kind"), str(body.get("phase")), body.get("name")
        rules = body.get("rules") or []
        if kind != "zone":
            return 400, _ruleset_error(f"'{kind}' is not a valid value for kind because the double models zone "
                                       "entry points only", "/kind")
        if phase not in get_args(Phase):  # the SDK's Phase enum, from the OpenAPI schema
            return 400, _ruleset_error(f"'{phase}' is not a valid value for phase", "/phase")
        if not isinstance(name, str) or not name:
            return 400, _ruleset_error("'' is not a valid value for name because it is required", "/name")
        if zone.entry_point(phase) is not None:
            return 400, _ruleset_error(f"'zone' is not a valid value for kind because exceeded maximum number of zone "
                                       f"rulesets for phase {phase}", "/kind")
        if phase == RATELIMIT_PHASE:
            refused = self._ratelimit_refusals(zone, rules)
            if refused:
                return 400, {"success": False, "errors": refused, "messages": [], "result": None}
        created = self.ruleset(phase, rules, name=name, description=str(body.get("description") or ""))
        zone.rulesets.append(created)
        return 200, _ok(created)

    @staticmethod
    def _ratelimit_refusals(zone: ZoneState, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One error per rule field the zone's plan cannot hold (booking_shared/limits.py)."""
        specs, errors = [], []
        for index, rule in enumerate(rules):
            ratelimit = rule.get("ratelimit")
            if not isinstance(ratelimit, dict) or "period" not in ratelimit or not rule.get("expression"):
                message = f"rule {index} is not a valid rate limiting rule because it needs an expression and a period"
                errors.append(_ruleset_error(message, f"/rules/{index}")["errors"][0])
                continue
            # The schema's types (the SDK's BlockRuleRatelimit, cloudflare 5.9.0, from the OpenAPI
            # document): period Required[int], mitigation_timeout int, characteristics
            # Required[Sequence[str]]; a "60", a 60.5 or a true is no integer there.
            typed = {"period": ratelimit.get("period"), "mitigation_timeout": ratelimit.get("mitigation_timeout", 0)}
            wrong = [f for f, v in typed.items() if type(v) is not int]
            characteristics = ratelimit.get("characteristics")
            if not isinstance(characteristics, list) or not all(isinstance(c, str) for c in characteristics):
                wrong.append("characteristics")
            if wrong:
                errors += [_ruleset_error(f"'{ratelimit.get(f)}' is not a valid value for {f}",
                                          f"/rules/{index}/ratelimit/{f}")["errors"][0] for f in wrong]
                continue
            specs.append(RateLimitRule(str(rule.get("ref") or index), str(rule["expression"]), str(rule.get("action")),
                                       int(ratelimit["period"]), int(ratelimit.get("mitigation_timeout", 0)),
                                       tuple(ratelimit.get("characteristics") or ())))
        for problem in rate_limit_problems(zone.plan, specs):
            pointer = "/rules" if problem.index is None else (
                f"/rules/{problem.index}/" + (problem.field if problem.field in ("expression", "action")
                                              else f"ratelimit/{problem.field}"))
            errors.append(_ruleset_error(f"'{problem.found}' is not a valid value for {pointer.rsplit('/', 1)[-1]} "
                                         f"because the zone's plan allows {problem.allowed}", pointer)["errors"][0])
        return errors

    # --- Turnstile widgets, account-scoped -------------------------------------------------
    #
    # `/accounts/{account}/challenges/widgets`: list (filter `name:` or `sitekey:`, each a
    # "case-insensitive substring matching" as the API reference's List Turnstile Widgets says;
    # page >= 1, per_page 5-1000, paginated), `/{sitekey}`: get and PUT (the whole widget replaced). Objects
    # carry every field the SDK's `Widget` / `WidgetListResponse` require (the list leaves out the
    # secret, as the API does). What Cloudflare refuses is refused with 400; the real errors' codes
    # and wording are not documented, so only their kind (a 4xx the SDK raises as BadRequestError)
    # is what callers may rely on. From cloudflare-docs turnstile/additional-configuration/
    # hostname-management/index.mdx (30e10106): "every widget requires at least one hostname"; "No
    # wildcards are supported"; no schemes, ports or paths ("Invalid formats"); "Free users are
    # entitled to a maximum of 15 hostnames per widget. Enterprise customers can have up to 200"
    # (`turnstile_hostname_limit`). From turnstile/plans.mdx (41f410ed): "Free users are limited to
    # 20 widgets per account" (add_turnstile_widget, standing for the API's create).

    WIDGET_MODES = ("non-interactive", "invisible", "managed")

    def add_turnstile_widget(self, name: str, domains: list[str], *, mode: str = "managed",
                             clearance_level: str = "no_clearance") -> dict[str, Any]:
        """A widget as `pulumi up` creates it; returned as stored (sitekey, secret, domains)."""
        with self.lock:
            # "Free users are limited to 20 widgets per account" (turnstile/plans.mdx, 41f410ed).
            if len(self.turnstile_widgets) >= TURNSTILE_WIDGETS_PER_ACCOUNT:
                raise ValueError(f"an account may have at most {TURNSTILE_WIDGETS_PER_ACCOUNT} widgets")
            self._seq += 1
            sitekey = f"0x4AAAAAAA{self._seq:06d}{uuid.uuid4().hex[:6]}"
            created = (dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=self._seq)).isoformat()
            widget = {"sitekey": sitekey, "secret": f"0x4AAAAAAA-secret-{uuid.uuid4().hex}", "name": name,
                      "domains": list(domains), "mode": mode, "clearance_level": clearance_level,
                      "bot_fight_mode": False, "ephemeral_id": False, "offlabel": False, "region": "world",
                      "created_on": created, "modified_on": created, "deployed_via": "api",
                      "last_modified_via": "api"}
            self.turnstile_widgets[sitekey] = widget
            return widget

    def dispatch_turnstile(self, method: str, rest: str, query: dict[str, list[str]],
                           body: dict[str, Any]) -> tuple[int, Any]:
        if rest == "" and method == "GET":
            return self._list_turnstile_widgets(query)
        sitekey = rest.removeprefix("/")
        if "/" in sitekey or not sitekey:
            return 404, _error(7000, f"No route for {method} /challenges/widgets{rest}")
        widget = self.turnstile_widgets.get(sitekey)
        if widget is None:
            return 404, _error(10404, "Widget not found")
        if method == "GET":
            return 200, _ok(widget)
        if method == "PUT":
            return self._update_turnstile_widget(widget, body)
        return 404, _error(7000, f"No route for {method} /challenges/widgets{rest}")

    def _list_turnstile_widgets(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        page = int(float((query.get("page") or ["1"])[0]))
        per_page = int(float((query.get("per_page") or ["25"])[0]))
        if page < 1 or not 5 <= per_page <= 1000:
            return 400, _error(10400, "page must be at least 1 and per_page between 5 and 1000")
        wanted = (query.get("filter") or [""])[0]
        field_name, colon, value = wanted.partition(":")
        if wanted and (field_name not in ("name", "sitekey") or not colon):
            return 400, _error(10400, f"invalid filter {wanted!r}: expected name:<value> or sitekey:<value>")
        matching = [w for _key, w in sorted(self.turnstile_widgets.items())
                    if not value or (field_name == "name" and value.lower() in w["name"].lower())
                    or (field_name == "sitekey" and value.lower() in w["sitekey"].lower())]
        items = [{k: v for k, v in w.items() if k != "secret"} for w in matching[(page - 1) * per_page:
                                                                                 page * per_page]]
        return 200, {"success": True, "errors": [], "messages": [], "result": items,
                     "result_info": {"count": len(items), "page": page, "per_page": per_page,
                                     "total_count": len(matching)}}

    def _update_turnstile_widget(self, widget: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        domains, mode, name = body.get("domains"), body.get("mode"), body.get("name")
        # "every widget requires at least one hostname" (hostname-management/index.mdx, 30e10106).
        if not isinstance(domains, list) or len(domains) < TURNSTILE_MIN_HOSTNAMES_PER_WIDGET or not all(
                isinstance(d, str) and d for d in domains):
            return 400, _error(10400, "domains: at least one hostname is required")
        # "No wildcards are supported"; schemes, ports and paths are "Invalid formats" (the same page).
        if any(not _WIDGET_HOSTNAME.fullmatch(d) for d in domains):
            return 400, _error(10400, "domains: fully qualified hostnames only (no wildcards, schemes, ports or "
                                      "paths)")
        # The API reference's Update a Turnstile Widget (developers.cloudflare.com/api/resources/
        # turnstile/subresources/widgets/methods/update): name "maxLength254 minLength1".
        if mode not in self.WIDGET_MODES or not isinstance(name, str) or not 1 <= len(name) <= 254:
            return 400, _error(10400, "mode (non-interactive, invisible or managed) and a name of 1-254 characters "
                                      "are required")
        if body.get("region", widget["region"]) != widget["region"]:
            return 400, _error(10400, "region cannot be changed after creation")
        # "Free users are entitled to a maximum of 15 hostnames per widget. Enterprise customers can
        # have up to 200" (the same page; booking_shared.limits).
        limit = self.turnstile_hostname_limit
        if len(set(domains)) > limit:
            return 400, _error(10400, f"a widget may have at most {limit} hostnames on this plan")
        # A PUT replaces the widget: a setting left out goes back to its default.
        widget.update({"domains": list(dict.fromkeys(domains)), "mode": mode, "name": name,
                       "bot_fight_mode": bool(body.get("bot_fight_mode", False)),
                       "clearance_level": body.get("clearance_level", "no_clearance"),
                       "ephemeral_id": bool(body.get("ephemeral_id", False)),
                       "offlabel": bool(body.get("offlabel", False)),
                       "modified_on": dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC).isoformat(),
                       "last_modified_via": "api"})
        return 200, _ok(widget)

    # --- API tokens and permissions (see TokenState) ---------------------------------------------

    def add_token(self, value: str, token: TokenState) -> TokenState:
        self.tokens[value] = token
        return token

    def token_of(self, authorization: str | None) -> TokenState | None:
        """The token a request carries; None for an unknown one (401/403 on every route)."""
        value = (authorization or "").removeprefix("Bearer ")
        return self.tokens.get(value) if authorization and authorization.startswith("Bearer ") else None

    def permitted(self, token: TokenState, method: str, path: str) -> bool:
        """Whether `token` may make this request: token routes need an active token only for
        verify; the reads of READ_PERMISSIONS need one of their groups on their account or zone."""
        rest = path.removeprefix("/client/v4")
        if rest in ("/user/tokens/verify", f"/accounts/{self.account_id}/tokens/verify"):
            return True  # verify answers for any token, with its status
        if token.status != "active":
            return False
        for wanted, pattern, zoned, accepted in READ_PERMISSIONS:
            match = re.fullmatch(pattern, rest)
            if match and method == wanted:
                scope = match.group(1) if zoned else "account"
                return bool(set(accepted) & token.granted(scope, self.account_id))
        return True

    def dispatch_tokens(self, token: TokenState, method: str, path: str) -> tuple[int, Any]:
        """/user/tokens/verify, /user/tokens/{id}, /accounts/{id}/tokens/verify, /accounts/{id}/tokens/{id}.

        A token asks about itself only. Verify answers a token of the other kind as an invalid token
        (the API's exact answer to an account owned token on /user/tokens/verify is not documented:
        callers must try the other endpoint, not read the code). Reading a token's details needs API
        Tokens Read (user) or Account API Tokens Read (account) in its own policies.
        """
        rest = path.removeprefix("/client/v4")
        user = rest.startswith("/user/")
        if method != "GET":
            return 404, _error(7000, f"No route for {method} {rest}")
        if (token.kind == "user") != user:
            return 401, _error(1000, "Invalid API Token")
        item = rest.rsplit("/", 1)[-1]
        if item == "verify":
            return 200, _ok({"id": token.token_id, "status": token.status,
                             **({"expires_on": token.expires_on} if token.expires_on else {})})
        if item != token.token_id:
            return 404, _error(7003, "Could not route to this token")
        needed = (("API Tokens Read", "API Tokens Write") if user else ("Account API Tokens Read",))
        if not set(needed) & token.granted("user" if user else "account", self.account_id):
            return 403, _error(9109, "Unauthorized to access requested resource")
        return 200, _ok({"id": token.token_id, "name": "deploy", "status": token.status,
                         "issued_on": "2026-11-01T00:00:00Z", "modified_on": "2026-11-01T00:00:00Z",
                         "policies": token.policies})

    # --- bucket details and custom hostname quota: reads of `bookingctl doctor` ------------------
    #
    # An R2 bucket is the SDK's `Bucket` (location lowercase, as its Literal lists). The custom hostname quota is
    # {allocated, exceeded, hard_cap, used} (custom_hostnames.quota.get); allocated and hard cap are
    # per zone in the API (SaasZoneState.quota_*: test values, no published default).

    def dispatch_doctor_reads(self, method: str, path: str) -> tuple[int, Any] | None:
        """The routes of this section, or None for a path they do not cover."""
        rest = path.removeprefix("/client/v4")
        if method != "GET":
            return None
        match = re.fullmatch(r"/zones/([^/]+)/custom_hostnames/quota", rest)
        if match and match.group(1) in self.saas_zones:
            zone_state = self.saas_zones[match.group(1)]
            used = len(zone_state.hostnames)
            return 200, _ok({"allocated": zone_state.quota_allocated, "hard_cap": zone_state.quota_hard_cap,
                             "used": used, "exceeded": used > zone_state.quota_allocated})
        match = re.fullmatch(rf"/accounts/{self.account_id}/r2/buckets/([^/]+)", rest)
        if match:
            if match.group(1) not in self.buckets:
                return 404, _error(10006, "The specified bucket does not exist.")
            return 200, _ok({"name": match.group(1), "creation_date": "2026-01-01T00:00:00Z", "location": "weur",
                             "storage_class": "Standard", "jurisdiction": "default"})
        return None


# A hostname as the widget's domains take it: labels of letters, digits and hyphens (an IP address
# fits too), nothing else; see "Turnstile widgets" above. At least two labels: "The hostname must be
# fully qualified domain names (FQDNs): example.com or subdomain.example.com" (the same page), so a
# bare `localhost` is refused.
_WIDGET_HOSTNAME = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                              r"[A-Za-z0-9])?")


def _ok(result: Any) -> dict[str, Any]:
    return {"success": True, "errors": [], "messages": [], "result": result}


def _error(code: int, message: str) -> dict[str, Any]:
    return {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}


_started: list[CloudflareDouble] = []  # every double of this process whose violations are not yet reported


def take_violations() -> list[str]:
    """The violations of every double started since the last call, once (tests/conftest.py fails on them)."""
    found = []
    for double in list(_started):
        with double.lock:
            found += double.violations
            double.violations = []
        if not double.thread.is_alive():
            _started.remove(double)
    return found


def _ruleset_error(message: str, pointer: str) -> dict[str, Any]:
    """A Rulesets API refusal: code 20217 and the offending field's JSON pointer (see "zone rulesets")."""
    return {"success": False, "errors": [{"code": 20217, "message": message, "source": {"pointer": pointer}}],
            "messages": [], "result": None}


# `/zones/{zone}` itself, or its rulesets (anything else under /zones/ is custom hostnames).
_ZONE_OR_RULESETS = re.compile(r"([0-9a-f]{32})(/rulesets(?:/.*)?)?")


@contextmanager
def running(root: Path, account_id: str) -> Iterator[CloudflareDouble]:
    double = CloudflareDouble(root, account_id).start()
    try:
        yield double
    finally:
        double.stop()
