"""A clock whose sleeps take no time, so retry loops and 10-minute watches run at once."""

from __future__ import annotations

import datetime as dt

from ops.observation.verify import Clock

# The wall-clock time a FakeClock starts at (any fixed instant: tests must not depend on the day they run).
EPOCH = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)


class FakeClock:
    """Sleeping advances time instantly; every sleep is recorded."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def wall(self) -> dt.datetime:
        """The same time as a UTC date and time (what the API double and the canary's windows read)."""
        return EPOCH + dt.timedelta(seconds=self.t)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep, wall=self.wall)
