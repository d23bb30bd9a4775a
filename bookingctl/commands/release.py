"""`bookingctl verify`, `rollback` and `watch`: is the release healthy, and taking it back when not."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import cloudflare
import typer

from booking_shared.deploy import deployment_urn
from booking_shared.text import printable
from bookingctl import output
from bookingctl.errors import EXIT_FAILED, Failed, UsageError
from bookingctl.options import (
    FormatOption,
    LocalOption,
    ProjectDir,
    TableOrJson,
    YesOption,
    confirm,
    load_stack_config,
    number_between,
    parse_duration,
    site_and_database,
    url_option,
)
from ops.observation.verify import Clock
from ops.observation.verify import verify as run_verify
from ops.releases import quarantine
from ops.releases.controller import Release
from ops.releases.release import Site, abort_split, release_status, roll_back_and_verify, split_of
from ops.releases.rollback import FORCE_MEANS, RollbackError, deployments, recent_versions, served_before, shares
from ops.releases.watch import RollbackOutcome, WatchSettings, http_probe
from ops.releases.watch import watch as run_watch
from ops.targets import Bucket, RemoteDatabase, TargetError, UncertainWriteError, WorkerScript, cloudflare_client

if TYPE_CHECKING:
    from ops.releases.watch import RollbackOutcome
    from stackconfig.model import StackConfig

ProgressOption = Annotated[bool | None, typer.Option(
    "--progress/--quiet", help="Report each attempt on stderr (default: only on a terminal).")]
RetryTimeout = Annotated[float, typer.Option(
    "--timeout", callback=number_between("--timeout", 0, 3600),
    help="Seconds to keep retrying failing checks (0 to 3600); no request runs more than 1 s past it.")]


def _state_hint(cfg: StackConfig, version: str) -> str:
    """What Pulumi's state believes after a rollback done outside `pulumi up`, and how to act on it."""

    stack = cfg.stack
    return (f"Pulumi's state still records the deployment that this rollback replaced; `pulumi refresh` will not "
            f"notice (the old deployment still exists). Fix the code and run `pulumi up` to deploy a new version; "
            f"to serve version {version} through Pulumi instead, run `pulumi up --stack {stack} --replace "
            f"'{deployment_urn(cfg.project, stack)}'` after pointing the code back at it.")


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

    if stack is None and base_url is None and local is None:
        raise UsageError("name what to verify: --stack STACK, or --base-url URL [--local FILE]")
    # A damaged file is the database check failing (exit 1, in the JSON), as a monitor must see it.
    url, db = site_and_database(stack, base_url, local, project_dir, damaged_ok=True)
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

    cfg = load_stack_config(stack, project_dir)
    with cloudflare_client() as client:
        confirm(f"Roll {cfg.worker_name} back to {to or 'its previous version'}?", yes, "roll back")
        report = roll_back_and_verify(client, Site.of(cfg), to=to, reason=reason, force=force,
                                      verify_after=verify_after, verify_deadline=timeout,
                                      log=output.progress_log(progress))
    if report.rollback.forced:
        output.warn(f"version {report.rollback.to_version} was deployed with --force: {FORCE_MEANS}")
    output.info(_state_hint(cfg, report.rollback.to_version))
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
            site = dataclasses.replace(Site.of(cfg), url=site_url)
            RemoteDatabase.of(cfg, client)
            current, before = served_before(deployments(WorkerScript.of(cfg, client)))
            if before is None or before == current:
                output.warn(f"{cfg.worker_name}: the deployment before the current one served the same version (or "
                            "there is none): the watch reports triggers but cannot roll back")
            else:
                def roll_back(reason: str) -> RollbackOutcome:

                    try:
                        report = roll_back_and_verify(client, site, to=before, reason=f"watch: {reason}",
                                                      verify_deadline=60, log=output.info)
                    except (RollbackError, TargetError, UncertainWriteError, cloudflare.APIError) as exc:
                        output.error(f"automatic rollback failed: {exc}")
                        return RollbackOutcome(error=str(exc))
                    output.info(_state_hint(cfg, report.rollback.to_version))
                    return RollbackOutcome(report=report.to_dict())

                on_trigger = roll_back

        probe = held.enter_context(contextlib.closing(http_probe(site_url + "/api/health", clock)))
        result = run_watch(probe, WatchSettings(seconds, cfg.watch), clock, on_trigger,
                           log=output.progress_log(progress))
    sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    if result.trigger:
        raise typer.Exit(EXIT_FAILED)


# --- bookingctl release: canary, status, abort, quarantine -----------------------------------

release_app = typer.Typer(help="Canary releases of the API Worker: status, canary, abort, quarantine.",
                          no_args_is_help=True)
quarantine_app = typer.Typer(help="Bundles that failed a release and may not ship until cleared.",
                             no_args_is_help=True)
