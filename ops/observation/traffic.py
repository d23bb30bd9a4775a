"""One version's numbers over a window, as the canary's sources give them (ops/observation/analytics.py reads them).

Its own module so that the judge, the baseline comparison and the readers share one record without the
readers' SQL and GraphQL around it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kept:
    """Where Analytics Engine sampled a version's rows: what its kept rows say of browsers.

    Browsers cannot be compared across versions then (each index is sampled at its own rate: "we
    sample if data points are written too quickly into one index", analytics-engine/sampling), but
    one version's kept rows still say how many browsers its failures come from.
    """

    failed_rows: int  # kept rows of an answer of 500 or more (not their weight)
    browsers: int  # distinct blob1 among the kept rows
    failing_browsers: int  # distinct blob1 among the kept failed rows


@dataclass(frozen=True)
class VersionTraffic:
    """What one version's requests saw over a window."""

    requests: int = 0
    errors: int = 0  # failed requests (runtime failures, or HTTP 5xx answers: each source its own)
    latency_seconds: float | None = None  # median, weighted by requests
    # The 99th percentile: what the slowest of the salons' requests wait, the number latencySeconds
    # holds a version to where the source gives it (a median hides a slow tail).
    tail_latency_seconds: float | None = None
    # Quantiles between them, (level, seconds), where the source gives them: what tells how many
    # requests were slower than a limit (ops/releases/judge.py `slower_than`), which the p99 of a
    # few hundred requests alone cannot (it is their second slowest).
    quantiles: tuple[tuple[float, float], ...] = ()
    # Rows of the sampled dataset behind the estimates (None: exact counts). Evidence for a verdict
    # is this many observations, however many requests they are estimated to stand for.
    sampled: int | None = None
    # Units of assignment (browsers by their version key; a request without one is its own unit)
    # and how many of them had a failed request: the Worker writes the unit as blob1. None where
    # the source has no such dimension (GraphQL's invocations) or the rows do not carry it.
    units: int | None = None
    failing_units: int | None = None
    kept: Kept | None = None  # sampled rows only: their browsers (units above are exact counts only)
    # Set by the judge where `errors` counts each failing browser's once (`counting` says so;
    # ops/releases/baseline.py `per_browser`): every failed request, which the limits still hold.
    request_errors: int | None = None
    counting: str = ""

    @property
    def error_rate_percent(self) -> float:
        return 100.0 * self.errors / self.requests if self.requests else 0.0

    @property
    def failed_requests(self) -> int:
        """Every failed request, also where `errors` counts each failing browser's once."""
        return self.errors if self.request_errors is None else self.request_errors

    def nonsense(self) -> str | None:
        """Why these numbers cannot come from a real answer (None: they can)."""
        if self.requests < 0 or self.errors < 0 or (self.sampled is not None and self.sampled < 0):
            return f"a negative count ({self.requests} requests, {self.errors} errors)"
        if self.errors > self.requests:
            return f"more errors ({self.errors}) than requests ({self.requests})"
        if self.units is not None or self.failing_units is not None:
            units, failing = self.units or 0, self.failing_units or 0
            if units < 0 or failing < 0 or failing > units or units > self.evidence or failing > self.errors:
                return f"{failing} failing of {units} units beside {self.requests} requests and {self.errors} errors"
            # Failed requests come from some browser: none failing beside failures is no real answer
            # (the browsers are read after the sums, and rows only ever arrive).
            if failing == 0 and self.errors and self.request_errors is None:
                return f"no failing unit beside {self.errors} errors"
        if self.kept is not None:
            k = self.kept
            if (min(k.failed_rows, k.browsers, k.failing_browsers) < 0 or k.failed_rows > self.evidence
                    or k.browsers > self.evidence or k.failing_browsers > min(k.browsers, k.failed_rows)
                    or (k.failed_rows and not k.failing_browsers) or (self.evidence and not k.browsers)
                    or (k.failed_rows > 0) != (self.errors > 0)
                    # Each kept row stands for one request or more: never more failed rows than failures.
                    or k.failed_rows > self.failed_requests):
                return (f"{k.failing_browsers} failing of {k.browsers} browsers and {k.failed_rows} failed rows "
                        f"among {self.evidence} kept rows beside {self.errors} errors")
        # Each sampled row stands for one request or more: more rows than requests, or requests
        # estimated from no row at all, come from no real answer (they would weigh the verdict).
        if self.sampled is not None and (self.sampled > self.requests or (self.sampled == 0 and self.requests)):
            return f"{self.sampled} sampled rows for an estimate of {self.requests} requests"
        for name, seconds in (("median", self.latency_seconds), ("99th percentile", self.tail_latency_seconds),
                              *((f"{level:g} quantile", v) for level, v in self.quantiles)):
            if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
                return f"a {name} response time of {seconds} s"
        return None

    def levels(self) -> list[tuple[float, float]]:
        """Every response-time quantile the source gave, (level, seconds), by level."""
        given = [(0.5, self.latency_seconds), (0.99, self.tail_latency_seconds), *self.quantiles]
        return sorted((level, seconds) for level, seconds in given if seconds is not None)

    @property
    def judged_latency(self) -> tuple[str, float] | None:
        """(its name, seconds) of the response time latencySeconds holds: the 99th percentile where
        the source gave one, else the median; None without either."""
        if self.tail_latency_seconds is not None:
            return "p99", self.tail_latency_seconds
        return None if self.latency_seconds is None else ("median", self.latency_seconds)

    @property
    def evidence(self) -> int:
        """The observations the numbers rest on: sampled rows, or the requests when counts are exact."""
        return self.requests if self.sampled is None else self.sampled

    @property
    def estimated(self) -> bool:
        return self.sampled is not None and self.sampled != self.requests

    def describe(self) -> str:
        """`1,000 requests` or `~1,000 requests (estimated from 100 sampled)`."""
        note = f"; errors: {self.counting}" if self.counting else ""
        if self.estimated:
            return f"~{self.requests:,} requests (estimated from {self.sampled:,} sampled{note})"
        return f"{self.requests:,} requests{' (' + note[2:] + ')' if note else ''}"

    def to_dict(self) -> dict[str, Any]:
        # NaN or inf would be written as bare NaN/Infinity, which is not JSON: such a median is null.
        def seconds(value: float | None) -> float | None:
            return None if value is None or not math.isfinite(value) else round(value, 3)
        return {"requests": self.requests, "errors": self.errors,
                "errorRatePercent": round(self.error_rate_percent, 3),
                "latencySeconds": seconds(self.latency_seconds),
                "latencyP99Seconds": seconds(self.tail_latency_seconds),
                "latencyQuantilesSeconds": {f"{level:g}": seconds(v) for level, v in self.quantiles},
                "sampledRows": self.sampled, "estimated": self.estimated, "units": self.units,
                "failingUnits": self.failing_units,
                "kept": dataclasses.asdict(self.kept) if self.kept is not None else None,
                "requestErrors": self.request_errors, "errorsCounting": self.counting or None}
