"""Counting by browsers trusts whatever count(DISTINCT blob1) the serving version's rows give.

The serving version during the first canary after commit aca9862 (and after any rollback to a
version built before it) is a Worker that writes no blobs: every one of its rows has the same
blob1 (the empty string), so count(DISTINCT blob1) is 1. baseline.compare and judge._failures then
see a serving version of ONE browser (failing or not) and the canary's share of the browsers is
~100 %: the sequential test can never call the canary worse, the guardrail compares against a
baseline failure rate of 0 % or 100 %, and judge_signals also switches the invocations' sequential
test off because the canary's HTTP answers carry units.
"""

from __future__ import annotations

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import VersionTraffic
from ops.releases.baseline import compare
from ops.releases.judge import Signals, judge, judge_signals

SETTINGS = RolloutSettings()
PASSED = [True] * 10


def _pair(serving_failing_units: int) -> tuple[Signals, Signals]:
    # Canary: 600 requests from 200 browsers (3 each), 18 failed (3 %), in 6 browsers (3 %).
    canary_http = VersionTraffic(600, 18, 0.05, 0.3, sampled=600, units=200, failing_units=6)
    # Serving version, built before blob1 existed: 5,400 requests, 27 failed (0.5 %), one "unit".
    serving_http = VersionTraffic(5400, 27, 0.05, 0.3, sampled=5400, units=1, failing_units=serving_failing_units)
    canary_rt = VersionTraffic(600, 18, 0.05, 0.3, sampled=600)
    serving_rt = VersionTraffic(5400, 27, 0.05, 0.3, sampled=5400)
    return Signals(http=canary_http, runtime=canary_rt), Signals(http=serving_http, runtime=serving_rt)


def test_a_six_fold_regression_is_not_promoted_beside_a_serving_version_without_blob1() -> None:
    # By requests this is decisive (18 of 45 errors vs 4.5 expected: evidence ~3e5); the same
    # traffic with the serving version's rows carrying no blob1 is promoted.
    canary, serving = _pair(serving_failing_units=1)
    verdict = judge_signals(canary, PASSED, SETTINGS, final=True, baseline=serving, share=0.1)
    assert verdict.action == "rollback", verdict


def test_the_same_regression_with_no_failing_serving_row_is_not_promoted() -> None:
    canary, serving = _pair(serving_failing_units=0)
    verdict = judge_signals(canary, PASSED, SETTINGS, final=True, baseline=serving, share=0.1)
    assert verdict.action == "rollback", verdict


def test_a_unit_count_that_cannot_be_browsers_is_not_compared_by_browsers() -> None:
    # 5,400 requests at a 90 % split from one browser while the canary's 10 % had 200: the units
    # share (99.5 %) is nowhere near the deployment's 10 %, so units cannot be the assignment units.
    canary, serving = _pair(serving_failing_units=1)
    versus = compare(canary.http, serving.http)
    assert versus is not None and versus.unit == "requests", versus


def test_a_canary_worse_than_a_serving_version_without_blob1_is_judged_against_the_canary() -> None:
    # Canary: 18 % failing browsers (over errorRatePercent 5) beside the old serving version's
    # 0.5 % of requests: the canary fails, not the platform; yet _over_limits reads the serving
    # version's "100 % failing browsers" (1 of 1) as the platform failing too: judged=False, no quarantine.
    canary = VersionTraffic(600, 120, 0.05, 0.3, sampled=600, units=200, failing_units=36)
    serving = VersionTraffic(5400, 27, 0.05, 0.3, sampled=5400, units=1, failing_units=1)
    verdict = judge(canary, PASSED, SETTINGS, final=True, baseline=serving, share=0.1)
    assert verdict.action == "rollback" and verdict.judged, verdict
