"""Exit codes, and the one place that turns an exception into a message and an exit code.

Commands raise; they never print an error and exit themselves. `MappedGroup` wraps every command
of the CLI and maps what escapes by its base class (booking_shared/errors.py): an `InputError`
(usage, project, configuration, target problems) exits 2; an `OperationFailed` exits 1. Cloudflare
API errors, local database errors and OS errors are mapped here too. Each becomes one line on
stderr naming the stack, the call and what to check; no traceback reaches a user (set
BOOKINGCTL_TRACEBACK=1 to see one for an unexpected error).
"""

from __future__ import annotations

import contextvars
import os
import sqlite3
import sys
import traceback
from typing import Any
from urllib.parse import urlparse

import typer
import typer.core

# typer vendors click (`typer._click`) since 0.29: its Context and exceptions are not the `click` package's.
from typer._click import Context as ClickContext
from typer.exceptions import TyperException

from booking_shared import signals
from booking_shared.errors import InputError, OperationFailed

EXIT_OK = 0
EXIT_FAILED = 1  # the operation failed, a mandatory policy violation remains, or Cloudflare failed
EXIT_USAGE = 2  # bad input: arguments, project, stack config, policy config, credentials, unknown names
EXIT_CHANGES = 3  # `diff` only: the stack changes (and no new mandatory violation)
# stdout's reader went away (`bookingctl ... | head -1`): what a process ended by SIGPIPE reports
# (128 + 13), as `git log | head` does. Not 1: the command did not fail, its output was cut short.
EXIT_READER_GONE = 141
# SIGTERM (a cancelled CI job, `timeout`, a stopped container), once cleanup has run: 128 + 15.
EXIT_TERMINATED = 143

TRACEBACK_ENV = "BOOKINGCTL_TRACEBACK"

# The stack a command is working on, for messages about failures deep inside an operation.
current_stack: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_stack", default=None)


# The names commands raise: bad input on the command line, and an operation that failed. The same
# classes as the bases every project exception descends from, so there is one pair to classify.
UsageError = InputError
Failed = OperationFailed


