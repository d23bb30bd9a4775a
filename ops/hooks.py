"""What `pulumi up` does around the moment traffic moves to a new Worker version.

Bound as Pulumi resource hooks to the stack's `WorkersDeployment` (`infra/hooks.py`):

- `before_traffic`, before it is created: take a Time Travel bookmark of the stack's D1 (instant,
  and the restore point for everything after it), optionally a SQL export uploaded to the stack's
  R2 bucket (`booking:preDeployExport`; off by default because an export blocks the database's
  other queries while it runs), then apply pending migrations, so the schema is ready before the
  new version serves a request;
- `after_traffic`, after it is created: verify the site, its health contract (answered by the new
  version id, not a propagating old one) and the database; on failure roll the Worker back to the
  version that served before and fail the update, saying what serves now. A first deployment
  (no earlier one) has nothing to roll back to and no routes yet (they are created after it), so
  it is verified by `bookingctl verify --stack S` after `pulumi up` instead.

A rollback here never forces past changed secrets (Cloudflare's error 10220): that would bring
back the secret values the old version was uploaded with. The hook fails and the operator decides.

Why hooks on the deployment and not a dynamic resource for migrations: the deployment is the one
resource whose change means "traffic moves". Its annotation carries a checksum of migrations/, so
a change to the migrations alone also replaces the deployment and runs the same hooks.

Hooks never run under mocks or in preview (they are not `on_dry_run`); these are plain
functions, tested directly against the API double.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from booking_shared.deploy import DeployContext
from ops import backups, migrations
from ops.migration_check import refuse_unsafe
from ops.release import Site, roll_back_and_verify
from ops.rollback import RollbackError, SecretsChangedError, deployments, served_before
from ops.targets import TargetError, UncertainWriteError, cloudflare_client, remote_database
from ops.verify import verify

if TYPE_CHECKING:
    from cloudflare import Cloudflare


class DeployHookError(Exception):
    """A pre- or post-deployment step failed; the message names the step and what was done about it."""


@dataclass
class PreDeployRecord:
    bookmark: str
    backup: str | None  # the uploaded export's name, when booking:preDeployExport is on
    migrations_applied: list[str]


def _client(ctx: DeployContext) -> Cloudflare:
    client: Cloudflare = (ctx.client_factory or cloudflare_client)()
    return client


def before_traffic(ctx: DeployContext, log: Callable[[str], None] = print) -> PreDeployRecord:
    """Bookmark, (export,) migrate. Raises DeployHookError, naming the bookmark to go back to."""
    with _client(ctx) as client:
        db = remote_database(ctx.account_id, ctx.database_name, client=client, stack=ctx.stack)
        bookmark = db.bookmark()
        log(f"pre-deploy Time Travel bookmark of {db.label}: {bookmark} (restore with `bookingctl backup restore "
            f"--stack {ctx.stack} --bookmark {bookmark}`)")
        backup = None
        if ctx.export_bucket is not None:
            try:
                manifest = backups.create(db, ctx.backup_dir, reason=f"pre-deploy {ctx.stack}", label="pre-deploy")
                backups.upload(client, ctx.account_id, ctx.export_bucket, ctx.backup_dir, manifest)
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
            result = migrations.apply(db, migrations.discover(ctx.migrations_dir), log=log)
        except migrations.MigrationError as exc:
            raise DeployHookError(f"migrations failed, deployment stopped before traffic moved: {exc}") from exc
        log(f"migrations applied: {', '.join(result.applied) or 'none pending'}")
        return PreDeployRecord(bookmark, backup, result.applied)


def after_traffic(ctx: DeployContext, *, deployment_id: str | None = None, version_id: str | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Verify the new version; on failure roll back and raise DeployHookError saying what serves now."""
    import cloudflare

    site = Site(ctx.account_id, ctx.worker_name, ctx.database_name, ctx.base_url)
    with _client(ctx) as client:
        history = deployments(client, ctx.account_id, ctx.worker_name)
        earlier = [d for d in history if d.id != deployment_id]
        if not earlier:
            log(f"first deployment of {ctx.worker_name}: nothing earlier to roll back to, and its routes are "
                f"created after it; verify it once `pulumi up` is done: bookingctl verify --stack {ctx.stack}")
            return {"firstDeployment": True, "verified": False}
        db = remote_database(ctx.account_id, ctx.database_name, client=client, stack=ctx.stack)
        result = verify(ctx.base_url, db, deadline=ctx.verify_deadline, expected_version=version_id, log=log)
        if result.ok:
            log(f"post-deploy verification of version {version_id} passed in {result.elapsed:.0f} s")
            return result.to_dict()
        failed = result.failures()
        _, before = served_before(history, deployment_id)
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
        raise DeployHookError(f"post-deploy verification of version {r.from_version} failed ({failed}); rolled "
                              f"{ctx.worker_name} back to version {r.to_version} (deployment {r.deployment_id}), and "
                              f"{after}. The database was not touched. Pulumi's state still records the failed "
                              "deployment: fix the code and run `pulumi up` again.")
