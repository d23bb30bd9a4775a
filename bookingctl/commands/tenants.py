"""`bookingctl tenants`: salons on their own hostnames as data (Cloudflare for SaaS custom hostnames).

Needs `booking:saas` in the stack file (the zone the custom hostnames live on and the fallback
hostname salons CNAME to). The operations are in `ops/tenants/tenants.py`; this module parses and prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from booking_shared.project import find_project, other_stacks
from booking_shared.text import printable
from bookingctl import output, reports
from bookingctl.errors import Failed, UsageError
from bookingctl.options import (
    FormatOption,
    LocalOption,
    ProgressOption,
    ProjectDir,
    StackOption,
    TableOrJson,
    load_stack_config,
    number_between,
    open_database,
    parse_duration,
    remote_database_of,
)
from bookingctl.output import set_progress
from ops.tenants.tenant_model import DRIFT_STATES, SaasZone
from ops.tenants.tenant_table import list_tenants
from ops.tenants.tenants import add_tenant, remove_tenant
from ops.tenants.tenants import status as run_status

if TYPE_CHECKING:
    from stackconfig.model import StackConfig

app = typer.Typer(help="Salons on their own hostnames (Cloudflare for SaaS custom hostnames).", no_args_is_help=True)

Stack = Annotated[str, typer.Option("--stack", help="The stack whose D1 and SaaS zone (booking:saas) to use.")]
Slug = Annotated[str, typer.Argument(help="The tenant's slug (lowercase letters, digits, hyphens).")]


def served_hostnames(cfg: StackConfig) -> dict[str, str]:
    """Hostnames the stack config serves itself (never custom hostnames): hostname -> key."""
    served = {cfg.domain: "booking:domain"}
    served.update({t.hostname: f"booking:tenants[{i}]" for i, t in enumerate(cfg.tenants)})
    if cfg.saas is not None:
        served[cfg.saas.fallback_hostname] = "booking:saas.fallbackHostname"
    return served


def other_stacks_hostnames(stack: str, project_dir: Path | None) -> dict[str, str]:
    """Hostnames the project's other committed stacks serve -> `Pulumi.<stack>.yaml (key)`.

    A stack file that cannot be read is a UsageError, as it is a violation for the policy pack: while
    it has a problem, nothing says which hostnames it serves, and a salon added on one of them here
    would take that environment's site into this stack's D1 and Worker.
    """

    found: dict[str, str] = {}
    others, unreadable = other_stacks(find_project(project_dir or Path.cwd()).root, stack)
    if unreadable:
        raise UsageError("cannot tell which hostnames the other stacks serve, so no salon is added (nothing was "
                         f"written): {'; '.join(unreadable)}. Fix that file (`bookingctl plan <stack>` lists each "
                         "problem with its fix), then run this again")
    for other in others:
        for hostname, key in other.hostnames.items():
            found.setdefault(hostname, f"{other.source} ({key})")
    return found


@app.command("add")
def add(
    slug: Slug,
    hostname: Annotated[str, typer.Argument(help="The salon's own hostname, e.g. www.glamoursalon.co.za.")],
    stack: Stack,
    name: Annotated[str | None, typer.Option("--name", help="The salon's display name (default: the slug).")] = None,
    fmt: FormatOption = TableOrJson.table,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Onboard a salon: list its hostname on a SaaS salons' Turnstile widget with room, write its tenant
    row (naming that widget) and create its custom hostname.

    Prints what the salon must publish: a CNAME from its hostname to the fallback hostname, and the
    ownership and certificate validation TXT records Cloudflare asks for. Running it again completes
    a half-done onboarding and never creates anything twice. Exit 1, with nothing written, when every
    SaaS widget is full (the message names booking:turnstile.saasWidgets) or Cloudflare refuses it.
    """

    output.set_progress(show_progress)

    cfg = load_stack_config(stack, project_dir)
    zone = SaasZone.of(cfg)
    with remote_database_of(cfg) as db:
        onboarding = add_tenant(db, db.client, zone, slug, hostname, name=name, served=served_hostnames(cfg),
                                taken=other_stacks_hostnames(stack, project_dir))
    reports.print_onboarding(onboarding, fmt)


