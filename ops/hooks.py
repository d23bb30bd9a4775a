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

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops import backups, migrations
from ops.rollback import RollbackError, rollback
from ops.targets import RemoteDatabase, cloudflare_client, remote_database
from ops.verify import verify

if TYPE_CHECKING:
    from cloudflare import Cloudflare

    from infra.config import StackConfig

# Where pre-deploy backups go when the hook runs (CI points it at its artifact folder).
BACKUP_DIR_ENV = "BOOKING_BACKUP_DIR"


class DeployHookError(Exception):
    """A pre- or post-deployment step failed; the message names the step and what was done about it."""


@dataclass(frozen=True)
class DeployContext:
    """Everything the hooks need about one stack, resolved from its typed config."""

    stack: str
    account_id: str
    database_name: str
    worker_name: str
    base_url: str
    migrations_dir: Path
    backup_dir: Path
    verify_deadline: float = 180.0
    client_factory: Callable[[], Cloudflare] = field(default=cloudflare_client, compare=False)


@dataclass
class PreDeployRecord:
    bookmark: str
    backup: str
    migrations_applied: list[str]


def migrations_checksum(folder: Path) -> str:
    """sha256 over the migration files' names and contents, in order."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.sql")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _database(ctx: DeployContext, client: Cloudflare) -> RemoteDatabase:
    return remote_database(ctx.account_id, ctx.database_name, client=client)


def before_traffic(ctx: DeployContext, log: Callable[[str], None] = print) -> PreDeployRecord:
    """Bookmark, back up, migrate. Raises DeployHookError (and restores on a failed migration)."""
    client = ctx.client_factory()
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


def after_traffic(ctx: DeployContext, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Verify; on failure roll the Worker back and raise DeployHookError naming the failed checks."""
    client = ctx.client_factory()
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


def context_for(cfg: StackConfig, stack: str, project_root: Path) -> DeployContext:
    """The hooks' context from the stack's typed config."""
    return DeployContext(
        stack=stack,
        account_id=cfg.account_id,
        database_name=cfg.database_name,
        worker_name=cfg.worker_name,
        base_url=f"https://{cfg.domain}",
        migrations_dir=project_root / "migrations",
        backup_dir=Path(os.environ.get(BACKUP_DIR_ENV) or project_root / "backups" / stack),
    )


def deployment_hooks(ctx: DeployContext) -> Any:
    """The `pulumi.ResourceHookBinding` for the Worker deployment (built only inside a program)."""
    import pulumi

    def pre(args: pulumi.ResourceHookArgs) -> None:
        before_traffic(ctx, log=pulumi.log.info)

    def post(args: pulumi.ResourceHookArgs) -> None:
        after_traffic(ctx, log=pulumi.log.info)

    # Named hooks: the engine identifies them by name across runs.
    pre_hook = pulumi.ResourceHook("booking-before-traffic", pre)
    post_hook = pulumi.ResourceHook("booking-after-traffic", post)
    return pulumi.ResourceHookBinding(before_create=[pre_hook], before_update=[pre_hook],
                                      after_create=[post_hook], after_update=[post_hook])
