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
from ops.monitor import default_urls, health, perf, post_webhook
from ops.targets import LocalDatabase
from tests.helpers.http_site import Site, answering, serving


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


def test_an_integration_down_fails_the_report(site: Site, db: LocalDatabase) -> None:
    with answering(lambda p, b: 200) as (ok_url, _), answering(lambda p, b: 503) as (down, _):
        report = health(site.url + "/api/health", db, {"paystack": ok_url, "whatsapp": down})
    assert report.overall_status == "FAIL"
    assert report.checks["whatsapp"] == {"status": "FAIL", "http_code": 503,
                                         "response_time": report.checks["whatsapp"]["response_time"]}


def test_a_slow_check_times_out_on_its_own(site: Site, db: LocalDatabase) -> None:
    slow = Site(delay=1.0)
    with serving(slow):
        report = health(site.url + "/api/health", db, {"paystack": slow.url + "/"}, timeout=0.2)
    assert report.checks["paystack"]["status"] == "FAIL" and report.checks["paystack"]["http_code"] == 0
    assert report.checks["main_application"]["status"] == "OK"


def test_without_a_database_target_the_workers_own_report_counts(site: Site) -> None:
    site.health_body = {"status": "error", "database": {"status": "error"}}
    report = health(site.url + "/api/health", None, {})
    assert report.checks["database"] == {"status": "FAIL", "source": "api/health"}


def test_webhook_is_retried_until_accepted() -> None:
    answers = iter([500, 502, 200])
    with answering(lambda p, b: next(answers)) as (url, seen):
        assert post_webhook(url, "Health check FAILED", sleep=lambda _: None)
    assert len(seen) == 3 and json.loads(seen[-1][1]) == {"text": "Health check FAILED"}


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
