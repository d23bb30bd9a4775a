"""The names the deployment hooks go by, and the checksum that ties migrations to a deploy.

What the hooks need to know about a stack (`DeployContext`) is built from the typed config, beside
it: `stackconfig/deploy.py`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

# Names the engine knows the hooks by across runs.
BEFORE_TRAFFIC_HOOK = "booking-before-traffic"
AFTER_TRAFFIC_HOOK = "booking-after-traffic"
DEPLOYMENT_FAILED_HOOK = "booking-deployment-failed"  # the error hook: the engine's create failed
# How the deployment Pulumi creates introduces itself in its `workers/message` annotation: what
# `bookingctl release status` looks for to learn which version the stack's state declares.
PULUMI_DEPLOYMENT_MESSAGE = "deployed by pulumi up"
# The whole annotation, matched exactly: a note typed in the dashboard that merely starts with those
# words ("deployed by pulumi up broke bookings, rolled back by hand") is not Pulumi's deployment.
_PULUMI_MESSAGE = re.compile(re.escape(PULUMI_DEPLOYMENT_MESSAGE) + r"; migrations [0-9a-f]{12}")


def pulumi_message(migrations_checksum: str) -> str:
    """The annotation of the deployment `pulumi up` creates (infra/worker.py)."""
    return f"{PULUMI_DEPLOYMENT_MESSAGE}; migrations {migrations_checksum[:12]}"


def is_pulumi_message(message: str) -> bool:
    return bool(_PULUMI_MESSAGE.fullmatch(message))
# Where a pre-deploy export goes when one is made (CI points it at its artifact folder).
BACKUP_DIR_ENV = "BOOKING_BACKUP_DIR"


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
