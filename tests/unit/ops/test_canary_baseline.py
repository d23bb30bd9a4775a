"""The canary judged against the serving version in the same minutes (ops/releases/baseline.py)."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import VersionTraffic
from ops.releases.baseline import ALPHA, ALTERNATIVES, compare, log_mixture_ratio
from ops.releases.judge import Signals, judge, judge_signals

DEFAULTS = RolloutSettings()


def _direct_log_ratio(k: int, m: int, share: float) -> float:
    """The same evidence from its definition: the prior-weighted binomial likelihood ratios, each
    computed as the plain product of per-error probabilities (no simplification shared with the code)."""
    total = 0.0
    for ratio, weight in ALTERNATIVES:
        p = share * ratio / (share * ratio + 1 - share)
        total += weight * (p / share) ** k * ((1 - p) / (1 - share)) ** m
    return math.log(total)


def test_the_prior_is_on_worse_rates_only_and_sums_to_one() -> None:
    assert math.fsum(weight for _, weight in ALTERNATIVES) == pytest.approx(1.0)
    assert all(ratio > 1.0 and weight > 0 for ratio, weight in ALTERNATIVES)


@pytest.mark.parametrize(("k", "m", "share"), [(1, 0, 0.1), (5, 3, 0.1), (3, 30, 0.1), (20, 200, 0.1),
                                               (2, 2, 0.5), (0, 50, 0.01), (12, 7, 0.3), (40, 10, 0.02)])
def test_the_evidence_is_the_mixture_of_likelihood_ratios_it_claims(k: int, m: int, share: float) -> None:
    assert log_mixture_ratio(k, m, share) == pytest.approx(_direct_log_ratio(k, m, share), abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 500), st.integers(0, 5000), st.floats(0.01, 0.5), st.floats(0.0, 1.0))
def test_the_evidence_is_a_martingale_when_the_canary_is_no_worse(k: int, m: int, share: float,
                                                                  fraction: float) -> None:
    # Ville's inequality needs it: the next error is the canary's with probability p <= share, and
    # the evidence expected after it is then at most the evidence now (exactly it at p = share).
    # In ratios to the evidence now (the evidence itself overflows a float at large counts).
    now = log_mixture_ratio(k, m, share)
    error, success = (math.exp(log_mixture_ratio(k + 1, m, share) - now),
                      math.exp(log_mixture_ratio(k, m + 1, share) - now))
    assert share * error + (1 - share) * success == pytest.approx(1.0, rel=1e-9)
    p = share * fraction
    assert p * error + (1 - p) * success <= 1.0 + 1e-9


def _bake(rng: random.Random, rpm: int, split: float, base_rate: float, canary_rate: float, minutes: int = 10,
          outage: tuple[int, int, float] | None = None) -> str:
    """One simulated bake judged every minute on the cumulative window, as run_canary does: the verdict."""
    nc = nb = ec = eb = 0
    for minute in range(1, minutes + 1):
        rate_b, rate_c = base_rate, canary_rate
        if outage and outage[0] <= minute < outage[1]:
            rate_b, rate_c = max(rate_b, outage[2]), max(rate_c, outage[2])
        for _ in range(rpm):
            if rng.random() < split:
                nc += 1
                ec += rng.random() < rate_c
            else:
                nb += 1
                eb += rng.random() < rate_b
        canary = VersionTraffic(requests=nc, errors=ec, latency_seconds=0.05)
        baseline = VersionTraffic(requests=nb, errors=eb, latency_seconds=0.05)
        verdict = judge(canary, [True] * minute, DEFAULTS, final=minute == minutes, baseline=baseline)
        if verdict.action != "continue":
            # A rollback the judge does not hold against the canary (both over a limit) quarantines nothing.
            return verdict.action if verdict.judged else "unjudged"
    raise AssertionError("the final minute always decides")


def test_a_canary_no_worse_than_its_baseline_is_rolled_back_at_most_alpha_of_the_time() -> None:
    # 2,000 good canaries (seeded), 10 % of 100 requests a minute, judged at each of 10 minutes: the
    # anytime-valid test may look every minute and still keeps its false rollbacks within ALPHA.
    rng = random.Random(20261205)
    bakes = 2000
    rolled = sum(_bake(rng, 100, 0.1, rate, rate) == "rollback"
                 for rate in (0.002, 0.01, 0.05, 0.2) for _ in range(bakes // 4))
    assert rolled / bakes <= ALPHA


def test_a_shared_outage_is_not_the_canarys_and_the_fixed_threshold_alone_would_roll_it_back() -> None:
    # Five minutes at 200 requests a minute, 10 % canary, both versions at 8 % errors (a D1 outage).
    canary = VersionTraffic(requests=100, errors=8, latency_seconds=0.05)
    serving = VersionTraffic(requests=900, errors=72, latency_seconds=0.05)
    assert judge(canary, [True] * 5, DEFAULTS, final=False).action == "rollback"
    with_baseline = judge(canary, [True] * 5, DEFAULTS, final=False, baseline=serving)
    assert with_baseline.action == "continue"
    assert "beside the serving version's 8.0 %" in with_baseline.reason


def test_a_regression_below_the_fixed_threshold_is_caught_against_a_healthy_baseline() -> None:
    # 0.5 % -> 3 %: under the 5 % threshold, which never sees it; the serving version beside it does.
    canary = VersionTraffic(requests=600, errors=18, latency_seconds=0.05)
    serving = VersionTraffic(requests=5400, errors=27, latency_seconds=0.05)
    assert judge(canary, [True], DEFAULTS, final=True).action == "promote"
    verdict = judge(canary, [True], DEFAULTS, final=False, baseline=serving)
    assert (verdict.action, verdict.basis) == ("rollback", "traffic")
    assert "error rate 3.0 % over 600 requests, more than the serving version's 0.5 %" in verdict.reason
    assert "18 of the 45 errors" in verdict.reason


def test_a_failure_far_over_the_baseline_rolls_back_at_once_through_the_guardrail() -> None:
    # 30 requests, half failing: the test needs the evidence, the guardrail needs only the lower bound.
    canary = VersionTraffic(requests=30, errors=15, latency_seconds=0.05)
    serving = VersionTraffic(requests=270, errors=1, latency_seconds=0.05)
    verdict = judge(canary, [True], DEFAULTS, final=False, baseline=serving)
    assert verdict.action == "rollback"


def test_slowness_both_versions_share_is_not_the_canarys_but_is_never_promoted() -> None:
    canary = VersionTraffic(requests=500, errors=1, latency_seconds=3.0)
    slow_serving = VersionTraffic(requests=4500, errors=9, latency_seconds=2.8)
    fast_serving = dataclasses.replace(slow_serving, latency_seconds=0.1)
    # latencySeconds is a critical limit: over it nothing is promoted; the serving version over it
    # too makes it the platform's slowness: the bake continues, and ends unjudged (no quarantine).
    assert judge(canary, [True], DEFAULTS, final=False, baseline=slow_serving).action == "continue"
    shared = judge(canary, [True], DEFAULTS, final=True, baseline=slow_serving)
    assert (shared.action, shared.judged) == ("rollback", False) and "not quarantined" in shared.reason
    verdict = judge(canary, [True], DEFAULTS, final=True, baseline=fast_serving)
    assert (verdict.action, verdict.judged) == ("rollback", True)
    assert "the serving version's median is 0.10 s" in verdict.reason


def test_a_serving_version_excuses_slowness_only_on_evidence_and_only_up_to_a_ratio() -> None:
    """Hostile review of #24: a p99 of 30 s beside 2.1 s, and a 9 s canary beside one slow request,
    were excused by "the serving version is over the limit too"."""
    fifteen_times = judge(VersionTraffic(1000, 0, 0.2, 30.0, quantiles=((0.9, 12.0),)), [True], DEFAULTS, final=False,
                          baseline=VersionTraffic(9000, 0, 0.2, 2.1))
    assert fifteen_times.action == "rollback" and "14.3 times slower" in fifteen_times.reason
    one_request = judge(VersionTraffic(1000, 0, 0.2, 9.0, quantiles=((0.9, 4.0),)), [True], DEFAULTS, final=False,
                        baseline=VersionTraffic(1, 0, 3.0, 3.0))
    assert one_request.action == "rollback" and "fewer than minRequests" in one_request.reason


def test_a_canary_over_errorratepercent_is_never_promoted_whatever_the_serving_version_does() -> None:
    """Hostile review of #24: 100 % errors beside 100 %, and 30 % beside 50 %, were promoted."""
    for canary, serving in ((VersionTraffic(1000, 1000, 0.1, 0.5), VersionTraffic(9000, 9000, 0.1, 0.5)),
                            (VersionTraffic(10_000, 3000, 0.1, 0.5), VersionTraffic(90_000, 45_000, 0.1, 0.5))):
        verdict = judge(canary, [True] * 10, DEFAULTS, final=True, baseline=serving)
        assert (verdict.action, verdict.judged) == ("rollback", False), verdict.reason
        assert "the serving version is over the limit too" in verdict.reason
    alone = judge(VersionTraffic(1000, 60, 0.1, 0.5), [True], DEFAULTS, final=True,
                  baseline=VersionTraffic(9000, 300, 0.1, 0.5))
    assert (alone.action, alone.judged) == ("rollback", True)


