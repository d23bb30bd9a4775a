"""The canary inside `booking-before-traffic`, against the API double and a site that honours version pinning.

Time is a fake clock: a 10-minute bake takes no real time, and every sleep is recorded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cloudflare import Cloudflare

from booking_shared.rollout import RolloutSettings, quarantine_key
from ops.observation.verify import Clock
from ops.releases import quarantine
from ops.releases.hooks import CANARY_REPORT_ENV, DeployHookError, before_traffic
from ops.targets import Bucket
from stackconfig.deploy import DeployContext
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, CloudflareDouble, ScriptState, Traffic
from tests.helpers.clock import EPOCH, FakeClock
from tests.helpers.http_site import PinnedVersion, Site, serving

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

WORKER = "appointmentbooking-api-staging"
BUCKET = "appointmentbooking-backups-staging"
BUNDLE = "ab" * 32


@dataclasses.dataclass
class Release:
    double: CloudflareDouble
    script: ScriptState
    site: Site
    stable: str
    new: str
    clock: FakeClock
    ctx: DeployContext
    lines: list[str]

    def run(self) -> dict[str, object] | None:
        return before_traffic(self.ctx, log=self.lines.append, version_id=self.new).canary

    def versions_ever_given_traffic(self) -> set[str]:
        return {v["version_id"] for d in self.script.deployments for v in d["versions"] if v["percentage"] > 0}


@pytest.fixture
def release(double: CloudflareDouble, tmp_path: Path) -> Iterator[Release]:
    script = double.add_script(WORKER, versions=2)
    stable = script.versions[-1]["id"]
    new = double.add_version(WORKER)
    # 1,000 requests a minute: a 10 % canary sees 100 a minute, the default minimum for a verdict.
    script.requests_per_minute = 1000
    script.traffic[stable] = Traffic(http_5xx_rate=0.005)
    double.add_database("appointmentbooking-db-staging")
    double.buckets[BUCKET] = {}
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    clock = FakeClock()
    double.now = clock.wall  # the API double's analytics and the canary's windows read the same time
    with serving(Site(worker=WORKER, deployed=script.shares)) as site:
        ctx = DeployContext(
            stack="staging", account_id=ACCOUNT, database_name="appointmentbooking-db-staging", worker_name=WORKER,
            base_url=site.url, migrations_dir=migrations, backup_dir=tmp_path / "backups", verify_deadline=0,
            client_factory=lambda: Cloudflare(api_token=TOKEN, base_url=double.base_url,
                                              _strict_response_validation=True, max_retries=1),
            rollout=RolloutSettings(), bundle_sha256=BUNDLE, bucket=BUCKET, clock=clock.clock())
        yield Release(double, script, site, stable, new, clock, ctx, [])


def test_a_bad_canary_is_rolled_back_inside_the_bake_and_the_update_never_happens(release: Release) -> None:
    release.script.traffic[release.new] = Traffic(http_5xx_rate=0.08)
    with pytest.raises(DeployHookError, match=r"canary of .* failed: HTTP answers .*: error rate 8\.0 %") as failed:
        release.run()
    assert release.script.shares() == {release.stable: 100.0}
    # The hook raised, so the engine never creates its 100 % deployment of the new version.
    assert not any(d["versions"] == [{"version_id": release.new, "percentage": 100.0}]
                   for d in release.script.deployments)
    baked = sum(s for s in release.clock.sleeps if s == 60.0)
    assert 0 < baked < 10 * 60, "rolled back inside the 10-minute bake"
    assert "quarantined" in str(failed.value) and "state still names the deployment that serves" in str(failed.value)


def test_with_analytics_three_minutes_late_a_two_minute_canary_answering_8_percent_5xx_is_rolled_back_on_traffic(
        release: Release) -> None:
    release.double.ingestion_delay = dt.timedelta(minutes=3)
    release.ctx = dataclasses.replace(release.ctx, rollout=RolloutSettings(bake_minutes=2))
    release.script.traffic[release.new] = Traffic(http_5xx_rate=0.08)
    with pytest.raises(DeployHookError, match=r"error rate 8\.0 %"):
        release.run()
    assert release.script.shares() == {release.stable: 100.0}
    assert not any("verdict: promote" in line for line in release.lines)


def test_with_analytics_three_minutes_late_a_healthy_two_minute_canary_is_promoted_on_traffic_not_probes(
        release: Release) -> None:
    release.double.ingestion_delay = dt.timedelta(minutes=3)
    release.ctx = dataclasses.replace(release.ctx, rollout=RolloutSettings(bake_minutes=2))
    release.script.traffic[release.new] = Traffic(http_5xx_rate=0.005)
    report = release.run()
    assert report is not None and (report["outcome"], report["basis"]) == ("promoted", "traffic")
    # The verdict waited for the data of the whole bake: 2 minutes of bake, then 3 for the analytics.
    assert sum(s for s in release.clock.sleeps if s == 60.0) == (2 + 3) * 60


def test_a_bad_canary_leaves_a_quarantine_record_with_its_reason_and_metrics(release: Release) -> None:
    release.script.traffic[release.new] = Traffic(http_5xx_rate=0.08)
    with pytest.raises(DeployHookError):
        release.run()
    record = json.loads(release.double.buckets[BUCKET][quarantine_key(BUNDLE)])
    assert record["versionId"] == release.new and record["bundleSha256"] == BUNDLE
    assert "error rate" in record["reason"]
    assert record["metrics"]["canary"]["http"]["errorRatePercent"] == pytest.approx(8.0, abs=0.5)
    assert record["cleared"] is None


def test_a_healthy_canary_is_promoted_and_left_for_the_engine_to_move_all_traffic(
        release: Release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CANARY_REPORT_ENV, str(tmp_path / "canary.json"))
    release.script.traffic[release.new] = Traffic(http_5xx_rate=0.005)
    report = release.run()
    assert report is not None and report["outcome"] == "promoted" and report["basis"] == "traffic"
    # The canary split still serves: the engine's own deployment moves the rest.
    assert release.script.shares() == {release.stable: 90.0, release.new: 10.0}
    # 10 minutes of bake, then 3 more until the analytics (3 minutes behind) cover all of it.
    assert sum(s for s in release.clock.sleeps if s == 60.0) == (10 + 3) * 60
    written = json.loads((tmp_path / "canary.json").read_text())
    assert written["outcome"] == "promoted" and len(written["minutes"]) == 13
    assert any(line.startswith("canary verdict: promote") for line in release.lines)
    assert quarantine_key(BUNDLE) not in release.double.buckets[BUCKET]
    # Every smoke test and probe named the canary's version as a probe: the Worker keeps them out
    # of the numbers it is judged on (third hostile review of #24: they diluted a quiet canary's).
    assert release.site.probe_marks and set(release.site.probe_marks) == {release.new}


def test_a_canary_whose_health_answers_503_with_no_runtime_errors_is_caught(release: Release) -> None:
    # Every failure is a *successful* invocation answering 503: the runtime's error count stays 0.
    release.script.traffic[release.new] = Traffic(http_5xx_rate=0.3, exception_rate=0.0)
    with pytest.raises(DeployHookError, match=r"error rate 30\.0 %"):
        release.run()
    assert release.script.shares() == {release.stable: 100.0}


def test_a_canary_with_a_fast_median_and_a_slow_tail_is_rolled_back_on_its_99th_percentile(release: Release) -> None:
    # Half a second at the median, 3 s for the slowest 1 %: a median judge would promote it.
    release.script.traffic[release.new] = Traffic(latency_ms=500, latency_p99_ms=3000)
    # 3.6 % of its requests are over 2 s: its 98th percentile is too, so at least 2 % of 1,000 are.
    with pytest.raises(DeployHookError, match=r"p99 response time 3\.00 s over .* \(threshold 2 s: at least 20 of "
                                              r"1,000 observed slower.*; the serving version's p99 is 0\.16 s\)"):
        release.run()
    assert release.script.shares() == {release.stable: 100.0}


def test_a_slow_tail_both_versions_share_is_not_promoted_nor_held_against_the_canary(release: Release) -> None:
    for version in (release.new, release.stable):
        release.script.traffic[version] = Traffic(latency_ms=500, latency_p99_ms=3000)
    with pytest.raises(DeployHookError, match="the serving version is over the limit too") as failed:
        release.run()
    assert "The bundle is not quarantined" in str(failed.value)
    assert release.script.shares() == {release.stable: 100.0}


def test_a_failing_pinned_smoke_test_stops_before_any_real_traffic(release: Release) -> None:
    release.site.versions[release.new] = PinnedVersion(health_status=500, healthy=False)
    with pytest.raises(DeployHookError, match="version-pinned smoke test failed"):
        release.run()
    assert release.new not in release.versions_ever_given_traffic()
    assert release.script.shares() == {release.stable: 100.0}
    # The smoke test reached the new version only through the pinning header.
    assert {v for v, _ in release.site.pinned_hits} == {release.new}


def test_insufficient_traffic_rests_on_the_pinned_probes_by_default(release: Release) -> None:
    release.script.requests_per_minute = 5  # a quiet night: 0-1 canary requests a minute
    report = release.run()
    assert report is not None and report["outcome"] == "promoted" and report["basis"] == "probes"
    assert "fewer than minRequests" in str(report["reason"])


def test_a_bake_short_of_min_requests_goes_on_until_the_traffic_can_decide(release: Release) -> None:
    # 50 requests a minute: about 5 of the canary's a minute, 50 by the end of the 10-minute bake.
    release.script.requests_per_minute = 50
    report = release.run()
    assert report is not None and (report["outcome"], report["basis"]) == ("promoted", "traffic")
    baked = sum(s for s in release.clock.sleeps if s == 60.0) / 60
    # Past the bake and its data (13 minutes), short of the longest bake (30) and its data.
    assert 13 < baked < 33
    assert any("longer up to 30 min while under minRequests" in line for line in release.lines)


def test_a_bake_that_never_reaches_min_requests_ends_at_max_bake_minutes_on_the_probes(release: Release) -> None:
    release.script.requests_per_minute = 5
    release.ctx = dataclasses.replace(release.ctx, rollout=RolloutSettings(max_bake_minutes=20))
    report = release.run()
    assert report is not None and (report["outcome"], report["basis"]) == ("promoted", "probes")
    assert sum(s for s in release.clock.sleeps if s == 60.0) / 60 == 20 + 3  # the longest bake and its data


def test_max_bake_minutes_no_longer_than_the_bake_keeps_the_bake_as_it_is(release: Release) -> None:
    release.script.requests_per_minute = 50
    release.ctx = dataclasses.replace(release.ctx, rollout=RolloutSettings(max_bake_minutes=10))
    report = release.run()
    assert report is not None and (report["outcome"], report["basis"]) == ("promoted", "probes")
    assert sum(s for s in release.clock.sleeps if s == 60.0) / 60 == 10 + 3


def test_insufficient_traffic_rolls_back_with_on_insufficient_traffic_rollback(release: Release) -> None:
    release.script.requests_per_minute = 5
    release.ctx = dataclasses.replace(release.ctx, rollout=RolloutSettings(on_insufficient_traffic="rollback"))
    with pytest.raises(DeployHookError, match="onInsufficientTraffic is rollback"):
        release.run()
    assert release.script.shares() == {release.stable: 100.0}


def test_unavailable_analytics_never_pass_a_canary_on_traffic(release: Release) -> None:
    release.double.graphql_errors = "unable to execute query, please try again later"
    release.double.analytics_engine_datasets.clear()  # and no requests dataset to read
    release.script.traffic[release.new] = Traffic(http_5xx_rate=0.5)  # invisible without analytics
    report = release.run()
    assert report is not None and report["basis"] == "probes"
    assert any("HTTP answers: no numbers; invocations: no numbers" in line for line in release.lines)


def test_one_unreadable_source_leaves_the_verdict_resting_on_probes_not_traffic(release: Release) -> None:
    release.double.graphql_errors = "unable to execute query, please try again later"
    report = release.run()
    assert report is not None and (report["outcome"], report["basis"]) == ("promoted", "probes")
    assert "invocations (GraphQL Analytics)" in str(report["reason"])


def test_runtime_failures_only_the_invocations_show_roll_the_canary_back(release: Release) -> None:
    # Invocations that fail in the runtime answer nothing of the Worker's own: no data point, only `errors`.
    release.script.traffic[release.new] = Traffic(exception_rate=0.2)
    with pytest.raises(DeployHookError, match=r"invocations \(GraphQL Analytics\): error rate 20\.0 %"):
        release.run()
    assert release.script.shares() == {release.stable: 100.0}


def test_sampled_analytics_count_their_rows_not_their_estimates_as_evidence(release: Release) -> None:
    # 1 row in 50 kept: the canary's ~1,000 requests rest on about 20 rows, fewer than minRequests 100.
    release.double.sample_interval = 50
    report = release.run()
    assert report is not None and (report["outcome"], report["basis"]) == ("promoted", "probes")
    assert "estimated from" in str(report["reason"])


def test_sampled_analytics_under_affinity_count_failing_browsers_and_still_roll_back_a_failing_canary(
        release: Release) -> None:
    # 1 row in 2 kept, three requests a browser: browsers cannot be compared, but the canary's
    # failures are counted once per failing browser seen among its kept 5xx rows (both sources),
    # and a canary failing 30 % of its requests, spread over its browsers, is still rolled back.
    release.double.sample_interval = 2
    release.script.traffic[release.stable] = Traffic(requests_per_unit=3)
    release.script.traffic[release.new] = Traffic(http_5xx_rate=0.3, requests_per_unit=3)
    with pytest.raises(DeployHookError, match="errors: each failing browser's counted once"):
        release.run()
    assert release.script.shares() == {release.stable: 100.0}


def test_a_quarantined_bundle_is_refused_before_anything_changes(release: Release, client: Cloudflare) -> None:
    quarantine.add(Bucket(client, ACCOUNT, BUCKET), bundle_sha256=BUNDLE, version_id="v-old", stack="staging",
                   reason="canary: error rate 9 %")
    before = len(release.double.requests)
    with pytest.raises(DeployHookError, match="is quarantined") as refused:
        release.run()
    assert f"bookingctl release quarantine clear {BUNDLE} --stack staging" in str(refused.value)
    asked = [path for _, path in release.double.requests[before:]]
    assert not any("time_travel" in p or "deployments" in p for p in asked)


def test_a_cleared_bundle_may_be_released_again(release: Release, client: Cloudflare) -> None:
    quarantine.add(Bucket(client, ACCOUNT, BUCKET), bundle_sha256=BUNDLE, version_id="v-old", stack="staging",
                   reason="flaky upstream")
    cleared = quarantine.clear(Bucket(client, ACCOUNT, BUCKET), BUNDLE, reason="upstream fixed", approved_by="thandi")
    assert cleared.cleared is not None and cleared.cleared["approvedBy"] == "thandi"
    release.script.traffic[release.new] = Traffic()
    report = release.run()
    assert report is not None and report["outcome"] == "promoted"


def test_a_first_deploy_has_no_canary(double: CloudflareDouble, tmp_path: Path) -> None:
    script = double.add_script(WORKER, versions=0)
    new = double.add_version(WORKER)
    double.add_database("appointmentbooking-db-staging")
    (tmp_path / "migrations").mkdir()
    ctx = DeployContext(
        stack="staging", account_id=ACCOUNT, database_name="appointmentbooking-db-staging", worker_name=WORKER,
        base_url="http://127.0.0.1:9", migrations_dir=tmp_path / "migrations", backup_dir=tmp_path / "b",
        client_factory=lambda: Cloudflare(api_token=TOKEN, base_url=double.base_url,
                                          _strict_response_validation=True, max_retries=1))
    lines: list[str] = []
    record = before_traffic(ctx, log=lines.append, version_id=new)
    assert record.canary is None and script.deployments == []
    assert any("first deployment" in line and "no canary" in line for line in lines)


def test_a_migration_only_change_of_the_serving_version_has_no_canary(release: Release) -> None:
    release.new = release.stable
    assert release.run() is None
    assert any("already serves all traffic" in line for line in release.lines)


def test_a_failure_after_traffic_moved_rolls_back_quarantines_and_points_at_release_status(
        release: Release, client: Cloudflare) -> None:
    from ops.releases.hooks import after_traffic

    report = release.run()  # the canary passes: its split deployments are now in the history
    assert report is not None and report["outcome"] == "promoted"
    # The engine's own deployment after a promoted canary: 100 % to the new version.
    created = client.workers.scripts.deployments.create(
        WORKER, account_id=ACCOUNT, strategy="percentage", versions=[{"version_id": release.new, "percentage": 100}],
        annotations={"workers_message": "deployed by pulumi up; migrations 0123456789ab"})
    release.site.health_status = 503  # what salons now get from the new version
    with pytest.raises(DeployHookError) as failed:
        after_traffic(release.ctx, deployment_id=created.id, version_id=release.new, log=release.lines.append)
    assert release.script.shares() == {release.stable: 100.0}
    record = json.loads(release.double.buckets[BUCKET][quarantine_key(BUNDLE)])
    assert record["versionId"] == release.new and record["reason"].startswith("post-deploy verification")
    assert "bookingctl release status --stack staging" in str(failed.value)


def test_unreadable_quarantine_records_stop_the_release_before_anything_changes(release: Release) -> None:
    from tests.helpers.cf_double import Fault

    release.double.inject(Fault("GET", r".*/r2/buckets/.*/objects/quarantine-.*", status=403, times=5))
    before = len(release.double.requests)
    with pytest.raises(DeployHookError, match=r"quarantine records .* could not be read"):
        release.run()
    asked = [path for _, path in release.double.requests[before:]]
    assert not any("time_travel" in p or "deployments" in p for p in asked)


class _StuckWall:
    """A FakeClock whose wall clock stops (or jumps) while its monotonic time runs on; a sleep past
    `limit` seconds fails the test instead of hanging it (a bake that never ends)."""

    def __init__(self, fake: FakeClock, wall: Callable[[float], dt.datetime], limit: float = 3600) -> None:
        self.fake, self.wall_at, self.limit = fake, wall, limit

    def sleep(self, seconds: float) -> None:
        if self.fake.t + seconds > self.limit:
            raise AssertionError(f"the bake was still running after {self.limit / 3600:g} h of monotonic time")
        self.fake.sleep(seconds)

    def clock(self) -> Clock:
        return Clock(now=self.fake.now, sleep=self.sleep, wall=lambda: self.wall_at(self.fake.t))


def test_a_wall_clock_that_stops_mid_bake_does_not_move_the_windows(release: Release) -> None:
    # NTP stepped it, a VM paused: the windows follow monotonic time from the bake's start.
    stuck = _StuckWall(release.clock, lambda t: EPOCH + dt.timedelta(seconds=min(t, 90)))
    release.ctx = dataclasses.replace(release.ctx, clock=stuck.clock())
    report = release.run()
    assert report is not None and (report["outcome"], report["basis"]) == ("promoted", "traffic")
    assert sum(s for s in release.clock.sleeps if s == 60.0) == (10 + 3) * 60


def test_a_wall_clock_that_jumps_ahead_does_not_end_the_bake_before_its_minutes_have_passed(
        release: Release) -> None:
    # One minute in, the wall clock leaps a day ahead: the bake's window must not count as covered.
    jumped = _StuckWall(release.clock, lambda t: EPOCH + dt.timedelta(seconds=t) + (
        dt.timedelta(days=1) if t >= 60 else dt.timedelta()))
    release.ctx = dataclasses.replace(release.ctx, clock=jumped.clock())
    release.script.traffic[release.new] = Traffic(http_5xx_rate=0.005)
    report = release.run()
    assert report is not None and report["outcome"] == "promoted"
    assert sum(s for s in release.clock.sleeps if s == 60.0) == (10 + 3) * 60


def _answer_invocations(release: Release, monkeypatch: pytest.MonkeyPatch, rows: object,
                        accounts: object = None) -> None:
    """Make the double's GraphQL endpoint answer `rows` for the account (or `accounts` in its place)."""
    answer = {"data": {"viewer": {"accounts": [{"workersInvocationsAdaptive": rows}] if accounts is None
                                  else accounts}}, "errors": None}
    monkeypatch.setattr(release.double, "graphql", lambda body: (200, answer))


