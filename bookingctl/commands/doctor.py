"""`bookingctl doctor`: every assumption the stack and the commands make about the Cloudflare account."""

from __future__ import annotations

from typing import Annotated

import typer

from bookingctl import output, reports
from bookingctl.errors import EXIT_FAILED
from bookingctl.options import FormatOption, ProgressOption, ProjectDir, TableOrJson, load_stack_config
from ops.observation.doctor import run, target_of
from ops.targets import cloudflare_client


def doctor(
    stack: Annotated[str, typer.Option("--stack", help="The stack whose account, zones and resources to check.")],
    fmt: FormatOption = TableOrJson.table,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Read-only checks against the real account: the token's permissions, each zone's plan and
    http_ratelimit entry point, Turnstile capacity, the canary's GraphQL fields, the custom hostname
    quota (booking:saas), the D1 database and the R2 bucket.

    One line per check with its fix. Exit 0 when none failed (a check that could not be judged says
    so and does not fail), 1 when one failed, 2 on bad input or when Cloudflare cannot be reached.
    """

    output.set_progress(show_progress)
    cfg = load_stack_config(stack, project_dir)
    output.progress_log()(f"stack {stack}: checking account {cfg.account_id} against the stack (read-only calls)")
    with cloudflare_client() as client:
        report = run(client, target_of(cfg, stack))
    reports.print_doctor(report, fmt)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
