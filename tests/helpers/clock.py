"""A clock whose sleeps take no time, so retry loops and 10-minute watches run at once."""

from __future__ import annotations

from ops.verify import Clock


class FakeClock:
    """Sleeping advances time instantly; every sleep is recorded."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep)