release_app.add_typer(quarantine_app, name="quarantine")
StackRequired = Annotated[str, typer.Option("--stack", help="The stack whose API Worker this is about.")]


def _print_status(status: dict[str, object], fmt: TableOrJson) -> None:
    if fmt is TableOrJson.json:
        sys.stdout.write(json.dumps(status, indent=2) + "\n")
        return
    serving = status["serving"]
    assert isinstance(serving, list)
    lines = [f"stack {status['stack']}: {status['script']}"]
    lines += [f"  serving  {s['versionId']}  {s['percentage']:g} %" for s in serving] or ["  serving  nothing"]
    lines.append(f"  canary in progress: {status['canary'] or 'yes' if status['canaryInProgress'] else 'no'}")
    lines.append(f"  declared by the state: {status['declaredVersion'] or 'unknown'} (from {status['declaredFrom']})")
    converged = status["converged"]
    lines.append("  state and reality: " + ("agree" if converged else "unknown" if converged is None else
                                            f"DIFFER; converge with: {status['converge']}"))
    lines.append(f"  last canary verdict: {status['lastVerdict'] or 'none among the latest deployments'}")
    records = status["quarantine"]
    assert isinstance(records, list)
    active = [r for r in records if not r["cleared"]]
    lines.append(f"  quarantined bundles: {len(active)} ({len(records) - len(active)} cleared)")
    lines += [f"    {r['bundleSha256']}  version {r['versionId']}  {r['at']}  {r['reason']}" for r in active]

    sys.stdout.write("\n".join(printable(line, 2000) for line in lines) + "\n")


@release_app.command("status")
def status(
    stack: StackRequired,
    declared_version: Annotated[str | None, typer.Option(
        "--declared-version", help="The version the stack's state declares (`pulumi stack output workerVersionId`); "
                                   "default: read from the deployment pulumi up created.")] = None,
    require_converged: Annotated[bool, typer.Option(
        "--require-converged", help="Exit 1 unless the declared version serves all traffic (for CI).")] = False,
    fmt: FormatOption = TableOrJson.table,
    project_dir: ProjectDir = None,
) -> None:
    """What serves now, and whether the stack's Pulumi state says the same.

    Lists the versions and percentages serving, a canary in progress, the last canary verdict,
    the version the stack's state declares, and the quarantined bundles. After a rollback outside
    `pulumi up` the state still names the rolled-back deployment (refresh cannot see it): the
    output says so and prints the command that converges them.
    """

    # CI passes `pulumi up`'s output, which is empty when the update failed before producing one.
    declared_version = declared_version or None
    cfg = load_stack_config(stack, project_dir)
    with cloudflare_client() as client:
        found = release_status(client, Site.of(cfg), stack=cfg.stack, project=cfg.project,
                               bucket=cfg.backup_bucket_name, declared_version=declared_version)
    _print_status(found.to_dict(), fmt)
    if require_converged and found.converged is not True:
        raise Failed(f"stack {stack}: the state declares version {found.declared_version or 'unknown'} but "
                     f"{', '.join(f'{v} at {p:g} %' for v, p in found.serving.items()) or 'nothing'} serves; "
                     f"{found.converge or 'read the deployment list to learn what the state declares'}")


