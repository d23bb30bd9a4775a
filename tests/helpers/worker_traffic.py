"""What a Worker's versions served, minute by minute: the traffic model behind the analytics doubles.

The Worker serves `requests_per_minute` requests, split between versions by the deployment that
was serving *at the time* (a history of share changes, not the newest deployment's shares applied
to the whole past). Each version behaves as its `Traffic` says. Both analytics doubles (GraphQL's
`workersInvocationsAdaptive`, tests/helpers/graphql_analytics.py, and Workers Analytics Engine,
tests/helpers/analytics_engine.py) read the same model, each in its own shape.

Analytics arrive late: a request served at t is visible to a query only from t + the dataset's
ingestion delay (`visible_until` = now - delay). Cloudflare documents the delay without a figure:
"Request traffic data may display a drop off near the last few minutes ... a slight delay in
aggregation and metrics delivery" (cloudflare/cloudflare-docs
src/content/docs/workers/observability/metrics-and-analytics.mdx @ 1baf189b3810800e5f13a075c3fd2bc9d209bd46),
so the doubles default to a few minutes and tests choose theirs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import NormalDist

MINUTE = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Traffic:
    """How one version behaves under real traffic."""

    http_5xx_rate: float = 0.0  # share of requests answered 5xx by a successful invocation
    exception_rate: float = 0.0  # share of invocations that fail in the runtime (the dataset's `errors`)
    latency_ms: float = 40.0  # median wall time
    latency_p99_ms: float = 160.0  # 99th percentile wall time (the slow tail: cold starts, large salons)
    # Requests per browser (unit of assignment: its version key) in a window; each fails on its own
    # with http_5xx_rate, so a browser fails at least once with 1 - (1 - rate) ** requests_per_unit.
    requests_per_unit: float = 1.0

    def latency_quantile_ms(self, level: float) -> float:
        """The wall time at `level`, of the log-normal through the median and the 99th percentile (a
        response-time distribution's usual shape; the model's two numbers fix it)."""
        if level == 0.99:
            return self.latency_p99_ms
        sigma = math.log(max(self.latency_p99_ms, self.latency_ms) / self.latency_ms) / NormalDist().inv_cdf(0.99)
        return self.latency_ms * math.exp(sigma * NormalDist().inv_cdf(level))


@dataclass(frozen=True)
class Served:
    """Requests one version served in one minute (the part of it inside the asked window)."""

    minute: dt.datetime
    version: str
    requests: float
    model: Traffic

    @property
    def thrown(self) -> float:
        """Invocations that ended as runtime errors (no HTTP answer of the Worker's own)."""
        return self.requests * self.model.exception_rate

    @property
    def answered_5xx(self) -> float:
        """Successful invocations that answered 5xx (a handled error such as health's 503)."""
        return (self.requests - self.thrown) * self.model.http_5xx_rate


def shares_at(history: list[tuple[dt.datetime, dict[str, float]]], moment: dt.datetime) -> dict[str, float]:
    """Version -> percentage of the deployment serving at `moment` (empty before the first one)."""
    serving: dict[str, float] = {}
    for since, shares in history:
        if since <= moment:
            serving = shares
    return serving


def served(history: list[tuple[dt.datetime, dict[str, float]]], requests_per_minute: float,
           traffic: dict[str, Traffic], since: dt.datetime, until: dt.datetime,
           visible_until: dt.datetime) -> list[Served]:
    """The requests served in [since, until] that a query can see at `visible_until`, per minute and version."""
    end = min(until, visible_until)
    if end <= since:
        return []
    # Cut the window where a minute starts or the split changed, so each piece has one minute and one split.
    cuts = {since, end} | {moment for moment, _ in history if since < moment < end}
    minute = since.replace(second=0, microsecond=0) + MINUTE
    while minute < end:
        cuts.add(minute)
        minute += MINUTE
    totals: dict[tuple[dt.datetime, str], float] = defaultdict(float)
    points = sorted(cuts)
    for start, stop in itertools.pairwise(points):
        minutes = (stop - start).total_seconds() / 60.0
        for version, share in shares_at(history, start).items():
            totals[(start.replace(second=0, microsecond=0), version)] += requests_per_minute * minutes * share / 100.0
    return [Served(m, v, n, traffic.get(v, Traffic())) for (m, v), n in sorted(totals.items()) if n > 0]


def sampled(estimate: float, interval: int) -> tuple[int, int]:
    """(rows kept, the estimate they stand for) of `estimate` events sampled 1 in `interval`.

    Adaptive datasets answer "an estimate derived from the sampled value" (cloudflare-docs
    src/content/docs/analytics/graphql-api/sampling.mdx @ 08d2937e2033b7d8fdd5ae9874869a25af4a0556:
    "5,000 events are sampled ... estimate 50,000 total events (5,000 x 10)"), so an estimate is a
    multiple of the interval and never the exact count.
    """
    rows = round(estimate / interval)
    return rows, rows * interval
