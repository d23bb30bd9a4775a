"""`bookingctl drift`: the live account against what the stack declares (ops/observation/drift.py)."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from booking_shared.project import Project, StackSettings, find_project, load_stack
from bookingctl import output
from bookingctl.commands.tenants import served_hostnames
from bookingctl.errors import EXIT_CHANGES
from bookingctl.gate import PackProcess, Violation, evaluate
from bookingctl.options import ProgressOption, ProjectDir, load_stack_config, remote_database_of
from bookingctl.planner import Plan, plan_stack, unwrap_secrets
from ops.observation.drift import Context, Declared, drift, provider_inputs, saas_differences
from ops.targets import cloudflare_client
from ops.tenants.tenant_model import SaasZone
from ops.tenants.tenants import status


class DriftFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


def declared_of(plan: Plan) -> list[Declared]:
    """The stack's custom resources as the program declares them (secrets unwrapped)."""
    return [Declared(r.type, r.name, unwrap_secrets(r.raw_inputs), str(r.raw_outputs.get("id") or ""))
            for r in plan.resources if r.custom]


# Live fields put back into the declared inputs, per type: what the pack then judges as reality.
_PATCHES: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]] = {
    "cloudflare:index/ruleset:Ruleset": lambda i, live: {**i, "rules": provider_inputs(live.get("rules", []))},
    "cloudflare:index/turnstileWidget:TurnstileWidget": lambda i, live: {**i, "mode": live.get("mode"),
                                                                         "domains": live.get("domains")},
    "cloudflare:index/workersRoute:WorkersRoute": lambda i, live: {**i, "script": live.get("script")},
    "cloudflare:index/healthcheck:Healthcheck": lambda i, live: {**i, "suspended": live.get("suspended")},
    "cloudflare:index/r2BucketLifecycle:R2BucketLifecycle": lambda i, live: {**i, "rules": live.get("rules", [])},
    "cloudflare:index/dnsRecord:DnsRecord": lambda i, live: {**i, "content": live.get("content"),
                                                             "proxied": live.get("proxied")},
    # What the Worker's settings are live (worker-observability judges them); None where the API said nothing.
    "cloudflare:index/worker:Worker": lambda i, live: {**i, **{k: live[k] for k in ("observability", "subdomain")
                                                               if live.get(k) is not None}},
}


def reality(plan: Plan, ctx: Context) -> Plan:
    """The plan as the account really is: live values in place of declared ones where drift read them,
    resources that are not there left out."""
    # Wholly missing (a rule of a ruleset missing names its ref in `field`; the entry point itself none).
    gone = {d.resource for d in ctx.differences if d.kind == "missing" and d.field is None}
    resources = []
    for r in plan.resources:
        if r.custom and f"{r.type.rsplit(':', 1)[-1]} {r.name}" in gone and r.type in _SINGLE:
            continue
        live = ctx.snapshot.live.get(r.name)
        if r.custom and live is not None and r.type in _PATCHES:
            # Stack policies read a resource's outputs (as the engine gives AnalyzeStack), the others its inputs.
            r = dataclasses.replace(r, raw_inputs=_PATCHES[r.type](dict(r.raw_inputs), live),
                                    raw_outputs=_PATCHES[r.type](dict(r.raw_outputs), live))
        resources.append(r)
    return dataclasses.replace(plan, resources=resources)


# Resources a `missing` difference means are wholly gone (not a rule of a ruleset).
_SINGLE = frozenset({"cloudflare:index/d1Database:D1Database", "cloudflare:index/r2Bucket:R2Bucket",
                     "cloudflare:index/worker:Worker", "cloudflare:index/workersRoute:WorkersRoute",
                     "cloudflare:index/dnsRecord:DnsRecord", "cloudflare:index/turnstileWidget:TurnstileWidget",
                     "cloudflare:index/healthcheck:Healthcheck", "cloudflare:index/ruleset:Ruleset",
                     "cloudflare:index/notificationPolicy:NotificationPolicy"})
# Judged on the deploy's own evidence, not on what the account holds: left out of the audit.
_EVIDENCE = frozenset({"pre-deploy-checklist", "migrations-rollback-safe", "migrations-rehearsed"})


