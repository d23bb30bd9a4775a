"""`bookingctl`: the command line of the appointment-booking infrastructure.

This module only parses arguments and prints. Commands import the heavy modules they need
(pulumi, pulumi_cloudflare) inside their bodies, so `bookingctl --help` and commands that do not
plan stay fast.

Exit codes: 0 success; 1 the program itself failed (a bug in infra/, not in config);
2 usage, project or configuration errors.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from bookingctl.output import Format

EXIT_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="bookingctl",
    help="Plan, gate and operate the appointment-booking platform on Cloudflare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Plan, gate and operate the appointment-booking platform on Cloudflare."""


ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", help="Folder holding Pulumi.yaml (default: this folder or a parent)."),
]


@app.command()
def plan(
    stack: Annotated[str, typer.Argument(help="Stack name: the STACK of Pulumi.STACK.yaml, e.g. production.")],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    project_dir: ProjectDir = None,
) -> None:
    """Run the Pulumi program offline under Pulumi's mocks and print every resource it declares.

    No Pulumi CLI, credentials or network are used. Secret config values cannot be decrypted
    offline and appear as [secret]; every secret input is redacted in all formats.
    """
    from bookingctl import output
    from bookingctl.project import ProjectError, find_project, load_stack
    from infra.config import ConfigError

    try:
        project = find_project(project_dir or Path.cwd())
        settings = load_stack(project, stack)
    except ProjectError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None

    from bookingctl.planner import plan_stack

    try:
        result = plan_stack(project, settings)
    except ConfigError as exc:
        output.error(exc.render())
        raise typer.Exit(EXIT_USAGE) from None
    except Exception:
        output.error(f"the Pulumi program failed while planning stack {stack!r}:")
        traceback.print_exc(file=sys.stderr)
        raise typer.Exit(EXIT_FAILED) from None
    output.print_plan(result, fmt)


def main() -> None:
    """Console-script entry point."""
    app()
