"""`bookingctl drift`: the live account against what the stack declares (ops/observation/drift.py)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from booking_shared.project import find_project, load_stack
from bookingctl import output
from bookingctl.errors import EXIT_FAILED
from bookingctl.options import ProgressOption, ProjectDir, load_stack_config
from bookingctl.planner import plan_stack, unwrap_secrets
from ops.observation.drift import Context, Declared, drift
from ops.targets import cloudflare_client


class DriftFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


def declared_of(project_root: Any, stack: str) -> list[Declared]:
    """The stack's custom resources as the program declares them (planned offline, secrets unwrapped)."""
    project = find_project(project_root)
    plan = plan_stack(project, load_stack(project, stack))
    return [Declared(r.type, r.name, unwrap_secrets(r.raw_inputs)) for r in plan.resources if r.custom]


def drift_command(
    stack: Annotated[str, typer.Option("--stack", help="The stack whose live resources to compare.")],
    fmt: Annotated[DriftFormat, typer.Option("--format", "-f", help="Output format.")] = DriftFormat.table,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Compare what Cloudflare holds with what the stack declares, read-only.

    Each difference is changed, missing or unmanaged, with the command that converges it. Exit 0
    when there is none, 1 when there is drift, 2 on bad input or when Cloudflare cannot be reached.
    """
    output.set_progress(show_progress)
    cfg = load_stack_config(stack, project_dir)
    log = output.progress_log()
    log(f"stack {stack}: planning what it declares (offline), then reading account {cfg.account_id} (read-only)")
    declared = declared_of(project_dir or ".", stack)
    hostnames = [cfg.domain, *(t.hostname for t in cfg.tenants)]
    with cloudflare_client() as client:
        ctx = drift(client, cfg.account_id, stack, declared, hostnames)
    _print(ctx, fmt)
    if ctx.differences:
        raise typer.Exit(EXIT_FAILED)


def _print(ctx: Context, fmt: DriftFormat) -> None:
    found = [d.to_dict() for d in ctx.differences]
    if fmt is DriftFormat.json:
        sys.stdout.write(json.dumps({"stack": ctx.stack, "differences": found}, indent=2, default=str) + "\n")
    elif fmt is DriftFormat.sarif:
        sys.stdout.write(json.dumps(_sarif(ctx), indent=2, default=str) + "\n")
    elif fmt is DriftFormat.markdown:
        lines = [f"### Drift of `{ctx.stack}`: {len(found)} difference(s)", ""]
        if found:
            lines += ["| kind | resource | what | converge with |", "|---|---|---|---|"]
            lines += [f"| {d['kind']} | {d['resource']} | {d['detail']} | `{d['fix']}` |" for d in found]
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        for d in found:
            typer.echo(f"{d['kind']:<9} {d['resource']}: {d['detail']} -> fix: {d['fix']}")
        typer.echo(f"stack {ctx.stack}: {len(found)} difference(s) between the account and what it declares")


def _sarif(ctx: Context) -> dict[str, Any]:
    """SARIF 2.1.0: one result per difference (rule = its kind), for code scanning next to the plan's."""
    rules = [{"id": f"drift-{k}", "shortDescription": {"text": f"live resource {k} against the declared stack"}}
             for k in ("changed", "missing", "unmanaged")]
    return {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "bookingctl drift", "rules": rules}},
        "results": [{"ruleId": f"drift-{d.kind}", "level": "warning",
                     "message": {"text": f"{d.resource}: {d.detail}. Fix: {d.fix}"},
                     "locations": [{"physicalLocation": {"artifactLocation": {"uri": f"Pulumi.{ctx.stack}.yaml"}}}]}
                    for d in ctx.differences]}]}
