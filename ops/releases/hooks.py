"""What `pulumi up` does around the moment traffic moves to a new Worker version.

Bound as Pulumi resource hooks to the stack's `WorkersDeployment` (`infra/hooks.py`):

- `before_traffic`, before the engine creates the deployment: refuse a quarantined bundle; take a
  Time Travel bookmark of the stack's D1 (instant, non-blocking: the restore point for everything
  after it), optionally a SQL export uploaded to the stack's R2 bucket
  (`booking:rollout.preDeployExport`; off by default because an export blocks the database's other
  requests while it runs); apply pending migrations; then, when a version already serves, run the
  **canary** (ops/releases/canary.py): a version-pinned smoke test at 0 % of traffic, the new version at
  `canaryPercent` for `bakeMinutes`, judged against the serving version and by pinned probes. A passing canary
  returns and the engine creates the 100 % deployment, so Pulumi's state names what serves. A
  failing one sends 100 % back to the serving version, writes a quarantine record and raises: the
  engine aborts the update and its state still names the deployment that really serves.
- `after_traffic`, after the engine created it: verify the site, its health contract (answered by
  the new version id) and the database; on failure roll back to the version that served before,
  quarantine the bundle and fail the update. Pulumi's state then names the rolled-back deployment
  (the provider reads a deployment by its id, which still exists): `bookingctl release status`
  detects exactly that and prints how to converge. A first deployment (no earlier one) has no
  canary, nothing to roll back to and no routes yet (they are created after it), so it is verified
  by `bookingctl verify --stack S` after `pulumi up` instead.
- `deployment_failed`, the error hook, when the engine's create of the deployment itself fails
  (the provider's POST after a promoted canary): the canary's split would otherwise keep serving
  while the state names the old deployment. It sends 100 % back to the version that served before
  the canary (what `bookingctl release abort` does) and never asks the engine to retry: see there.

A rollback here never forces past changed secrets (Cloudflare's error 10220): that would bring
back the secret values the old version was uploaded with. The hook fails and the operator decides.

Why hooks on the deployment and not a dynamic resource for migrations: the deployment is the one
resource whose change means "traffic moves". Its annotation carries a checksum of migrations/, so
a change to the migrations alone also replaces the deployment and runs the same hooks.

Hooks never run under mocks or in preview (they are not `on_dry_run`); these are plain
functions, tested directly against the API double.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from booking_shared.errors import OperationFailed
from ops.backups import backups
from ops.database import migrations
from ops.database.migration_check import CheckError
from ops.database.serving import CorpusError
from ops.observation.verify import Clock, verify
from ops.releases import quarantine
from ops.releases.canary import CanaryReport, CanaryStopped
from ops.releases.controller import Release
from ops.releases.gate import refuse_unsafe
from ops.releases.release import Site, abort_split, roll_back_and_verify, split_of
from ops.releases.rollback import RollbackError, SecretsChangedError, deployments, served_before, shares
from ops.targets import Bucket, TargetError, UncertainWriteError, WorkerScript, cloudflare_client, remote_database
from stackconfig.deploy import DeployContext

if TYPE_CHECKING:
    from cloudflare import Cloudflare

# Where the canary's report goes as JSON when set (the deploy workflow puts it in deployment-report.json).
CANARY_REPORT_ENV = "BOOKING_CANARY_REPORT"


class DeployHookError(OperationFailed):
    """A pre- or post-deployment step failed; the message names the step and what was done about it."""


@dataclass
class PreDeployRecord:
    bookmark: str
    backup: str | None  # the uploaded export's name, when booking:rollout.preDeployExport is on
    migrations_applied: list[str]
    canary: dict[str, Any] | None = field(default=None)  # the canary's report, when one ran


def _client(ctx: DeployContext) -> Cloudflare:
    client: Cloudflare = (ctx.client_factory or cloudflare_client)()
    return client


def _write_report(report: CanaryReport) -> None:
    target = os.environ.get(CANARY_REPORT_ENV)
    if target:
        Path(target).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")


def _release(client: Cloudflare, ctx: DeployContext) -> Release:
    """The stack's Worker on its way to all traffic (ops/releases/controller.py), for this hook."""
    return Release(WorkerScript(client, ctx.account_id, ctx.worker_name), ctx.stack,
                   Bucket(client, ctx.account_id, ctx.bucket) if ctx.bucket else None, ctx.bundle_sha256 or None)


