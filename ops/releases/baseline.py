"""The canary against its baseline: does the new version fail more than its share of requests predicts?

On Workers a deployment's split is random per request, so the serving version in the same minutes
is a randomised control group: a D1 outage or a bad upstream hits both versions alike, and a
regression shows as a difference between them (the SRE Workbook's "canarying releases" chapter,
sre.google/workbook/canarying-releases; Spinnaker's canary best practices, "compare canary against
baseline, not against production"). Judging the canary's error rate alone against a fixed threshold
rolls back sound versions whenever the platform itself has a bad few minutes.

The test: given the errors both versions had (E of them), each was the canary's with probability
`share`, the canary's part of the requests, if the canary is no worse (conditioning Poisson
counts on their sum gives a binomial: Lindon, Sanden, Shirikian, "Rapid regression detection in
software deployments through sequential testing", KDD 2022, arXiv 2205.14762, and Lindon and
Malek, arXiv 2011.03567, for count data). The evidence against "no worse" is a mixture likelihood
ratio: the binomial likelihood of the canary's k errors averaged over a prior on the probability p
that an error is the canary's, restricted to p > share (worse only), divided by the likelihood at
p = share. Under "no worse" that ratio is a nonnegative martingale with mean at most 1, so by
Ville's inequality it ever reaches 1/alpha with probability at most alpha, however often it is
looked at: the bake may judge every minute and stop at the first decisive one (an anytime-valid
test; Robbins 1970, "Statistical methods related to the law of the iterated logarithm").

The mixture is over rate ratios: "worse" means the canary's error rate is r times its baseline's,
so an error is the canary's with probability p_r = share r / (share r + 1 - share), and the
evidence is the prior-weighted average of the simple likelihood ratios
(p_r / share)^k ((1 - p_r) / (1 - share))^m = r^k / (1 + share (r - 1))^(k + m).
Each is a martingale at p = share and a supermartingale below it, so their average is too, at any
canary percentage: the prior is a statement about regressions, not about the split. Most of its
weight (95 %) is on 2 to 16 times the baseline's rate, the regressions a 10-minute canary of a
salon's traffic can show (0.5 % -> 3 % is 6 times); the rest on 1.1 to 1.5 times, so that a small
regression is still caught once the counts are large (a busy hour), which a prior without them
never would. bench/canary_replay.py compares it with the fixed-threshold judge on seeded traffic;
a Beta(1/2, 1) prior on p (before 2026-12-05) caught 62.9 % of the 0.5 % -> 3 % regressions at
200 requests a minute, this one 65.8 % (seed 1), with the same false rollbacks.

Counts of a sampled dataset are estimates: each side's errors are scaled to the rows actually
observed (`VersionTraffic.evidence`), so sampling never makes the evidence look stronger than it is.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ops.observation.analytics import VersionTraffic

# The chance a canary no worse than its baseline is rolled back by this test over a whole bake.
ALPHA = 0.05
# (rate ratio, prior weight): see the module's docstring. The weights sum to 1.
ALTERNATIVES: tuple[tuple[float, float], ...] = (
    *((ratio, 0.05 / 3) for ratio in (1.1, 1.25, 1.5)),
    *((ratio, 0.95 / 7) for ratio in (2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)),
)


@dataclass(frozen=True)
class Comparison:
    """The canary's errors beside what its share of requests predicts from both versions' errors."""

    canary_errors: float  # in observed rows (sampled datasets scaled down to what was seen)
    baseline_errors: float
    share: float  # the canary's part of both versions' requests
    log_evidence: float  # log of the mixture likelihood ratio against "no worse"
    alpha: float = ALPHA
    unit: str = "requests"  # what was counted: "browsers" (units of assignment) or "requests"

    @property
    def expected_errors(self) -> float:
        """The canary's errors if it failed exactly like its baseline."""
        return (self.canary_errors + self.baseline_errors) * self.share

    @property
    def worse(self) -> bool:
        return self.log_evidence >= math.log(1.0 / self.alpha)

    def describe(self) -> str:
        errors = self.canary_errors + self.baseline_errors
        failed = "errors" if self.unit == "requests" else "failing browsers"
        return (f"{_count(self.canary_errors)} of the {_count(errors)} {failed} of both versions were the canary's, "
                f"where its {100.0 * self.share:.1f} % of the {self.unit} predicts {self.expected_errors:.1f} "
                f"(evidence {_evidence(self.log_evidence)}, decisive at {1.0 / self.alpha:g})")


