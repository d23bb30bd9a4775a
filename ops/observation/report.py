"""The daily report: uptime, response time, bookings and errors, with a summary that says what to do.

Replaces the guide's daily-report.sh, whose jq pipeline could not run as written (two filters fed
one `jq`, `--argjson` given non-JSON). Errors are counted from the platform's own API log (5xx
answers in the last 24 h) instead of a Sentry project the guide never configured.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.http import Client, HttpError
from ops.observation.health import get_health
from ops.observation.monitor import RESPONSE_THRESHOLD, perf
from ops.targets import Database, require_tables

BOOKINGS = """
SELECT COUNT(*) AS total,
       COALESCE(SUM(CASE WHEN DATE(created_at) = DATE(?) THEN 1 ELSE 0 END), 0) AS today,
       COALESCE(SUM(CASE WHEN DATE(created_at) > DATE(?, '-7 days') THEN 1 ELSE 0 END), 0) AS week
FROM appointments
WHERE datetime(created_at) <= datetime(?)"""

PER_DAY = """
SELECT DATE(created_at) AS day, COUNT(*) AS bookings FROM appointments
WHERE DATE(created_at) > DATE(?, '-7 days') AND datetime(created_at) <= datetime(?)
GROUP BY DATE(created_at)"""

ERRORS = """
SELECT COUNT(*) AS errors FROM api_usage_logs
WHERE status_code >= 500 AND timestamp > datetime(?, '-24 hours') AND datetime(timestamp) <= datetime(?)"""


@dataclass(frozen=True)
class DailyReport:
    data: dict[str, Any]

    @property
    def healthy(self) -> bool:
        return bool(self.data["summary"]["overall_status"] == "healthy")

    def one_line(self) -> str:
        if self.healthy:
            return f"✅ Daily health check {self.data['date']}: all systems operational"
        return f"⚠️ Daily health check {self.data['date']}: {'; '.join(self.data['summary']['key_issues'])}"


def build(db: Database, base_url: str | None, now: dt.datetime | None = None,
          samples: int = 3, timeout: float = 10.0, drift: Mapping[str, Any] | None = None) -> DailyReport:
    """Collect the metrics and derive the summary; each probe of `base_url` ends within `timeout` s."""
    require_tables(db, ("appointments", "api_usage_logs"))
    now = now or dt.datetime.now(dt.UTC)
    at = now.strftime("%Y-%m-%d %H:%M:%S")
    today = now.date()
    # Every window ends at `now` as well as starting before it, so a report as of an earlier time
    # (`--as-of`) counts nothing that happened after it.
    counts = db.query(BOOKINGS, [at, at, at])[0]
    per_day = {row["day"]: int(row["bookings"]) for row in db.query(PER_DAY, [at, at])}
    days = [(today - dt.timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
    errors = int(db.query(ERRORS, [at, at])[0]["errors"])
    uptime, response_time, failure, unhealthy = "unknown", None, None, None
    health_url = f"{base_url.rstrip('/')}/api/health" if base_url else None
    if base_url and health_url:
        # The root can answer 200 from a cache or a static page while the booking API is down: the
        # Worker's own health contract (200, status and database "ok") is read beside it, at once.
        with ThreadPoolExecutor(max_workers=2) as pool:
            health = pool.submit(_health_problem, health_url, timeout)
            [root] = perf([base_url], samples=samples, concurrency=samples, timeout=timeout)
            unhealthy = health.result()
        uptime = "operational" if root.success_rate == 100 and unhealthy is None else "degraded"
        response_time, failure = root.avg_response_time, root.error
    issues, advice = [], []
    if failure is not None:
        issues.append(f"site not answering 200 every time ({base_url}: {failure})")
    if unhealthy is not None:
        issues.append(f"{health_url} reports the service unhealthy ({unhealthy})")
    if uptime == "degraded":
        advice.append("run `bookingctl monitor health` and check the latest deployment; roll back if it is new")
    if response_time is not None and response_time > RESPONSE_THRESHOLD:
        issues.append(f"average response time {response_time:.2f} s > {RESPONSE_THRESHOLD:g} s")
        advice.append("run `bookingctl monitor perf` and `bookingctl db stats` to find the slow path")
    if errors:
        issues.append(f"{errors} server error(s) (5xx) in the last 24 h")
        advice.append("read the Worker's logs for the failing endpoints")
    drifted = len((drift or {}).get("differences") or [])
    if drifted:
        broken = len((drift or {}).get("policiesBroken") or [])
        issues.append(f"{drifted} difference(s) between the account and what the stack declares"
                      + (f", breaking {broken} policy check(s)" if broken else ""))
        advice.append("read the drift issue (or run `bookingctl drift --stack STACK`) and converge each difference")
    if int(counts["today"]) == 0 and sum(per_day.values()) > 0 and today.weekday() < 6:
        issues.append("no bookings today on a trading day")
        advice.append("make a test booking on /book/<salon> to confirm the booking flow works")
    data = {
        "date": today.isoformat(),
        "generated_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "database": db.label,
        "metrics": {
            "uptime_status": uptime,
            "avg_response_time": response_time,
            "bookings_today": int(counts["today"]),
            "bookings_week": int(counts["week"]),
            "bookings_total": int(counts["total"]),
            "bookings_per_day": [{"date": d, "bookings": per_day.get(d, 0)} for d in days],
            "error_count": errors,
            # None: no drift result was given to the report (`report daily --drift FILE`).
            "drift_differences": drifted if drift is not None else None,
        },
        "incidents": [],
        "summary": {"overall_status": "degraded" if issues else "healthy", "key_issues": issues,
                    "recommendations": advice},
    }
    return DailyReport(data)


def _health_problem(url: str, timeout: float) -> str | None:
    """Why /api/health does not report the service healthy, or None when it does."""
    try:
        with Client(timeout=timeout, concurrency=1) as client:
            _, health = get_health(client, url)
    except HttpError as exc:
        return str(exc)
    return None if health.healthy else health.describe()


def markdown(report: DailyReport) -> str:
    """The report for people: summary first, then the numbers and a bar chart of bookings per day."""
    d, m = report.data, report.data["metrics"]
    lines = [f"# Daily report {d['date']}", "", report.one_line(), ""]
    if d["summary"]["key_issues"]:
        lines += ["## Key issues", ""] + [f"- {i}" for i in d["summary"]["key_issues"]] + [""]
        lines += ["## Recommendations", ""] + [f"- {r}" for r in d["summary"]["recommendations"]] + [""]
    response = "n/a" if m["avg_response_time"] is None else f"{m['avg_response_time']:.3f} s"
    lines += ["## Metrics", "", "| metric | value |", "| --- | --- |",
              f"| uptime | {m['uptime_status']} |", f"| average response time | {response} |",
              f"| bookings today | {m['bookings_today']} |", f"| bookings in the last 7 days | {m['bookings_week']} |",
              f"| bookings in total | {m['bookings_total']} |", f"| server errors (24 h) | {m['error_count']} |",
              f"| drift (differences from the stack) | {_drift_cell(m.get('drift_differences'))} |", "",
              "## Bookings per day", "", "```"]
    peak = max((day["bookings"] for day in m["bookings_per_day"]), default=0) or 1
    for day in m["bookings_per_day"]:
        bar = "█" * round(30 * day["bookings"] / peak)
        lines.append(f"{day['date']} {bar} {day['bookings']}")
    lines += ["```", ""]
    return "\n".join(lines)


def _drift_cell(found: int | None) -> str:
    return "not checked" if found is None else str(found)


def write(report: DailyReport, folder: Path) -> list[Path]:
    """daily-report-<date>.json and .md, each written aside and renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, text in ((".json", json.dumps(report.data, indent=2) + "\n"), (".md", markdown(report))):
        target = folder / f"daily-report-{report.data['date']}{suffix}"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        Path(tmp).replace(target)
        written.append(target)
    return written
