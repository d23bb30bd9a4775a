"""`bookingctl`: the command line of the appointment-booking infrastructure.

This module only assembles the command groups (`bookingctl/commands/`). Commands parse arguments,
call `ops/` or the planner, and print through `bookingctl/output.py`; they import their heavy
modules (pulumi, the Cloudflare SDK) inside their bodies, so `bookingctl --help` stays fast.
Errors are raised, never printed by a command: `bookingctl/errors.py` maps each to one line on
stderr and an exit code: 0 success, 1 failed (or a mandatory policy violation remains), 2 bad
input (usage, project, config, policy config, credentials, unknown names), 3 `diff` found changes,
141 stdout's reader closed early (`| head`), 143 SIGTERM (after the canary's traffic is back).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import signal
import sys
from typing import Annotated

import typer

from bookingctl.commands import admin, backup, dev, diff, doctor, migrate, monitor, plan, release, tenants
from bookingctl.commands import restore as restore_commands
from bookingctl.errors import MappedGroup, on_sigterm, reader_gone

app = typer.Typer(
    name="bookingctl",
    help="Plan, gate and operate the appointment-booking platform on Cloudflare.",
    cls=MappedGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    rich_markup_mode=None,
    # -h as well as --help, on every command (child contexts inherit it); no command uses -h otherwise.
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"bookingctl {version('appointmentbooking-infra')}")
        raise typer.Exit()


@app.callback()
def _root(
    _: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                    help="Print the version and exit.")] = False,
) -> None:
    """Plan, gate and operate the appointment-booking platform on Cloudflare."""
    from bookingctl import output

    # Each invocation starts without a --progress/--quiet of its own: in one process (tests, or an
    # embedding caller) the previous command's flag would otherwise carry over.
    output.set_progress(None)


app.command("plan")(plan.plan)
app.command("diff")(diff.diff)
app.add_typer(migrate.app, name="migrate")
app.add_typer(backup.app, name="backup")
app.add_typer(restore_commands.app, name="restore")
app.command("verify")(release.verify)
app.command("rollback")(release.rollback)
app.command("watch")(release.watch)
app.add_typer(release.release_app, name="release")
app.add_typer(monitor.monitor_app, name="monitor")
app.add_typer(monitor.report_app, name="report")
app.add_typer(admin.audit_app, name="audit")
app.add_typer(admin.users_app, name="users")
app.add_typer(admin.apikeys_app, name="apikeys")
app.add_typer(admin.db_app, name="db")
app.add_typer(tenants.app, name="tenants")
app.command("doctor")(doctor.doctor)
app.command("dev")(dev.dev)


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        app()
    except SystemExit as done:
        # The CLI framework turns a closed stdout met outside a command (its own --help, or the
        # console's buffer flushed after the command returned) into exit 1, our "failed".
        closed = done.__context__
        if isinstance(closed, OSError) and closed.errno == errno.EPIPE:
            _exit_now(reader_gone())
        if "pulumi_cloudflare" in sys.modules:
            _exit_now(done.code)
        raise


def _exit_now(code: object) -> None:
    """End a command that loaded the provider SDK without the interpreter's teardown.

    Everything the command opened is closed by its own `with` blocks by now; what teardown would
    still do is free the ~290,000 objects the SDK's modules hold, one by one: about 0.4 s on every
    `plan` and `diff` (measured: `python -c "import pulumi, pulumi_cloudflare"` takes 1.58 s, 1.17 s
    of it before teardown), with nothing to show outside this process. Exit handlers still run and
    both streams are flushed, so output and exit code are exactly what `sys.exit` would give.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can reach it anyway
            stream.flush()
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed, status 1, as the interpreter does
        print(code, file=sys.stderr)
        sys.stderr.flush()
        status = 1
    os._exit(status)
