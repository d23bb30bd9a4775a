"""The post-deploy watch: a fake clock runs 10 minutes instantly against a real site turning unhealthy.

The triggers' arithmetic (windows, rates, latency) is tested on made-up samples in
tests/unit/ops/test_watch_evaluate.py; here the samples come from real requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cloudflare import Cloudflare

from booking_shared.watch import WatchThresholds
from ops.releases.rollback import rollback
from ops.releases.watch import RollbackOutcome, Sample, WatchSettings, http_probe, watch
from ops.targets import WorkerScript
from tests.helpers import ACCOUNT, REPO
from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.clock import FakeClock
from tests.helpers.hostile_http import hostile, within
from tests.helpers.http_site import HEALTHY, Site, serving

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow


@pytest.fixture
def site() -> Iterator[Site]:
    with serving(Site()) as running_site:
        yield running_site


def scripted(site: Site, fake: FakeClock, change: Callable[[Site, float, int], None]) -> Callable[[], Sample]:
    """The real HTTP probe, with the site's behaviour set from the fake time before each request."""
    probe = http_probe(site.url + "/api/health", fake.clock())
    count = {"n": 0}

    def sample() -> Sample:
        count["n"] += 1
        change(site, fake.t, count["n"])
        return probe()

    return sample


def healthy(site: Site) -> None:
    site.health_status, site.health_body = 200, dict(HEALTHY)


def failing(site: Site) -> None:
    site.health_status, site.health_body = 500, {"status": "error", "database": {"status": "ok"}}


def test_a_healthy_deployment_is_watched_for_the_whole_duration(site: Site) -> None:
    fake = FakeClock()
    result = watch(scripted(site, fake, lambda s, t, n: None), WatchSettings(), fake.clock())
    assert result.trigger is None and len(result.samples) == 41  # every 15 s for 10 minutes, both ends
    assert len(site.hits) == 41


def test_error_rate_above_5_percent_over_5_minutes_rolls_back(site: Site) -> None:
    fake = FakeClock()
    rollbacks: list[str] = []

    def one_in_ten(s: Site, t: float, n: int) -> None:
        failing(s) if n % 10 == 0 else healthy(s)


    def roll_back(reason: str) -> RollbackOutcome:
        rollbacks.append(reason)
        return RollbackOutcome(report={})

    result = watch(scripted(site, fake, one_in_ten), WatchSettings(), fake.clock(), roll_back)
    assert result.trigger is not None and result.trigger.startswith("error rate")
    assert rollbacks == [result.trigger]
    assert result.samples[-1].at >= 300  # judged only once the 5-minute window was covered


def test_error_rate_at_or_below_5_percent_does_not(site: Site) -> None:
    fake = FakeClock()

    def one_in_twenty_five(s: Site, t: float, n: int) -> None:
        failing(s) if n % 25 == 0 else healthy(s)

    assert watch(scripted(site, fake, one_in_twenty_five), WatchSettings(), fake.clock()).trigger is None


def test_database_failures_roll_back_without_waiting_for_a_window(site: Site) -> None:
    fake = FakeClock()

    def database_down_after_a_minute(s: Site, t: float, n: int) -> None:
        if t >= 60:
            s.health_status, s.health_body = 503, {"status": "error", "database": {"status": "error"}}

    result = watch(scripted(site, fake, database_down_after_a_minute), WatchSettings(), fake.clock(),
                   lambda reason: RollbackOutcome(report={"to": "previous"}))
    assert result.trigger == "database connectivity failures: 3 consecutive checks"
    assert result.samples[-1].at == 90 and result.rolled_back


def test_trigger_rolls_the_worker_back_through_the_api(site: Site, double: CloudflareDouble,
                                                       client: Cloudflare) -> None:
    double.add_script("appointmentbooking-api", versions=2)
    old, new = (v["id"] for v in double.scripts["appointmentbooking-api"].versions)
    fake = FakeClock()

    def roll_back(reason: str) -> RollbackOutcome:
        done = rollback(WorkerScript(client, ACCOUNT, "appointmentbooking-api"), reason=reason)
        return RollbackOutcome(report={"from": done.from_version, "to": done.to_version})

    result = watch(scripted(site, fake, lambda s, t, n: failing(s) if t >= 30 else healthy(s)),
                   WatchSettings(thresholds=WatchThresholds(database_failures=100)), fake.clock(), roll_back)
    assert result.rolled_back and result.rollback is not None
    assert result.rollback.report == {"from": new, "to": old}
    assert double.scripts["appointmentbooking-api"].deployments[-1]["versions"][0]["version_id"] == old


