"""The post-deployment watch: sample the site and roll the Worker back when a guide trigger fires.

The guide's "Automatic Rollback Triggers", which it only listed:
- error rate above 5 % over 5 minutes,
- response time above 2 s for 10 minutes (every sample in the window slow),
- database connectivity failures (consecutive failed database reports).
A window trigger is only judged once the watch has covered the whole window, so one early blip
cannot roll back a good deployment. Time comes from an injectable clock, so tests run the full
10 minutes instantly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from booking_shared.watch import WatchThresholds
from ops.http import Client, HttpError
from ops.observation.health import get_health
from ops.observation.verify import Clock


@dataclass(frozen=True)
class WatchSettings:
    """How long to watch, and the triggers (from `booking:watch`, defaults: the guide's)."""

    duration: float = 600.0
    thresholds: WatchThresholds = field(default_factory=WatchThresholds)


@dataclass(frozen=True)
class RollbackOutcome:
    """What the trigger's rollback did: its report when it was done, else why it failed."""

    report: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Sample:
    at: float
    ok: bool  # 200 with a healthy body
    latency: float
    # What the Worker reported about its database: True ok, False failing, None nothing (no answer,
    # not a health body). Only a reported failure counts towards the database trigger: a slow or
    # unreachable site is the error-rate window's to judge, not an immediate rollback.
    database_ok: bool | None
    detail: str = ""


@dataclass
class WatchResult:
    samples: list[Sample] = field(default_factory=list)
    trigger: str | None = None
    rollback: RollbackOutcome | None = None  # None: no trigger fired, or rollback was off

    @property
    def rolled_back(self) -> bool:
        return self.rollback is not None and self.rollback.error is None

    def to_dict(self) -> dict[str, Any]:
        errors = sum(1 for s in self.samples if not s.ok)
        return {"samples": len(self.samples), "errors": errors, "trigger": self.trigger,
                "rolledBack": self.rolled_back,
                "rollback": None if self.rollback is None else (self.rollback.report or {"error": self.rollback.error})}


class HttpProbe:
    """One GET of the health endpoint per call: healthy or not, why, and how long it took.

    Each request ends within `timeout` seconds however the site answers, so a slow or hostile site
    cannot stop the watch from sampling (and from rolling back).
    """

    def __init__(self, health_url: str, clock: Clock, timeout: float = 10.0) -> None:
        self._url, self._clock = health_url, clock
        self._client = Client(timeout=timeout)

    def __call__(self) -> Sample:
        at = self._clock.now()
        started = time.monotonic()
        try:
            answer, health = get_health(self._client, self._url)
        except HttpError as exc:
            return Sample(at, False, time.monotonic() - started, None, str(exc))
        reported = None if health.database is None else health.database == "ok"
        return Sample(at, health.healthy, answer.elapsed, reported, health.describe())

    def close(self) -> None:
        self._client.close()


def http_probe(health_url: str, clock: Clock, timeout: float = 10.0) -> HttpProbe:
    """The watch's probe of `health_url` (close it when done)."""
    return HttpProbe(health_url, clock, timeout)


def evaluate(samples: list[Sample], t: WatchThresholds, started: float) -> str | None:
    """The first trigger the samples meet, in the guide's words, or None."""
    if not samples:
        return None
    now = samples[-1].at
    tail = samples[-t.database_failures:]
    if len(tail) == t.database_failures and all(s.database_ok is False for s in tail):
        return f"database connectivity failures: {t.database_failures} consecutive checks"
    if now - started >= t.error_window_seconds:
        window = [s for s in samples if s.at > now - t.error_window_seconds]
        rate = 100.0 * sum(1 for s in window if not s.ok) / len(window)
        if rate > t.error_rate_percent:
            return (f"error rate {rate:.1f} % > {t.error_rate_percent:g} % over "
                    f"{t.error_window_seconds / 60:g} minutes")
    if now - started >= t.latency_window_seconds:
        window = [s for s in samples if s.at > now - t.latency_window_seconds]
        if window and all(s.latency > t.latency_seconds for s in window):
            return (f"response time > {t.latency_seconds:g} s for "
                    f"{t.latency_window_seconds / 60:g} minutes")
    return None


def watch(probe: Callable[[], Sample], settings: WatchSettings, clock: Clock,
          on_trigger: Callable[[str], RollbackOutcome] | None = None,
          log: Callable[[str], None] = lambda _: None) -> WatchResult:
    """Sample every interval for `duration`; on the first trigger call `on_trigger` (the rollback) and stop."""
    result = WatchResult()
    started = clock.now()
    interval = settings.thresholds.interval_seconds
    while True:
        sampled_at = clock.now()
        sample = probe()
        result.samples.append(sample)
        log(f"sample {len(result.samples)} at {sample.at - started:.0f} s: "
            f"{'ok' if sample.ok else 'FAILING'} ({sample.detail}, {sample.latency:.2f} s)")
        trigger = evaluate(result.samples, settings.thresholds, started)
        if trigger is not None:
            log(f"trigger: {trigger}")
            result.trigger = trigger
            if on_trigger is not None:
                result.rollback = on_trigger(trigger)
            return result
        # The interval runs from the start of a sample: a slow answer (up to the probe's timeout)
        # does not stretch the spacing of samples the windows are judged on.
        wait = max(0.0, interval - (clock.now() - sampled_at))
        if clock.now() - started + wait > settings.duration:
            return result
        clock.sleep(wait)
