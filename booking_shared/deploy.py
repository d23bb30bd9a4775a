"""What the deployment hooks need to know about a stack, and the checksum that ties migrations to a deploy.

`infra/` builds a `DeployContext` from the typed stack config when it declares the Worker; the
hooks' callbacks hand it to `ops.hooks`, which is imported only when a hook fires. Keeping the
context here lets both sides share it without `infra` importing `ops` (or the reverse).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from booking_shared.rollout import RolloutSettings

# Names the engine knows the hooks by across runs.
BEFORE_TRAFFIC_HOOK = "booking-before-traffic"
AFTER_TRAFFIC_HOOK = "booking-after-traffic"
DEPLOYMENT_FAILED_HOOK = "booking-deployment-failed"  # the error hook: the engine's create failed
# How the deployment Pulumi creates introduces itself in its `workers/message` annotation: what
# `bookingctl release status` looks for to learn which version the stack's state declares.
PULUMI_DEPLOYMENT_MESSAGE = "deployed by pulumi up"
# Where a pre-deploy export goes when one is made (CI points it at its artifact folder).
BACKUP_DIR_ENV = "BOOKING_BACKUP_DIR"


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
    # Time for the canary's bake (ops.verify.Clock); None: the real clock. Tests pass a fake one.
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


def migrations_checksum(folder: Path) -> str:
    """sha256 over the migration files' names and contents, in order."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.sql")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# The logical names infra/program.py gives the API Worker component and its deployment.
API_COMPONENT = "api"
DEPLOYMENT_TYPE = "cloudflare:index/workersDeployment:WorkersDeployment"


def deployment_urn(project: str, stack: str) -> str:
    """The URN of a stack's Worker deployment, for `pulumi up --replace`."""
    return (f"urn:pulumi:{stack}::{project}::booking:worker:ApiWorker${DEPLOYMENT_TYPE}::"
            f"{API_COMPONENT}-deployment")
