"""The double's one clock: every timestamp it answers or keeps comes from here.

`now` is injectable (tests/helpers/clock.py's fake wall clocks drive analytics and the canary);
`stamp` is what records (versions, deployments, hostnames, widgets, rulesets) are created at:
`now`, but strictly after the previous stamp, so records made in one instant, or while a test
holds its clock still, keep the order they were made in (rollback reads deployments newest first).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable


def _wall() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Clock:
    def __init__(self, now: Callable[[], dt.datetime] = _wall) -> None:
        self.now = now
        self._last: dt.datetime | None = None

    def stamp(self) -> str:
        """An ISO 8601 UTC time after every earlier stamp (fixed width: stamps sort as text too)."""
        at = self.now().astimezone(dt.UTC)
        if self._last is not None and at <= self._last:
            at = self._last + dt.timedelta(microseconds=1)
        self._last = at
        return at.isoformat(timespec="microseconds")

    def seconds(self) -> float:
        """`now` as a POSIX time (Time Travel history and the restore limit count in seconds)."""
        return self.now().timestamp()