def broken_policies(project: Project, stack: str, settings: StackSettings, plan: Plan,
                    ctx: Context) -> list[Violation]:
    """The pack over reality, in audit: violations the live account has that the declared stack has not."""
    with PackProcess(project.root / "policies", project.name, stack, settings.flat) as pack:
        declared = evaluate(plan, pack)
        live = evaluate(reality(plan, ctx), pack)
    known = {(v.policy, v.message) for v in declared.violations}
    return [v for v in live.violations if (v.policy, v.message) not in known and v.policy not in _EVIDENCE]


def drift_command(
    stack: Annotated[str, typer.Option("--stack", help="The stack whose live resources to compare.")],
    fmt: Annotated[DriftFormat, typer.Option("--format", "-f", help="Output format.")] = DriftFormat.table,
    policies: Annotated[bool, typer.Option(
        "--policies/--no-policies", help="Run the policy pack over what the account really holds (audit: "
                                         "findings, not a gate) and name the policies the drift breaks.")] = True,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Compare what Cloudflare holds with what the stack declares, read-only.

    Each difference is changed, missing or unmanaged, with the command that converges it. Exit 0
    when there is none, 3 when there is drift (as `diff` exits 3 on changes), 1 when the account could
    not be read (nothing is reported from a partial read), 2 on bad input.
    """
    output.set_progress(show_progress)
    cfg = load_stack_config(stack, project_dir)
    log = output.progress_log()
    log(f"stack {stack}: planning what it declares (offline), then reading account {cfg.account_id} (read-only)")
    project = find_project(project_dir or Path.cwd())
    settings = load_stack(project, stack)
    plan = plan_stack(project, settings)
    hostnames = list(served_hostnames(cfg))
    with cloudflare_client() as client:
        ctx = drift(client, cfg.account_id, stack, declared_of(plan), hostnames)
    if cfg.saas is not None:
        # Salons' hostnames are data (the tenants table and custom hostnames), not declared resources.
        with remote_database_of(cfg) as db:
            saas_differences(ctx, status(db, db.client, SaasZone.of(cfg), served=served_hostnames(cfg)))
    # Over reality whether or not a field differs: a change drift's own comparisons miss (a header
    # transform, a counting key) can still break a policy.
    violations = broken_policies(project, stack, settings, plan, ctx) if policies else []
    _print(ctx, violations, fmt)
    if ctx.differences or violations:
        raise typer.Exit(EXIT_CHANGES)


def _print(ctx: Context, violations: list[Violation], fmt: DriftFormat) -> None:
    found = [d.to_dict() for d in ctx.differences]
    broken = [{"policy": v.policy, "resource": v.resource, "message": v.message} for v in violations]
    if fmt is DriftFormat.json:
        sys.stdout.write(json.dumps({"stack": ctx.stack, "differences": found, "policiesBroken": broken},
                                    indent=2, default=str) + "\n")
        return
    if fmt is DriftFormat.sarif:
        sys.stdout.write(json.dumps(_sarif(ctx), indent=2, default=str) + "\n")
    elif fmt is DriftFormat.markdown:
        lines = [f"### Drift of `{ctx.stack}`: {len(found)} difference(s)", ""]
        if found:
            lines += ["| kind | resource | what | converge with |", "|---|---|---|---|"]
            lines += [f"| {d['kind']} | {d['resource']} | {d['detail']} | `{d['fix']}` |" for d in found]
        lines += [f"- policy `{b['policy']}` broken by the drift: {b['message'].splitlines()[0]}" for b in broken]
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        for d in found:
            typer.echo(f"{d['kind']:<9} {d['resource']}: {d['detail']} -> fix: {d['fix']}")
        for b in broken:
            typer.echo(f"policy    {b['policy']} broken by the drift: {b['message'].splitlines()[0]}")
        typer.echo(f"stack {ctx.stack}: {len(found)} difference(s) between the account and what it declares"
                   + (f"; {len(broken)} policy violation(s) the account has and the stack does not" if broken else ""))


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