@pytest.mark.parametrize("rows", [
    [{"sum": "garbage", "dimensions": {"scriptVersion": "v"}}],
    [{"sum": {"requests": 5}, "dimensions": ["x"]}],
    [{"sum": {"requests": "n/a"}, "dimensions": {"scriptVersion": "v", "status": "success"}}],
    [{"sum": {"requests": 1000, "errors": -1000}, "dimensions": {"scriptVersion": "v", "status": "success"}}],
    [{"sum": {"requests": -100000, "errors": 0}, "dimensions": {"scriptVersion": "v", "status": "success"}}],
    [{"sum": {"requests": 500, "errors": 0}, "quantiles": {"wallTimeP50": float("nan")},
      "dimensions": {"scriptVersion": "v", "status": "success"}}],
    [{"sum": {"requests": float("inf"), "errors": 0}, "dimensions": {"scriptVersion": "v", "status": "success"}}],
    "rows",
], ids=["sum-text", "dimensions-list", "count-text", "negative-errors", "negative-requests", "nan-median", "inf",
        "rows-text"])
def test_analytics_answering_garbage_roll_the_canary_back_to_all_traffic_on_the_stable_version(
        release: Release, monkeypatch: pytest.MonkeyPatch, rows: object) -> None:
    _answer_invocations(release, monkeypatch, rows)
    with pytest.raises(DeployHookError, match=r"analytics answered numbers that cannot be read \(invocations: "):
        release.run()
    assert release.script.shares() == {release.stable: 100.0}
    assert not any("verdict: promote" in line for line in release.lines)


def test_an_answer_with_no_account_is_no_numbers_not_zero_requests(
        release: Release, monkeypatch: pytest.MonkeyPatch) -> None:
    _answer_invocations(release, monkeypatch, [], accounts=[])
    report = release.run()
    assert report is not None and report["basis"] == "probes"
    assert "invocations (GraphQL Analytics): only 0 requests" not in str(report["reason"])
    assert all(m["canary"]["runtime"] is None for m in report["minutes"] if m["canary"])


def test_an_unexpected_error_inside_the_bake_sends_all_traffic_back_before_it_is_raised(
        release: Release, monkeypatch: pytest.MonkeyPatch) -> None:
    import ops.releases.canary

    def broken(*args: object, **kwargs: object) -> None:
        raise AttributeError("'str' object has no attribute 'get'")

    monkeypatch.setattr(ops.releases.canary, "invocations", broken)
    with pytest.raises(DeployHookError, match=r"AttributeError.*100 % of traffic is back on version") as failed:
        release.run()
    assert release.script.shares() == {release.stable: 100.0}
    assert "release abort" not in str(failed.value)