def test_a_canary_missing_from_a_source_where_the_serving_version_is_busy_is_rolled_back() -> None:
    """Hostile review of #24: no Analytics Engine rows of the canary beside 9,000 of the serving
    version was promoted on probes: its HTTP answers were never judged."""
    missing = Signals(http=VersionTraffic(0, 0, sampled=0), runtime=VersionTraffic(1000, 0, 0.1, 0.5))
    serving = Signals(http=VersionTraffic(9000, 45, 0.1, 0.5, sampled=9000),
                      runtime=VersionTraffic(9000, 0, 0.1, 0.5))
    verdict = judge_signals(missing, [True] * 10, DEFAULTS, final=True, baseline=serving, share=0.1)
    assert verdict.action == "rollback" and "missing from this source" in verdict.reason and not verdict.judged
    # Its share, give or take chance, is no reason: 9 % beside 91 %.
    fine = Signals(http=VersionTraffic(900, 4, 0.1, 0.5), runtime=VersionTraffic(900, 4, 0.1, 0.5))
    busy = Signals(http=VersionTraffic(9100, 45, 0.1, 0.5), runtime=VersionTraffic(9100, 45, 0.1, 0.5))
    assert judge_signals(fine, [True], DEFAULTS, final=True, baseline=busy, share=0.1).action == "promote"


