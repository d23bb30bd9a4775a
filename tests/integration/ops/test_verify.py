"""Post-deploy verification against real HTTP servers on 127.0.0.1 and real databases."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloudflare import Cloudflare
from typer.testing import CliRunner

from bookingctl.cli import app
from ops.observation.verify import verify
from ops.targets import LocalDatabase, remote_database
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, running
from tests.helpers.clock import FakeClock
from tests.helpers.hostile_http import Hostile, hostile, run_cli, within
from tests.helpers.http_site import Site, serving

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow


@pytest.fixture
def db_file(empty_sqlite: Path) -> Path:
    return empty_sqlite


@pytest.fixture
def site() -> Iterator[Site]:
    with serving(Site()) as running_site:
        yield running_site


def by_name(result: object) -> dict[str, object]:
    return {c.name: c for c in result.checks}  # type: ignore[attr-defined]


def test_healthy_site_and_database_pass_first_time(site: Site, db_file: Path) -> None:
    fake = FakeClock()
    result = verify(site.url, LocalDatabase(db_file), clock=fake.clock())
    assert result.ok
    assert [c.name for c in result.checks] == ["main_application", "api_health", "database"]
    assert all(c.attempts == 1 for c in result.checks) and fake.sleeps == []
    health = by_name(result)["api_health"]
    assert health.http_code == 200 and "version='v-123'" in health.detail  # type: ignore[attr-defined]


def test_server_error_fails_after_retrying_until_the_deadline(site: Site) -> None:
    site.root_status = 500
    fake = FakeClock()
    result = verify(site.url, None, deadline=60, clock=fake.clock())
    root = by_name(result)["main_application"]
    assert not result.ok and root.detail == "HTTP 500"  # type: ignore[attr-defined]
    assert root.attempts > 3 and fake.sleeps[:3] == [1.0, 2.0, 4.0]  # type: ignore[attr-defined]
    assert sum(fake.sleeps) <= 60
    assert by_name(result)["api_health"].attempts == 1  # type: ignore[attr-defined]  # passing checks stop


def test_unhealthy_database_in_health_body_fails(site: Site) -> None:
    site.health_status = 503
    site.health_body = {"status": "error", "version": "v-123", "database": {"status": "error", "error": "D1_ERROR"}}
    result = verify(site.url, None, deadline=0, clock=FakeClock().clock())
    health = by_name(result)["api_health"]
    assert not result.ok and "database='error'" in health.detail  # type: ignore[attr-defined]


@pytest.mark.parametrize("body", [b"<html>oops</html>", {"status": "degraded", "database": {"status": "ok"}},
                                  {"status": "ok"}])
def test_health_with_a_wrong_body_fails_even_with_200(site: Site, body: object) -> None:
    site.health_body = body
    result = verify(site.url, None, deadline=0, clock=FakeClock().clock())
    assert not by_name(result)["api_health"].ok  # type: ignore[attr-defined]


def test_slow_site_times_out(site: Site) -> None:
    site.delay = 0.5
    result = verify(site.url, None, deadline=0, request_timeout=0.1, clock=FakeClock().clock())
    detail = by_name(result)["main_application"].detail  # type: ignore[attr-defined]
    assert not result.ok and detail == "timed out: no complete answer within 0.1 s (no answer yet)"


def test_deployment_still_propagating_passes_once_it_answers(site: Site) -> None:
    site.failures_first = 4
    fake = FakeClock()
    result = verify(site.url, None, deadline=120, clock=fake.clock())
    assert result.ok
    assert by_name(result)["main_application"].attempts >= 2 and fake.sleeps  # type: ignore[attr-defined]


def test_unreachable_site_fails(db_file: Path) -> None:
    result = verify("http://127.0.0.1:9", LocalDatabase(db_file), deadline=0, clock=FakeClock().clock())
    assert not result.ok and by_name(result)["main_application"].detail == "connection refused"  # type: ignore[attr-defined]
    assert by_name(result)["database"].ok  # type: ignore[attr-defined]


def test_corrupt_database_file_fails_the_database_check(tmp_path: Path) -> None:
    """A file that starts like SQLite but whose pages are garbage: the probe reads a page and fails."""
    path = tmp_path / "broken.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    data = bytearray(path.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # keep SQLite's 100-byte header, ruin the schema page
    path.write_bytes(bytes(data))
    result = verify(None, LocalDatabase(path), deadline=0, clock=FakeClock().clock())
    assert not result.ok and "malformed" in by_name(result)["database"].detail  # type: ignore[attr-defined]


def test_remote_database_is_checked_through_the_d1_api(tmp_path: Path) -> None:
    with running(tmp_path, ACCOUNT) as double:
        d1 = double.add_database("appointmentbooking-db")
        with Cloudflare(api_token=TOKEN, base_url=double.base_url, _strict_response_validation=True) as sdk:
            result = verify(None, remote_database(ACCOUNT, d1.name, client=sdk), clock=FakeClock().clock())
        assert result.ok
        assert ("POST", f"/client/v4/accounts/{ACCOUNT}/d1/database/{d1.uuid}/query") in double.requests


def test_cli_prints_json_and_exits_0_or_1(site: Site, db_file: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", "--base-url", site.url, "--local", str(db_file), "--timeout", "0"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True
    site.root_status = 502
    failed = runner.invoke(app, ["verify", "--base-url", site.url, "--timeout", "0"])
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["checks"][0]["detail"] == "HTTP 502"


def test_cli_needs_something_to_verify() -> None:
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == 2


# --- hostile sites: every check ends within its deadlines, with a failing check saying why -------

@pytest.fixture
def server() -> Iterator[Hostile]:
    with hostile() as running:
        yield running


@pytest.mark.parametrize(("behaviour", "detail"), [
    ("drip", "timed out: no complete answer within 1 s (HTTP 200, "),
    ("slow-headers", "timed out: no complete answer within 1 s (no answer yet)"),
    ("endless", "HTTP 200 with a body over the 2,097,152-byte limit (stopped reading)"),
    ("huge", "HTTP 200 with a body of 4,294,967,296 bytes, over the 2,097,152-byte limit (not read)"),
    ("bomb", "HTTP 200 with a body over the 2,097,152-byte limit (stopped reading)"),
])
def test_a_hostile_site_fails_within_the_deadline(server: Hostile, behaviour: str, detail: str) -> None:
    """`--timeout 2 --request-timeout 1`: no request may outlive the 2 s deadline by more than 1 s."""
    result, elapsed = within(30, lambda: verify(server.url + "/" + behaviour, None, deadline=2, request_timeout=1))
    root = by_name(result)["main_application"]
    assert not result.ok and root.detail.startswith(detail), root.detail  # type: ignore[attr-defined]
    assert elapsed < 2 + 1 + 1, elapsed


@pytest.mark.parametrize(("depth", "detail"), [
    (5_000, "HTTP 200, body is not a usable JSON object (nested deeper than 32 levels)"),
    (100_000, "HTTP 200 with a body of 200,000 bytes, over the 65,536-byte limit (not read)"),
])
def test_deeply_nested_health_json_fails_the_check_instead_of_crashing(server: Hostile, depth: int,
                                                                       detail: str) -> None:
    server.depth = depth
    result = verify(server.url + "/deep", None, deadline=0, clock=FakeClock().clock())
    assert by_name(result)["main_application"].ok  # type: ignore[attr-defined]
    assert not result.ok and by_name(result)["api_health"].detail == detail  # type: ignore[attr-defined]


def test_a_redirect_off_the_site_is_not_followed_and_the_detail_says_so(server: Hostile) -> None:
    # One target: which ones are off the site is redirect_problem's table in tests/unit/ops/test_http.py.
    server.location = "http://169.254.169.254/latest/meta-data/"
    why = "a link-local address"
    result = verify(server.url + "/redirect", None, deadline=0, request_timeout=1, clock=FakeClock().clock())
    root = by_name(result)["main_application"]
    assert not root.ok and root.http_code == 302  # type: ignore[attr-defined]
    assert root.detail.startswith("HTTP 302 redirect to http://") and why in root.detail  # type: ignore[attr-defined]
    assert all(path.startswith("/redirect") for _, path in server.requests)


def test_cli_verify_against_an_endless_body_ends_in_bounded_time_and_memory(server: Hostile) -> None:
    server.budget = 512 * 1024 * 1024  # a client without a cap would hold hundreds of MB before it stops
    run = run_cli(["verify", "--base-url", server.url + "/endless", "--timeout", "2", "--request-timeout", "1"], 60)
    assert run.code == 1 and "verification failed" in run.stderr, run.stderr[-500:]
    assert run.seconds < 2 + 1 + 5  # deadline, one request past it, interpreter start-up
    assert 0 < run.peak_rss_mb < 150, run.peak_rss_mb
    assert "over the 2,097,152-byte limit" in json.loads(run.stdout)["checks"][0]["detail"]


def test_cli_verify_against_a_slow_drip_ends_at_its_timeout(server: Hostile) -> None:
    run = run_cli(["verify", "--base-url", server.url + "/drip", "--timeout", "2", "--request-timeout", "1"], 60)
    assert run.code == 1 and run.seconds < 2 + 1 + 5, (run.code, run.seconds)
    assert "no complete answer within 1 s" in json.loads(run.stdout)["checks"][0]["detail"]


# --- the command line: progress, and bad options as usage errors ---------------------------------

def test_cli_progress_reports_each_attempt_with_what_failed_and_why(site: Site) -> None:
    site.failures_first = 2  # both checks of the first attempt get 503 "starting"
    args = ["verify", "--base-url", site.url, "--timeout", "30"]
    loud = CliRunner().invoke(app, [*args, "--progress"])
    lines = [line for line in loud.stderr.splitlines() if line.startswith("verify attempt")]
    assert loud.exit_code == 0 and len(lines) == 2
    assert "main_application: HTTP 503" in lines[0] and "api_health: HTTP 503, body is not JSON" in lines[0]
    assert lines[1].endswith("all checks pass")
    site.failures_first = 2
    piped = CliRunner().invoke(app, args)  # stderr is not a terminal: quiet by default
    quiet = CliRunner().invoke(app, [*args, "--quiet"])
    assert piped.exit_code == quiet.exit_code == 0 and piped.stderr == quiet.stderr == ""


def test_cli_progress_escapes_control_characters_from_the_site(server: Hostile) -> None:
    result = CliRunner().invoke(app, ["verify", "--base-url", server.url + "/ansi", "--timeout", "0", "--progress"])
    assert result.exit_code == 1 and "status='error\\x1b[2J'" in result.stderr
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr


@pytest.mark.parametrize(("option", "value", "allowed"), [
    ("--timeout", "nan", "0 to 3600"), ("--timeout", "inf", "0 to 3600"), ("--timeout", "-5", "0 to 3600"),
    ("--timeout", "1e400", "0 to 3600"), ("--request-timeout", "nan", "0.1 to 300"),
    ("--request-timeout", "-1", "0.1 to 300"), ("--request-timeout", "0", "0.1 to 300"),
    ("--request-timeout", "1e9", "0.1 to 300"),
])
def test_cli_nonsense_timeouts_are_usage_errors_naming_the_range(option: str, value: str, allowed: str) -> None:
    result = CliRunner().invoke(app, ["verify", "--base-url", "http://127.0.0.1:9", option, value])
    assert result.exit_code == 2
    assert f"{option} " in result.stderr and f"from {allowed}" in result.stderr, result.stderr


def test_cli_a_url_without_scheme_is_a_usage_error() -> None:
    # One URL: which URLs are unusable is url_problem's table in tests/unit/ops/test_http.py.
    url = "127.0.0.1:8787"
    result = CliRunner().invoke(app, ["verify", "--base-url", url, "--timeout", "0"])
    assert result.exit_code == 2 and result.stdout == ""
    assert f"--base-url {url!r} is not a usable URL" in result.stderr and "http://127.0.0.1:8787" in result.stderr
