"""What the deployment hooks need to know about a stack, built from its typed config.

`infra/` builds a `DeployContext` when it declares the Worker; the hooks' callbacks hand it to
`ops.releases.hooks`, which is imported only when a hook fires. Keeping the context beside the config lets
both sides share it without `infra` importing `ops` (or the reverse).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from booking_shared.deploy import BACKUP_DIR_ENV
from booking_shared.rollout import RolloutSettings
from booking_shared.wrangler_config import settings as wrangler_settings
from stackconfig.model import StackConfig


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
    # A SQL export before every deployment, uploaded to this R2 bucket (booking:preDeployExport).
    # None (the default): only the Time Travel bookmark. An export blocks the database's other
    # queries while it runs, so it does not belong on every deploy's critical path.
    export_bucket: str | None = None
    verify_deadline: float = 180.0
    # Builds the Cloudflare SDK client; None: from CLOUDFLARE_API_TOKEN (tests pass their double's).
    client_factory: Callable[[], Any] | None = field(default=None, compare=False)
    # The canary a new version goes through before it takes all traffic (booking:rollout).
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    # sha256 of the Worker bundle being deployed: what a quarantine record names.
    bundle_sha256: str = ""
    # The stack's R2 bucket, where quarantine records are kept (None: none are written or read).
    bucket: str | None = None
    project: str = "appointmentbooking"
    # Time for the canary's bake (ops.observation.verify.Clock); None: the real clock. Tests pass a fake one.
    clock: Any = field(default=None, compare=False)
    # Rollback-safe migrations (issue 15): the query corpus files (booking:servingQueries, resolved
    # inside the project) the hook's `migrate check` prepares, and the (migration name, reason, sha256
    # of the file approved) a reviewed stack file approves although the check calls them unsafe.
    serving_queries: tuple[Path, ...] = ()
    # The Worker bundle the stack deploys (booking:workerBundle): its SQL joins the corpus (None: the
    # reference Worker, worker/src/index.js).
    worker_bundle: Path | None = None
    # The migration files under migrations_dir and the table recording them: a project's wrangler file
    # may rename both (`migrations_pattern`, `migrations_table`; booking_shared/wrangler_config.py).
    migrations_pattern: str = "*.sql"
    migrations_table: str = "d1_migrations"
    approved_unsafe_migrations: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def of(cls, cfg: StackConfig, project_root: Path, bundle_sha256: str = "") -> DeployContext:
        """The hooks' context from the stack's typed config, and the project's wrangler file (if any) for
        where the migrations are and which table records them, as `bookingctl migrate` reads them."""
        found = wrangler_settings(project_root)
        return cls(
            stack=cfg.stack,
            account_id=cfg.account_id,
            database_name=cfg.database_name,
            worker_name=cfg.worker_name,
            base_url=cfg.site_url,
            migrations_dir=found.folder,
            migrations_pattern=found.pattern,
            migrations_table=found.table,
            backup_dir=Path(os.environ.get(BACKUP_DIR_ENV) or project_root / "backups" / cfg.stack),
            export_bucket=cfg.backup_bucket_name if cfg.rollout.pre_deploy_export else None,
            rollout=cfg.rollout,
            bundle_sha256=bundle_sha256,
            bucket=cfg.backup_bucket_name,
            project=cfg.project,
            serving_queries=tuple(project_root / p for p in cfg.serving_queries),
            worker_bundle=cfg.worker_bundle,
            approved_unsafe_migrations=tuple((a.name, a.reason, a.sha256) for a in cfg.approved_unsafe_migrations),
        )
