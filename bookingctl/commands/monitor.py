"""`bookingctl monitor` and `report`: the guide's health check, performance monitor and daily report."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bookingctl import output
from bookingctl.commands.admin import AsOfOption, as_of
from bookingctl.errors import EXIT_FAILED, UsageError
from bookingctl.options import (
    LocalOption,
    ProgressOption,
    ProjectDir,
    StackOption,
    count_between,
    load_stack_config,
    number_between,
    open_database,
    site_and_database,
    url_option,
)
from ops.http import redact
from ops.observation.monitor import INTEGRATIONS, PLATFORM_CHECKS, default_urls, post_webhook
from ops.observation.monitor import health as check_health
from ops.observation.monitor import perf as sample
from ops.observation.report import build, write

if TYPE_CHECKING:
    from ops.observation.monitor import Delivery

monitor_app = typer.Typer(help="Health report and performance monitor.", no_args_is_help=True)
report_app = typer.Typer(help="The daily report.", no_args_is_help=True)


WebhookOption = Annotated[str | None, typer.Option(
    "--webhook", callback=url_option("--webhook", secret=True),
    help="POST an alert here (retried; each try ends within 10 s). Never printed: it is the hook's credential.")]


def _webhook_warning(what: str, webhook: str, delivery: Delivery) -> str:

    return (f"{what} could not be delivered to the --webhook URL ({redact(webhook)}/…) after "
            f"{delivery.attempts} attempt(s): {delivery.error}")


@monitor_app.command("health")
def health(
    stack: Annotated[str | None, typer.Option("--stack", help="Check https://<domain>/api/health and the D1.")] = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", callback=url_option("--base-url"), help="Site to check instead.")] = None,
    local: LocalOption = None,
    paystack_url: Annotated[str | None, typer.Option(
        callback=url_option("--paystack-url"), help="Paystack endpoint to probe.")] = None,
    google_calendar_url: Annotated[str | None, typer.Option(
        callback=url_option("--google-calendar-url"), help="Google Calendar endpoint to probe.")] = None,
    whatsapp_url: Annotated[str | None, typer.Option(
        callback=url_option("--whatsapp-url"), help="WhatsApp (Graph API) endpoint to probe.")] = None,
    skip: Annotated[list[str] | None, typer.Option(
        "--skip", help="Do not probe this integration (paystack, google_calendar or whatsapp; repeatable): "
                       "reported SKIPPED.")] = None,
    skip_integrations: Annotated[bool, typer.Option(
        "--skip-integrations", help="Probe no integration (offline, local or CI runs).")] = False,
    timeout: Annotated[float, typer.Option(
        "--timeout", callback=number_between("--timeout", 0.1, 300),
        help="Seconds per check, connect to last byte (0.1 to 300).")] = 10.0,
    webhook: WebhookOption = None,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """The guide's health JSON: main application, database, Paystack, Google Calendar and WhatsApp.

    Checked concurrently; a failing check says why in its "error". The main application passes
    only when /api/health answers 200 with status and database "ok" (as `verify` judges it).
    Overall FAIL when the application or database fails ("critical"), DEGRADED when only a
    third-party integration does (offline: --skip-integrations); exit 1 on either (and alert
    --webhook, saying which).
    """

    output.set_progress(show_progress)

    skipped = set(INTEGRATIONS) if skip_integrations else set()
    for name in skip or []:
        key = name.strip().lower().replace("-", "_")
        if key not in INTEGRATIONS:
            raise UsageError(f"--skip {name!r}: not an integration; use one of {', '.join(INTEGRATIONS)} "
                             "(or --skip-integrations for all)")
        skipped.add(key)
    if stack is None and base_url is None:
        raise UsageError("name what to check: --stack STACK, or --base-url URL [--local FILE]")
    endpoints = dict(INTEGRATIONS)
    for name, given in (("paystack", paystack_url), ("google_calendar", google_calendar_url),
                        ("whatsapp", whatsapp_url)):
        if given:
            endpoints[name] = given
    # A damaged file is the database check failing (exit 1, in the JSON): an outage, not bad input.
    url, db = site_and_database(stack, base_url, local, project_dir, damaged_ok=True)
    assert url is not None  # a stack always has a site URL
    with db if db is not None else contextlib.nullcontext():
        report = check_health(url.rstrip("/") + "/api/health", db, endpoints, timeout=timeout, skip=skipped)
    sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    if report.overall_status != "OK":
        critical = report.failed(PLATFORM_CHECKS)
        third_party = report.failed(set(report.checks) - set(PLATFORM_CHECKS))
        if critical:
            failed = ", ".join(critical + third_party)
            output.error(f"critical health check failure: {failed}")
            alert = f"Health check FAILED for {url}: {failed}"
        else:
            failed = ", ".join(third_party)
            output.error(f"degraded: third-party integration(s) unreachable or failing: {failed}; the application "
                         "and its database are healthy. Offline or in a sandboxed CI, leave them out with "
                         "--skip-integrations (or --skip NAME)")
            alert = f"Health check DEGRADED for {url}: third-party {failed} unreachable or failing"
        if webhook:
            delivery = post_webhook(webhook, alert)
            if not delivery.delivered:
                output.warn(_webhook_warning("the alert", webhook, delivery))
        raise typer.Exit(EXIT_FAILED)


@monitor_app.command("perf")
def perf(
    url: Annotated[list[str] | None, typer.Option(
        "--url", callback=url_option("--url"), help="URL to sample (repeatable).")] = None,
    stack: Annotated[str | None, typer.Option(
        "--stack", help="Default URLs: root, /book/<salon>, /api/health.")] = None,
    samples: Annotated[int, typer.Option(
        "--samples", callback=count_between("--samples", 1, 10_000), help="Requests per URL (1 to 10000).")] = 5,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", callback=count_between("--concurrency", 1, 100), help="Requests in flight (1 to 100).")] = 5,
    out: Annotated[Path | None, typer.Option("--out", help="Write the metrics JSON here too.")] = None,
    threshold: Annotated[float, typer.Option(
        "--threshold", callback=number_between("--threshold", 0.001, 3600),
        help="Average response time limit (s, 0.001 to 3600).")] = 2.0,
    success: Annotated[float, typer.Option(
        "--success", callback=number_between("--success", 0, 100, "a percentage"),
        help="Success-rate floor (%, 0 to 100).")] = 99.0,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Per URL: average, p50, p95 and max response time, success rate and why samples failed.

    Each request ends within 10 s. Exit 1 on a breach of the guide's thresholds (2.0 s average, 99 %
    success).
    """

    output.set_progress(show_progress)

    urls = list(url or [])
    if not urls:
        if stack is None:
            raise UsageError("pass --url URL (repeatable) or --stack STACK for its default URLs")
        urls = default_urls(load_stack_config(stack, project_dir).domain)
    if out is not None and out.is_dir():
        raise UsageError(f"--out {out} is a folder; name a file such as {out / 'performance-metrics.json'}")
    metrics = sample(urls, samples=samples, concurrency=concurrency, response_threshold=threshold,
                     success_threshold=success)
    text = json.dumps([m.to_dict() for m in metrics], indent=2) + "\n"
    if out is not None:
        out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    breaches = [m.url + (f" ({m.error})" if m.error else "") for m in metrics if m.response_breach or m.success_breach]
    if breaches:
        output.error(f"threshold breached for: {', '.join(breaches)}")
        raise typer.Exit(EXIT_FAILED)


