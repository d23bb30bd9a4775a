"""SQLite callbacks (authorizer, progress handler) that let a signal through.

Python runs a signal's handler between bytecodes, so Ctrl-C or SIGTERM (the CLI raises
`Terminated` from its handler) can surface while SQLite is running one of our callbacks. sqlite3
reads any exception there as "deny" (authorizer) or "interrupt" (progress handler): the statement
then fails, and the caller would report a good dump as "not authorized" or a migration as refused.
`shielded` keeps what the callback raised, and the CLI's signal handlers keep what they raise
(a handler may run before the callback's first line, out of `shielded`'s reach:
booking_shared/signals.py); the caller's `except sqlite3.Error` calls `reraise_pending()` first, so
the signal (or a bug in a callback) surfaces as itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from booking_shared import signals


def shielded(callback: Callable[..., int], refuse: int) -> Callable[..., int]:
    """`callback`, answering `refuse` (SQLITE_DENY, or non-zero to interrupt) when it raises, and
    keeping what it raised for `reraise_pending`."""
    @functools.wraps(callback)
    def wrapper(*args: Any) -> int:
        try:
            return callback(*args)
        except BaseException as exc:  # a signal's exception must outlive SQLite's reading of it
            signals.keep(exc)
            return refuse
    return wrapper


def reraise_pending() -> None:
    """Raise what a shielded callback raised (or a signal handler kept: booking_shared/signals.py)
    since the last call, if anything."""
    pending = signals.take()
    if pending is not None:
        raise pending


def clear_pending() -> None:
    signals.take()