def test_a_failed_rollback_is_never_reported_as_rolled_back(site: Site) -> None:
    fake = FakeClock()
    failing(site)
    site.health_body = {"status": "error", "database": {"status": "error"}}
    result = watch(scripted(site, fake, lambda s, t, n: None), WatchSettings(), fake.clock(),
                   lambda reason: RollbackOutcome(error="CLOUDFLARE_API_TOKEN is not set"))
    assert result.trigger is not None and not result.rolled_back
    assert result.to_dict()["rolledBack"] is False
    assert result.to_dict()["rollback"] == {"error": "CLOUDFLARE_API_TOKEN is not set"}


def test_cli_watch_reports_json_and_refuses_a_bad_duration(site: Site) -> None:
    from typer.testing import CliRunner

    from bookingctl.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["watch", "--stack", "staging", "--base-url", site.url, "--duration", "0s",
                             "--no-rollback", "--project-dir", str(REPO)])
    assert ok.exit_code == 0
    assert '"samples": 1' in ok.stdout and '"trigger": null' in ok.stdout
    bad = runner.invoke(app, ["watch", "--stack", "staging", "--duration", "ten minutes", "--project-dir", str(REPO)])
    assert bad.exit_code == 2 and "use a number with s, m or h" in bad.stderr
    failing(site)
    site.health_body = {"status": "error", "database": {"status": "error"}}
    fired = runner.invoke(app, ["watch", "--stack", "staging", "--base-url", site.url, "--duration", "0s",
                                "--no-rollback", "--project-dir", str(REPO)])
    assert fired.exit_code == 0  # one sample cannot meet any trigger (3 database failures needed)


# --- a hostile site cannot stop the watch: each sample ends within the probe's timeout ------------

def test_a_slow_drip_gives_failing_samples_and_the_watch_goes_on_to_roll_back() -> None:
    fake = FakeClock()
    rollbacks: list[str] = []

    def roll_back(reason: str) -> RollbackOutcome:
        rollbacks.append(reason)
        return RollbackOutcome(report={})

    with hostile() as server:
        server.drip_length = 1000  # small enough to be read, so only the deadline can end it
        probe = http_probe(server.url + "/drip/api/health", fake.clock(), timeout=0.5)
        # A 30 s error window (the smallest allowed): three samples cover it.
        settings = WatchSettings(thresholds=WatchThresholds(error_window_seconds=30))
        result, elapsed = within(30, lambda: watch(probe, settings, fake.clock(), roll_back))
        probe.close()
    assert [s.at for s in result.samples] == [0, 15, 30]  # sampling went on
    assert all(not s.ok and s.detail.startswith("timed out: no complete answer within 0.5 s (HTTP 200, ")
               for s in result.samples)
    # A drip says nothing about the database: the error rate, not the database trigger, rolls back.
    assert rollbacks == ["error rate 100.0 % > 5 % over 0.5 minutes"]
    assert elapsed < 3 * 0.5 + 1.5


def test_a_probe_ends_at_its_timeout_on_slow_headers_and_on_deep_json() -> None:
    fake = FakeClock()
    with hostile() as server:
        server.depth = 5_000
        slow = http_probe(server.url + "/slow-headers/api/health", fake.clock(), timeout=0.5)
        deep = http_probe(server.url + "/deep/api/health", fake.clock(), timeout=0.5)
        (late, elapsed), nested = within(10, slow), deep()
        slow.close()
        deep.close()
    assert not late.ok and late.detail == "timed out: no complete answer within 0.5 s (no answer yet)"
    assert elapsed < 0.5 + 1.5 and 0.4 < late.latency < 1.5
    assert not nested.ok and nested.database_ok is None  # the body said nothing about the database
    assert nested.detail == "HTTP 200, body is not a usable JSON object (nested deeper than 32 levels)"


