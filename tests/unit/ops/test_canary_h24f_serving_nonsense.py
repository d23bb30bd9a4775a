"""hostile24f (c)+(d): an impossible HTTP answer for the *serving* version drops the baseline silently.

ops/releases/judge.py `judge` (`sound = baseline if baseline.nonsense() is None else None`): the canary is then
judged alone against errorRatePercent (5 %, absolute), so a 0.5 % -> 4 % regression is promoted "within
thresholds". docs/releases.md step 3: "No failing browser beside failed rows, or more failed rows than
failures, is no real answer (rolled back as unreadable numbers)". Fail on main (6992758).
"""

from __future__ import annotations

import datetime as dt

import pytest

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import Kept, VersionTraffic, http_answers
from ops.releases.judge import Signals, judge_signals
from tests.unit.ops.affinity_bake import SqlApi

SETTINGS = RolloutSettings()
CANARY_SAMPLED = VersionTraffic(300, 12, 0.05, 0.15, sampled=150, kept=Kept(6, 60, 6))  # 4 % 5xx, 6 browsers
CANARY_EXACT = VersionTraffic(300, 12, 0.05, 0.15, units=100, failing_units=12)


def _final(canary: VersionTraffic, serving: VersionTraffic) -> str:
    return judge_signals(Signals(http=canary, runtime=VersionTraffic(canary.requests, 0, 0.05, 0.15)), [True] * 10,
                         SETTINGS, final=True, share=0.1,
                         baseline=Signals(http=serving, runtime=VersionTraffic(serving.requests, 0, 0.05, 0.15))).action


def test_controls_the_real_serving_answers_roll_the_regression_back() -> None:  # passes on main
    serving = VersionTraffic(2700, 14, 0.05, 0.15, sampled=1350, kept=Kept(7, 500, 7))
    assert _final(CANARY_SAMPLED, serving) == "rollback"
    assert _final(CANARY_EXACT, VersionTraffic(2700, 14, 0.05, 0.15, units=900, failing_units=14)) == "rollback"


@pytest.mark.parametrize(("canary", "serving"), [
    (CANARY_SAMPLED, VersionTraffic(2700, 14, 0.05, 0.15, sampled=1350, kept=Kept(7, 500, 0))),
    (CANARY_SAMPLED, VersionTraffic(2700, 14, 0.05, 0.15, sampled=1350, kept=Kept(20, 500, 7))),
    (CANARY_EXACT, VersionTraffic(2700, 14, 0.05, 0.15, units=900, failing_units=0)),
    # http_answers does not reject more rows than their weight (only errors > requests): this reaches the judge.
    (CANARY_SAMPLED, VersionTraffic(2700, 14, 0.05, 0.15, sampled=3000, kept=Kept(7, 500, 7))),
], ids=["sampled-no-failing-browser", "sampled-more-failed-rows-than-failures", "exact-no-failing-unit",
        "more-rows-than-requests"])
def test_an_impossible_serving_answer_is_no_promotion(canary: VersionTraffic, serving: VersionTraffic) -> None:
    assert serving.nonsense() is not None
    assert _final(canary, serving) == "rollback"


def test_an_empty_failing_browsers_answer_for_the_serving_version_is_no_promotion() -> None:
    since = dt.datetime(2026, 12, 5, 9, tzinfo=dt.UTC)
    sums = {"sampled": "1350", "requests": "2700", "errors": "14", "failed_rows": "7", "median_ms": 50.0,
            "p99_ms": 150.0, "p75_ms": 60.0, "p90_ms": 90.0, "p95_ms": 110.0, "p98_ms": 140.0}
    api = SqlApi(sums, {"data": [{"units": "500"}], "rows": 1}, {"data": [], "rows": 0})
    serving = http_answers(api, "acct", "booking_api_requests",  # type: ignore[arg-type]
                           "22222222-2222-4222-8222-222222222222", since, since + dt.timedelta(minutes=10))
    assert serving is not None and serving.kept == Kept(7, 500, 0)
    assert _final(CANARY_SAMPLED, serving) == "rollback"


@pytest.mark.xfail(strict=True, reason=(
    "known, left (issue #24): a serving version with no numbers (the API answered none) is no "
    "baseline, and the canary is judged alone against the fixed thresholds, as the docs say of "
    "a first deploy"))
def test_a_transient_api_error_on_the_serving_versions_query_is_no_promotion() -> None:
    # http_answers returns None on an API error answer (analytics.py `_sql_rows`); read_signals then gives the
    # serving version http=None, and the canary at 4 % (0.5 % on the serving version a minute before) is
    # judged alone against errorRatePercent 5: promoted on traffic, which ends the bake (canary.py `ended`).
    verdict = judge_signals(Signals(http=CANARY_SAMPLED, runtime=VersionTraffic(300, 0, 0.05, 0.15)), [True] * 10,
                            SETTINGS, final=True, share=0.1,
                            baseline=Signals(http=None, runtime=VersionTraffic(2700, 0, 0.05, 0.15)))
    assert verdict.action != "promote" or verdict.basis != "traffic"
