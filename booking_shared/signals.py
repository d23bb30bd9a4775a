"""A signal's exception, kept where a callback of SQLite would drop it.

Python runs a signal's handler when it next enters or steps a frame. When that frame is a callback
SQLite runs (an authorizer, a progress handler), the handler's exception is raised there, and the
sqlite3 module reads any exception of a callback as "deny" or "interrupt" and drops it: Ctrl-C
would interrupt one statement and the program would go on. The CLI's handlers keep the exception
here before raising it; ops/database/sqlite_callbacks.py raises it again after SQLite returns.
"""

from __future__ import annotations

import threading

_local = threading.local()  # handlers run in the main thread; a worker thread keeps its own


def keep(exc: BaseException) -> None:
    """Keep `exc` (the first one kept wins until it is taken)."""
    if getattr(_local, "pending", None) is None:
        _local.pending = exc


def take() -> BaseException | None:
    """What was kept since the last call, or None; it is kept no longer."""
    pending: BaseException | None = getattr(_local, "pending", None)
    _local.pending = None
    return pending