@app.command("status")
def status(
    stack: Stack,
    slug: Annotated[str | None, typer.Argument(help="Only this tenant (default: every SaaS tenant).")] = None,
    fmt: FormatOption = TableOrJson.table,
    wait: Annotated[str, typer.Option(
        "--wait", help="Follow pending hostnames this long (e.g. 10m) until active or blocked; 0: look once.")] = "0",
    interval: Annotated[float, typer.Option(
        "--interval", callback=number_between("--interval", 0, 3600),
        help="Seconds between reads while following (0 to 3600).")] = 15.0,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Each salon hostname's state (pending, active, blocked) and what blocks it.

    Reports drift both ways: a tenant row without its custom hostname and a custom hostname without
    a row; and an active tenant's hostname the SaaS Turnstile widget does not list. Exit 1 when a
    hostname is blocked (naming the records to fix), on drift, when the zone's fallback origin is not
    active, or when --wait ends with hostnames still pending.
    """

    output.set_progress(show_progress)

    seconds = parse_duration(wait, "--wait")
    if seconds > 24 * 3600:
        raise UsageError(f"--wait {wait!r}: at most 24h")
    cfg = load_stack_config(stack, project_dir)
    zone = SaasZone.of(cfg)
    with remote_database_of(cfg) as db:
        report = run_status(db, db.client, zone, slug=slug, served=served_hostnames(cfg), wait=seconds,
                            interval=interval, log=output.progress_log(None))
    reports.print_tenant_status(report, fmt)
    problems = []
    blocked = report.of_state("blocked")
    if blocked:
        problems.append("blocked: " + "; ".join(
            f"{h.hostname} (fix: {', '.join(f'{r.type} {r.name}' for r in h.records)})" for h in blocked))
    drift = report.of_state(*DRIFT_STATES)
    if drift:
        problems.append("table and custom hostnames disagree: " + ", ".join(f"{h.hostname} ({h.state})" for h in drift))
    if report.not_on_widget:
        missing = list(report.not_on_widget)
        problems.append(f"{len(missing)} not on Turnstile widget {report.turnstile_widget} (bookings there fail the "
                        "bot check): " + ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5
                                                                      else "")
                        + "; `bookingctl tenants add SLUG HOSTNAME` lists them")
    if not report.fallback_active:
        problems.append(f"the fallback origin is {report.fallback_origin.get('status')}: run `pulumi up --stack "
                        f"{stack}` (it declares the fallback origin) and check its errors")
    pending = report.of_state("pending")
    if seconds > 0 and pending:
        problems.append(f"{len(pending)} still pending after {wait}: " + ", ".join(h.hostname for h in pending))
    if problems:
        # Hostnames and slugs from the tenants table: escape sequences spelled out, never sent.
        raise Failed(printable(f"stack {stack}: " + " | ".join(problems), None))


@app.command("remove")
def remove(
    slug: Slug,
    stack: Stack,
    force: Annotated[bool, typer.Option(
        "--force", help="Remove even while the tenant has bookings from today on (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; recorded in audit_logs.")] = None,
    fmt: FormatOption = TableOrJson.table,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Take a salon off its hostname: delete the custom hostname, take it off the SaaS Turnstile widget
    and suspend its tenant row.

    Refused (exit 1) while the tenant has booked or confirmed appointments from today on, unless
    --force --reason. The row, its appointments and accounts are kept; `tenants add` restores it.
    """


    set_progress(show_progress)


    if force and not (reason or "").strip():
        raise UsageError("--force needs --reason: say why the tenant's bookings are cut off (it is recorded)")
    cfg = load_stack_config(stack, project_dir)
    zone = SaasZone.of(cfg)
    with remote_database_of(cfg) as db:
        removal = remove_tenant(db, db.client, zone, slug, force=force, reason=reason, served=served_hostnames(cfg))
    if removal.forced:
        output.warn(f"{slug} removed with {removal.future_appointments} open appointment(s) from today on: "
                    f"{removal.reason}")
    if fmt == TableOrJson.json:
        sys.stdout.write(json.dumps(removal.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(f"{slug}: " + (f"custom hostname {removal.hostname} deleted; " if removal.hostname_deleted
                                        else "no custom hostname to delete; ") + "tenant row suspended\n")


@app.command("list")
def list_(
    stack: StackOption = None,
    local: LocalOption = None,
    fmt: FormatOption = TableOrJson.table,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Every tenant row with the path that serves it: the stack config, SaaS, or none.

    With --local no stack config says which hostnames it serves, so a row's path is `unknown`.
    """

    output.set_progress(show_progress)

    served = served_hostnames(load_stack_config(stack, project_dir)) if stack is not None else None
    with open_database(stack, local, project_dir) as db:
        rows = list_tenants(db, served)
    if served is None and any(r["path"] == "unknown" for r in rows):
        output.info("--local: no stack config says which hostnames are served by it and which by SaaS, so the path "
                    "is `unknown`; `tenants list --stack S` labels them")
    output.print_rows("tenants", rows, fmt)

