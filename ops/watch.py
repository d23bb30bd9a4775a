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

import httpx

from ops.verify import Clock, read_health


@dataclass(frozen=True)
class WatchSettings:
    duration: float = 600.0
    interval: float = 15.0
    error_rate_percent: float = 5.0
    error_window: float = 300.0
    latency_seconds: float = 2.0
    latency_window: float = 600.0
    database_failures: int = 3


@dataclass(frozen=True)
class Sample:
    at: float
    ok: bool  # 200 with a healthy body
    latency: float
    database_ok: bool
    detail: str = ""


@dataclass
class WatchResult:
    samples: list[Sample] = field(default_factory=list)
    trigger: str | None = None
    rollback: Any = None

    def to_dict(self) -> dict[str, Any]:
        errors = sum(1 for s in self.samples if not s.ok)
        return {"samples": len(self.samples), "errors": errors, "trigger": self.trigger,
                "rolledBack": self.rollback is not None,
                "rollback": getattr(self.rollback, "__dict__", self.rollback)}


def http_probe(health_url: str, clock: Clock, timeout: float = 10.0,
               transport: httpx.BaseTransport | None = None) -> Callable[[], Sample]:
    """One GET of the health endpoint per call: status, body and latency."""
    client = httpx.Client(timeout=timeout, transport=transport)

    def probe() -> Sample:
        started = time.perf_counter()
        at = clock.now()
        try:
            response = client.get(health_url)
        except httpx.HTTPError as exc:
            return Sample(at, False, time.perf_counter() - started, False, type(exc).__name__)
        latency = time.perf_counter() - started
        health = read_health(response)
        return Sample(at, health.healthy, latency, health.database == "ok", f"HTTP {response.status_code}")

    return probe


def evaluate(samples: list[Sample], settings: WatchSettings, started: float) -> str | None:
    """The first trigger the samples meet, in the guide's words, or None."""
    if not samples:
        return None
    now = samples[-1].at
    tail = samples[-settings.database_failures:]
    if len(tail) == settings.database_failures and not any(s.database_ok for s in tail):
        return f"database connectivity failures: {settings.database_failures} consecutive checks"
    if now - started >= settings.error_window:
        window = [s for s in samples if s.at > now - settings.error_window]
        rate = 100.0 * sum(1 for s in window if not s.ok) / len(window)
        if rate > settings.error_rate_percent:
            return (f"error rate {rate:.1f} % > {settings.error_rate_percent:g} % over "
                    f"{settings.error_window / 60:g} minutes")
    if now - started >= settings.latency_window:
        window = [s for s in samples if s.at > now - settings.latency_window]
        if window and all(s.latency > settings.latency_seconds for s in window):
            return (f"response time > {settings.latency_seconds:g} s for "
                    f"{settings.latency_window / 60:g} minutes")
    return None


def watch(probe: Callable[[], Sample], settings: WatchSettings, clock: Clock,
          on_trigger: Callable[[str], Any] | None = None, log: Callable[[str], None] = lambda _: None) -> WatchResult:
    """Sample every `interval` for `duration`; on the first trigger call `on_trigger` (the rollback) and stop."""
    result = WatchResult()
    started = clock.now()
    while True:
        sample = probe()
        result.samples.append(sample)
        trigger = evaluate(result.samples, settings, started)
        if trigger is not None:
            log(f"trigger: {trigger}")
            result.trigger = trigger
            if on_trigger is not None:
                result.rollback = on_trigger(trigger)
            return result
        if clock.now() - started + settings.interval > settings.duration:
            return result
        clock.sleep(settings.interval)
