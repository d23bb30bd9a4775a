"""judge_signals switches the invocations' sequential test off whenever the canary's HTTP answers
carry units (`signals.http.units is not None`), not when the HTTP answers are actually compared by
browsers. When the serving version's HTTP answers are missing (its SQL query failed: 6 SQL API
calls a minute now) or sampled (no units), no source runs a sequential test at all, and a
regression under errorRatePercent is promoted: a missing baseline makes the verdict more lenient.
"""

from __future__ import annotations

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import VersionTraffic
from ops.releases.judge import Signals, judge_signals

SETTINGS = RolloutSettings()
PASSED = [True] * 10


def _canary() -> Signals:
    # Uncaught exceptions in 3 % of requests: the invocations count them as errors, the Worker
    # records them as 500 (index.js), from 18 of its 200 browsers.
    return Signals(http=VersionTraffic(600, 18, 0.05, 0.3, sampled=600, units=200, failing_units=18),
                   runtime=VersionTraffic(600, 18, 0.05, 0.3, sampled=600))


def test_a_regression_is_not_promoted_when_the_serving_versions_http_answers_are_missing() -> None:
    serving = Signals(http=None, runtime=VersionTraffic(5400, 27, 0.05, 0.3, sampled=5400))
    verdict = judge_signals(_canary(), PASSED, SETTINGS, final=True, baseline=serving, share=0.1)
    assert verdict.action == "rollback", verdict


def test_a_regression_is_not_promoted_when_the_serving_versions_http_answers_are_sampled() -> None:
    # The busy serving version is sampled (no units asked); the quiet canary is exact (units asked).
    serving = Signals(http=VersionTraffic(54_000, 270, 0.05, 0.3, sampled=5400),
                      runtime=VersionTraffic(54_000, 270, 0.05, 0.3, sampled=5400))
    canary = _canary()
    verdict = judge_signals(canary, PASSED, SETTINGS, final=True, baseline=serving, share=0.1)
    assert verdict.action == "rollback", verdict