def _count(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


def _evidence(log_value: float) -> str:
    return f"{math.exp(log_value):.2f}" if log_value < 30 else f"e^{log_value:.0f}"


def compare(canary: VersionTraffic, baseline: VersionTraffic, *, alpha: float = ALPHA) -> Comparison | None:
    """The comparison, or None when either version has no requests to compare (no baseline to judge by).

    By units when both sides have them: with version affinity Cloudflare assigns a browser, not a
    request, to a version, so the failing browsers are what the assignment makes independent (one
    browser retrying a failing page 15 times is one failure, on one side). By requests otherwise,
    which is exact only while requests are assigned one by one (no version key).
    """
    if canary.requests <= 0 or baseline.requests <= 0:
        return None
    browsers = browser_counts(canary, baseline)
    if browsers is not None:
        units, failing, their_units, their_failing = browsers
        k, m = float(failing), float(their_failing)
        share = units / (units + their_units)
        return Comparison(k, m, share, log_mixture_ratio(k, m, share), alpha, unit="browsers")
    k = canary.errors * canary.evidence / canary.requests
    m = baseline.errors * baseline.evidence / baseline.requests
    share = canary.evidence / (canary.evidence + baseline.evidence)
    return Comparison(k, m, share, log_mixture_ratio(k, m, share), alpha)


def browser_counts(canary: VersionTraffic, baseline: VersionTraffic) -> tuple[int, int, int, int] | None:
    """(canary browsers, of them failing, baseline browsers, of them failing) when both sides' browser
    counts can be compared: present on both, and splitting the browsers much as the requests are
    split; else None. A version built before the Worker wrote `blob1` has all its rows under one
    (empty) value: its "one browser" beside thousands of requests would make the canary look like
    nearly all the browsers, and a regression invisible."""
    if not (canary.units and baseline.units and canary.failing_units is not None
            and baseline.failing_units is not None and canary.requests and baseline.requests):
        return None
    by_unit = canary.units / (canary.units + baseline.units)
    by_request = canary.requests / (canary.requests + baseline.requests)
    if not by_request / 2 <= by_unit <= min(1.0, 2 * by_request):
        return None
    return canary.units, canary.failing_units, baseline.units, baseline.failing_units


# More rows a browser than this over a bake's window, on average (kept rows per kept browser where
# sampled: about 500 requests at 1 row in 10), and its browser keys say nothing: a version that writes
# one blob1 for every row (built before the Worker wrote it, or a bug) would otherwise have its
# failures counted as one browser's.
MAX_REQUESTS_PER_BROWSER = 50


def _own_browsers(traffic: VersionTraffic) -> tuple[int, int, int] | None:
    """(failing browsers, the failed rows they come from, browsers) of one version's own rows, or None
    when its rows do not say (no browser counts, or too few browsers for its rows to be believed)."""
    if traffic.kept is not None:
        failing, failed, browsers = traffic.kept.failing_browsers, traffic.kept.failed_rows, traffic.kept.browsers
    elif traffic.units and traffic.failing_units is not None and not traffic.estimated:
        failing, failed, browsers = traffic.failing_units, traffic.errors, traffic.units
    else:
        return None
    if browsers < 2 or browsers * MAX_REQUESTS_PER_BROWSER < traffic.evidence:
        return None
    return failing, failed, browsers


def per_browser(canary: VersionTraffic, baseline: VersionTraffic) -> tuple[VersionTraffic, VersionTraffic] | None:
    """Both versions' HTTP answers with each failing browser's errors counted once, where a side's rows
    are sampled (both exact: `compare` counts browsers itself) and both sides' rows say which browsers
    failed; else None (requests are compared one by one, as without version affinity).

    With version affinity a browser retrying a page that fails on both versions puts all of its
    failures on one version. Sampled rows cannot count browsers across versions (each index is
    sampled at its own rate), but each version's kept failed rows and the browsers among them say
    how many failures a failing browser stands for: the errors are scaled by that, per version, for
    the comparison and the guardrail. The limits keep the requests (`request_errors`): what salons see.
    """
    if by_browsers(canary, baseline) or (canary.kept is None and baseline.kept is None):
        return None
    own = _own_browsers(canary), _own_browsers(baseline)
    if own[0] is None or own[1] is None:
        return None

    def scaled(traffic: VersionTraffic, failing: int, failed: int) -> VersionTraffic:
        errors = round(traffic.errors * failing / failed) if failed else traffic.errors
        return dataclasses.replace(traffic, errors=errors, request_errors=traffic.errors,
                                   counting="each failing browser's counted once")

    return scaled(canary, own[0][0], own[0][1]), scaled(baseline, own[1][0], own[1][1])


def by_browsers(canary: VersionTraffic, baseline: VersionTraffic) -> bool:
    """Whether the two sides are compared by browsers (`browser_counts` has them)."""
    return browser_counts(canary, baseline) is not None


def log_mixture_ratio(k: float, m: float, share: float,
                      alternatives: tuple[tuple[float, float], ...] = ALTERNATIVES) -> float:
    """log of  sum_r w_r (p_r / share)^k ((1 - p_r) / (1 - share))^m  over the (ratio r, weight w_r)
    alternatives, with p_r = share r / (share r + 1 - share): the evidence that the canary's k errors
    beside its baseline's m are more than its share of the requests predicts."""
    if k + m <= 0 or not 0.0 < share < 1.0:
        return 0.0
    # (p_r / share)^k ((1 - p_r) / (1 - share))^m simplifies to r^k / (1 + share (r - 1))^(k + m):
    # logs of that stay finite for any count a bake can have (10 million errors and more).
    terms = [math.log(weight) + k * math.log(ratio) - (k + m) * math.log1p(share * (ratio - 1.0))
             for ratio, weight in alternatives]
    top = max(terms)
    return top + math.log(math.fsum(math.exp(term - top) for term in terms))