def test_sampled_counts_weigh_as_the_rows_seen_not_as_the_estimate() -> None:
    exact = compare(VersionTraffic(requests=1000, errors=30), VersionTraffic(requests=9000, errors=45))
    sampled = compare(VersionTraffic(requests=1000, errors=30, sampled=100),
                      VersionTraffic(requests=9000, errors=45, sampled=900))
    assert exact is not None and sampled is not None
    assert exact.worse and not sampled.worse
    assert sampled.canary_errors == pytest.approx(3.0)


def test_without_a_baseline_to_compare_the_fixed_thresholds_judge() -> None:
    canary = VersionTraffic(requests=200, errors=16, latency_seconds=0.05)
    assert compare(canary, VersionTraffic()) is None
    assert judge(canary, [True], DEFAULTS, final=False, baseline=VersionTraffic()) == judge(
        canary, [True], DEFAULTS, final=False)
    # A serving version's numbers no real answer holds are not "no baseline": judged alone, a regression
    # under the fixed limits would be promoted (hostile24f). They cannot clear the canary: a rollback,
    # not held against its bundle.
    nonsense = VersionTraffic(requests=10, errors=20)
    verdict = judge(VersionTraffic(requests=200, errors=8, latency_seconds=0.05), [True], DEFAULTS, final=True,
                    baseline=nonsense)
    assert (verdict.action, verdict.judged) == ("rollback", False) and "cannot be real" in verdict.reason


def test_each_source_is_judged_against_the_same_source_of_the_serving_version() -> None:
    canary = VersionTraffic(requests=100, errors=8, latency_seconds=0.05)
    shared = VersionTraffic(requests=900, errors=72, latency_seconds=0.05)
    healthy = VersionTraffic(requests=900, errors=1, latency_seconds=0.05)
    both_shared = judge_signals(Signals(http=canary, runtime=canary), [True], DEFAULTS, final=False,
                                baseline=Signals(http=shared, runtime=shared))
    assert both_shared.action == "continue"
    one_healthy = judge_signals(Signals(http=canary, runtime=canary), [True], DEFAULTS, final=False,
                                baseline=Signals(http=shared, runtime=healthy))
    assert one_healthy.action == "rollback"
    assert one_healthy.reason.startswith("invocations (GraphQL Analytics): ")


traffic = st.builds(VersionTraffic, requests=st.integers(0, 5000), errors=st.integers(0, 5000),
                    latency_seconds=st.one_of(st.none(), st.floats(0, 30)))


def _valid(t: VersionTraffic) -> VersionTraffic:
    return dataclasses.replace(t, errors=min(t.errors, t.requests))


@settings(max_examples=400, deadline=None)
@given(traffic, traffic, st.integers(1, 5000), st.booleans())
def test_more_canary_errors_never_turn_a_rollback_against_the_baseline_into_a_promotion(
        t: VersionTraffic, base: VersionTraffic, more: int, final: bool) -> None:
    t, base = _valid(t), _valid(base)
    worse = dataclasses.replace(t, errors=min(t.errors + more, t.requests))
    if judge(t, [True], DEFAULTS, final=final, baseline=base).action == "rollback":
        assert judge(worse, [True], DEFAULTS, final=final, baseline=base).action == "rollback"


@settings(max_examples=300, deadline=None)
@given(traffic, traffic)
def test_the_final_verdict_against_a_baseline_is_always_promote_or_rollback(t: VersionTraffic,
                                                                           base: VersionTraffic) -> None:
    assert judge(_valid(t), [True], DEFAULTS, final=True, baseline=_valid(base)).action in ("promote", "rollback")


def test_counts_of_a_busy_hour_give_finite_evidence_that_grows_with_the_canarys_excess() -> None:
    # 10 million requests' worth of errors: the evidence stays finite, and a canary with 20 % more
    # than its share is decisively worse (the small ratios of the prior) while one at its share is not.
    at_share = log_mixture_ratio(1_000_000, 9_000_000, 0.1)
    over = log_mixture_ratio(1_200_000, 9_000_000, 0.1)
    assert math.isfinite(at_share) and math.isfinite(over)
    assert at_share < math.log(1 / ALPHA) < over
