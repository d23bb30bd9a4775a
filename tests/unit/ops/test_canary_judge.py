"""The canary's verdict is a pure function of its traffic and probes; worse numbers never promote."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import UnreadableAnalytics, VersionTraffic, aggregate
from ops.releases.judge import Signals, judge, judge_signals

DEFAULTS = RolloutSettings()


def test_a_canary_with_eight_percent_errors_is_rolled_back_on_traffic() -> None:
    verdict = judge(VersionTraffic(requests=200, errors=16, latency_seconds=0.05), [True], DEFAULTS, final=False)
    assert verdict.action == "rollback"
    assert verdict.basis == "traffic"
    assert "8.0 %" in verdict.reason


def test_a_healthy_canary_is_promoted_on_traffic_at_the_end_of_the_bake() -> None:
    healthy = VersionTraffic(requests=500, errors=2, latency_seconds=0.05)
    assert judge(healthy, [True], DEFAULTS, final=False).action == "continue"
    verdict = judge(healthy, [True] * 10, DEFAULTS, final=True)
    assert (verdict.action, verdict.basis) == ("promote", "traffic")


def test_errors_already_too_many_for_any_outcome_roll_back_before_the_minimum_is_reached() -> None:
    # 50 errors in 50 requests: even 50 more successes would leave 50 % > 5 %.
    verdict = judge(VersionTraffic(requests=50, errors=50), [True], DEFAULTS, final=False)
    assert verdict.action == "rollback"
    # 2 errors in 10 requests could still end at 2 % over 100: wait.
    assert judge(VersionTraffic(requests=10, errors=2), [True], DEFAULTS, final=False).action == "continue"


def test_slow_answers_roll_back_only_with_enough_requests() -> None:
    slow = VersionTraffic(requests=150, errors=0, latency_seconds=2.5)
    assert judge(slow, [True], DEFAULTS, final=False).action == "rollback"
    few = VersionTraffic(requests=20, errors=0, latency_seconds=9.0)
    assert judge(few, [True], DEFAULTS, final=False).action == "continue"


def test_two_failed_probe_rounds_roll_back_whatever_the_traffic_says() -> None:
    healthy = VersionTraffic(requests=10_000, errors=0, latency_seconds=0.01)
    assert judge(healthy, [True, False, True], DEFAULTS, final=False).action == "continue"
    verdict = judge(healthy, [True, False, False], DEFAULTS, final=False)
    assert (verdict.action, verdict.basis) == ("rollback", "probes")


def test_insufficient_traffic_rests_on_the_probes_and_says_so() -> None:
    verdict = judge(VersionTraffic(requests=12), [True] * 10, DEFAULTS, final=True)
    assert (verdict.action, verdict.basis) == ("promote", "probes")
    assert "fewer than minRequests 100" in verdict.reason and "pinned" in verdict.reason
    # No numbers at all (the analytics query failed) is the same case.
    assert judge(None, [True] * 10, DEFAULTS, final=True).basis == "probes"


def test_errors_below_min_requests_that_no_sample_size_can_excuse_roll_back_on_traffic() -> None:
    """Adversarial M2: with a large minRequests the floor rate divides by it, so 200 failures in 200
    requests (minRequests 10000, production's ceiling) counted as 2 % and the canary was promoted on
    probes. Below the minimum, the errors still count once the error rate's 95 % lower bound (Wilson)
    for that few requests is over the threshold."""
    high_minimum = RolloutSettings(min_requests=10_000)
    for final in (False, True):
        verdict = judge(VersionTraffic(requests=200, errors=200), [True] * 10, high_minimum, final=final)
        assert (verdict.action, verdict.basis) == ("rollback", "traffic"), verdict
        assert f"{'95' if final else '99.9'} % lower bound" in verdict.reason and "100.0 %" in verdict.reason
    # Sampled: the bound rests on the rows observed, not on the estimate they stand for.
    sampled = VersionTraffic(requests=2000, errors=200, sampled=20)  # 2 of 20 rows failed: could be chance
    assert judge(sampled, [True] * 10, high_minimum, final=True).basis == "probes"
    # One failure in a handful of requests proves nothing against 5 %: the probes still decide.
    verdict = judge(VersionTraffic(requests=12, errors=1), [True] * 10, DEFAULTS, final=True)
    assert (verdict.action, verdict.basis) == ("promote", "probes")


def test_insufficient_traffic_rolls_back_when_configured_to() -> None:
    strict = RolloutSettings(on_insufficient_traffic="rollback")
    verdict = judge(VersionTraffic(requests=12), [True] * 10, strict, final=True)
    assert verdict.action == "rollback"
    assert "onInsufficientTraffic is rollback" in verdict.reason


def test_a_failed_invocation_status_counts_all_its_requests_as_errors() -> None:
    rows = [
        {"sum": {"requests": 90, "errors": 0}, "quantiles": {"wallTimeP50": 40_000}, "avg": {"sampleInterval": 1},
         "dimensions": {"scriptVersion": "new", "status": "success"}},
        {"sum": {"requests": 10, "errors": 10}, "quantiles": {"wallTimeP50": 40_000}, "avg": {"sampleInterval": 1},
         "dimensions": {"scriptVersion": "new", "status": "exceededResources"}},
    ]
    traffic = (aggregate(rows) or {})["new"]
    assert (traffic.requests, traffic.errors, traffic.sampled) == (100, 10, 100)
    assert traffic.latency_seconds is not None and abs(traffic.latency_seconds - 0.04) < 1e-9
    assert judge(traffic, [True], DEFAULTS, final=False).action == "rollback"


def test_an_unreadable_row_makes_the_whole_answer_unreadable() -> None:
    rows = [{"sum": {"requests": 90, "errors": 0}, "dimensions": {"scriptVersion": "new", "status": "success"}},
            {"sum": {"requests": "many"}, "dimensions": {"scriptVersion": "new", "status": "success"}}]
    with pytest.raises(UnreadableAnalytics, match=r"row 2: sum\.requests"):
        aggregate(rows)


_GOOD = {"sum": {"requests": 200, "errors": 0}, "quantiles": {"wallTimeP50": 40_000.0}, "avg": {"sampleInterval": 1},
         "dimensions": {"scriptVersion": "new", "status": "success"}}


def _row(**changes: Any) -> Any:
    row: dict[str, Any] = {k: dict(v) for k, v in _GOOD.items()}
    for path, value in changes.items():
        part, _, key = path.partition("__")
        if key:
            row[part][key] = value
        else:
            row[part] = value
    return row


@pytest.mark.parametrize("row", [
    _row(sum="garbage"), _row(dimensions=["x"]), _row(quantiles="fast"), _row(avg=7),
    _row(sum__requests="n/a"), _row(sum__requests=-100_000), _row(sum__errors=-1000), _row(sum__requests=True),
    _row(sum__errors=100_000), _row(quantiles__wallTimeP50=float("nan")), _row(quantiles__wallTimeP50=float("inf")),
    _row(quantiles__wallTimeP50=-5e9), _row(quantiles__wallTimeP50="slow"), _row(avg__sampleInterval=0),
    _row(dimensions__status=503), _row(dimensions__scriptVersion=None), "a row that is text", None,
], ids=lambda r: str(r)[:70])
def test_a_row_that_cannot_be_counts_is_unreadable_never_a_crash_or_clean_traffic(row: Any) -> None:
    with pytest.raises(UnreadableAnalytics):
        aggregate([_GOOD, row])


def test_numbers_no_real_answer_can_hold_roll_back_instead_of_promoting() -> None:
    for nonsense in (VersionTraffic(1000, 0, float("nan")), VersionTraffic(1000, 0, float("inf")),
                     VersionTraffic(-5, -5, None), VersionTraffic(1000, -1000, 0.05), VersionTraffic(200, 400, 0.05),
                     VersionTraffic(1000, 0, -1.0)):
        verdict = judge(nonsense, [True], DEFAULTS, final=True)
        assert verdict.action == "rollback", nonsense
        assert "cannot be" in verdict.reason


def test_a_source_that_answered_garbage_rolls_the_canary_back() -> None:
    healthy = VersionTraffic(requests=500, errors=0, latency_seconds=0.05)
    verdict = judge_signals(Signals(http=healthy, runtime=None, unreadable="invocations: row 1: sum is 'x'"),
                            [True], DEFAULTS, final=False)
    assert verdict.action == "rollback"
    assert "row 1: sum is 'x'" in verdict.reason
    assert "unreadable" in Signals(unreadable="invocations: x").describe()
    assert Signals(unreadable="invocations: x").to_dict()["unreadable"] == "invocations: x"


def test_traffic_with_an_unknown_response_time_is_never_a_promotion_on_traffic() -> None:
    verdict = judge(VersionTraffic(requests=1000, errors=0, latency_seconds=None), [True], DEFAULTS, final=True)
    assert (verdict.action, verdict.basis) == ("promote", "probes")
    assert "no response time to hold to latencySeconds" in verdict.reason
    # A 99th percentile alone is a response time to hold it to.
    tail_only = VersionTraffic(requests=1000, errors=0, latency_seconds=None, tail_latency_seconds=0.4)
    assert judge(tail_only, [True], DEFAULTS, final=True).basis == "traffic"


def test_sampled_estimates_count_as_the_rows_behind_them_not_as_exact_requests() -> None:
    # ~1,000 requests estimated from 10 sampled rows prove less than 100 requests counted one by one.
    estimated = VersionTraffic(requests=1000, errors=0, latency_seconds=0.05, sampled=10)
    verdict = judge(estimated, [True] * 10, DEFAULTS, final=True)
    assert (verdict.action, verdict.basis) == ("promote", "probes")
    assert "estimated from 10 sampled" in verdict.reason
    assert judge(VersionTraffic(requests=1000, errors=0, latency_seconds=0.05, sampled=200), [True], DEFAULTS,
                 final=True).basis == "traffic"


def test_a_rollback_from_either_source_wins_and_promotion_on_traffic_needs_both() -> None:
    healthy = VersionTraffic(requests=500, errors=0, latency_seconds=0.05)
    failing = VersionTraffic(requests=500, errors=50, latency_seconds=0.05)
    assert judge_signals(Signals(http=failing, runtime=healthy), [True], DEFAULTS, final=True).action == "rollback"
    assert judge_signals(Signals(http=healthy, runtime=failing), [True], DEFAULTS, final=True).action == "rollback"
    both = judge_signals(Signals(http=healthy, runtime=healthy), [True], DEFAULTS, final=True)
    assert (both.action, both.basis) == ("promote", "traffic")
    one = judge_signals(Signals(http=healthy, runtime=None), [True], DEFAULTS, final=True)
    assert (one.action, one.basis) == ("promote", "probes")


traffic = st.builds(VersionTraffic, requests=st.integers(0, 5000), errors=st.integers(0, 5000),
                    latency_seconds=st.one_of(st.none(), st.floats(0, 30)),
                    tail_latency_seconds=st.one_of(st.none(), st.floats(0, 60)))
probes = st.lists(st.booleans(), max_size=15)
rollouts = st.builds(RolloutSettings, error_rate_percent=st.floats(0.1, 100), latency_seconds=st.floats(0.1, 60),
                     min_requests=st.integers(1, 2000),
                     on_insufficient_traffic=st.sampled_from(["probes", "rollback"]))


def _valid(t: VersionTraffic) -> VersionTraffic:
    return dataclasses.replace(t, errors=min(t.errors, t.requests))


@settings(max_examples=400, deadline=None)
@given(traffic, st.integers(1, 5000), probes, rollouts, st.booleans())
def test_more_errors_never_turn_a_rollback_into_a_promotion(t: VersionTraffic, more: int, rounds: list[bool],
                                                           rollout: RolloutSettings, final: bool) -> None:
    t = _valid(t)
    worse = dataclasses.replace(t, errors=min(t.errors + more, t.requests))
    if judge(t, rounds, rollout, final=final).action == "rollback":
        assert judge(worse, rounds, rollout, final=final).action == "rollback"


@settings(max_examples=400, deadline=None)
@given(traffic, st.floats(0, 30), probes, rollouts, st.booleans())
def test_slower_answers_never_turn_a_rollback_into_a_promotion(t: VersionTraffic, slower: float, rounds: list[bool],
                                                              rollout: RolloutSettings, final: bool) -> None:
    t = _valid(t)
    if t.latency_seconds is None:
        return  # an unknown median is no verdict on latency at all, not a fast one (never promotes on traffic)
    worse = dataclasses.replace(t, latency_seconds=t.latency_seconds + slower,
                                tail_latency_seconds=None if t.tail_latency_seconds is None
                                else t.tail_latency_seconds + slower)
    if judge(t, rounds, rollout, final=final).action == "rollback":
        assert judge(worse, rounds, rollout, final=final).action == "rollback"


@settings(max_examples=400, deadline=None)
@given(traffic, probes, st.integers(0, 14), rollouts, st.booleans())
def test_a_failed_probe_instead_of_a_passing_one_never_turns_a_rollback_into_a_promotion(
        t: VersionTraffic, rounds: list[bool], index: int, rollout: RolloutSettings, final: bool) -> None:
    t = _valid(t)
    if not rounds:
        return
    worse = list(rounds)
    worse[index % len(worse)] = False
    if judge(t, rounds, rollout, final=final).action == "rollback":
        assert judge(t, worse, rollout, final=final).action == "rollback"


@settings(max_examples=300, deadline=None)
@given(traffic, probes, rollouts)
def test_the_final_verdict_is_always_promote_or_rollback(t: VersionTraffic, rounds: list[bool],
                                                         rollout: RolloutSettings) -> None:
    assert judge(_valid(t), rounds, rollout, final=True).action in ("promote", "rollback")


def test_an_infinite_or_overflowing_count_makes_the_answer_unreadable_instead_of_crashing() -> None:
    # Python's json reads 1e400 as inf; a 400-digit string overflows float the same way.
    for requests in (float("inf"), "9" * 400, float("nan"), -3, "12abc"):
        rows = [{"dimensions": {"scriptVersion": "new", "status": "success"},
                 "sum": {"requests": requests, "errors": 0}, "avg": {"sampleInterval": 1}}]
        with pytest.raises(UnreadableAnalytics):
            aggregate(rows)


def test_the_longest_worker_name_config_accepts_has_a_dataset_the_canary_can_query() -> None:
    import datetime as dt

    from booking_shared.naming import requests_dataset
    from ops.observation.analytics import requests_sql

    name = "a" * 63  # stackconfig/model.py _RESOURCE_NAME: 1-63 characters
    now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    sql = requests_sql(requests_dataset(name), "0" * 8 + "-0000-0000-0000-" + "0" * 12, now, now)
    assert f"FROM {name}_requests " in sql


def test_a_negative_latency_from_the_api_is_unreadable_rather_than_a_fast_canary() -> None:
    rows = [{"dimensions": {"scriptVersion": "v", "status": "success"}, "sum": {"requests": 100, "errors": 0},
             "quantiles": {"wallTimeP50": -5e9}}]
    with pytest.raises(UnreadableAnalytics, match="wallTimeP50"):
        aggregate(rows)


def test_latency_is_held_to_the_99th_percentile_where_the_source_gives_one() -> None:
    # A 90th percentile over the limit: a tenth of the requests slower, far over the 1 % a p99 allows.
    fast_median_slow_tail = VersionTraffic(requests=1000, errors=0, latency_seconds=0.3, tail_latency_seconds=2.5,
                                           quantiles=((0.9, 2.2),))
    verdict = judge(fast_median_slow_tail, [True], DEFAULTS, final=True)
    assert verdict.action == "rollback" and verdict.reason.startswith(
        "p99 response time 2.50 s over 1,000 requests (threshold 2 s: at least 100 of 1,000 observed slower")
    # The p99 alone over it is the tenth slowest of 1,000: as likely from a version whose p99 is under.
    tail_alone = dataclasses.replace(fast_median_slow_tail, quantiles=((0.9, 0.8),))
    assert judge(tail_alone, [True], DEFAULTS, final=True).action == "promote"
    # Without a 99th percentile the median is what there is, and the reason says which it judged.
    median_only = VersionTraffic(requests=1000, errors=0, latency_seconds=2.5)
    assert judge(median_only, [True], DEFAULTS, final=True).reason.startswith("median response time 2.50 s")
    assert judge(dataclasses.replace(fast_median_slow_tail, tail_latency_seconds=1.5, quantiles=((0.9, 0.8),)),
                 [True], DEFAULTS, final=True).action == "promote"


def test_a_versions_99th_percentile_is_the_largest_of_its_answered_rows() -> None:
    def row(status: str, requests: int, p99_us: float) -> dict[str, Any]:
        return {"dimensions": {"scriptVersion": "v", "status": status}, "sum": {"requests": requests, "errors": 0},
                "quantiles": {"wallTimeP50": 1e5, "wallTimeP99": p99_us}}
    # A percentile of a mixture is at most its parts' largest: never understated. Invocations that
    # failed (30 s to time out) are errors, not the response time salons saw. A row of hang-ups
    # counts from TAIL_ROWS requests on (fewer: one closed tab's time, hostile review #24c).
    rows = [row("success", 900, 1.2e6), row("clientDisconnected", 150, 1.8e6), row("exceededCpu", 5, 30e6)]
    assert aggregate(rows)["v"].tail_latency_seconds == 1.8
    rows[1] = row("clientDisconnected", 10, 1.8e6)
    assert aggregate(rows)["v"].tail_latency_seconds == 1.2
    with pytest.raises(UnreadableAnalytics, match="wallTimeP99"):
        aggregate([row("success", 900, -1.0)])


def test_a_report_with_a_nan_or_infinite_median_is_strict_json() -> None:
    """Adversarial M1: a NaN median was written as bare NaN into BOOKING_CANARY_REPORT and the
    quarantine record's metrics, which no JSON parser reads."""
    import json

    for median in (float("nan"), float("inf")):
        shown = json.dumps(VersionTraffic(1000, 3, median).to_dict(), allow_nan=False)  # raises on NaN/Infinity
        assert json.loads(shown)["latencySeconds"] is None


def test_http_answers_the_sql_api_counts_are_whole_non_negative_numbers_or_unreadable() -> None:
    """Adversarial M1, in today's sources: the 5xx count arrives summed by the SQL API (no status
    dimension to misread); a count that is text other than digits, fractional or negative is unreadable."""
    from ops.observation.analytics import _count

    assert [_count(v) for v in (503, "503", 503.0, "503.0")] == [503] * 4  # ClickHouse-style JSON may quote numbers
    assert [_count(v) for v in ("503x", 503.5, -1, True, None, float("nan"))] == [None] * 6


def test_sample_counts_no_real_answer_can_hold_roll_back_instead_of_weighing_the_verdict() -> None:
    """Hostile review of #22, D3: a million sampled rows behind 10 requests promoted 40 % errors on
    traffic, and 30 requests estimated from no row at all promoted 100 % errors on the probes."""
    high_minimum = RolloutSettings(min_requests=10_000, error_rate_percent=1)
    for nonsense, rollout in ((VersionTraffic(10, 4, 0.1, sampled=1_000_000), DEFAULTS),
                              (VersionTraffic(30, 30, None, sampled=0), high_minimum)):
        verdict = judge(nonsense, [True] * 10, rollout, final=True)
        assert (verdict.action, verdict.basis) == ("rollback", "traffic") and "sampled rows" in verdict.reason
    assert judge(VersionTraffic(0, 0, None, sampled=0), [True] * 10, DEFAULTS, final=True).action == "promote"