def test_cli_watch_progress_reports_each_sample_and_why_it_failed(site: Site) -> None:
    from typer.testing import CliRunner

    from bookingctl.cli import app

    failing(site)
    args = ["watch", "--stack", "staging", "--base-url", site.url, "--duration", "0s", "--no-rollback",
            "--project-dir", str(REPO)]
    loud = CliRunner().invoke(app, [*args, "--progress"])
    lines = [line for line in loud.stderr.splitlines() if line.startswith("sample ")]
    assert loud.exit_code == 0 and len(lines) == 1
    assert lines[0].startswith("sample 1 at 0 s: FAILING (HTTP 500, status='error', database='ok'")
    quiet = CliRunner().invoke(app, args)  # stderr is not a terminal: quiet by default
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_cli_watch_refuses_a_base_url_without_scheme() -> None:
    from typer.testing import CliRunner

    from bookingctl.cli import app

    result = CliRunner().invoke(app, ["watch", "--stack", "staging", "--base-url", "127.0.0.1:8787",
                                      "--no-rollback", "--project-dir", str(REPO)])
    assert result.exit_code == 2 and "--base-url '127.0.0.1:8787' is not a usable URL" in result.stderr


def _stack_with_one_failure_trigger(tmp_path: Path) -> Path:
    """A project whose staging stack rolls back on the first reported database failure."""
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "worker/src/index.js"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((REPO / name).read_bytes())
    project = tmp_path / "Pulumi.yaml"  # the same program, from the repository
    project.write_text(project.read_text().replace("main: infra/", f"main: {REPO / 'infra'}"))
    stack = tmp_path / "Pulumi.staging.yaml"
    stack.write_text(stack.read_text() + "  booking:watch:\n    databaseFailures: 1\n")
    return tmp_path


@contextmanager
def site_that_recovers(version: str) -> Iterator[str]:
    """/api/health reports a database failure once, then a healthy database served by `version`."""
    answers = [(503, {"status": "error", "database": {"status": "error"}})]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            status, body = (answers.pop(0) if answers and self.path == "/api/health" else
                            (200, {"status": "ok", "version": version, "database": {"status": "ok"}}))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_cli_watch_rolls_back_to_the_version_that_served_before_and_verifies_it(
        tmp_path: Path, double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bookingctl.cli import app
    from tests.helpers.cf_double import TOKEN

    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    double.add_database("appointmentbooking-db-staging")
    double.add_script("appointmentbooking-api-staging", versions=2)
    old, new = (v["id"] for v in double.scripts["appointmentbooking-api-staging"].versions)
    project = _stack_with_one_failure_trigger(tmp_path)
    with site_that_recovers(old) as url:
        result = CliRunner().invoke(app, ["watch", "--stack", "staging", "--base-url", url, "--duration", "1m",
                                          "--project-dir", str(project)])
    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["trigger"] == "database connectivity failures: 1 consecutive checks"
    assert report["rolledBack"] is True
    assert (report["rollback"]["from"], report["rollback"]["to"]) == (new, old)
    assert report["rollback"]["verification"]["ok"] is True  # the verification probed the watched site
    assert "pulumi up --stack staging --replace" in result.stderr


def test_cli_watch_will_not_roll_back_past_a_same_version_redeploy(
        tmp_path: Path, double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch, site: Site) -> None:
    from typer.testing import CliRunner

    from bookingctl.cli import app
    from tests.helpers.cf_double import TOKEN

    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    double.add_database("appointmentbooking-db-staging")
    script = double.add_script("appointmentbooking-api-staging", versions=2)
    script.deployments.append(double._deployment([(script.versions[1]["id"], 100.0)], "api"))
    result = CliRunner().invoke(app, ["watch", "--stack", "staging", "--base-url", site.url, "--duration", "0s",
                                      "--project-dir", str(REPO)])
    assert result.exit_code == 0 and "cannot roll back" in result.stderr
    assert not [p for m, p in double.requests if m == "POST"]
