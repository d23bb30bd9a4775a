"""`bookingctl verify`, `rollback` and `watch`: is the release healthy, and taking it back when not."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bookingctl.errors import EXIT_FAILED, Failed, UsageError
from bookingctl.options import (
    LocalOption,
    ProjectDir,
    YesOption,
    confirm,
    load_stack_config,
    number_between,
    parse_duration,
    site_and_database,
    url_option,
)

if TYPE_CHECKING:
    from infra.config import StackConfig
    from ops.release import Site
    from ops.watch import RollbackOutcome

ProgressOption = Annotated[bool | None, typer.Option(
    "--progress/--quiet", help="Report each attempt on stderr (default: only on a terminal).")]
RetryTimeout = Annotated[float, typer.Option(
    "--timeout", callback=number_between("--timeout", 0, 3600),
    help="Seconds to keep retrying failing checks (0 to 3600); no request runs more than 1 s past it.")]


def _release_site(cfg: StackConfig) -> Site:
    from ops.release import Site

    return Site(cfg.account_id, cfg.worker_name, cfg.database_name, cfg.site_url)


def _state_hint(stack: str, project_dir: Path | None, version: str) -> str:
    """What Pulumi's state believes after a rollback done outside `pulumi up`, and how to act on it."""
    from booking_shared.deploy import deployment_urn
    from booking_shared.project import find_project
    from bookingctl.options import project_root

    project = find_project(project_root(project_dir)).name
    return (f"Pulumi's state still records the deployment that this rollback replaced; `pulumi refresh` will not "
            f"notice (the old deployment still exists). Fix the code and run `pulumi up` to deploy a new version; "
            f"to serve version {version} through Pulumi instead, run `pulumi up --stack {stack} --replace "
            f"'{deployment_urn(project, stack)}'` after pointing the code back at it.")