def classify(exc: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an exception that escaped a command."""
    render = getattr(exc, "render", None)
    # Input first: an input error of an operation's family (BackupInputError is a BackupError) is bad input.
    if isinstance(exc, InputError):
        return EXIT_USAGE, render() if callable(render) else str(exc)
    if isinstance(exc, OperationFailed):
        return EXIT_FAILED, str(exc)
    cloudflare = sys.modules.get("cloudflare")
    if cloudflare is not None and isinstance(exc, cloudflare.APIError):
        return cloudflare_error(exc)
    if isinstance(exc, sqlite3.Error):
        return EXIT_FAILED, _sqlite_message(exc)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return EXIT_FAILED, f"cannot use{where}: {exc.strerror or exc}"
    return EXIT_FAILED, (f"unexpected error ({type(exc).__name__}: {exc}); this is a bug in bookingctl: run again "
                         f"with {TRACEBACK_ENV}=1 and report the traceback")


def _stack_part() -> str:
    stack = current_stack.get()
    return f"stack {stack}: " if stack else ""


def _call(exc: Any) -> str:
    request = getattr(exc, "request", None)
    if request is None:
        return "the Cloudflare API"
    path = urlparse(str(request.url)).path.removeprefix("/client/v4")
    return f"{request.method} {path}"


_PERMISSIONS = (("/d1/", "D1 Edit"), ("/workers/", "Workers Scripts Edit"), ("/r2/", "Workers R2 Storage Edit"),
                ("/custom_hostnames", "SSL and Certificates Edit on the SaaS zone"))


def cloudflare_error(exc: Any) -> tuple[int, str]:
    """A Cloudflare SDK error as (exit code, message); bad credentials and unknown names are input errors."""
    import cloudflare

    call = _call(exc)
    if isinstance(exc, cloudflare.APITimeoutError):
        return EXIT_FAILED, (f"{_stack_part()}{call} timed out after the client's retries; check the network"
                             f"{_base_url_part()} and try again")
    if isinstance(exc, cloudflare.APIConnectionError):
        return EXIT_FAILED, (f"{_stack_part()}cannot reach the Cloudflare API for {call}: {exc}; check the network"
                             f"{_base_url_part()}")
    status = getattr(exc, "status_code", None)
    detail = api_error_text(exc)
    if status in (401, 403):
        needed = next((perm for marker, perm in _PERMISSIONS if marker in call), "the permissions this command needs")
        return EXIT_USAGE, (f"{_stack_part()}Cloudflare refused {call} ({status}: {detail}); check that "
                            f"CLOUDFLARE_API_TOKEN is valid, belongs to the stack's account (booking:accountId) and "
                            f"has {needed}")
    if status == 404 and "/custom_hostnames" in call:
        return EXIT_USAGE, (f"{_stack_part()}Cloudflare has no such resource: {call} (404: {detail}); check "
                            "booking:saas.zoneId in the stack file (the zone needs Cloudflare for SaaS enabled)")
    if status == 404:
        return EXIT_USAGE, (f"{_stack_part()}Cloudflare has no such resource: {call} (404: {detail}); check "
                            "booking:accountId, booking:databaseName and booking:workerName in the stack file")
    if status == 429:
        return EXIT_FAILED, f"{_stack_part()}Cloudflare rate-limited {call} and retries did not help; wait and retry"
    if isinstance(status, int) and status >= 500:
        return EXIT_FAILED, (f"{_stack_part()}Cloudflare failed {call} with {status} ({detail}) after retries; "
                             "Cloudflare may be having an incident: try again later")
    return EXIT_FAILED, f"{_stack_part()}Cloudflare refused {call}: {status}: {detail}"


def _base_url_part() -> str:
    """Names CLOUDFLARE_BASE_URL (the SDK's documented override of the API root) only when it is set:
    then it, not the network, is the likely cause."""
    base = os.environ.get("CLOUDFLARE_BASE_URL")
    if not base:
        return ""
    return f", and that CLOUDFLARE_BASE_URL is set ({base}): unset it to reach Cloudflare itself"


def api_error_text(exc: Any) -> str:
    """The API's own error messages from an SDK error, e.g. 'Authentication error (10000)'."""
    body = getattr(exc, "body", None)
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(f"{e.get('message')} ({e.get('code')})" for e in errors if isinstance(e, dict))
    return str(getattr(exc, "message", "") or exc)


def _sqlite_message(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"the database is locked by another process ({text}); wait for it to finish and try again"
    if "malformed" in text or "not a database" in text:
        return (f"SQLite error: {text}: the --local file is damaged; see how with `sqlite3 FILE 'PRAGMA "
                "integrity_check'`, then restore a backup into it: `bookingctl backup restore NAME --local FILE "
                "--replace` (`bookingctl backup list` names them)")
    return f"SQLite error: {text}"


def report(exc: BaseException, command: tuple[str, ...] = ()) -> int:
    """Print the message for `exc` on stderr; return the exit code. `command`: the words naming the
    command that raised it (`("backup", "create")`), for a missing token's permissions."""
    from bookingctl import output

    code, message = classify(exc)
    targets = sys.modules.get("ops.targets")
    if targets is not None and isinstance(exc, targets.MissingTokenError):
        from bookingctl.permissions import needed

        message = (f"{targets.TOKEN_ENV} is not set; `bookingctl {' '.join(command)}` on a remote stack needs an API "
                   f"token with {needed(command)}: export it (never put it in a file or a flag)")
    output.error(message)
    if os.environ.get(TRACEBACK_ENV):
        traceback.print_exception(exc, file=sys.stderr)
    return code


class Terminated(BaseException):
    """SIGTERM, raised in the main thread (`on_sigterm`). A BaseException, as KeyboardInterrupt is:
    `except Exception` does not swallow it, while `except BaseException: undo; raise` (the canary's
    bake sends traffic back to the stable version) still runs before the process ends."""


def on_sigterm(_signum: int, _frame: object) -> None:
    """Without a handler SIGTERM ends the process at once: a canary's split would keep serving."""
    stop = Terminated()
    signals.keep(stop)  # in case it lands inside an SQLite callback, which would drop it
    raise stop


def on_sigint(_signum: int, _frame: object) -> None:
    """Ctrl-C, as Python's own handler raises it, and kept in case an SQLite callback drops it."""
    stop = KeyboardInterrupt()
    signals.keep(stop)
    raise stop


def reader_gone() -> int:
    """Stop writing to a stdout whose reader has closed; the exit code that says so.

    stdout is pointed at /dev/null so the interpreter's final flush of what is still buffered does
    not fail again with "Exception ignored ... BrokenPipeError" on stderr. Nothing is printed: the
    reader chose to stop reading, and whoever reads stderr would only see noise.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_READER_GONE


class MappedGroup(typer.core.TyperGroup):
    """The CLI's root group: whatever a command raises is reported once, here, with its exit code."""

    def invoke(self, ctx: ClickContext) -> Any:
        command = self._command_path(ctx)
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise  # the CLI framework's own: usage errors, --help, explicit exits
        except BrokenPipeError:
            raise typer.Exit(reader_gone()) from None
        except KeyboardInterrupt:
            from bookingctl import output

            output.error("interrupted")
            raise typer.Exit(130) from None
        except Terminated:
            from bookingctl import output

            output.error("terminated (SIGTERM)")
            raise typer.Exit(EXIT_TERMINATED) from None
        except Exception as exc:
            raise typer.Exit(report(exc, command)) from None

    def _command_path(self, ctx: ClickContext) -> tuple[str, ...]:
        """The command's words (`backup create`), read before the framework consumes them: the
        arguments still to parse, walked down through the groups they name."""
        words = [*getattr(ctx, "_protected_args", []), *ctx.args]  # the framework's own split of them
        path: list[str] = []
        group: Any = self
        for word in words:
            found = group.get_command(ctx, word) if hasattr(group, "get_command") else None
            if found is None:
                break
            path.append(word)
            group = found
        return tuple(path)
