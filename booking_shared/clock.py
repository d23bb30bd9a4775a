"""Today, for the rules that depend on the date: an input, not a hidden read of the wall clock.

Three rules judge dates: a compatibility date may not be in the future nor older than the
policy's maxAgeDays, and a suppression expires. `BOOKING_TODAY=YYYY-MM-DD` makes them judge as of
that day, to reproduce an earlier gate result or to see whether a stack still passes next month;
the tests pin it, so they give the same answer every day of the year.
"""

from __future__ import annotations

import datetime as dt
import os

TODAY_ENV = "BOOKING_TODAY"


def today() -> dt.date:
    """`BOOKING_TODAY` when set, else the real date."""
    value = os.environ.get(TODAY_ENV)
    if not value:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{TODAY_ENV}={value!r}: use a date written YYYY-MM-DD, or unset it") from None
