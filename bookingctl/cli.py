"""`bookingctl`: the command line of the appointment-booking infrastructure.

This module only parses arguments and prints. Commands import the heavy modules they need
(pulumi, pulumi_cloudflare) inside their bodies, so `bookingctl --help` and commands that do not
plan stay fast.

Exit codes: 0 success; 1 a mandatory policy violation remains, or the program or the policy pack
failed (the gate cannot pass); 2 usage, project, configuration or policy-config errors.
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
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format (sarif: SARIF 2.1.0).")] = Format.table,
    policy_config: Annotated[Path | None, typer.Option(
        "--policy-config", help="Policy config JSON, as `pulumi preview --policy-pack-config` takes it "
                                "(checklist evidence, levels, settings).")] = None,
    policy_pack: Annotated[Path | None, typer.Option(
        "--policy-pack", help="Policy pack folder (default: policies/ of the project).")] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Plan a stack offline and gate it with the policy pack.

    Runs the Pulumi program under Pulumi's mocks (no Pulumi CLI, credentials or network), prints
    every resource it declares, then evaluates the policy pack over them through the Analyzer gRPC
    protocol, as `pulumi preview --policy-pack` does. Exits 1 when a mandatory violation remains.
    Secret config values cannot be decrypted offline and appear as [secret]; every secret input is
    redacted in all formats.
    """
    from bookingctl import output
    from bookingctl.gate import PolicyConfigError, PolicyPackError, load_policy_config
    from bookingctl.project import ProjectError, find_project, load_stack
    from infra.config import ConfigError

    try:
        project = find_project(project_dir or Path.cwd())
        settings = load_stack(project, stack)
        user_config = load_policy_config(policy_config) if policy_config else {}
    except (ProjectError, PolicyConfigError) as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None

    from bookingctl.gate import PackProcess, evaluate
    from bookingctl.planner import plan_stack

    pack_dir = (policy_pack or project.root / "policies").resolve()
    try:
        # Started before planning so the pack's start-up overlaps the program's run.
        pack = PackProcess(pack_dir, project.name, stack, settings.flat)
    except PolicyPackError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    with pack:
        try:
            result = plan_stack(project, settings)
        except ConfigError as exc:
            output.error(exc.render())
            raise typer.Exit(EXIT_USAGE) from None
        except Exception:
            output.error(f"the Pulumi program failed while planning stack {stack!r}:")
            traceback.print_exc(file=sys.stderr)
            raise typer.Exit(EXIT_FAILED) from None
        try:
            gate = evaluate(result, pack, user_config)
        except PolicyConfigError as exc:
            output.error(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except PolicyPackError as exc:
            output.error(str(exc))
            raise typer.Exit(EXIT_FAILED) from None

    sarif = None
    if fmt is Format.sarif:
        from bookingctl.sarif import sarif_text

        sarif = sarif_text(result, gate, project.root)
    output.print_plan(result, fmt, gate, sarif)
    if not gate.passed:
        raise typer.Exit(EXIT_FAILED)


def main() -> None:
    """Console-script entry point."""
    app()
