"""A seeded bake of a canary under version affinity: browsers assigned whole, both sources, sampling per index.

Adapted from the fourth hostile review of #24 (its `_sim.py`), with the sources as Cloudflare counts
them: the HTTP answers (Analytics Engine) have a row per request the Worker answered or threw (it
records a 500 before rethrowing), each kept with probability 1/interval of its version's index; the
invocations (GraphQL) count as errors only the runtime's failures: an uncaught exception, or a
resource limit that leaves no data point at all ("Success: Success or Client Disconnected",
workers/about/metrics; a 5xx the Worker answers is a successful invocation). A browser makes `flow`
requests and is assigned to one version for the bake.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import Kept, VersionTraffic
from ops.releases.judge import Signals, Verdict, judge_signals

SETTINGS = RolloutSettings()  # 10 %, 10 minutes, errorRatePercent 5, minRequests 100


def _count(rng: random.Random, n: int, p: float) -> int:
    return sum(1 for _ in range(n) if rng.random() < p)


@dataclass
class Side:
    requests: int = 0
    answered_5xx: int = 0  # answered by the Worker: HTTP only
    thrown: int = 0  # uncaught: a 500 row, and an invocation error
    killed: int = 0  # over a resource limit: an invocation error, no row
    rows: int = 0
    failed_rows: int = 0
    units: set[int] = field(default_factory=set)
    failing: set[int] = field(default_factory=set)
    kept_units: set[int] = field(default_factory=set)
    kept_failing: set[int] = field(default_factory=set)

    def add(self, rng: random.Random, browser: int, requests: int, answered: int, thrown: int, killed: int,
            interval: int, blob1: int | None = None) -> None:
        unit = browser if blob1 is None else blob1
        self.requests += requests
        self.answered_5xx, self.thrown, self.killed = self.answered_5xx + answered, self.thrown + thrown, \
            self.killed + killed
        failed, written = answered + thrown, requests - killed
        self.units.add(unit)
        if failed:
            self.failing.add(unit)
        kept_failed = _count(rng, failed, 1 / interval)
        kept_ok = _count(rng, written - failed, 1 / interval)
        self.rows, self.failed_rows = self.rows + kept_ok + kept_failed, self.failed_rows + kept_failed
        if kept_ok + kept_failed:
            self.kept_units.add(unit)
        if kept_failed:
            self.kept_failing.add(unit)

    def http(self, interval: int) -> VersionTraffic:
        written, failed = self.requests - self.killed, self.answered_5xx + self.thrown
        if interval == 1:
            return VersionTraffic(written, failed, 0.2, 1.0, units=len(self.units), failing_units=len(self.failing))
        return VersionTraffic(interval * self.rows, interval * self.failed_rows, 0.2, 1.0, sampled=self.rows,
                              kept=Kept(self.failed_rows, len(self.kept_units), len(self.kept_failing)))

    def runtime(self) -> VersionTraffic:
        return VersionTraffic(self.requests, self.thrown + self.killed, 0.2, 1.0)


@dataclass(frozen=True)
class Stuck:
    """A browser retrying a page that fails on both versions: `per_minute` failures in `minutes`,
    answered 5xx by the Worker (HTTP only) or thrown (both sources)."""

    per_minute: int = 5
    minutes: tuple[int, ...] = (2, 3, 4)
    on: str = "random"  # "canary", "serving", or assigned like any browser
    thrown: bool = False


def bake(rng: random.Random, *, interval: int = 1, canary_interval: int | None = None, rpm: int = 200,
         flow: int = 3, rate: float = 0.005, canary_rate: float | None = None, killed: float = 0.0,
         shared_killed: float = 0.0, stuck: tuple[Stuck, ...] = (), subset: tuple[float, int] = (0.0, 0),
         one_blob1: str = "") -> tuple[str, int, str]:
    """(verdict, minute, reason) of one bake of a canary as good as its baseline unless told otherwise.

    `canary_rate`: the canary's 5xx rate; `killed`: its share of requests over a resource limit
    (runtime only); `shared_killed`: the same on both versions; `subset` = (share of the canary's
    browsers, requests each) failing every request (a regression concentrated on some browsers);
    `one_blob1`: "canary" or "serving" writes one blob1 for all its rows (a bug, a version built
    before the Worker wrote it)."""
    share = SETTINGS.canary_percent / 100.0
    sides = {"canary": Side(), "serving": Side()}
    every = {"canary": interval if canary_interval is None else canary_interval, "serving": interval}
    placed = [(s, s.on if s.on != "random" else ("canary" if rng.random() < share else "serving"), 10**7 + i)
              for i, s in enumerate(stuck)]
    browser = 0
    for minute in range(1, SETTINGS.bake_minutes + 1):
        for _ in range(rpm // flow):
            name = "canary" if rng.random() < share else "serving"
            side, browser = sides[name], browser + 1
            blob1 = 0 if one_blob1 == name else None
            frac, burst = subset if name == "canary" else (0.0, 0)
            if rng.random() < frac:
                side.add(rng, browser, burst, burst, 0, 0, every[name], blob1)
                continue
            dead = _count(rng, flow, (killed if name == "canary" else 0.0) + shared_killed)
            p = canary_rate if name == "canary" and canary_rate is not None else rate
            side.add(rng, browser, flow, _count(rng, flow - dead, p), 0, dead, every[name], blob1)
        for s, on, sid in placed:
            if minute in s.minutes:
                sides[on].add(rng, sid, s.per_minute, 0 if s.thrown else s.per_minute,
                              s.per_minute if s.thrown else 0, 0, every[on], 0 if one_blob1 == on else None)
        v = judged(sides, every, minute, share)
        if v.action != "continue":
            return v.action, minute, v.reason
    raise AssertionError("the final minute always decides")


def judged(sides: dict[str, Side], every: dict[str, int], minute: int, share: float) -> Verdict:
    """The judge's verdict after `minute` of the bake, each side read at its own sample interval."""
    c, b = sides["canary"], sides["serving"]
    return judge_signals(Signals(http=c.http(every["canary"]), runtime=c.runtime()), [True] * minute, SETTINGS,
                         final=minute == SETTINGS.bake_minutes,
                         baseline=Signals(http=b.http(every["serving"]), runtime=b.runtime()), share=share)


def rollback_rate(seed: int, runs: int, bake_with: Callable[..., tuple[str, int, str]] | None = None,
                  **kwargs: object) -> float:
    """The share of `runs` seeded bakes rolled back (`bake_with`: another bake of the same shape)."""
    rng = random.Random(seed)
    run = bake_with or bake
    return sum(run(rng, **kwargs)[0] == "rollback" for _ in range(runs)) / runs


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body

    def json(self) -> dict[str, Any]:
        return self._body


class SqlApi:
    """A client whose SQL API answers `sums` to the requests query and `units` / `failing` to the two
    count(DISTINCT blob1) queries (ops/observation/analytics.py http_answers' three)."""

    def __init__(self, sums: dict[str, Any], units: dict[str, Any], failing: dict[str, Any]) -> None:
        self.sums, self.units, self.failing = sums, units, failing

    def post(self, path: str, *, cast_to: Any = None, content: bytes = b"", **_: Any) -> _Response:
        sql = content.decode()
        if "count(DISTINCT blob1)" in sql:
            return _Response(self.failing if "double1 >= 500" in sql else self.units)
        return _Response({"data": [self.sums], "rows": 1})