def verify(
    stack: Annotated[str | None, typer.Option(
        "--stack", help="Verify https://<booking:domain> and the stack's D1 (SELECT 1 through the API).")] = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", callback=url_option("--base-url"), help="Site to verify instead, e.g. a preview.")] = None,
    local: LocalOption = None,
    version: Annotated[str | None, typer.Option(
        "--version", help="Pass only once /api/health reports this Worker version id.")] = None,
    timeout: RetryTimeout = 120.0,
    request_timeout: Annotated[float, typer.Option(
        "--request-timeout", callback=number_between("--request-timeout", 0.1, 300),
        help="Seconds per request, connect to last byte (0.1 to 300).")] = 10.0,
    progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Check the site, its health contract and its database.

    The site root must answer 200, /api/health 200 with a healthy body (and --version, when given),
    and the database SELECT 1. Failing checks are retried with backoff until --timeout. Prints
    JSON; exits 0 when healthy, 1 otherwise.
    """
    from bookingctl import output
    from ops.verify import verify as run_verify

    if stack is None and base_url is None and local is None:
        raise UsageError("name what to verify: --stack STACK, or --base-url URL [--local FILE]")
    url, db = site_and_database(stack, base_url, local, project_dir)
    with db if db is not None else contextlib.nullcontext():
        result = run_verify(url, db, deadline=timeout, request_timeout=request_timeout, expected_version=version,
                            log=output.progress_log(progress))
    sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    if not result.ok:
        failed = ", ".join(c.name for c in result.checks if not c.ok)
        raise Failed(f"verification failed after {result.elapsed:.0f} s: {failed}")


def rollback(
    stack: Annotated[str, typer.Option("--stack", help="Roll back this stack's API Worker.")],
    to: Annotated[str | None, typer.Option("--to", help="Version id (default: the previous 100% version).")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Recorded on the deployment.")] = "manual rollback",
    verify_after: Annotated[bool, typer.Option("--verify/--no-verify", help="Verify the site afterwards.")] = True,
    timeout: RetryTimeout = 120.0,
    force: Annotated[bool, typer.Option(
        "--force", help="Deploy even if the version's secrets changed since (error 10220): it brings back the "
                        "secret values that version was uploaded with.")] = False,
    yes: YesOption = False,
    progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Roll the Worker back to an earlier version, then verify it.

    Deploys the previous (or --to) version at 100 % and checks that it answers healthy.

    The database is never touched: rolling bookings back would lose them. Prints JSON; exit 1 when
    the rollback or the verification after it fails.
    """
    from bookingctl import output
    from ops.release import roll_back_and_verify
    from ops.rollback import FORCE_MEANS
    from ops.targets import cloudflare_client

    cfg = load_stack_config(stack, project_dir)
    with cloudflare_client() as client:
        confirm(f"Roll {cfg.worker_name} back to {to or 'its previous version'}?", yes, "roll back")
        report = roll_back_and_verify(client, _release_site(cfg), to=to, reason=reason, force=force,
                                      verify_after=verify_after, verify_deadline=timeout,
                                      log=output.progress_log(progress))
    if report.rollback.forced:
        output.warn(f"version {report.rollback.to_version} was deployed with --force: {FORCE_MEANS}")
    output.info(_state_hint(stack, project_dir, report.rollback.to_version))
    sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    if not report.ok:
        raise Failed("rolled back, but the site does not verify healthy with that version; see the report")


def watch(
    stack: Annotated[str, typer.Option("--stack", help="Watch https://<booking:domain>/api/health.")],
    duration: Annotated[str, typer.Option("--duration", help="How long, e.g. 10m, 600s, 1h.")] = "10m",
    base_url: Annotated[str | None, typer.Option(
        "--base-url", callback=url_option("--base-url"), help="Probe this site instead of the domain.")] = None,
    rollback_on_trigger: Annotated[bool, typer.Option(
        "--rollback/--no-rollback", help="Roll the Worker back when a trigger fires.")] = True,
    progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Watch a deployment and roll back when a guide trigger fires.

    Triggers: error rate > 5 % over 5 minutes, response time > 2 s for 10 minutes, database
    failures (thresholds: booking:watch). Before sampling, checks that a rollback would be possible
    (token, Worker, an earlier version). Prints JSON; exit 1 when a trigger fired.
    """
    from bookingctl import output
    from ops.release import roll_back_and_verify
    from ops.rollback import RollbackError, deployments, served_before
    from ops.targets import TargetError, UncertainWriteError, cloudflare_client, remote_database
    from ops.verify import Clock
    from ops.watch import RollbackOutcome, WatchSettings, http_probe
    from ops.watch import watch as run_watch

    seconds = parse_duration(duration)
    if not 0 <= seconds <= 24 * 3600:
        raise UsageError(f"--duration {duration!r}: at most 24h")
    cfg = load_stack_config(stack, project_dir)
    clock = Clock()
    site_url = (base_url or cfg.site_url).rstrip("/")
    on_trigger: Callable[[str], RollbackOutcome] | None = None
    with contextlib.ExitStack() as held:
        if rollback_on_trigger:
            # Learn now, not after ten minutes, whether a rollback could be done at all: the token, the
            # database the verification after it reads, and a version that served before this one.
            client = held.enter_context(cloudflare_client())
            site = dataclasses.replace(_release_site(cfg), url=site_url)
            remote_database(cfg.account_id, cfg.database_name, client=client)
            current, before = served_before(deployments(client, cfg.account_id, cfg.worker_name))
            if before is None or before == current:
                output.warn(f"{cfg.worker_name}: the deployment before the current one served the same version (or "
                            "there is none): the watch reports triggers but cannot roll back")
            else:
                def roll_back(reason: str) -> RollbackOutcome:
                    import cloudflare

                    try:
                        report = roll_back_and_verify(client, site, to=before, reason=f"watch: {reason}",
                                                      verify_deadline=60, log=output.info)
                    except (RollbackError, TargetError, UncertainWriteError, cloudflare.APIError) as exc:
                        output.error(f"automatic rollback failed: {exc}")
                        return RollbackOutcome(error=str(exc))
                    output.info(_state_hint(stack, project_dir, report.rollback.to_version))
                    return RollbackOutcome(report=report.to_dict())

                on_trigger = roll_back

        probe = held.enter_context(contextlib.closing(http_probe(site_url + "/api/health", clock)))
        result = run_watch(probe, WatchSettings(seconds, cfg.watch), clock, on_trigger,
                           log=output.progress_log(progress))
    sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    if result.trigger:
        raise typer.Exit(EXIT_FAILED)
