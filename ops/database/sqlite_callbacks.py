"""SQLite callbacks (authorizer, progress handler) that let a signal through.

Python runs a signal's handler between bytecodes, so Ctrl-C or SIGTERM (the CLI raises
`Terminated` from its handler) can surface while SQLite is running one of our callbacks. sqlite3
reads any exception there as "deny" (authorizer) or "interrupt" (progress handler): the statement
then fails, and the caller would report a good dump as "not authorized" or a migration as refused.
`shielded` keeps what the callback raised; the caller's `except sqlite3.Error` calls
`reraise_pending()` first, so the signal (or a bug in a callback) surfaces as itself.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_local = threading.local()  # handlers run in the main thread; a worker thread keeps its own


def shielded(callback: Callable[..., int], refuse: int) -> Callable[..., int]:
    """`callback`, answering `refuse` (SQLITE_DENY, or non-zero to interrupt) when it raises, and
    keeping what it raised for `reraise_pending`."""
    @functools.wraps(callback)
    def wrapper(*args: Any) -> int:
        try:
            return callback(*args)
        except BaseException as exc:  # a signal's exception must outlive SQLite's reading of it
            if getattr(_local, "pending", None) is None:
                _local.pending = exc
            return refuse
    return wrapper


def reraise_pending() -> None:
    """Raise what a shielded callback raised since the last call, if anything."""
    pending = getattr(_local, "pending", None)
    if pending is not None:
        _local.pending = None
        raise pending


def clear_pending() -> None:
    _local.pending = None
