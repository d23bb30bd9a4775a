"""Running CPU-bound SQLite work under a deadline that covers compilation too.

SQLite's progress handler and `Connection.interrupt` stop a statement while it runs, but the
SQLite Python 3.11 ships (3.40) looks at neither while it compiles one: a few KB of nested
UNION ALL views make `sqlite3_prepare` run for many minutes, out of reach of any in-process
deadline. So the work runs in a forked child process that the parent kills at the deadline. The
child reports where it is (`at`) and what it logs; the parent relays the log and, when it kills the
child, says where it stopped.

Fork, not spawn: the child needs the caller's objects (schema rows, migrations, closures) without
pickling them, and only ever touches SQLite and the pipe.
"""

from __future__ import annotations

import math
import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from booking_shared.errors import OperationFailed

T = TypeVar("T")
Log = Callable[[str], None]


class ChildStopped(OperationFailed):
    """The work in the child did not answer; `where` is the last position it reported."""

    def __init__(self, message: str, where: str | None) -> None:
        super().__init__(message)
        self.where = where


class DeadlineExceeded(ChildStopped):
    """The work did not finish in time and was stopped."""


class WorkerDied(ChildStopped):
    """The child process ended without an answer (killed by the system, say for memory)."""


def _ending(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        # SIGKILL from outside is most often the kernel's out-of-memory killer.
        return f"was killed by {name}" + (" (out of memory?)" if -exitcode == signal.SIGKILL else "")
    return f"exited with code {exitcode}"


@dataclass
class Reporter:
    """What the work in the child is given: `log` relays a line, `at` marks where it is now (a step
    under `step_seconds` starts), `free` says the work until the next `at` has no step deadline."""

    log: Log
    at: Callable[[str], None]
    free: Callable[[], None] = lambda: None


def run_bounded(work: Callable[[Reporter], T], *, seconds: float, step_seconds: float,
                log: Log = lambda _: None) -> T:
    """`work(reporter)` in a child process: its result, or its exception raised again here.

    Raises WorkerDied when the child ends without an answer (killed), DeadlineExceeded when the
    whole work takes longer than `seconds` (math.inf: no bound),
    or one step (from an `at` call to the next `at` or `free`) longer than `step_seconds`; the child
    is killed then, so nothing it was compiling or running goes on. A signal's exception (Ctrl-C,
    SIGTERM) raised while this waits kills the child too.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(work, sender), daemon=True)
    child.start()
    sender.close()
    started = time.monotonic()
    step_started, where = started, None
    try:
        while True:
            now = time.monotonic()
            limit = min(started + seconds, step_started + step_seconds)
            if now >= limit or not receiver.poll(None if math.isinf(limit) else limit - now):
                whole = now - started >= seconds
                raise DeadlineExceeded(
                    f"stopped after {seconds:g} s in all" if whole else f"stopped after {step_seconds:g} s on one step",
                    where)
            try:
                kind, value = receiver.recv()
            except EOFError:
                child.join(5)
                raise WorkerDied(f"the worker process {_ending(child.exitcode)} without an answer"
                                 + (f", at {where}" if where else ""), where) from None
            if kind == "log":
                log(value)
            elif kind == "at":
                step_started, where = time.monotonic(), value
            elif kind == "free":
                step_started = math.inf
            elif kind == "error":
                raise value
            else:
                return value  # type: ignore[no-any-return]
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()


def _child(work: Callable[[Reporter], Any], sender: Connection) -> None:
    reporter = Reporter(lambda text: sender.send(("log", text)), lambda where: sender.send(("at", where)),
                        lambda: sender.send(("free", None)))
    try:
        result = work(reporter)
    except BaseException as exc:  # every failure goes back to the parent, raised there
        try:
            sender.send(("error", exc))
        except Exception:  # an exception that does not pickle: its text still does
            sender.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
        return
    sender.send(("done", result))