@release_app.command("canary")
def canary(
    stack: StackRequired,
    version_id: Annotated[str, typer.Option("--version-id", help="The version to release (one of the last 100).")],
    percent: Annotated[float | None, typer.Option(
        "--percent", callback=number_between("--percent", 1, 50, "a percentage"),
        help="Share of requests for the canary, 1-50 (default: booking:rollout.canaryPercent).")] = None,
    bake: Annotated[str | None, typer.Option(
        "--bake", help="How long to bake, e.g. 10m (default: booking:rollout.bakeMinutes); whole minutes.")] = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", callback=url_option("--base-url"),
        help="Probe this site instead of https://<booking:domain> (it must honour the version override).")] = None,
    smoke_timeout: Annotated[float, typer.Option(
        "--smoke-timeout", callback=number_between("--smoke-timeout", 0, 3600),
        help="Seconds the pinned smoke test keeps retrying until the version answers healthy (0 to 3600).")] = 120.0,
    bundle_sha256: Annotated[str | None, typer.Option(
        "--bundle-sha256", help="The sha256 of the bundle the version was built from: quarantined if the canary "
                                "fails (the version's message shows its first 16 digits).")] = None,
    yes: YesOption = False,
    progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Release a version through the canary outside `pulumi up`.

    The same controller as the deployment hook: a version-pinned smoke test at 0 %, the version at
    --percent for --bake, judged every minute against the serving version and by pinned probes; then 100 % to
    it (exit 0) or back to 100 % of the serving version (exit 1, quarantined). A quarantined
    version is refused. The stack's Pulumi state does not learn of it: `release status` shows how
    to converge.
    """

    if bundle_sha256 is not None:
        quarantine.check_sha256(bundle_sha256)
    minutes: int | None = None
    if bake is not None:
        seconds = parse_duration(bake, "--bake")
        if seconds % 60 or not 0 <= seconds <= 3600:
            raise UsageError(f"--bake {bake!r}: whole minutes from 0 to 60, e.g. 10m")
        minutes = int(seconds // 60)
    cfg = load_stack_config(stack, project_dir)
    settings = cfg.rollout
    log = output.progress_log(progress)
    with cloudflare_client() as client:
        worker = WorkerScript.of(cfg, client)
        if version_id not in recent_versions(worker):
            raise UsageError(f"{cfg.worker_name} has no version {version_id} among its last 100")
        release = Release(worker, stack, Bucket.of(cfg, client), bundle_sha256)
        release.refuse_quarantined(version_id)
        stable = release.serving(version_id)
        if stable is None:
            raise UsageError(f"{cfg.worker_name}: no other version serves, so there is nothing to judge "
                             f"{version_id} against; deploy it with `pulumi up`")
        confirm(f"Release {version_id} to {percent or settings.canary_percent:g} % of {cfg.domain} as a canary?", yes,
                "start a canary")
        # Outside `pulumi up` nothing else moves the last 100 %: the controller promotes a passing canary.
        report = release.canary(version_id, stable, settings=settings, base_url=base_url or cfg.site_url,
                                promote_after=True, log=log, percent=percent, bake_minutes=minutes,
                                smoke_deadline=smoke_timeout)
        if report.quarantines:
            if bundle_sha256:
                release.quarantine(version_id, report.reason, report.metrics(), log)
            else:
                output.warn(f"no quarantine record written: pass --bundle-sha256 to name the bundle {version_id} was "
                            "built from (Cloudflare's version list does not say)")
    sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    if report.promoted:
        output.info(_state_hint(cfg, version_id))
    if not report.promoted:
        raise Failed(f"canary of {version_id} failed: {report.reason}; 100 % of traffic is back on {stable}")


@release_app.command("abort")
def abort(stack: StackRequired, yes: YesOption = False, project_dir: ProjectDir = None) -> None:
    """Send 100 % of traffic back to the stable version of a canary in progress.

    The stable version is the one that served all traffic before the canary began. Does nothing
    (exit 0) when no canary is in progress.
    """

    cfg = load_stack_config(stack, project_dir)
    with cloudflare_client() as client:
        history = deployments(WorkerScript.of(cfg, client))
        split = split_of(history)
        if split is None:
            serving = shares(history[0]) if history else {}
            output.info(f"{cfg.worker_name}: no canary in progress ({', '.join(serving) or 'nothing'} serves)")
            return
        confirm(f"Send 100 % of {cfg.domain} back to {split.stable}?", yes, "abort the canary")
        created = abort_split(WorkerScript.of(cfg, client), split,
                              "canary aborted by bookingctl release abort")
    sys.stdout.write(json.dumps({"stable": split.stable, "deploymentId": created, "was": split.serving}, indent=2)
                     + "\n")


@quarantine_app.command("list")
def quarantine_list(stack: StackRequired, fmt: FormatOption = TableOrJson.table,
                    project_dir: ProjectDir = None) -> None:
    """Quarantine records of the stack's bucket, newest first (cleared ones too)."""

    cfg = load_stack_config(stack, project_dir)
    with cloudflare_client() as client:
        found = [r.to_dict() for r in quarantine.records(Bucket.of(cfg, client))]
    if fmt is TableOrJson.json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
        return
    for r in found:
        state = (f"cleared by {r['cleared']['approvedBy']}" if r["cleared"]
                 else "UNREADABLE" if r["unreadable"] else "QUARANTINED")
        sys.stdout.write(printable(f"{r['bundleSha256']}  {state}  version {r['versionId']}  {r['at']}  "
                                   f"{r['reason']}", 2000) + "\n")
    if not found:
        sys.stdout.write("no quarantine records\n")


@quarantine_app.command("clear")
def quarantine_clear(
    sha: Annotated[str, typer.Argument(help="The bundle's sha256 (from `quarantine list`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it may be released again.")],
    approved_by: Annotated[str, typer.Option("--approved-by", help="Who approved it.")],
    stack: StackRequired,
    project_dir: ProjectDir = None,
) -> None:
    """Let a quarantined bundle be released again; the record keeps who approved it and why."""

    quarantine.check_sha256(sha)
    cfg = load_stack_config(stack, project_dir)
    with cloudflare_client() as client:
        record = quarantine.clear(Bucket.of(cfg, client), sha, reason=reason,
                                  approved_by=approved_by)
    sys.stdout.write(json.dumps(record.to_dict(), indent=2) + "\n")
