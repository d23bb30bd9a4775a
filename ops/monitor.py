"""Health report and performance monitor: the guide's health-check.sh and performance-monitor.sh.

Fixes against the scripts: checks run concurrently with a timeout each (the guide ran them one
after another); the database is asked through D1 (the guide ran `SELECT 1` against a local copy);
every integration is checked, not only Paystack; the performance monitor samples concurrently
with no `sleep 1` between samples and computes percentiles without `bc`.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from booking_shared.naming import looks_like_staging
from ops.targets import LocalDatabase, RemoteDatabase
from ops.verify import DATABASE_PROBE, read_health

# The integrations' public endpoints; any answer below 500 means the service is up and reachable
# (Google's and Meta's roots answer 404/400 without credentials; Paystack's answers 200).
INTEGRATIONS = {
    "paystack": "https://api.paystack.co/",
    "google_calendar": "https://www.googleapis.com/calendar/v3/",
    "whatsapp": "https://graph.facebook.com/",
}
RESPONSE_THRESHOLD = 2.0  # seconds, the guide's THRESHOLD_RESPONSE
SUCCESS_THRESHOLD = 99.0  # percent, the guide's success-rate check


def _timed_get(client: httpx.Client, url: str) -> tuple[int, float]:
    """(HTTP status or 0 when no answer, seconds)."""
    started = time.perf_counter()
    try:
        status = client.get(url).status_code
    except httpx.HTTPError:
        status = 0
    return status, time.perf_counter() - started


@dataclass
class HealthReport:
    timestamp: str
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def overall_status(self) -> str:
        return "FAIL" if any(c["status"] == "FAIL" for c in self.checks.values()) else "OK"

    def to_dict(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "overall_status": self.overall_status, "checks": self.checks}


def health(health_url: str, db: LocalDatabase | RemoteDatabase | None = None,
           integrations: dict[str, str] | None = None, timeout: float = 10.0,
           transport: httpx.BaseTransport | None = None) -> HealthReport:
    """The guide's health report: main application, database, integrations; concurrently."""
    endpoints = INTEGRATIONS if integrations is None else integrations
    report = HealthReport(timestamp=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    with httpx.Client(timeout=timeout, transport=transport, follow_redirects=True) as client:

        def main_application() -> dict[str, Any]:
            started = time.perf_counter()
            try:
                response = client.get(health_url)
            except httpx.HTTPError as exc:
                return {"status": "FAIL", "http_code": 0, "response_time": None, "error": type(exc).__name__}
            elapsed = round(time.perf_counter() - started, 4)
            health = read_health(response)
            ok = response.status_code == 200
            result: dict[str, Any] = {"status": "OK" if ok else "FAIL", "http_code": response.status_code,
                                      "response_time": elapsed}
            if health.json_object:
                result["version"] = health.version
                result["reported_database"] = health.database
            return result

        def database() -> dict[str, Any]:
            if db is None:
                return {"status": "SKIPPED", "detail": "no database target given"}
            try:
                rows = db.query(DATABASE_PROBE)
                return {"status": "OK" if rows and rows[0].get("test") in (1, "1") else "FAIL"}
            except Exception as exc:
                return {"status": "FAIL", "error": str(exc)[:200]}

        def integration(url: str) -> Callable[[], dict[str, Any]]:
            def check() -> dict[str, Any]:
                status, elapsed = _timed_get(client, url)
                return {"status": "OK" if 0 < status < 500 else "FAIL", "http_code": status,
                        "response_time": round(elapsed, 4)}
            return check

        jobs: dict[str, Callable[[], dict[str, Any]]] = {"main_application": main_application, "database": database}
        jobs.update({name: integration(url) for name, url in endpoints.items()})
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = {name: pool.submit(job) for name, job in jobs.items()}
            report.checks = {name: future.result() for name, future in futures.items()}
    if report.checks["database"]["status"] == "SKIPPED":
        # Without a database target, the Worker's own report on its database stands in.
        reported = report.checks["main_application"].get("reported_database")
        report.checks["database"] = {"status": "OK" if reported == "ok" else "FAIL", "source": "api/health"}
    return report


def post_webhook(url: str, text: str, attempts: int = 3, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> bool:
    """POST {"text": ...} to a chat webhook, retrying; True when it was accepted."""
    with httpx.Client(timeout=10.0, transport=transport) as client:
        for attempt in range(attempts):
            try:
                if client.post(url, json={"text": text}).status_code < 300:
                    return True
            except httpx.HTTPError:
                pass
            if attempt + 1 < attempts:
                sleep(2.0**attempt)
    return False


# --- performance ----------------------------------------------------------------------------

def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


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

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "samples": self.samples, "avg_response_time": self.avg_response_time,
                "p50": self.p50, "p95": self.p95, "max": self.max, "success_rate": self.success_rate,
                "response_breach": self.response_breach, "success_breach": self.success_breach}


def perf(urls: list[str], samples: int = 5, concurrency: int = 5, timeout: float = 10.0,
         response_threshold: float = RESPONSE_THRESHOLD, success_threshold: float = SUCCESS_THRESHOLD,
         transport: httpx.BaseTransport | None = None) -> list[UrlMetrics]:
    """Sample every URL `samples` times, `concurrency` requests at a time; no pauses between them."""
    if samples < 1 or concurrency < 1:
        raise ValueError("samples and concurrency must be at least 1")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results = []
    with httpx.Client(timeout=timeout, transport=transport, limits=limits, follow_redirects=True) as client, \
            ThreadPoolExecutor(max_workers=concurrency) as pool:
        for url in urls:
            measured = list(pool.map(_timed_get, [client] * samples, [url] * samples))
            times = [elapsed for _, elapsed in measured]
            ok = sum(1 for status, _ in measured if status == 200)
            avg = statistics.fmean(times)
            rate = round(ok * 100 / samples, 2)
            results.append(UrlMetrics(url, samples, round(avg, 4), round(_percentile(times, 0.5), 4),
                                      round(_percentile(times, 0.95), 4), round(max(times), 4), rate,
                                      avg > response_threshold, rate < success_threshold))
    return results


def default_urls(domain: str) -> list[str]:
    """The guide's three URLs for a domain: the root, the booking page of its salon, the health API.

    The salon's slug is the domain's name label (www. or staging. skipped:
    www.instylehairboutique.co.za gives instylehairboutique), as in the guide's /book/instylehairboutique.
    """
    labels = [label for label in domain.split(".") if label != "www" and not looks_like_staging(label)]
    base = f"https://{domain}"
    return [base, f"{base}/book/{labels[0]}", f"{base}/api/health"]
