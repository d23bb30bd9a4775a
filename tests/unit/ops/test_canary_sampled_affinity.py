"""Version affinity with both sources and Analytics Engine sampling (third and fourth hostile reviews of #24).

With the version key cookie every request of one browser reaches one version, so a browser retrying a
page that fails on *both* versions puts all its failures on one of them. Sampled HTTP answers could
not count browsers (each index is sampled at its own rate), so the comparison fell back to requests:
a good canary rolled back in 9.7 % of the third review's bakes. The first fix (b865ed7) scaled both
sources by the HTTP answers' failing browsers; the fourth review showed that wrong (the invocations
count other failures: a 5xx the Worker answers is a successful invocation), the limit reading failing
browsers per request, an impossible "no failing browser" answer promoting a failing canary, and one
blob1 for every row taken for one browser. Now:
- sampled HTTP answers count each failing browser's errors once (its kept failed rows, counted, and
  the browsers among them) for the comparison and the guardrail, where both sides' rows say which
  browsers failed and are believable (two browsers or more, at most 50 kept rows per kept browser);
- the limits hold every failed request;
- the invocations count every error with all their tests, but no starved check runs where the rows
  carry browser keys (the fifth review: judging them only on requests the HTTP answers had no row of
  was fooled by probes and by the two sources' windows).
The bakes are tests/unit/ops/affinity_bake.py (the sources as Cloudflare counts them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import Kept, VersionTraffic, http_answers
from ops.releases.baseline import ALPHA, per_browser
from ops.releases.judge import Signals, judge_signals
from tests.unit.ops.affinity_bake import SqlApi, Stuck, rollback_rate

SETTINGS = RolloutSettings()
ALL = tuple(range(1, 11))


@pytest.mark.parametrize("kwargs", [
    {"interval": 1, "stuck": (Stuck(),)},
    {"interval": 2, "stuck": (Stuck(),)},
    {"interval": 4, "stuck": (Stuck(),)},
    {"interval": 10, "stuck": (Stuck(),)},
    {"interval": 2, "canary_interval": 1, "stuck": (Stuck(),)},  # the busy index is the one sampled
    {"interval": 1, "flow": 10, "rate": 0.001},  # busy browsers: the invocations' share is browsers'
    {"interval": 1, "flow": 20, "rate": 0.001},
    {"interval": 1, "shared_killed": 0.02, "stuck": (Stuck(5, ALL, "serving"),)},
    {"interval": 2, "one_blob1": "serving"},  # a serving version built before the Worker wrote blob1
], ids=["unsampled", "1-in-2", "1-in-4", "1-in-10", "only-serving-sampled", "10-requests-a-browser",
        "20-requests-a-browser",
        "shared-cpu-limit-stuck-on-serving", "serving-before-blob1"])
def test_a_good_canary_is_rolled_back_at_most_alpha_of_the_time(kwargs: dict[str, Any]) -> None:
    # Most of what remains is the critical limit on requests (one browser's 15 failures are 8 % of a
    # quiet canary's requests): by design, a version over it is not promoted. Before: 9-14 %.
    assert rollback_rate(24, 600, **kwargs) <= ALPHA


@pytest.mark.xfail(strict=True, reason="known, left (issue #24): the invocations have no browser dimension, so a "
                   "browser retrying a page that *throws* on both versions (an uncaught exception, not an answered "
                   "5xx) is counted in full there: their guardrail rolls a good canary back in 10-12 % of bakes")
@pytest.mark.parametrize("interval", [1, 2], ids=["unsampled", "1-in-2"])
def test_a_page_throwing_on_both_versions_is_one_browser(interval: int) -> None:
    assert rollback_rate(24, 600, interval=interval, stuck=(Stuck(thrown=True),)) <= ALPHA


@pytest.mark.parametrize(("kwargs", "least"), [
    ({"interval": 1, "canary_rate": 0.03}, 0.55),
    ({"interval": 1, "subset": (0.03, 15)}, 0.6),  # 3 % of browsers fail every request
    ({"interval": 2, "subset": (0.03, 15)}, 0.45),
    ({"interval": 1, "killed": 0.2, "stuck": (Stuck(5, ALL, "canary"),)}, 0.95),  # a CPU limit, runtime only
    ({"interval": 1, "killed": 0.05}, 0.9),
    ({"interval": 2, "killed": 0.05}, 0.9),
    ({"interval": 2, "canary_rate": 0.3, "one_blob1": "canary"}, 0.95),  # one blob1 hides no failure
], ids=["3pc-unsampled", "few-browsers-unsampled", "few-browsers-1-in-2", "cpu-limit-beside-stuck",
        "cpu-limit-5pc-unsampled", "cpu-limit-5pc-1-in-2", "canary-writing-one-blob1"])
def test_a_bad_canary_is_still_rolled_back(kwargs: dict[str, Any], least: float) -> None:
    # Measured at seed 24: 64 %, 63 %, 53 %, 100 %, 99.7 %, 99.7 %, 100 % (the fourth review's bakes
    # of b865ed7: 20 % for few browsers, 29 % beside the stuck one, 27.5 % for 5 % over the CPU limit).
    assert rollback_rate(24, 300, **kwargs) >= least


def _final(canary: VersionTraffic, serving: VersionTraffic, runtime_errors: tuple[int, int]) -> str:
    return judge_signals(Signals(http=canary, runtime=VersionTraffic(canary.requests, runtime_errors[0], 0.05, 0.15)),
                         [True] * 10, SETTINGS, final=True, share=0.1,
                         baseline=Signals(http=serving, runtime=VersionTraffic(serving.requests, runtime_errors[1],
                                                                               0.05, 0.15))).action


def test_the_limit_holds_every_failed_request_not_failing_browsers() -> None:
    # 40 of 300 requests failed, from 3 of 100 browsers (sampled 1 in 2): not promoted.
    canary = VersionTraffic(300, 40, 0.05, 0.15, sampled=150, kept=Kept(20, 60, 3))
    serving = VersionTraffic(2700, 14, 0.05, 0.15, sampled=1350, kept=Kept(7, 500, 7))
    assert _final(canary, serving, (0, 0)) == "rollback"
    # A shared outage failing 20 % on both: over the limit on both, not promoted (and not judged).
    out = VersionTraffic(300, 60, 0.05, 0.15, sampled=150, kept=Kept(30, 60, 3))
    theirs = VersionTraffic(2700, 540, 0.05, 0.15, sampled=1350, kept=Kept(270, 500, 27))
    verdict = judge_signals(Signals(http=out), [True] * 10, SETTINGS, final=True, share=0.1,
                            baseline=Signals(http=theirs))
    assert verdict.action == "rollback" and not verdict.judged


def test_each_failing_browsers_errors_count_once_per_version_and_the_requests_are_kept() -> None:
    canary = VersionTraffic(200, 16, 0.2, 1.0, sampled=100, kept=Kept(8, 40, 2))  # 8 failed rows, 2 browsers
    serving = VersionTraffic(1800, 10, 0.2, 1.0, sampled=900, kept=Kept(5, 400, 5))
    weighted = per_browser(canary, serving)
    assert weighted is not None
    c, s = weighted
    assert (c.errors, c.request_errors, s.errors, s.request_errors) == (4, 16, 10, 10)
    assert "each failing browser's counted once" in c.describe()
    # Too few browsers for the rows (one blob1 for all: a bug, a version before blob1): not believed.
    assert per_browser(canary, VersionTraffic(1800, 10, 0.2, 1.0, sampled=900, kept=Kept(5, 1, 1))) is None
    # Exact on both sides: the comparison counts browsers itself.
    exact = VersionTraffic(200, 16, 0.2, 1.0, units=60, failing_units=2)
    assert per_browser(exact, VersionTraffic(1800, 9, 0.2, 1.0, units=600, failing_units=9)) is None


@pytest.mark.parametrize(("traffic", "why"), [
    (VersionTraffic(1000, 300, 0.05, 0.15, units=330, failing_units=0), "no failing unit"),
    (VersionTraffic(1000, 300, 0.05, 0.15, sampled=500, kept=Kept(150, 330, 0)), "failing of"),
    (VersionTraffic(1000, 300, 0.05, 0.15, sampled=500, kept=Kept(150, 330, 151)), "failing of"),
    (VersionTraffic(1000, 300, 0.05, 0.15, sampled=500, kept=Kept(0, 330, 0)), "failing of"),
    (VersionTraffic(1000, 300, 0.05, 0.15, sampled=500, kept=Kept(600, 330, 3)), "failing of"),
    (VersionTraffic(1000, 40, 0.05, 0.15, sampled=500, kept=Kept(400, 330, 3)), "failing of"),
], ids=["exact-none-failing", "kept-none-failing", "more-failing-than-failed-rows", "no-failed-row-beside-errors",
        "more-failed-rows-than-rows", "more-failed-rows-than-failures"])
def test_impossible_browser_counts_are_nonsense_never_a_promotion(traffic: VersionTraffic, why: str) -> None:
    assert why in (traffic.nonsense() or "")
    serving = VersionTraffic(2700, 14, 0.05, 0.15, units=900, failing_units=14)
    assert _final(traffic, serving, (300, 14)) == "rollback"


def test_an_empty_answer_to_the_failing_browsers_query_is_no_real_answer_and_rolls_back() -> None:
    # Read as 0 failing browsers beside 150 failed rows: never scaled to nothing and promoted.
    sums = {"sampled": "500", "requests": "1000", "errors": "300", "failed_rows": "150", "median_ms": 40.0,
            "p75_ms": 60.0, "p90_ms": 90.0, "p95_ms": 110.0, "p98_ms": 140.0, "p99_ms": 150.0}
    api = SqlApi(sums, {"data": [{"units": "330"}], "rows": 1}, {"data": [], "rows": 0})
    since = dt.datetime(2026, 12, 5, 9, tzinfo=dt.UTC)
    traffic = http_answers(api, "acct", "booking_api_requests",  # type: ignore[arg-type]
                           "11111111-1111-4111-8111-111111111111", since, since + dt.timedelta(minutes=10))
    assert traffic is not None and traffic.kept == Kept(150, 330, 0)
    assert "failing of" in (traffic.nonsense() or "")
    serving = VersionTraffic(2700, 14, 0.05, 0.15, units=900, failing_units=14)
    assert _final(traffic, serving, (0, 14)) == "rollback"



def test_over_the_limit_on_requests_but_no_worse_by_browsers_is_rolled_back_without_quarantine() -> None:
    # Two of the canary's 100 browsers retry a page failing on both versions: 30 of its 300 requests
    # failed (over errorRatePercent), 2 failing browsers of 100 beside the serving version's 18 of 900.
    canary = VersionTraffic(300, 30, 0.05, 0.15, units=100, failing_units=2)
    serving = VersionTraffic(2700, 20, 0.05, 0.15, units=900, failing_units=18)
    verdict = judge_signals(Signals(http=canary), [True] * 10, SETTINGS, final=True, share=0.1,
                            baseline=Signals(http=serving))
    assert (verdict.action, verdict.judged) == ("rollback", False) and "not quarantined" in verdict.reason
    # Worse by browsers too: held against the bundle.
    worse = VersionTraffic(300, 30, 0.05, 0.15, units=100, failing_units=25)
    verdict = judge_signals(Signals(http=worse), [True] * 10, SETTINGS, final=True, share=0.1,
                            baseline=Signals(http=serving))
    assert (verdict.action, verdict.judged) == ("rollback", True)
