"""run_canary (ops/releases/canary.py) with a fake clock, fake analytics and no Cloudflare at all."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import VersionTraffic
from ops.observation.verify import Check, Clock, VerifyResult
from ops.releases import canary as canary_module
from ops.releases.judge import Signals
from tests.helpers.clock import FakeClock

NEW, STABLE = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


class _Worker:
    name = "appointmentbooking-api-staging"
    client: Any = None
    account_id = "0" * 32


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[tuple[str, float]], str]]:
    made: list[tuple[list[tuple[str, float]], str]] = []
    monkeypatch.setattr(canary_module, "deployments", lambda worker: [])

    def deploy_versions(worker: Any, versions: list[tuple[str, float]], message: str, **_: Any) -> str:
        made.append((versions, message))
        return f"dep-{len(made)}"
    monkeypatch.setattr(canary_module, "deploy_versions", deploy_versions)
    monkeypatch.setattr(canary_module, "verify", lambda *a, **k: VerifyResult(
        "x", True, 0.0, [Check("health", True, "ok", response_time=0.05)]))
    return made


def _steady(canary: VersionTraffic, stable: VersionTraffic):
    """Analytics that scale with the window: `canary`/`stable` per minute of window."""
    def read(since: dt.datetime, until: dt.datetime, versions: Sequence[str]) -> dict[str, Signals]:
        minutes = max(0, int((until - since).total_seconds() // 60))
        def scaled(t: VersionTraffic) -> VersionTraffic:
            return VersionTraffic(t.requests * minutes, t.errors * minutes, t.latency_seconds, t.tail_latency_seconds)
        return {NEW: Signals(http=scaled(canary), runtime=scaled(canary)),
                STABLE: Signals(http=scaled(stable), runtime=scaled(stable))}
    return read


def test_a_canary_that_got_no_traffic_beside_a_busy_serving_version_is_not_promoted(deployed: list) -> None:
    # The split was written, the serving version answered 900 requests a minute, the canary none
    # for 30 minutes (its 10 % never reached it, or the analytics never name it). Promoted on probes.
    clock = FakeClock()
    report = canary_module.run_canary(
        _Worker(), base_url="https://example.invalid", new_version=NEW, stable_version=STABLE,
        settings=RolloutSettings(), clock=clock.clock(), log=lambda _: None,
        metrics=_steady(VersionTraffic(0, 0), VersionTraffic(900, 4, 0.1, 0.5)))
    assert not report.promoted, report.reason


def test_a_wall_clock_stepped_back_mid_bake_does_not_roll_back_a_healthy_canary(deployed: list) -> None:
    # NTP steps the wall clock back 10 minutes at minute 3. Monotonic time alone could place the
    # windows (`started + passed - delay`); taking the min with the wall clock starves the bake
    # until the deadline, and a healthy canary is rolled back (and its bundle quarantined).
    fake = FakeClock()
    step = {"at": 180.0, "by": dt.timedelta(minutes=10)}
    def wall() -> dt.datetime:
        moment = fake.wall()
        return moment - step["by"] if fake.t >= step["at"] else moment
    clock = Clock(now=fake.now, sleep=fake.sleep, wall=wall)
    report = canary_module.run_canary(
        _Worker(), base_url="https://example.invalid", new_version=NEW, stable_version=STABLE,
        settings=RolloutSettings(), clock=clock, log=lambda _: None,
        metrics=_steady(VersionTraffic(100, 0, 0.1, 0.5), VersionTraffic(900, 4, 0.1, 0.5)))
    assert report.promoted, report.reason
