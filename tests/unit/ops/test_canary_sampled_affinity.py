"""Version affinity with both sources, and with Analytics Engine sampling: one browser's retries are one failure.

The third hostile review of #24 (its reproducer `test_affinity_sampled_fallback.py`, here with the
answer of the query the judge now sends when rows are sampled): with the version key cookie every
request of one browser reaches one version, so a browser retrying a page that fails on *both*
versions puts 15 failures on the canary in 10 % of bakes. Where Analytics Engine sampled its rows,
browsers could not be counted, the HTTP comparison fell back to requests, and the invocations
(which have no browser dimension) were tested sequentially: a canary exactly as good as its
baseline was rolled back in 9.7 % of 600 seeded bakes (alpha 5 %). Unsampled, with browsers
counted, the invocations' guardrail still fired on the same browser: 10.3 %.

Now each version's errors, in both sources, count each failing browser once (the HTTP answers'
failing browsers per failed request; sampled: the browsers among the sampled 5xx rows), and the
invocations are not tested sequentially where the HTTP answers show browsers. A regression spread
over many browsers is still caught, and failures only the runtime sees still roll back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import VersionTraffic
from ops.releases.baseline import ALPHA
from ops.releases.judge import Signals, judge_signals, once_per_browser

SETTINGS = RolloutSettings()  # 10 %, 10 minutes, errorRatePercent 5
SHARE = SETTINGS.canary_percent / 100.0


def _count(rng: random.Random, n: int, p: float) -> int:
    return sum(1 for _ in range(n) if rng.random() < p)


@dataclass
class Side:
    """One version's requests so far, as both sources and a 1-in-`interval` sample of rows see them."""

    requests: int = 0
    errors: int = 0
    thrown: int = 0  # failures only the runtime sees (no data point written)
    rows: int = 0
    error_rows: int = 0
    stuck_rows: int = 0  # sampled rows of the stuck browser
    units: int = 0
    failing_units: int = 0
    failing_browsers: set[int] = field(default_factory=set)

    def http(self, interval: int) -> VersionTraffic:
        if interval == 1:
            return VersionTraffic(self.requests - self.thrown, self.errors, 0.2, 1.0, units=self.units,
                                  failing_units=self.failing_units)
        # What Analytics Engine answers: estimates from the kept rows, and count(DISTINCT blob1) of the
        # kept 5xx rows (every background failure its own browser; the stuck browser one, once kept).
        seen = self.error_rows - self.stuck_rows + (1 if self.stuck_rows else 0)
        return VersionTraffic(interval * self.rows, interval * self.error_rows, 0.2, 1.0, sampled=self.rows,
                              failing_seen=seen)

    def runtime(self) -> VersionTraffic:
        return VersionTraffic(self.requests, self.errors + self.thrown, 0.2, 1.0)


