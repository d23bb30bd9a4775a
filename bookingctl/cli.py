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
import importlib
import os
import signal
import sys
from typing import Annotated

import typer
import typer.main
from typer._click import Command, Context, HelpFormatter  # the CLI framework's own click, as errors.py
from typer._click.utils import make_default_short_help

from bookingctl.errors import MappedGroup, on_sigint, on_sigterm, reader_gone

# Every command and group, by name: (module, attribute, the summary the root's --help shortens). A
# command module is imported only when its command runs (or completes, or shows its own help), so
# each may import what it needs at the top; the root's --help reads the summaries here, as pip's
# `commands_dict` does. tests/unit/bookingctl/test_lazy_commands.py holds each summary to the
# command's own help and each name to the module that defines it.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "plan": ("bookingctl.commands.plan", "plan", 'Plan a stack offline and gate it with the policy pack.'),
    "diff": ("bookingctl.commands.diff", "diff", 'Desired-state diff of STACK between --base and the working tree.'),
    "verify": ("bookingctl.commands.release", "verify", 'Check the site, its health contract and its database.'),
    "rollback": ("bookingctl.commands.release", "rollback",
                'Roll the Worker back to an earlier version, then verify it.'),
    "watch": ("bookingctl.commands.release", "watch", 'Watch a deployment and roll back when a guide trigger fires.'),
    "doctor": ("bookingctl.commands.doctor", "doctor",
              "Read-only checks against the real account: the token's permissions, each zone's plan and "
              "http_ratelimit entry point, Turnstile capacity, the canary's GraphQL fields, the custom hostname "
              'quota (booking:saas), the D1 database and the R2 bucket.'),
    "dev": ("bookingctl.commands.dev", "dev",
           'Run the reference Worker under `wrangler dev` with a local D1, migrated and seeded, until Ctrl-C.'),
    "migrate": ("bookingctl.commands.migrate", "app",
               'D1 migrations: status, check and apply (tracked in d1_migrations, as wrangler does).'),
    "backup": ("bookingctl.commands.backup", "app", 'SQL-dump backups: create, import, list, verify, prune, restore.'),
    "restore": ("bookingctl.commands.restore", "app",
               "Scoped restores from a backup: one tenant's rows, every other tenant left as it is."),
    "release": ("bookingctl.commands.release", "release_app",
               'Canary releases of the API Worker: status, canary, abort, quarantine.'),
    "monitor": ("bookingctl.commands.monitor", "monitor_app", 'Health report and performance monitor.'),
    "report": ("bookingctl.commands.monitor", "report_app", 'The daily report.'),
    "audit": ("bookingctl.commands.admin", "audit_app", 'Security audit of the booking database.'),
    "users": ("bookingctl.commands.admin", "users_app", 'Users, their permissions and dormant accounts.'),
    "apikeys": ("bookingctl.commands.admin", "apikeys_app", 'API keys and their usage.'),
    "db": ("bookingctl.commands.admin", "db_app", 'Database analysis.'),
    "preview": ("bookingctl.commands.preview", "app",
                "Pull-request preview stacks: derive, create (with scrubbed data), destroy, list."),
    "drift": ("bookingctl.commands.drift", "drift_command",
              "Compare what Cloudflare holds with what the stack declares, read-only."),
    "tenants": ("bookingctl.commands.tenants", "app",
               'Salons on their own hostnames (Cloudflare for SaaS custom hostnames).'),
}


def load_command(name: str) -> Command:
    """The click command for `name`, its module imported now."""
    module, attribute, _ = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        target.rich_markup_mode = None  # as the root's: plain help, whatever the group declared
        group = typer.main.get_group(target)
        group.name = name
        return group
    single = typer.Typer(rich_markup_mode=None)
    single.command(name)(target)
    return typer.main.get_command(single)


class LazyGroup(MappedGroup):
    """The root group: commands from COMMANDS, each loaded when it is used."""

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        # Shortened as click shortens a loaded command's help for this list.
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        with formatter.section("Commands"):
            formatter.write_dl([(name, make_default_short_help(summary, limit))
                                for name, (_, _, summary) in COMMANDS.items()])

app = typer.Typer(
    name="bookingctl",
    help="Plan, gate and operate the appointment-booking platform on Cloudflare.",
    cls=LazyGroup,
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




def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigint)
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