def before_traffic(ctx: DeployContext, log: Callable[[str], None] = print, *,
                   version_id: str | None = None) -> PreDeployRecord:
    """Quarantine check, bookmark, (export,) migrate, canary. Raises DeployHookError naming what was done."""
    with _client(ctx) as client:
        if ctx.bucket and ctx.bundle_sha256:
            import cloudflare

            try:
                _release(client, ctx).refuse_quarantined()
            except quarantine.QuarantinedError as exc:
                raise DeployHookError(f"deployment refused before anything changed: {exc}") from exc
            except (cloudflare.APIError, quarantine.QuarantineRecordError) as exc:
                # Fail closed: a release that cannot tell whether its bundle is quarantined does not go out.
                raise DeployHookError(f"deployment stopped before anything changed: the quarantine records in R2 "
                                      f"bucket {ctx.bucket} could not be read ({exc}); the token needs Workers R2 "
                                      "Storage access") from exc
        db = remote_database(ctx.account_id, ctx.database_name, client=client, stack=ctx.stack)
        bookmark = db.bookmark()
        log(f"pre-deploy Time Travel bookmark of {db.label}: {bookmark} (restore with `bookingctl backup restore "
            f"--stack {ctx.stack} --bookmark {bookmark}`)")
        backup = None
        if ctx.export_bucket is not None:
            try:
                manifest = backups.create(db, ctx.backup_dir, reason=f"pre-deploy {ctx.stack}", label="pre-deploy")
                backups.upload(Bucket(client, ctx.account_id, ctx.export_bucket), ctx.backup_dir, manifest)
            except Exception as exc:
                raise DeployHookError(f"pre-deploy export of {db.label} failed, deployment stopped before traffic "
                                      f"moved: {exc}") from exc
            backup = manifest.name
            log(f"pre-deploy export {manifest.name} ({manifest.size} bytes) uploaded to R2 bucket "
                f"{ctx.export_bucket}")
        try:
            # Issue 15: stop here, before anything is applied, if `migrate check` calls a pending migration
            # unsafe and the stack config does not approve it (raises a MigrationError).
            refuse_unsafe(db, ctx, log)
            result = migrations.apply(db, migrations.discover(ctx.migrations_dir, pattern=ctx.migrations_pattern),
                                      log=log, table=ctx.migrations_table)
        except (migrations.MigrationError, CheckError, CorpusError) as exc:
            # The check's own failures (an unreadable corpus, a schema that cannot be copied) stop the
            # update as a refused migration does: nothing applied, one line naming the file.
            raise DeployHookError(f"migrations failed, deployment stopped before traffic moved: {exc}") from exc
        log(f"migrations applied: {', '.join(result.applied) or 'none pending'}")
        record = PreDeployRecord(bookmark, backup, result.applied)
        if version_id is None:
            return record
        history = deployments(WorkerScript(client, ctx.account_id, ctx.worker_name))
        if not history:
            log(f"first deployment of {ctx.worker_name}: no version serves yet, so there is no canary; the engine "
                f"sends 100 % to {version_id} and `bookingctl verify --stack {ctx.stack}` checks it after the update")
            return record
        stable = _release(client, ctx).serving(version_id)
        if stable is None:
            log(f"version {version_id} already serves all traffic (a migration-only change or a redeploy): no canary; "
                "booking-after-traffic verifies it")
            return record
        record.canary = _canary(client, ctx, version_id, stable, log)
        return record