def _bake(rng: random.Random, *, interval: int, rpm: int = 200, rate: float = 0.005, canary_rate: float | None = None,
          thrown: float = 0.0, stuck: int = 15) -> tuple[str, int]:
    """(the verdict, the minute it came) of one bake: browsers of three requests each, assigned whole."""
    sides = {"canary": Side(), "serving": Side()}
    stuck_on = "canary" if rng.random() < SHARE else "serving"
    for minute in range(1, SETTINGS.bake_minutes + 1):
        for _ in range(rpm // 3):
            name = "canary" if rng.random() < SHARE else "serving"
            side = sides[name]
            p = canary_rate if name == "canary" and canary_rate is not None else rate
            failed = _count(rng, 3, p)
            threw = _count(rng, 3 - failed, thrown) if name == "canary" else 0
            side.requests, side.errors, side.thrown = side.requests + 3, side.errors + failed, side.thrown + threw
            side.units, side.failing_units = side.units + 1, side.failing_units + (failed > 0)
            kept_ok, kept_failed = _count(rng, 3 - failed - threw, 1 / interval), _count(rng, failed, 1 / interval)
            side.rows, side.error_rows = side.rows + kept_ok + kept_failed, side.error_rows + kept_failed
        if stuck and minute in (2, 3, 4):
            side = sides[stuck_on]
            retries = stuck // 3
            side.requests, side.errors = side.requests + retries, side.errors + retries
            if minute == 2:
                side.units, side.failing_units = side.units + 1, side.failing_units + 1
            kept = _count(rng, retries, 1 / interval)
            side.rows, side.error_rows = side.rows + kept, side.error_rows + kept
            side.stuck_rows += kept
        canary, serving = sides["canary"], sides["serving"]
        verdict = judge_signals(Signals(http=canary.http(interval), runtime=canary.runtime()), [True] * minute,
                                SETTINGS, final=minute == SETTINGS.bake_minutes,
                                baseline=Signals(http=serving.http(interval), runtime=serving.runtime()), share=SHARE)
        if verdict.action != "continue":
            return verdict.action, minute
    raise AssertionError("the final minute always decides")


def _rate(seed: int, runs: int = 600, **kwargs: object) -> float:
    rng = random.Random(seed)
    return sum(_bake(rng, **kwargs)[0] == "rollback" for _ in range(runs)) / runs  # type: ignore[arg-type]


@pytest.mark.parametrize("interval", [1, 2], ids=["unsampled", "sampled-1-in-2"])
def test_a_good_canary_beside_one_stuck_browser_is_rolled_back_at_most_alpha_of_the_time(interval: int) -> None:
    # Before: 11.7 % at every interval (requests judged one by one in both sources).
    assert _rate(24, interval=interval) <= ALPHA


@pytest.mark.xfail(strict=True, reason="known, left (issue #24): sampled 1 in 10 at 200 requests a minute, a "
                   "stuck browser's retries are often missed by the sample entirely, so nothing shows them as one "
                   "browser and the invocations' guardrail counts them in full (10.5 %); the canary has ~20 "
                   "sampled rows in its bake then, under minRequests")
def test_sampled_so_thinly_that_a_browsers_retries_go_unseen_the_guarantee_does_not_hold() -> None:
    assert _rate(24, interval=10) <= ALPHA


@pytest.mark.parametrize("interval", [1, 2], ids=["unsampled", "sampled-1-in-2"])
def test_a_regression_spread_over_browsers_is_still_caught(interval: int) -> None:
    # 0.5 % -> 3 % at 200 requests a minute; before: 66 % unsampled, 70 % sampled 1 in 2; now 63 % and 65 % (same seed).
    assert _rate(7, runs=300, interval=interval, canary_rate=0.03, stuck=0) >= 0.6


def test_failures_only_the_runtime_sees_still_roll_the_canary_back() -> None:
    # 20 % of the canary's requests throw before a data point is written: the HTTP answers cannot
    # see them (nothing deflates them, nothing corroborates them), and the invocations' guardrail
    # rolls the canary back, most often within two minutes.
    rng = random.Random(3)
    verdicts = [_bake(rng, interval=1, thrown=0.2, stuck=0) for _ in range(50)]
    assert all(action == "rollback" for action, _ in verdicts)
    assert sorted(minute for _, minute in verdicts)[25] <= 2


def _reviewers_bake(rng: random.Random, rpm: int = 200, base_rate: float = 0.005, stuck_requests: int = 15) -> str:
    """The third hostile review's bake as it wrote it (requests, not browsers; 1 row in 2 kept), with the
    answer of the query the judge now sends on sampled rows: the browsers among the kept 5xx rows."""
    stuck_on_canary = rng.random() < SHARE
    c, b = [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]  # requests, errors, rows, 5xx rows, the stuck browser's rows
    for minute in range(1, SETTINGS.bake_minutes + 1):
        nc = _count(rng, rpm, SHARE)
        for side, n in ((c, nc), (b, rpm - nc)):
            e = _count(rng, n, base_rate)
            kept_ok, kept_err = _count(rng, n - e, 0.5), _count(rng, e, 0.5)
            side[0], side[1] = side[0] + n, side[1] + e
            side[2], side[3] = side[2] + kept_ok + kept_err, side[3] + kept_err
        if minute in (2, 3, 4):
            side = c if stuck_on_canary else b
            retries = stuck_requests // 3
            kept = _count(rng, retries, 0.5)
            side[0], side[1], side[2], side[3], side[4] = (side[0] + retries, side[1] + retries, side[2] + kept,
                                                           side[3] + kept, side[4] + kept)

        def http(s: list[int]) -> VersionTraffic:
            return VersionTraffic(2 * s[2], 2 * s[3], 0.2, 1.0, sampled=s[2],
                                  failing_seen=s[3] - s[4] + (1 if s[4] else 0))

        def runtime(s: list[int]) -> VersionTraffic:
            return VersionTraffic(s[0], s[1], 0.2, 1.0)

        v = judge_signals(Signals(http=http(c), runtime=runtime(c)), [True] * minute, SETTINGS,
                          final=minute == SETTINGS.bake_minutes,
                          baseline=Signals(http=http(b), runtime=runtime(b)), share=SHARE)
        if v.action != "continue":
            return v.action
    return "continue"


def test_the_reviewers_sampled_bake_rolls_a_good_canary_back_at_most_alpha_of_the_time() -> None:
    rng = random.Random(24)
    assert sum(_reviewers_bake(rng) == "rollback" for _ in range(600)) / 600 <= ALPHA  # was 9.7 %


def test_errors_are_counted_once_per_failing_browser_in_both_sources() -> None:
    # Unsampled: 2 failing browsers for 16 failed requests; the invocations are the same requests.
    canary = Signals(http=VersionTraffic(200, 16, 0.2, 1.0, units=60, failing_units=2),
                     runtime=VersionTraffic(200, 16, 0.2, 1.0))
    serving = Signals(http=VersionTraffic(1800, 9, 0.2, 1.0, units=600, failing_units=9),
                      runtime=VersionTraffic(1800, 9, 0.2, 1.0))
    once = once_per_browser(canary, serving)
    assert once is not None
    (c, s) = once
    assert c.http is not None and c.runtime is not None and s.http is not None
    assert (c.http.errors, c.runtime.errors, s.http.errors) == (2, 2, 9)
    assert c.http.per_browser and "each failing browser's errors counted once" in c.http.describe()
    # Sampled 1 in 2: 8 of the 16 failed rows kept, from 2 browsers.
    sampled = Signals(http=VersionTraffic(200, 16, 0.2, 1.0, sampled=100, failing_seen=2),
                      runtime=VersionTraffic(200, 16, 0.2, 1.0))
    their = Signals(http=VersionTraffic(1800, 10, 0.2, 1.0, sampled=900, failing_seen=5),
                    runtime=VersionTraffic(1800, 10, 0.2, 1.0))
    once = once_per_browser(sampled, their)
    assert once is not None
    assert once[0].runtime is not None and once[0].runtime.errors == 4  # 16 x 2 browsers / 8 rows
    assert once[1].runtime is not None and once[1].runtime.errors == 10  # 5 browsers of 5 rows: as counted


def test_without_browsers_in_the_http_answers_requests_are_judged_one_by_one() -> None:
    # No version key (staging leaves the shared zone to production: no affinity rule), or a
    # version built before blob1: nothing says which browser failed, nothing is scaled.
    canary = Signals(http=VersionTraffic(200, 16, 0.2, 1.0), runtime=VersionTraffic(200, 16, 0.2, 1.0))
    serving = Signals(http=VersionTraffic(1800, 9, 0.2, 1.0), runtime=VersionTraffic(1800, 9, 0.2, 1.0))
    assert once_per_browser(canary, serving) is None
    half = Signals(http=VersionTraffic(200, 16, 0.2, 1.0, sampled=100, failing_seen=2))
    assert once_per_browser(half, serving) is None


def test_more_failing_browsers_seen_than_failed_rows_is_nonsense() -> None:
    assert VersionTraffic(200, 4, 0.2, 1.0, sampled=100, failing_seen=3).nonsense() is not None
    assert VersionTraffic(200, 4, 0.2, 1.0, sampled=100, failing_seen=2).nonsense() is None