@report_app.command("daily")
def daily(
    stack: StackOption = None,
    local: LocalOption = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", callback=url_option("--base-url"),
        help="Site to probe, 3 requests of at most 10 s each (default with --stack: its domain).")] = None,
    out: Annotated[Path, typer.Option(
        "--out", help="Folder for daily-report-<date>.json and .md.")] = Path("reports"),
    webhook: WebhookOption = None,
    at: AsOfOption = None,
    drift_file: Annotated[Path | None, typer.Option(
        "--drift", help="A `bookingctl drift -f json` result to add as the report's drift line.")] = None,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Uptime, response time, bookings today/this week/total, server errors, and a summary with key
    issues and recommendations; JSON and Markdown (with a bookings-per-day chart) into --out."""

    output.set_progress(show_progress)

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; name the folder for the daily reports")
    if stack is not None:
        url, db = site_and_database(stack, base_url, local, project_dir)  # the stack is read once
    else:
        url, db = base_url, open_database(None, local, project_dir)
    assert db is not None
    drift = _drift_result(drift_file) if drift_file is not None else None
    with db:
        report = build(db, url, now=as_of(at), drift=drift)
    for path in write(report, out):
        output.info(f"wrote {path}")
    sys.stdout.write(report.one_line() + "\n")
    if webhook:
        delivery = post_webhook(webhook, report.one_line())
        if not delivery.delivered:
            output.warn(_webhook_warning("the daily status", webhook, delivery))


def _drift_result(path: Path) -> dict[str, Any]:
    """A `bookingctl drift -f json` result; a file that is not one is bad input, named."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--drift {path}: not a readable `bookingctl drift -f json` result ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("differences"), list):
        raise UsageError(f"--drift {path}: no `differences` list; pass the output of `bookingctl drift -f json`")
    return data