def _canary(client: Cloudflare, ctx: DeployContext, version_id: str, stable: str,
            log: Callable[[str], None]) -> dict[str, Any]:
    import cloudflare

    clock: Clock | None = ctx.clock
    try:
        # The engine moves the last 100 % (promote_after=False), so Pulumi's state names what serves.
        report = _release(client, ctx).canary(version_id, stable, settings=ctx.rollout, base_url=ctx.base_url,
                                              promote_after=False, log=log, clock=clock,
                                              smoke_deadline=ctx.verify_deadline)
    except CanaryStopped as exc:
        # An error, not a verdict on the bundle: no quarantine record, but the report says what was seen.
        _write_report(exc.report)
        still = exc.report.final_deployment is None
        raise DeployHookError(
            f"the canary of version {version_id} stopped: {exc}. Check which versions serve: bookingctl release "
            f"status --stack {ctx.stack}" + (f"; send everything back to {stable} with: bookingctl release abort "
                                             f"--stack {ctx.stack}" if still else "")) from exc
    except (RollbackError, TargetError, UncertainWriteError, cloudflare.APIError) as exc:
        raise DeployHookError(
            f"the canary of version {version_id} could not be run or ended ({exc}). Check which versions serve: "
            f"bookingctl release status --stack {ctx.stack}; send everything back to {stable} with: "
            f"bookingctl release abort --stack {ctx.stack}") from exc
    _write_report(report)
    if report.promoted:
        log(f"canary verdict: promote {version_id} ({report.reason}); metrics: {json.dumps(report.metrics())}")
        return report.to_dict()
    log(f"canary verdict: roll back ({report.reason}); metrics: {json.dumps(report.metrics())}")
    quarantined = (_release(client, ctx).quarantine(version_id, report.reason, report.metrics(), log)
                   if report.quarantines else "The bundle is not quarantined: the rollback is not held against it.")
    raise DeployHookError(
        f"canary of version {version_id} failed: {report.reason}. 100 % of traffic is back on version {stable} "
        f"(deployment {report.final_deployment}); the update is aborted, so Pulumi's state still names the "
        f"deployment that serves. {quarantined} The database was not touched; migrations applied before the "
        "canary stay (they must be safe for the serving version).")


def deployment_failed(ctx: DeployContext, *, operation: str, errors: Sequence[str], version_id: str | None,
                      log: Callable[[str], None] = print) -> bool:
    """The engine's create (or update) of the deployment failed: end this update's canary split. Never retries.

    Returns False, the engine's "do not retry": after a promoted canary the split was sent back to
    100 % of the stable version, so a retried create would move all traffic from there to the new
    version at once, on a verdict made for traffic that has since moved, and a create whose answer
    was lost may have landed already. (The engine would retry at once, up to 100 times; its
    `errors` lists each failure, newest first.) Running `pulumi up` again goes through the canary
    again. Raises DeployHookError, which fails the step with this message instead of the provider's
    error, so the message carries that error, when the split could not be ended.
    """
    import cloudflare

    failure = errors[0] if errors else "no error text from the engine"
    if operation not in ("create", "update"):
        # A failed delete (of the deployment a replacement superseded) happens after traffic moved.
        log(f"the {operation} of the deployment failed ({failure}); traffic is not touched")
        return False
    with _client(ctx) as client:
        try:
            history = deployments(WorkerScript(client, ctx.account_id, ctx.worker_name))
            split = split_of(history)
            if split is None:
                serving = ", ".join(f"{v} at {p:g} %" for v, p in (shares(history[0]) if history else {}).items())
                log(f"the {operation} of the deployment of version {version_id} failed ({failure}); "
                    f"{serving or 'nothing'} serves, no split to undo")
                return False
            if version_id is None or version_id not in split.serving:
                log(f"the {operation} of the deployment of version {version_id} failed ({failure}); the split "
                    f"serving now ({split.serving}) is not this update's canary and is left alone. End it with: "
                    f"bookingctl release abort --stack {ctx.stack}")
                return False
            created = abort_split(WorkerScript(client, ctx.account_id, ctx.worker_name), split,
                                  f"canary of {version_id} ended: pulumi up failed to create its 100 % deployment")
        except (RollbackError, UncertainWriteError, cloudflare.APIError) as exc:
            raise DeployHookError(
                f"the {operation} of the deployment of version {version_id} failed ({failure}), and sending all "
                f"traffic back to the version that served before the canary failed too ({exc}). The canary's split "
                f"may still serve. Check with: bookingctl release status --stack {ctx.stack}; end it with: "
                f"bookingctl release abort --stack {ctx.stack}") from exc
    log(f"the {operation} of the 100 % deployment of version {version_id} failed ({failure}); 100 % of traffic is "
        f"back on version {split.stable}, which served before the canary (deployment {created}), so Pulumi's state "
        f"names what serves. Not retried: fix the cause and run `pulumi up --stack {ctx.stack}` again (the canary "
        "runs again)")
    return False


