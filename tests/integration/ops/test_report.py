"""The daily report on a seeded database and a local site."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from ops.database.migrations import apply, discover
from ops.observation.report import build, markdown, write
from ops.targets import LocalDatabase
from tests.helpers import REPO
from tests.helpers.hostile_http import hostile, within
from tests.helpers.http_site import Site, answering, serving

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

NOW = dt.datetime(2026, 11, 26, 15, 0, tzinfo=dt.UTC)  # a Thursday


@pytest.fixture
def db(tmp_path: Path) -> LocalDatabase:
    database = LocalDatabase(tmp_path / "d1.sqlite", must_exist=False)
    apply(database, discover(REPO / "migrations"))
    c = database.conn
    c.execute("INSERT INTO tenants (id, slug, name) VALUES ('t1', 'instyle', 'InStyle')")
    c.execute("INSERT INTO users (id, tenant_id, email, name) VALUES ('u1', 't1', 'a@x.co.za', 'A')")
    c.execute("INSERT INTO services (id, tenant_id, name, duration_minutes) VALUES ('s1', 't1', 'Cut', 30)")
    bookings = {0: 3, 1: 5, 2: 0, 6: 2, 7: 4, 30: 9}  # days ago -> bookings; day 7 and 30 fall outside the week
    n = 0
    for days, count in bookings.items():
        for _ in range(count):
            n += 1
            created = (NOW - dt.timedelta(days=days)).strftime("%Y-%m-%d 09:00:00")
            c.execute("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at, created_at) "
                      "VALUES (?, 't1', 's1', 'u1', ?, ?)", (f"a{n}", created, created))
    for minutes, status in ((30, 502), (60, 200), (60 * 30, 500)):  # one 5xx in 24 h, one older
        c.execute("INSERT INTO api_usage_logs (status_code, timestamp) VALUES (?, ?)",
                  (status, (NOW - dt.timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")))
    return database


@pytest.fixture
def site() -> Iterator[Site]:
    with serving(Site()) as running_site:
        yield running_site


def test_bookings_today_week_total_and_per_day(db: LocalDatabase, site: Site) -> None:
    m = build(db, site.url, now=NOW).data["metrics"]
    assert (m["bookings_today"], m["bookings_week"], m["bookings_total"]) == (3, 10, 23)
    assert [d["bookings"] for d in m["bookings_per_day"]] == [2, 0, 0, 0, 0, 5, 3]
    assert m["bookings_per_day"][-1]["date"] == "2026-11-26"
    assert m["uptime_status"] == "operational" and m["avg_response_time"] is not None


def test_server_errors_make_the_summary_degraded_with_advice(db: LocalDatabase, site: Site) -> None:
    report = build(db, site.url, now=NOW)
    summary = report.data["summary"]
    assert report.data["metrics"]["error_count"] == 1
    assert summary["overall_status"] == "degraded"
    assert summary["key_issues"] == ["1 server error(s) (5xx) in the last 24 h"]
    assert summary["recommendations"] == ["read the Worker's logs for the failing endpoints"]


def test_a_site_that_fails_is_reported_degraded(db: LocalDatabase, site: Site) -> None:
    db.conn.execute("DELETE FROM api_usage_logs")
    assert build(db, site.url, now=NOW).healthy
    site.root_status = 503
    report = build(db, site.url, now=NOW)
    assert report.data["metrics"]["uptime_status"] == "degraded" and not report.healthy
    assert any("monitor health" in r for r in report.data["summary"]["recommendations"])


def test_markdown_has_the_verdict_first_and_a_seven_day_chart(db: LocalDatabase, site: Site) -> None:
    text = markdown(build(db, site.url, now=NOW))
    lines = text.splitlines()
    assert lines[0] == "# Daily report 2026-11-26" and lines[2].startswith("⚠️ Daily health check")
    chart = text.split("```")[1].strip().splitlines()
    assert len(chart) == 7 and chart[-2].endswith(" 5") and chart[-2].count("█") == 30


def test_files_are_written_and_the_webhook_gets_one_line(db: LocalDatabase, site: Site, tmp_path: Path) -> None:
    written = write(build(db, site.url, now=NOW), tmp_path / "out")
    assert [p.name for p in written] == ["daily-report-2026-11-26.json", "daily-report-2026-11-26.md"]
    assert json.loads(written[0].read_text())["metrics"]["bookings_total"] == 23
    answers = iter([503, 200])
    with answering(lambda p, b: next(answers)) as (hook, received):
        result = CliRunner().invoke(app, ["report", "daily", "--local", str(db.path), "--base-url", site.url,
                                          "--out", str(tmp_path / "cli"), "--webhook", hook])
    assert result.exit_code == 0
    assert len(received) == 2 and "Daily health check" in json.loads(received[-1][1])["text"]
    assert len(list((tmp_path / "cli").glob("daily-report-*"))) == 2


def test_report_without_a_site_marks_uptime_unknown(db: LocalDatabase) -> None:
    data = build(db, None, now=NOW).data
    assert data["metrics"]["uptime_status"] == "unknown" and data["metrics"]["avg_response_time"] is None
    assert not any("site" in issue for issue in data["summary"]["key_issues"])


def test_a_drip_site_is_reported_degraded_within_the_probes_timeout(db: LocalDatabase) -> None:
    db.conn.execute("DELETE FROM api_usage_logs")
    with hostile() as server:
        report, elapsed = within(60, lambda: build(db, server.url + "/drip", now=NOW, timeout=1))
    assert elapsed < 1 + 1.5  # three concurrent probes, each ending within its 1 s
    assert report.data["metrics"]["uptime_status"] == "degraded"
    # The root and /api/health, probed side by side, each end within the timeout and each is an issue.
    unanswered, health = report.data["summary"]["key_issues"]
    assert health.startswith(f"{server.url}/drip/api/health reports the service unhealthy")
    assert unanswered.startswith(f"site not answering 200 every time ({server.url}/drip: timed out: no complete "
                                 "answer within 1 s")


@pytest.mark.parametrize(("option", "value", "shown"), [
    ("--base-url", "127.0.0.1:8787", "--base-url '127.0.0.1:8787' is not a usable URL"),
    ("--webhook", "hooks.example.com/T0/SECRETTOKEN", "--webhook (value not shown"),
])
def test_cli_a_url_without_scheme_is_a_usage_error(db: LocalDatabase, tmp_path: Path, option: str, value: str,
                                                   shown: str) -> None:
    result = CliRunner().invoke(app, ["report", "daily", "--local", str(db.path), "--out", str(tmp_path / "r"),
                                      option, value])
    assert result.exit_code == 2 and shown in result.stderr and "SECRETTOKEN" not in result.stderr
    assert not (tmp_path / "r").exists()


def test_as_of_an_earlier_time_counts_nothing_that_happened_after_it(db: LocalDatabase) -> None:
    m = build(db, None, now=NOW - dt.timedelta(days=2)).data["metrics"]
    # Days 0 and 1 (8 bookings, the 5xx of 30 minutes and 30 hours ago) are after the report's time.
    assert (m["bookings_today"], m["bookings_week"], m["bookings_total"]) == (0, 6, 15)
    assert [d["bookings"] for d in m["bookings_per_day"]] == [0, 4, 2, 0, 0, 0, 0]
    assert m["error_count"] == 0


def test_a_site_whose_health_endpoint_answers_503_is_reported_down_not_operational(db: LocalDatabase,
                                                                                   site: Site) -> None:
    db.conn.execute("DELETE FROM api_usage_logs")
    site.health_status = 503  # the root still answers 200
    report = build(db, site.url, now=NOW)
    assert report.data["metrics"]["uptime_status"] == "degraded" and not report.healthy
    [issue] = report.data["summary"]["key_issues"]
    assert issue.startswith(f"{site.url}/api/health reports the service unhealthy (HTTP 503")
    assert "operational" not in report.one_line() and "| uptime | degraded |" in markdown(report)


def test_the_drift_line_counts_differences_and_the_policies_they_break(db: LocalDatabase, tmp_path: Path) -> None:
    assert build(db, None, now=NOW).data["metrics"]["drift_differences"] is None  # not checked
    assert "| drift (differences from the stack) | not checked |" in markdown(build(db, None, now=NOW))
    clean = build(db, None, now=NOW, drift={"differences": [], "policiesBroken": []}).data
    assert clean["metrics"]["drift_differences"] == 0 and not any("drift" in i for i in clean["summary"]["key_issues"])
    drifted = build(db, None, now=NOW, drift={"differences": [{"kind": "changed"}, {"kind": "missing"}],
                                              "policiesBroken": [{"policy": "public-write-endpoints-rate-limited"}]})
    assert "2 difference(s) between the account and what the stack declares, breaking 1 policy check(s)" in \
        drifted.data["summary"]["key_issues"]
    # From the CLI, a drift file that is not one is refused, naming it.
    bad = tmp_path / "drift.json"
    bad.write_text("[]")
    result = CliRunner().invoke(app, ["report", "daily", "--local", str(db.path), "--out", str(tmp_path / "r"),
                                      "--drift", str(bad)])
    assert result.exit_code == 2 and "no `differences` list" in result.stdout + result.stderr
