"""The watch's triggers (`ops.releases.watch.evaluate`) on made-up samples: no server, no clock.

Expected values are the guide's "Automatic Rollback Triggers" (admin guide, Rollback Procedures):
error rate >5% for 5 minutes, response time >2s for 10 minutes, database connectivity failures.
"""

from __future__ import annotations

from ops.releases.watch import Sample, WatchSettings, evaluate, watch
from tests.helpers.clock import FakeClock

GUIDE_ERROR_RATE = 5.0  # percent, "Error rate >5% for 5 minutes"
GUIDE_ERROR_WINDOW = 5 * 60
GUIDE_LATENCY = 2.0  # seconds, "Response time >2s for 10 minutes"
GUIDE_LATENCY_WINDOW = 10 * 60
EVERY = 15.0  # seconds between samples


def samples(until: float, *, latency: float = 0.1, failing: set[int] | None = None,
            fast: set[int] | None = None) -> list[Sample]:
    """A sample every 15 s from 15 s to `until`; `failing`/`fast` are 1-based sample numbers."""
    made = []
    for n in range(1, int(until // EVERY) + 1):
        bad = n in (failing or set())
        made.append(Sample(at=n * EVERY, ok=not bad, latency=0.1 if n in (fast or set()) else latency,
                           database_ok=True))
    return made


def test_the_default_thresholds_are_the_guides() -> None:
    t = WatchSettings().thresholds
    assert (t.error_rate_percent, t.error_window_seconds) == (GUIDE_ERROR_RATE, GUIDE_ERROR_WINDOW)
    assert (t.latency_seconds, t.latency_window_seconds) == (GUIDE_LATENCY, GUIDE_LATENCY_WINDOW)


def test_every_sample_slower_than_2_s_for_10_minutes_triggers() -> None:
    slow = samples(GUIDE_LATENCY_WINDOW, latency=GUIDE_LATENCY + 0.01)
    assert evaluate(slow, WatchSettings().thresholds, started=0) == "response time > 2 s for 10 minutes"


def test_slow_samples_do_not_trigger_before_10_minutes_are_covered() -> None:
    slow = samples(GUIDE_LATENCY_WINDOW - EVERY, latency=GUIDE_LATENCY + 5)
    assert evaluate(slow, WatchSettings().thresholds, started=0) is None


def test_exactly_2_s_is_not_above_the_threshold() -> None:
    at_limit = samples(GUIDE_LATENCY_WINDOW, latency=GUIDE_LATENCY)
    assert evaluate(at_limit, WatchSettings().thresholds, started=0) is None


def test_one_fast_sample_in_the_window_prevents_the_latency_trigger() -> None:
    mostly_slow = samples(GUIDE_LATENCY_WINDOW, latency=GUIDE_LATENCY + 0.5, fast={20})
    assert evaluate(mostly_slow, WatchSettings().thresholds, started=0) is None


def test_an_error_rate_above_5_percent_over_5_minutes_triggers() -> None:
    # 20 samples in the 5 minutes: 2 failing is 10 %.
    window = samples(GUIDE_ERROR_WINDOW, failing={7, 14})
    assert len(window) == 20
    trigger = evaluate(window, WatchSettings().thresholds, started=0)
    assert trigger == "error rate 10.0 % > 5 % over 5 minutes"


def test_an_error_rate_of_exactly_5_percent_does_not() -> None:
    window = samples(GUIDE_ERROR_WINDOW, failing={7})  # 1 of 20
    assert evaluate(window, WatchSettings().thresholds, started=0) is None


def test_samples_are_spaced_by_the_interval_even_when_answers_are_slow() -> None:
    """A probe that takes 10 s (a slow site, up to the probe's timeout) must not stretch the spacing
    of samples to 25 s: the windows are judged on samples every 15 s."""
    fake = FakeClock()

    def slow_probe() -> Sample:
        at = fake.t
        fake.t += 10.0
        return Sample(at, True, 10.0, True)

    result = watch(slow_probe, WatchSettings(duration=60), fake.clock())
    assert [s.at for s in result.samples] == [0, 15, 30, 45, 60]


def test_three_database_failures_reported_by_the_worker_trigger_at_once() -> None:
    failing = [Sample(at=n * EVERY, ok=False, latency=0.1, database_ok=False) for n in (1, 2, 3)]
    assert evaluate(failing, WatchSettings().thresholds, started=0) == (
        "database connectivity failures: 3 consecutive checks")


def test_requests_that_got_no_health_answer_are_not_database_failures() -> None:
    """Timeouts or a proxy's error page say nothing about the database: the error-rate window judges
    them, so 45 s of a network blip on the runner never rolls production back on its own."""
    unanswered = [Sample(at=n * EVERY, ok=False, latency=10.0, database_ok=None) for n in (1, 2, 3)]
    assert evaluate(unanswered, WatchSettings().thresholds, started=0) is None
    mixed = [Sample(at=15, ok=False, latency=0.1, database_ok=False),
             Sample(at=30, ok=False, latency=10.0, database_ok=None),
             Sample(at=45, ok=False, latency=0.1, database_ok=False)]
    assert evaluate(mixed, WatchSettings().thresholds, started=0) is None  # not three in a row
