"""Post-deployment verification: the site, its health contract, and the database.

Replaces the guide's step 4, fixing it: the database is checked with `SELECT 1` through D1 itself
(the guide ran it against a *local* copy with `--local`), the health body is read rather than only
its status code, and every check is retried with backoff until a deadline, because a fresh
deployment takes a while to reach every location.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from booking_shared.text import printable
from ops.http import MIN_REQUEST_SECONDS, Client, HttpError
from ops.observation.health import get_health
from ops.targets import LocalDatabase, RemoteDatabase


@dataclass
class Check:
    name: str
    ok: bool = False
    detail: str = ""
    attempts: int = 0
    http_code: int | None = None
    response_time: float | None = None


@dataclass
class VerifyResult:
    target: str
    ok: bool
    elapsed: float
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "ok": self.ok, "elapsed": round(self.elapsed, 3),
                "checks": [asdict(c) for c in self.checks]}

    def failures(self) -> str:
        """The failed checks as `name: detail; ...`, for an error message."""
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if not c.ok)


@dataclass(frozen=True)
class Clock:
    """Time for the retry loop; tests pass a fake one so retries take no real time."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    # The date and time, for windows asked of APIs (the canary's analytics); fake clocks move it with `now`.
    wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)


def _root(http: Client, base: str, check: Check, timeout: float) -> bool:
    try:
        answer = http.get(base + "/", timeout=timeout)
    except HttpError as exc:
        check.detail, check.http_code = str(exc), exc.status
        return False
    check.response_time, check.http_code = round(answer.elapsed, 4), answer.status
    check.detail = f"HTTP {answer.status}"
    return answer.status == 200


def _health(http: Client, base: str, check: Check, expected_version: str | None, timeout: float) -> bool:
    try:
        answer, health = get_health(http, base + "/api/health", timeout=timeout)
    except HttpError as exc:
        check.detail, check.http_code = str(exc), exc.status
        return False
    check.response_time, check.http_code = round(answer.elapsed, 4), answer.status
    check.detail = health.describe()
    if not health.json_object:
        return False
    if expected_version is not None and health.version != expected_version:
        # A deployment takes a while to reach every location: until the new version answers, a
        # healthy body comes from the old code and says nothing about the new one.
        check.detail += f" (waiting for version {expected_version})"
        return False
    return health.healthy


# `SELECT 1` alone never reads the database (SQLite answers it without opening a page), so it
# passes on a corrupt file; counting the schema's rows makes the database itself answer.
DATABASE_PROBE = "SELECT 1 AS test FROM (SELECT COUNT(*) FROM sqlite_master)"


@dataclass(frozen=True)
class DatabaseAnswer:
    """What the database said to DATABASE_PROBE: `detail` is printable (the API's error text is remote input)."""

    ok: bool
    detail: str
    elapsed: float | None  # seconds, when it answered at all


def probe_database(db: LocalDatabase | RemoteDatabase) -> DatabaseAnswer:
    """Ask the database to read itself once; any failure to answer is the finding, never an exception."""
    started = time.perf_counter()
    try:
        rows = db.query(DATABASE_PROBE)
    except Exception as exc:
        return DatabaseAnswer(False, printable(str(exc)), None)
    value = rows[0].get("test") if rows else None
    return DatabaseAnswer(value in (1, "1"), f"SELECT 1 returned {printable(repr(value), 80)}",
                          round(time.perf_counter() - started, 4))


def _database(db: LocalDatabase | RemoteDatabase, check: Check) -> bool:
    answer = probe_database(db)
    check.detail = f"{db.label}: {answer.detail}"
    if answer.elapsed is not None:
        check.response_time = answer.elapsed
    return answer.ok


def verify(base_url: str | None, db: LocalDatabase | RemoteDatabase | None, *, deadline: float = 120.0,
           request_timeout: float = 10.0, clock: Clock | None = None, expected_version: str | None = None,
           log: Callable[[str], None] = lambda _: None, headers: Mapping[str, str] | None = None) -> VerifyResult:
    """Run the checks, retrying the failing ones with exponential backoff until `deadline` seconds.

    No request outlives the deadline by more than MIN_REQUEST_SECONDS: each gets `request_timeout`
    or the time left, whichever is less (but at least that minimum, so every check is tried once).
    With `expected_version`, /api/health passes only once that Worker version answers it. `log`
    gets one line per round of checks (what passed, what is still failing and why). `headers` go
    with every request (the canary pins its probes to a version with one).
    """
    clock = clock or Clock()
    started = clock.now()

    def budget() -> float:
        return min(request_timeout, max(deadline - (clock.now() - started), MIN_REQUEST_SECONDS))

    checks: list[tuple[Check, Callable[[], bool]]] = []
    http = Client(timeout=request_timeout, headers={"User-Agent": "bookingctl-verify", "Cache-Control": "no-cache",
                                                    **(headers or {})})
    if base_url:
        base = base_url.rstrip("/")
        root, health = Check("main_application"), Check("api_health")
        checks += [(root, lambda: _root(http, base, root, budget())),
                   (health, lambda: _health(http, base, health, expected_version, budget()))]
    if db is not None:
        database = Check("database")
        checks.append((database, lambda: _database(db, database)))
    delay = 1.0
    attempt = 0
    try:
        while True:
            attempt += 1
            for check, run in checks:
                if not check.ok:
                    check.attempts += 1
                    check.ok = run()
            failing = [c for c, _ in checks if not c.ok]
            log(f"verify attempt {attempt} ({clock.now() - started:.0f} s): " + (
                "all checks pass" if not failing else "; ".join(f"{c.name}: {c.detail}" for c in failing)))
            if not failing or clock.now() - started + delay > deadline:
                break
            clock.sleep(delay)
            delay = min(delay * 2, 15.0)
    finally:
        http.close()
    target = base_url or (db.label if db is not None else "")
    return VerifyResult(target=target, ok=all(c.ok for c, _ in checks),
                        elapsed=clock.now() - started, checks=[c for c, _ in checks])
