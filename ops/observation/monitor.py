"""Health report and performance monitor: the guide's health-check.sh and performance-monitor.sh.

Fixes against the scripts: checks run concurrently with a timeout each (the guide ran them one
after another); the database is asked through D1 (the guide ran `SELECT 1` against a local copy);
every integration is checked, not only Paystack; the performance monitor samples concurrently
with no `sleep 1` between samples and computes percentiles without `bc`. Every failing check says
why in its `error`; integrations can be skipped (offline, in CI) and are then SKIPPED, not FAIL.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from booking_shared.naming import looks_like_staging
from booking_shared.text import printable
from ops.http import Client, HttpError, url_problem
from ops.observation.health import get_health
from ops.observation.verify import probe_database
from ops.targets import LocalDatabase, RemoteDatabase

# The integrations' public endpoints; any answer below 500 means the service is up and reachable
# (Google's and Meta's roots answer 404/400 without credentials; Paystack's answers 200).
INTEGRATIONS = {
    "paystack": "https://api.paystack.co/",
    "google_calendar": "https://www.googleapis.com/calendar/v3/",
    "whatsapp": "https://graph.facebook.com/",
}
# The platform's own checks; everything else in a report is a third party's.
PLATFORM_CHECKS = ("main_application", "database")
RESPONSE_THRESHOLD = 2.0  # seconds, the guide's THRESHOLD_RESPONSE
SUCCESS_THRESHOLD = 99.0  # percent, the guide's success-rate check
WEBHOOK_TIMEOUT = 10.0  # seconds per delivery attempt


@dataclass
class HealthReport:
    timestamp: str
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def overall_status(self) -> str:
        """FAIL when the platform itself (application, database) fails; DEGRADED when only a third-party
        integration does; OK otherwise.

        The guide's health-check.sh folds Paystack into FAIL ("Critical health check failure"); here a
        third party's outage (or a machine with no route to it) is DEGRADED: still reported and
        alerted, exit 1, but neither a rollback nor the platform's on-call can fix it.
        """
        failed = {name for name, c in self.checks.items() if c["status"] == "FAIL"}
        if failed & set(PLATFORM_CHECKS):
            return "FAIL"
        return "DEGRADED" if failed else "OK"

    def failed(self, names: Collection[str]) -> list[str]:
        """Which of `names` failed, in report order."""
        return [name for name, c in self.checks.items() if name in names and c["status"] == "FAIL"]

    def to_dict(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "overall_status": self.overall_status, "checks": self.checks}


def health(health_url: str, db: LocalDatabase | RemoteDatabase | None = None,
           integrations: dict[str, str] | None = None, timeout: float = 10.0,
           skip: Collection[str] = ()) -> HealthReport:
    """The guide's health report: main application, database, integrations; concurrently.

    The main application is judged as `verify` judges /api/health: 200 with status and database
    "ok". Integrations named in `skip` are reported SKIPPED and not requested.
    """
    endpoints = INTEGRATIONS if integrations is None else integrations
    report = HealthReport(timestamp=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    with Client(timeout=timeout, concurrency=len(endpoints) + 1) as client:

        def main_application() -> dict[str, Any]:
            try:
                answer, health = get_health(client, health_url)
            except HttpError as exc:
                return {"status": "FAIL", "http_code": exc.status or 0, "response_time": None, "error": str(exc)}
            result: dict[str, Any] = {"status": "OK" if health.healthy else "FAIL", "http_code": answer.status,
                                      "response_time": round(answer.elapsed, 4)}
            if health.json_object:
                result["version"] = health.version
                result["reported_database"] = health.database
            if not health.healthy:
                result["error"] = health.describe()
            return result

        def database() -> dict[str, Any]:
            if db is None:
                return {"status": "SKIPPED", "detail": "no database target given"}
            answer = probe_database(db)
            return {"status": "OK"} if answer.ok else {"status": "FAIL", "error": answer.detail}

        def integration(url: str) -> Callable[[], dict[str, Any]]:
            def check() -> dict[str, Any]:
                try:
                    # Any answer proves the service is reachable, a redirect too: none is followed.
                    answer = client.get(url, body="skip", follow_redirects=False)
                except HttpError as exc:
                    return {"status": "FAIL", "http_code": exc.status or 0, "response_time": None, "error": str(exc)}
                result: dict[str, Any] = {"status": "OK" if answer.status < 500 else "FAIL",
                                          "http_code": answer.status, "response_time": round(answer.elapsed, 4)}
                if answer.status >= 500:
                    result["error"] = f"HTTP {answer.status}: the service answers with a server error"
                return result
            return check

        jobs: dict[str, Callable[[], dict[str, Any]]] = {"main_application": main_application, "database": database}
        jobs.update({name: integration(url) for name, url in endpoints.items() if name not in skip})
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = {name: pool.submit(job) for name, job in jobs.items()}
            report.checks = {name: future.result() for name, future in futures.items()}
    for name in endpoints:
        if name in skip:
            report.checks[name] = {"status": "SKIPPED", "detail": "skipped on request"}
    if report.checks["database"]["status"] == "SKIPPED":
        # Without a database target, the Worker's own report on its database stands in.
        reported = report.checks["main_application"].get("reported_database")
        report.checks["database"] = {"status": "OK" if reported == "ok" else "FAIL", "source": "api/health"}
        if "reported_database" not in report.checks["main_application"]:
            report.checks["database"]["error"] = "no usable /api/health answer to read the database's status from"
        elif reported != "ok":
            report.checks["database"]["error"] = (f"the Worker's /api/health reports database="
                                                  f"{printable(repr(reported), 80)}")
    return report


@dataclass(frozen=True)
class Delivery:
    """How a webhook alert went; `error` never contains the URL (it is the hook's credential)."""

    delivered: bool
    attempts: int
    error: str = ""


def post_webhook(url: str, text: str, attempts: int = 3, timeout: float = WEBHOOK_TIMEOUT,
                 sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """POST {"text": ...} to a chat webhook, retrying; each attempt ends within `timeout` seconds."""
    problem = url_problem(url)
    if problem is not None:
        return Delivery(False, 0, f"not a usable URL: {problem}")
    error = ""
    with Client(timeout=timeout) as client:
        for attempt in range(1, attempts + 1):
            try:
                status = client.post_json(url, {"text": text})
            except HttpError as exc:
                error = str(exc)
            else:
                if status < 300:
                    return Delivery(True, attempt)
                error = f"HTTP {status}" + (" (redirects are not followed)" if status < 400 else "")
            if attempt < attempts:
                sleep(2.0 ** (attempt - 1))
    return Delivery(False, attempts, error)


# --- performance ----------------------------------------------------------------------------

def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# Bounds of one run: every sample's time is kept for the percentiles, and each one in flight is a thread.
MAX_SAMPLES = 10_000
MAX_CONCURRENCY = 100


@dataclass(frozen=True)
class UrlMetrics:
    url: str
    samples: int
    avg_response_time: float
    p50: float
    p95: float
    max: float
    success_rate: float
    response_breach: bool
    success_breach: bool
    error: str | None = None  # the most frequent reason a sample failed (None: none failed)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "samples": self.samples, "avg_response_time": self.avg_response_time,
                "p50": self.p50, "p95": self.p95, "max": self.max, "success_rate": self.success_rate,
                "response_breach": self.response_breach, "success_breach": self.success_breach,
                "error": self.error}


def _sample(client: Client, url: str) -> tuple[float, str | None]:
    """(seconds, None when 200 else why not): a failed request counts with the time it took."""
    started = time.monotonic()
    try:
        answer = client.get(url)
    except HttpError as exc:
        return time.monotonic() - started, str(exc)
    return answer.elapsed, None if answer.status == 200 else f"HTTP {answer.status}"


def perf(urls: list[str], samples: int = 5, concurrency: int = 5, timeout: float = 10.0,
         response_threshold: float = RESPONSE_THRESHOLD,
         success_threshold: float = SUCCESS_THRESHOLD) -> list[UrlMetrics]:
    """Sample every URL `samples` times, `concurrency` requests at a time; no pauses between them.

    A 200 is a success (as in the guide's script); each request ends within `timeout` seconds.
    """
    if not (1 <= samples <= MAX_SAMPLES and 1 <= concurrency <= MAX_CONCURRENCY):
        raise ValueError(f"samples must be 1 to {MAX_SAMPLES} and concurrency 1 to {MAX_CONCURRENCY}")
    if not (math.isfinite(response_threshold) and math.isfinite(success_threshold)):
        raise ValueError("thresholds must be finite numbers: a NaN threshold can never be breached")
    results = []
    with Client(timeout=timeout, concurrency=concurrency) as client, \
            ThreadPoolExecutor(max_workers=concurrency) as pool:
        for url in urls:
            times: list[float] = []
            failures: Counter[str] = Counter()
            for elapsed, failure in pool.map(_sample, [client] * samples, [url] * samples):
                times.append(elapsed)
                if failure is not None:
                    failures[failure] += 1
            avg = statistics.fmean(times)
            rate = round((samples - failures.total()) * 100 / samples, 2)
            results.append(UrlMetrics(url, samples, round(avg, 4), round(_percentile(times, 0.5), 4),
                                      round(_percentile(times, 0.95), 4), round(max(times), 4), rate,
                                      avg > response_threshold, rate < success_threshold,
                                      failures.most_common(1)[0][0] if failures else None))
    return results


def default_urls(domain: str) -> list[str]:
    """The guide's three URLs for a domain: the root, the booking page of its salon, the health API.

    The salon's slug is the domain's name label (www. or staging. skipped:
    www.instylehairboutique.co.za gives instylehairboutique), as in the guide's /book/instylehairboutique.
    """
    labels = [label for label in domain.split(".") if label != "www" and not looks_like_staging(label)]
    base = f"https://{domain}"
    return [base, f"{base}/book/{labels[0]}", f"{base}/api/health"]
