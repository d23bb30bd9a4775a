"""`bookingctl plan`: the offline plan of a stack, gated by the policy pack."""

from __future__ import annotations

import sys
import traceback
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from booking_shared.project import find_project, load_stack
from bookingctl import output
from bookingctl.errors import EXIT_FAILED, Failed, UsageError, current_stack
from bookingctl.gate import PackProcess, evaluate
from bookingctl.options import ProjectDir
from bookingctl.planner import plan_stack
from bookingctl.policy_config import load_policy_config
from bookingctl.sarif import sarif_text
from stackconfig.problems import ConfigError


class PlanFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


def plan(
    stack: Annotated[str, typer.Argument(help="Stack name: the STACK of Pulumi.STACK.yaml, e.g. production.")],
    fmt: Annotated[PlanFormat, typer.Option(
        "--format", "-f", help="Output format (sarif: SARIF 2.1.0 for code scanning).")] = PlanFormat.table,
    policy_config: Annotated[Path | None, typer.Option(
        "--policy-config", help="Policy config JSON, as `pulumi preview --policy-pack-config` takes it "
                                "(checklist evidence, levels, settings).")] = None,
    policy_pack: Annotated[Path | None, typer.Option(
        "--policy-pack", help="Policy pack folder (default: policies/ of the project).")] = None,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Plan as the first preview of a stack that does not exist yet: ids and computed outputs "
                        "are unknown, and policies that need them can only warn, as in that real preview.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Plan a stack offline and gate it with the policy pack.

    Runs the Pulumi program under Pulumi's mocks (no Pulumi CLI, credentials or network), prints
    every resource it declares, then evaluates the policy pack over them through the Analyzer gRPC
    protocol, as `pulumi preview --policy-pack` does. Exits 1 when a mandatory violation remains.
    Secret config values cannot be decrypted offline and appear as [secret]; every secret input is
    redacted in all formats.
    """

    current_stack.set(stack)
    project = find_project(project_dir or Path.cwd())
    settings = load_stack(project, stack)
    user_config = load_policy_config(policy_config) if policy_config else {}
    pack_dir = (policy_pack or project.root / "policies").resolve()
    if not (pack_dir / "PulumiPolicy.yaml").is_file():
        raise UsageError(f"{pack_dir} is not a policy pack (no PulumiPolicy.yaml); pass --policy-pack DIR")
    # Started before planning so the pack's start-up overlaps the program's run.
    with PackProcess(pack_dir, project.name, stack, settings.flat) as pack:
        try:
            result = plan_stack(project, settings, fresh=fresh)
        except ConfigError:
            raise
        except Exception:
            # A bug in the program itself: its traceback is what the author needs to fix it.
            traceback.print_exc(file=sys.stderr)
            raise Failed(f"the Pulumi program failed while planning stack {stack!r} (traceback above)") from None
        gate = evaluate(result, pack, user_config, str(policy_config) if policy_config else "the policy config")

    sarif = None
    if fmt is PlanFormat.sarif:

        sarif = sarif_text(result, gate, project.root)
    output.print_plan(result, fmt, gate, sarif)
    if not gate.passed:
        raise typer.Exit(EXIT_FAILED)
