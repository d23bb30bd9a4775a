#!/usr/bin/env python3
"""The canary's judge, fixed thresholds beside the baseline comparison, replayed on the same seeded traffic.

    bench/canary_replay.py [--runs 400] [--seed 1] [--rpm 20 --rpm 200 --rpm 1000] [--markdown]

Each run is one bake of booking:rollout's defaults (10 % canary, 10 minutes, errorRatePercent 5,
latencySeconds 2, minRequests 100), judged every minute on the bake's cumulative window as
`run_canary` does once the analytics have arrived (minute m is the m-th window the data covers).
Requests are split at random per request, as a Workers deployment splits them; each fails with its
version's error rate of that minute, and takes a response time drawn from its version's log-normal
(fixed by a median and a 99th percentile); the canary's quantiles are those of its own requests so
far at the levels Analytics Engine answers (0.5, 0.75, 0.9, 0.95, 0.98, 0.99: its p99 of a few
hundred requests is their second or third slowest), the serving version's are its distribution's
(ten times the requests: little noise). Both judges are the real `ops.releases.canary.judge`: "fixed"
without the serving version's numbers (the judge before the baseline comparison), "baseline" with
them. Scenarios: a good canary (both 0.5 % 5xx) through a shared 4-minute outage at 8 % (minutes 3
to 6); a regression 0.5 % -> 3 %; 8 % and 50 % 5xx; response times +50 % (median 0.2 s -> 0.3 s,
99th percentile 1.4 s -> 2.1 s: 1.2 % of requests over the 2 s limit); a good canary 20 % under
the limit (p99 1.6 s); a slow one (p99 4 s, twice the limit: 7 % over it). The old judge read
medians only, so "fixed" is given the median alone; "baseline" gets every quantile. For a good
canary the rate is its false rollbacks; for the others, detections. "min" is the median minute of
the rollbacks, counted from the first window of data.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
from dataclasses import dataclass
from statistics import NormalDist

if __name__ == "__main__" and not __package__:  # started as a file: again as a module, in the venv
    from _rerun import rerun_as_module

    rerun_as_module(__file__)

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import VersionTraffic
from ops.releases.judge import judge

SETTINGS = RolloutSettings()
BASE_RATE = 0.005


@dataclass(frozen=True)
class Scenario:
    name: str
    canary_rate: float
    outage: tuple[int, int, float] | None = None  # (first minute, minute after the last, rate of both)
    canary_median: float = 0.2
    canary_p99: float = 1.4


SCENARIOS = (
    Scenario("good canary, shared outage 8 % (4 min)", BASE_RATE, outage=(3, 7, 0.08)),
    Scenario("regression 0.5 % -> 3 %", 0.03),
    Scenario("8 % 5xx", 0.08),
    Scenario("50 % 5xx", 0.5),
    Scenario("latency +50 % (p99 1.4 -> 2.1 s)", BASE_RATE, canary_median=0.3, canary_p99=2.1),
    Scenario("good canary, p99 1.6 s (20 % under the limit)", BASE_RATE, canary_median=0.25, canary_p99=1.6),
    Scenario("slow canary, p99 4 s (twice the limit)", BASE_RATE, canary_median=0.3, canary_p99=4.0),
)


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if n * p > 25 and n * (1 - p) > 25:  # the normal approximation, where it is close; exact below
        return max(0, min(n, round(rng.gauss(n * p, math.sqrt(n * p * (1 - p))))))
    return sum(1 for _ in range(n) if rng.random() < p)


LEVELS = (0.5, 0.75, 0.9, 0.95, 0.98, 0.99)  # what the Analytics Engine query answers (ops/observation/analytics.py)
Z99 = 2.326  # the standard normal's 99th percentile


def _lognormal(median: float, p99: float) -> tuple[float, float]:
    return math.log(median), math.log(p99 / median) / Z99


def _quantiles(times: list[float]) -> dict[float, float]:
    ordered = sorted(times)
    return {level: ordered[min(len(ordered) - 1, math.floor(level * len(ordered)))] for level in LEVELS}


def _traffic(requests: int, errors: int, levels: dict[float, float]) -> VersionTraffic:
    return VersionTraffic(requests=requests, errors=errors, latency_seconds=levels.get(0.5),
                          tail_latency_seconds=levels.get(0.99),
                          quantiles=tuple((q, v) for q, v in levels.items() if q not in (0.5, 0.99)))


def bake(rng: random.Random, rpm: int, scenario: Scenario) -> tuple[int | None, int | None]:
    """The minute each judge rolled back (None: promoted), on one draw of traffic."""
    nc = nb = ec = eb = 0
    mu, sigma = _lognormal(scenario.canary_median, scenario.canary_p99)
    smu, ssigma = _lognormal(0.2, 1.4)
    serving_levels = {q: math.exp(smu + ssigma * NormalDist().inv_cdf(q)) for q in LEVELS}
    times: list[float] = []
    rolled: dict[str, int | None] = {"fixed": None, "baseline": None}
    done = {"fixed": False, "baseline": False}
    for minute in range(1, SETTINGS.bake_minutes + 1):
        canary_now = _binomial(rng, rpm, SETTINGS.canary_percent / 100)
        rate_c, rate_b = scenario.canary_rate, BASE_RATE
        if scenario.outage and scenario.outage[0] <= minute < scenario.outage[1]:
            rate_c, rate_b = max(rate_c, scenario.outage[2]), max(rate_b, scenario.outage[2])
        ec += _binomial(rng, canary_now, rate_c)
        eb += _binomial(rng, rpm - canary_now, rate_b)
        nc, nb = nc + canary_now, nb + rpm - canary_now
        times += [rng.lognormvariate(mu, sigma) for _ in range(canary_now)]
        canary = _traffic(nc, ec, _quantiles(times) if times else {})
        serving = _traffic(nb, eb, serving_levels)
        medians_only = dataclasses.replace(canary, tail_latency_seconds=None, quantiles=())
        final = minute == SETTINGS.bake_minutes
        for name, judged, baseline in (("fixed", medians_only, None), ("baseline", canary, serving)):
            if done[name]:
                continue
            action = judge(judged, [True] * minute, SETTINGS, final=final, baseline=baseline).action
            if action != "continue":
                done[name] = True
                rolled[name] = minute if action == "rollback" else None
    return rolled["fixed"], rolled["baseline"]


def _cell(minutes: list[int | None]) -> str:
    hits = sorted(m for m in minutes if m is not None)
    median = f"{hits[len(hits) // 2]}" if hits else "-"
    return f"{100.0 * len(hits) / len(minutes):5.1f} % (min {median})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rpm", type=int, action="append")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table (for the docs)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = []
    for rpm in args.rpm or [20, 200, 1000]:
        for scenario in SCENARIOS:
            fixed, versus = zip(*(bake(rng, rpm, scenario) for _ in range(args.runs)), strict=True)
            rows.append((f"{rpm:,}", scenario.name, _cell(list(fixed)), _cell(list(versus))))
    header = ("req/min", "scenario", "fixed thresholds", "against baseline")
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"\n{args.runs} seeded bakes per row (seed {args.seed}); rollbacks, median minute of the rollbacks")


if __name__ == "__main__":
    main()