def after_traffic(ctx: DeployContext, *, deployment_id: str | None = None, version_id: str | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Verify the new version; on failure roll back, quarantine and raise DeployHookError saying what serves now."""
    import cloudflare

    site = Site(ctx.account_id, ctx.worker_name, ctx.database_name, ctx.base_url)
    with _client(ctx) as client:
        history = deployments(WorkerScript(client, ctx.account_id, ctx.worker_name))
        earlier = [d for d in history if d.id != deployment_id]
        if not earlier:
            log(f"first deployment of {ctx.worker_name}: nothing earlier to roll back to, and its routes are "
                f"created after it; verify it once `pulumi up` is done: bookingctl verify --stack {ctx.stack}")
            return {"firstDeployment": True, "verified": False}
        db = remote_database(ctx.account_id, ctx.database_name, client=client, stack=ctx.stack)
        result = verify(ctx.base_url, db, deadline=ctx.verify_deadline, expected_version=version_id, log=log,
                        clock=ctx.clock)
        if result.ok:
            log(f"post-deploy verification of version {version_id} passed in {result.elapsed:.0f} s")
            return result.to_dict()
        failed = result.failures()
        _, before = _served_before_canary(history, deployment_id, version_id)
        if before is None or before == version_id:
            # A migration-only change or a redeploy of the same version: the code that served before
            # is the code that fails now, and an older version never ran against the new schema.
            raise DeployHookError(
                f"post-deploy verification of version {version_id} failed ({failed}). The deployment before this "
                "one served the same version, so this change was a migration or a redeploy: rolling the Worker "
                f"back cannot undo it, and the database is never rewound automatically. Version {version_id} still "
                "serves. The restore point is the Time Travel bookmark booking-before-traffic logged: "
                f"bookingctl backup restore --stack {ctx.stack} --bookmark BOOKMARK (it rewinds every booking "
                "made since)")
        try:
            rolled = roll_back_and_verify(client, site, to=before, reason=f"post-deploy verification: {failed}",
                                          verify_deadline=ctx.verify_deadline, log=log)
        except SecretsChangedError as exc:
            raise DeployHookError(f"post-deploy verification of version {version_id} failed ({failed}). The automatic "
                                  f"rollback was refused: {exc}. Version {version_id} still serves.") from exc
        except (RollbackError, TargetError, UncertainWriteError, cloudflare.APIError) as exc:
            raise DeployHookError(f"post-deploy verification of version {version_id} failed ({failed}) and the "
                                  f"automatic rollback failed too: {exc}. Version {version_id} may still serve; roll "
                                  f"back by hand: bookingctl rollback --stack {ctx.stack}") from exc
        r = rolled.rollback
        after = ("it verifies healthy" if rolled.ok else
                 "it does NOT verify healthy either: " + (rolled.verification.failures() if rolled.verification
                                                          else ""))
        quarantined = _release(client, ctx).quarantine(version_id, f"post-deploy verification: {failed}",
                                                       result.to_dict(), log)
        raise DeployHookError(f"post-deploy verification of version {r.from_version} failed ({failed}); rolled "
                              f"{ctx.worker_name} back to version {r.to_version} (deployment {r.deployment_id}), and "
                              f"{after}. The database was not touched. {quarantined} Pulumi's state still names the "
                              f"failed deployment: `bookingctl release status --stack {ctx.stack}` shows the drift "
                              "and how to converge.")


def _served_before_canary(history: list[Any], deployment_id: str | None,
                          version_id: str | None) -> tuple[str | None, str | None]:
    """Like served_before, but looking past the canary's own split deployments of this version."""
    current, before = served_before(history, deployment_id)
    if before is not None:
        return current, before
    index = next((i for i, d in enumerate(history) if d.id == deployment_id), 0) if deployment_id else 0
    for deployment in history[index + 1:]:
        split = sorted(((v.percentage, v.version_id) for v in deployment.versions if v.version_id != version_id),
                       reverse=True)
        if split:
            return current, split[0][1]
    return current, None
