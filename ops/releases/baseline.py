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

The prior is Beta(1/2, 1) truncated to p > share, in closed form through the regularised incomplete
beta function below. bench/canary_replay.py compares it with the fixed-threshold judge on seeded
traffic; Beta(1/2, 1) is the shape that met the bench's targets (detection of a 0.5 % -> 3 %
regression at 200 requests a minute, false rollbacks during a shared outage), not a law of nature.

Counts of a sampled dataset are estimates: each side's errors are scaled to the rows actually
observed (`VersionTraffic.evidence`), so sampling never makes the evidence look stronger than it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ops.observation.analytics import VersionTraffic

# The chance a canary no worse than its baseline is rolled back by this test over a whole bake.
ALPHA = 0.05
PRIOR_A, PRIOR_B = 0.5, 1.0


@dataclass(frozen=True)
class Comparison:
    """The canary's errors beside what its share of requests predicts from both versions' errors."""

    canary_errors: float  # in observed rows (sampled datasets scaled down to what was seen)
    baseline_errors: float
    share: float  # the canary's part of both versions' requests
    log_evidence: float  # log of the mixture likelihood ratio against "no worse"
    alpha: float = ALPHA

    @property
    def expected_errors(self) -> float:
        """The canary's errors if it failed exactly like its baseline."""
        return (self.canary_errors + self.baseline_errors) * self.share

    @property
    def worse(self) -> bool:
        return self.log_evidence >= math.log(1.0 / self.alpha)

    def describe(self) -> str:
        errors = self.canary_errors + self.baseline_errors
        return (f"{_count(self.canary_errors)} of the {_count(errors)} errors of both versions were the canary's, "
                f"where its {100.0 * self.share:.1f} % of the requests predicts {self.expected_errors:.1f} "
                f"(evidence {_evidence(self.log_evidence)}, decisive at {1.0 / self.alpha:g})")


def _count(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


def _evidence(log_value: float) -> str:
    return f"{math.exp(log_value):.2f}" if log_value < 30 else f"e^{log_value:.0f}"


def compare(canary: VersionTraffic, baseline: VersionTraffic, *, alpha: float = ALPHA) -> Comparison | None:
    """The comparison, or None when either version has no requests to compare (no baseline to judge by)."""
    if canary.requests <= 0 or baseline.requests <= 0:
        return None
    k = canary.errors * canary.evidence / canary.requests
    m = baseline.errors * baseline.evidence / baseline.requests
    share = canary.evidence / (canary.evidence + baseline.evidence)
    return Comparison(k, m, share, log_mixture_ratio(k, m, share), alpha)


def log_mixture_ratio(k: float, m: float, share: float, a: float = PRIOR_A, b: float = PRIOR_B) -> float:
    """log of  E_prior[ p^k (1-p)^m ] / ( share^k (1-share)^m )  with p ~ Beta(a, b) restricted to p > share."""
    if k + m <= 0 or not 0.0 < share < 1.0:
        return 0.0
    mixed = _log_beta(a + k, b + m) + _log_upper(a + k, b + m, share)
    prior = _log_beta(a, b) + _log_upper(a, b, share)
    return mixed - prior - (k * math.log(share) + m * math.log1p(-share))


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _log_upper(a: float, b: float, x: float) -> float:
    """log(1 - I_x(a, b)): the log of the Beta(a, b) mass above x (I is the regularised incomplete beta)."""
    # 1 - I_x(a, b) = I_{1-x}(b, a); the continued fraction converges fast below (p+1)/(p+q+2), so
    # evaluate whichever side of the symmetry lies there (Numerical Recipes 6.4, `betai`).
    y = 1.0 - x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + b * math.log(y) + a * math.log(x))
    if y < (b + 1.0) / (a + b + 2.0):
        return log_front + math.log(_beta_fraction(b, a, y)) - math.log(b)
    lower = math.exp(log_front) * _beta_fraction(a, b, x) / a  # I_x(a, b), small on this side
    return math.log1p(-lower) if lower < 1.0 else -math.inf


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for step in range(1, 10_000):
        m2 = 2 * step
        for numerator in (step * (b - step) * x / ((a + m2 - 1.0) * (a + m2)),
                          -(a + step) * (a + b + step) * x / ((a + m2) * (a + m2 + 1.0))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            return h
    # It converges in about sqrt(max(a, b)) steps, so this is counts far beyond any bake's. Never a
    # guess: the canary stops on the error, and a stopped canary sends traffic back (canary.py).
    raise ArithmeticError(f"the incomplete beta function did not converge for a={a:g}, b={b:g}, x={x:g}")
