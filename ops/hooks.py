"""What `pulumi up` does around the moment traffic moves to a new Worker version.

Bound as Pulumi resource hooks to the stack's `WorkersDeployment` (see `infra/worker.py`):

- before it is created or updated: take a Time Travel bookmark and a SQL backup of the stack's D1,
  then apply pending migrations, so the schema is ready before the new version serves a request
  (a migration failure restores the bookmark and stops the deployment before traffic moves);
- after it is created or updated: verify the site, its health contract and the database; on
  failure roll the Worker back to the version that served before and fail the update with a
  message naming the failed checks.

Why hooks on the deployment and not a dynamic resource for migrations: the deployment is the one
resource whose change means "traffic moves". Its annotation carries a checksum of migrations/, so
a change to the migrations alone also changes the deployment and runs the same hooks.

Hooks never run under mocks or in preview (they are not `on_dry_run`); `before_traffic` and
`after_traffic` are plain functions, tested directly against the API double.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from booking_shared.deploy import DeployContext
from ops import backups, migrations
from ops.rollback import RollbackError, rollback
from ops.targets import RemoteDatabase, cloudflare_client, remote_database
from ops.verify import verify

if TYPE_CHECKING:
    from cloudflare import Cloudflare


class DeployHookError(Exception):
    """A pre- or post-deployment step failed; the message names the step and what was done about it."""


@dataclass
class PreDeployRecord:
    bookmark: str
    backup: str
    migrations_applied: list[str]


def _client(ctx: DeployContext) -> Cloudflare:
    client: Cloudflare = (ctx.client_factory or cloudflare_client)()
    return client


def _database(ctx: DeployContext, client: Cloudflare) -> RemoteDatabase:
    return remote_database(ctx.account_id, ctx.database_name, client=client)


def before_traffic(ctx: DeployContext, log: Callable[[str], None] = print) -> PreDeployRecord:
    """Bookmark, back up, migrate. Raises DeployHookError (and restores on a failed migration)."""
    client = _client(ctx)
    try:
        db = _database(ctx, client)
        bookmark = db.bookmark()
        log(f"pre-deploy Time Travel bookmark of {db.label}: {bookmark}")
        try:
            manifest = backups.create(db, ctx.backup_dir, reason=f"pre-deploy {ctx.stack}", label="pre-deploy")
        except Exception as exc:
            raise DeployHookError(f"pre-deploy backup of {db.label} failed, deployment stopped before traffic "
                                  f"moved: {exc}") from exc
        log(f"pre-deploy backup {manifest.name} ({manifest.size} bytes) in {ctx.backup_dir}")
        try:
            result = migrations.apply(db, migrations.discover(ctx.migrations_dir), progress=log)
        except migrations.MigrationError as exc:
            raise DeployHookError(f"migrations failed, deployment stopped before traffic moved: {exc}") from exc
        log(f"migrations applied: {', '.join(result.applied) or 'none pending'}")
        return PreDeployRecord(bookmark, manifest.name, result.applied)
    finally:
        client.close()


def after_traffic(ctx: DeployContext, *, deployment_id: str | None = None, version_id: str | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Verify; on failure roll the Worker back and raise DeployHookError naming the failed checks."""
    client = _client(ctx)
    try:
        result = verify(ctx.base_url, _database(ctx, client), deadline=ctx.verify_deadline)
        if result.ok:
            log(f"post-deploy verification passed in {result.elapsed:.0f} s")
            return result.to_dict()
        failed = "; ".join(f"{c.name}: {c.detail}" for c in result.checks if not c.ok)
        try:
            rolled = rollback(client, ctx.account_id, ctx.worker_name, reason=f"post-deploy verification: {failed}")
        except RollbackError as exc:
            raise DeployHookError(f"post-deploy verification failed ({failed}) and the automatic rollback failed "
                                  f"too: {exc}. Roll back by hand: bookingctl rollback --stack {ctx.stack}") from exc
        forced = " (forced: secrets changed since)" if rolled.forced else ""
        raise DeployHookError(f"post-deploy verification failed ({failed}); rolled {ctx.worker_name} back from "
                              f"version {rolled.from_version} to {rolled.to_version}{forced}. The database was not "
                              "touched.")
    finally:
        client.close()
