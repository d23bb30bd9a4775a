"""Health report and performance monitor against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from ops.observation.monitor import default_urls, health, perf, post_webhook
from ops.targets import LocalDatabase
from tests.helpers.hostile_http import hostile, within
from tests.helpers.http_site import Site, answering, serving

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow


def barrier_server(parties: int) -> Any:
    """Answers 200 only when `parties` requests are in flight together: proves concurrency, not speed."""
    barrier = threading.Barrier(parties, timeout=5)

    def status(path: str, body: bytes) -> int:
        try:
            barrier.wait()
            return 200
        except threading.BrokenBarrierError:
            return 500

    return answering(status)


@pytest.fixture
def site() -> Iterator[Site]:
    with serving(Site()) as running_site:
        yield running_site


@pytest.fixture
def db(tmp_path: Path) -> LocalDatabase:
    path = tmp_path / "d1.sqlite"
    sqlite3.connect(path).close()
    return LocalDatabase(path)


def test_healthy_report_has_the_guides_shape(site: Site, db: LocalDatabase) -> None:
    with answering(lambda p, b: 200) as (ok_url, _), answering(lambda p, b: 404) as (google, _):
        report = health(site.url + "/api/health", db, {"paystack": ok_url, "google_calendar": google,
                                                       "whatsapp": ok_url}).to_dict()
    assert report["overall_status"] == "OK" and report["timestamp"].endswith("Z")
    main = report["checks"]["main_application"]
    assert (main["status"], main["http_code"]) == ("OK", 200) and main["response_time"] >= 0
    assert report["checks"]["database"] == {"status": "OK"}
    assert report["checks"]["google_calendar"]["status"] == "OK"  # 404 from a live API root is reachable
    assert set(report["checks"]) == {"main_application", "database", "paystack", "google_calendar", "whatsapp"}


def test_checks_run_concurrently(site: Site, db: LocalDatabase) -> None:
    with barrier_server(3) as (url, seen):
        report = health(site.url + "/api/health", db, {"paystack": url + "/p", "google_calendar": url + "/g",
                                                       "whatsapp": url + "/w"})
    assert report.overall_status == "OK", report.checks
    assert len(seen) == 3


def test_an_integration_down_degrades_the_report(site: Site, db: LocalDatabase) -> None:
    with answering(lambda p, b: 200) as (ok_url, _), answering(lambda p, b: 503) as (down, _):
        report = health(site.url + "/api/health", db, {"paystack": ok_url, "whatsapp": down})
    assert report.overall_status == "DEGRADED"
    assert report.checks["whatsapp"] == {"status": "FAIL", "http_code": 503,
                                         "response_time": report.checks["whatsapp"]["response_time"],
                                         "error": "HTTP 503: the service answers with a server error"}


def test_a_check_that_never_answers_times_out_on_its_own(site: Site, db: LocalDatabase) -> None:
    """The integration's server never answers (not "answers late"), so its failure does not depend on
    timing; the site answers at once, with the whole timeout to spare."""
    with hostile() as server:
        report, elapsed = within(30, lambda: health(site.url + "/api/health", db, {"paystack": server.url + "/hang"},
                                                    timeout=2))
    paystack = report.checks["paystack"]
    assert paystack["status"] == "FAIL" and paystack["http_code"] == 0
    assert paystack["error"] == "timed out: no complete answer within 2 s (no answer yet)"
    assert report.checks["main_application"]["status"] == "OK"
    assert elapsed < 2 * 2  # concurrently: the hung check did not hold the others back


def test_without_a_database_target_the_workers_own_report_counts(site: Site) -> None:
    site.health_body = {"status": "error", "database": {"status": "error"}}
    report = health(site.url + "/api/health", None, {})
    assert report.checks["database"] == {"status": "FAIL", "source": "api/health",
                                         "error": "the Worker's /api/health reports database='error'"}


def test_webhook_is_retried_until_accepted() -> None:
    answers = iter([500, 502, 200])
    with answering(lambda p, b: next(answers)) as (url, seen):
        delivery = post_webhook(url, "Health check FAILED", sleep=lambda _: None)
    assert delivery.delivered and delivery.attempts == 3
    assert len(seen) == 3 and json.loads(seen[-1][1]) == {"text": "Health check FAILED"}


# --- D21: the main application is judged as verify judges /api/health ---------------------------

@pytest.mark.parametrize("body", [{"status": "error", "database": {"status": "ok"}},
                                  {"status": "ok", "database": {"status": "error"}},
                                  {"status": "ok"}, b"<html>maintenance</html>"])
def test_a_200_with_an_unhealthy_body_fails_the_main_application(site: Site, db: LocalDatabase, body: object) -> None:
    site.health_body = body
    report = health(site.url + "/api/health", db, {})
    main = report.checks["main_application"]
    assert report.overall_status == "FAIL" and main["status"] == "FAIL" and main["http_code"] == 200
    assert main["error"].startswith("HTTP 200, ")


# --- every failing check says why; integrations can be skipped ----------------------------------

def test_each_failing_check_says_why(db: LocalDatabase) -> None:
    with hostile() as server:
        server.location = "http://169.254.169.254/"
        report, _ = within(30, lambda: health("http://127.0.0.1:9/api/health", None, {
            "paystack": server.url + "/drip", "google_calendar": "http://127.0.0.1:9/",
            "whatsapp": server.url + "/redirect"}, timeout=1))
    checks = report.checks
    assert checks["main_application"]["error"] == "connection refused"
    assert checks["database"]["error"] == "no usable /api/health answer to read the database's status from"
    assert checks["google_calendar"]["error"] == "connection refused"
    assert checks["paystack"]["status"] == "OK"  # a status line proves the service is up: its body is not read
    assert checks["whatsapp"] == {"status": "OK", "http_code": 302,
                                  "response_time": checks["whatsapp"]["response_time"]}  # not followed


def test_skipped_integrations_are_reported_skipped_not_failed(site: Site, db: LocalDatabase) -> None:
    report = health(site.url + "/api/health", db, {"paystack": "http://127.0.0.1:9/",
                                                   "whatsapp": "http://127.0.0.1:9/"}, skip={"paystack", "whatsapp"})
    assert report.overall_status == "OK"
    assert report.checks["paystack"] == report.checks["whatsapp"] == {"status": "SKIPPED",
                                                                      "detail": "skipped on request"}


def test_cli_health_skip_options(site: Site, db: LocalDatabase) -> None:
    base = ["monitor", "health", "--base-url", site.url, "--local", str(db.path)]
    offline = CliRunner().invoke(app, [*base, "--skip-integrations"])
    assert offline.exit_code == 0, offline.stderr
    checks = json.loads(offline.stdout)["checks"]
    assert {name: c["status"] for name, c in checks.items()} == {
        "main_application": "OK", "database": "OK", "paystack": "SKIPPED", "google_calendar": "SKIPPED",
        "whatsapp": "SKIPPED"}
    with answering(lambda p, b: 200) as (ok_url, _):
        some = CliRunner().invoke(app, [*base, "--skip", "google-calendar", "--skip", "whatsapp",
                                        "--paystack-url", ok_url])
    assert some.exit_code == 0 and json.loads(some.stdout)["checks"]["paystack"]["status"] == "OK"
    bad = CliRunner().invoke(app, [*base, "--skip", "stripe"])
    assert bad.exit_code == 2 and "--skip 'stripe'" in bad.stderr and "paystack, google_calendar" in bad.stderr


# --- D6 for the monitor and webhooks: every request ends, every body is capped ------------------

def test_health_against_hostile_sites_ends_within_its_timeout(db: LocalDatabase) -> None:
    with hostile() as server:
        report, elapsed = within(30, lambda: health(server.url + "/drip/api/health", db, {
            "paystack": server.url + "/slow-headers", "google_calendar": server.url + "/endless",
            "whatsapp": server.url + "/bomb"}, timeout=1))
    assert elapsed < 1 + 1.5
    assert report.checks["main_application"]["error"].startswith("HTTP 200 with a body of 1,000,000 bytes")
    assert report.checks["paystack"]["error"].startswith("timed out: no complete answer within 1 s")
    assert report.checks["google_calendar"]["status"] == report.checks["whatsapp"]["status"] == "OK"


def test_health_of_a_deeply_nested_body_fails_instead_of_crashing(db: LocalDatabase) -> None:
    with hostile() as server:
        server.depth = 5_000
        report = health(server.url + "/deep/api/health", db, {})
    assert report.checks["main_application"]["error"] == (
        "HTTP 200, body is not a usable JSON object (nested deeper than 32 levels)")


def test_perf_against_a_slow_drip_ends_and_says_why(tmp_path: Path) -> None:
    with hostile() as server:
        [metrics], elapsed = within(30, lambda: perf([server.url + "/drip"], samples=4, concurrency=2, timeout=1))
    assert elapsed < 2 * 1 + 1.5  # two rounds of two, each ending at its 1 s deadline
    assert metrics.success_rate == 0 and metrics.success_breach
    assert metrics.error is not None and metrics.error.startswith("timed out: no complete answer within 1 s")


def test_webhook_delivery_to_a_drip_ends_within_its_attempts() -> None:
    with hostile() as server:
        delivery, elapsed = within(30, lambda: post_webhook(server.url + "/slow-headers", "x", timeout=1,
                                                            sleep=lambda _: None))
    assert not delivery.delivered and delivery.attempts == 3 and elapsed < 3 * 1 + 1.5
    assert delivery.error.startswith("timed out")


SECRET_HOOK_PATH = "/services/T000/B000/SECRETTOKEN"


def test_cli_never_prints_the_webhook_url(site: Site, db: LocalDatabase) -> None:
    site.health_status = 503  # the report fails, so the alert is sent
    with answering(lambda p, b: 500) as (hook, received):
        result = CliRunner().invoke(app, ["monitor", "health", "--base-url", site.url, "--skip-integrations",
                                          "--webhook", hook + SECRET_HOOK_PATH])
    assert result.exit_code == 1 and len(received) == 3
    host = hook.removeprefix("http://")
    assert f"--webhook URL (http://{host}/…) after 3 attempt(s): HTTP 500" in result.stderr
    assert "SECRETTOKEN" not in result.stderr + result.stdout
    unusable = CliRunner().invoke(app, ["monitor", "health", "--base-url", site.url, "--skip-integrations",
                                        "--webhook", "hooks.slack.com" + SECRET_HOOK_PATH])
    assert unusable.exit_code == 2 and "--webhook (value not shown" in unusable.stderr
    assert "SECRETTOKEN" not in unusable.stderr + unusable.stdout


# --- bad options are usage errors naming the option and the allowed range -----------------------

@pytest.mark.parametrize(("args", "message"), [
    (["health", "--base-url", "http://127.0.0.1:9", "--timeout", "nan"], "--timeout not a number: use a number of "
                                                                         "seconds from 0.1 to 300"),
    (["health", "--base-url", "http://127.0.0.1:9", "--timeout", "-1"], "--timeout -1: use a number of seconds "
                                                                        "from 0.1 to 300"),
    (["perf", "--url", "http://127.0.0.1:9", "--threshold", "nan"], "--threshold not a number: use a number of "
                                                                    "seconds from 0.001 to 3600"),
    (["perf", "--url", "http://127.0.0.1:9", "--threshold", "inf"], "--threshold inf: use"),
    (["perf", "--url", "http://127.0.0.1:9", "--success", "nan"], "--success not a number: use a percentage from "
                                                                  "0 to 100"),
    (["perf", "--url", "http://127.0.0.1:9", "--success", "101"], "--success 101: use a percentage from 0 to 100"),
    (["perf", "--url", "http://127.0.0.1:9", "--samples", "1000000000"], "--samples 1000000000: use a whole number "
                                                                         "from 1 to 10000"),
    (["perf", "--url", "http://127.0.0.1:9", "--concurrency", "50000"], "--concurrency 50000: use a whole number "
                                                                        "from 1 to 100"),
    (["perf", "--url", "127.0.0.1:8787/"], "--url '127.0.0.1:8787/' is not a usable URL"),
    (["perf", "--url", "http://127.0.0.1:9/", "--url", "notaurl"], "--url 'notaurl' is not a usable URL"),
    (["health", "--base-url", "127.0.0.1:8787"], "--base-url '127.0.0.1:8787' is not a usable URL"),
    (["health", "--base-url", "http://127.0.0.1:9", "--paystack-url", "api.paystack.co"],
     "--paystack-url 'api.paystack.co' is not a usable URL"),
])
def test_cli_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["monitor", *args])
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert "threshold breached" not in result.stderr


def test_cli_health_fails_and_alerts_the_webhook(site: Site, tmp_path: Path) -> None:
    db_file = tmp_path / "d1.sqlite"
    sqlite3.connect(db_file).close()
    with answering(lambda p, b: 200) as (ok_url, _), answering(lambda p, b: 200) as (hook, received):
        args = ["monitor", "health", "--base-url", site.url, "--local", str(db_file), "--paystack-url", ok_url,
                "--google-calendar-url", ok_url, "--whatsapp-url", "http://127.0.0.1:9/", "--webhook", hook]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["checks"]["whatsapp"]["status"] == "FAIL"
    assert b"whatsapp" in received[0][1]


def test_perf_reports_percentiles_and_success_rate(site: Site) -> None:
    [root, health_url] = perf([site.url + "/", site.url + "/api/health"], samples=5, concurrency=2)
    assert root.samples == 5 and root.success_rate == 100.0
    assert 0 < root.p50 <= root.p95 <= root.max and root.avg_response_time <= root.max
    assert not (root.response_breach or root.success_breach or health_url.success_breach)


def test_perf_samples_concurrently() -> None:
    with barrier_server(5) as (url, seen):
        [metrics] = perf([url + "/"], samples=5, concurrency=5)
    assert metrics.success_rate == 100.0 and len(seen) == 5


def test_perf_flags_failures_and_slowness(site: Site) -> None:
    site.root_status = 500
    [failing] = perf([site.url + "/"], samples=3, concurrency=3)
    assert failing.success_rate == 0 and failing.success_breach
    site.root_status, site.delay = 200, 0.2
    [slow] = perf([site.url + "/"], samples=2, concurrency=2, response_threshold=0.1)
    assert slow.response_breach and not slow.success_breach


def test_cli_perf_writes_the_metrics_file_and_exits_1_on_breach(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "performance-metrics.json"
    ok = CliRunner().invoke(app, ["monitor", "perf", "--url", site.url + "/", "--url", site.url + "/api/health",
                                  "--samples", "3", "--out", str(out)])
    assert ok.exit_code == 0 and [m["url"] for m in json.loads(out.read_text())] == [site.url + "/",
                                                                                     site.url + "/api/health"]
    site.health_status = 500
    failed = CliRunner().invoke(app, ["monitor", "perf", "--url", site.url + "/api/health", "--samples", "2"])
    assert failed.exit_code == 1 and "threshold breached" in failed.stderr


@pytest.mark.parametrize(("domain", "slug"), [("www.instylehairboutique.co.za", "instylehairboutique"),
                                              ("staging.instylehairboutique.co.za", "instylehairboutique")])
def test_default_urls_are_the_guides_three(domain: str, slug: str) -> None:
    assert default_urls(domain) == [f"https://{domain}", f"https://{domain}/book/{slug}",
                                    f"https://{domain}/api/health"]
