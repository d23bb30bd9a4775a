"""The API Worker: a Worker, an immutable version of its code and bindings, and a deployment.

Why versions and deployments rather than a single script resource: every `pulumi up` that
changes the bundle, a binding or the compatibility date creates a new `WorkerVersion` (all of its
inputs force replacement, and the provider's delete of a version is a no-op, so earlier versions
stay in Cloudflare's list of the last 100). The `WorkersDeployment` then points 100 % of traffic at
the new version. Rolling back is therefore one API call that points a new deployment at an older
version id, with no rebuild, and the next `pulumi up` converges back to what the code declares.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_cloudflare as cloudflare

from booking_shared.deploy import pulumi_message
from booking_shared.naming import (
    DB_BINDING,
    ENVIRONMENT_VAR,
    REQUESTS_BINDING,
    SECRETS,
    VERSION_METADATA_BINDING,
    requests_dataset,
)

MAIN_MODULE = "index.js"


@dataclass(frozen=True)
class ApiWorkerArgs:
    account_id: str
    worker_name: str
    bundle: Path
    compatibility_date: str
    environment: str
    database_id: pulumi.Input[str]
    # Binding name (booking_shared.naming.SECRETS) -> value, each already a Pulumi secret.
    secrets: dict[str, pulumi.Output[str]]
    # sha256 of migrations/: part of the deployment, so a migration change alone runs the hooks.
    migrations_checksum: str = ""
    # Run around the moment traffic moves (ops/releases/hooks.py): backup + migrate before, verify after.
    hooks: pulumi.ResourceHookBinding | None = None
    # Bindings other components bring (infra/edge.py: the Turnstile secret, the rate-limit binding).
    extra_bindings: Sequence[cloudflare.WorkerVersionBindingArgsDict] = ()


class ApiWorker(pulumi.ComponentResource):
    """The booking API Worker with D1, secret and plain-text bindings and logs on."""

    worker_name: pulumi.Output[str]
    version_id: pulumi.Output[str]
    deployment_id: pulumi.Output[str]
    bundle_sha256: str

    def __init__(self, name: str, args: ApiWorkerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("booking:worker:ApiWorker", name, None, opts)
        code = args.bundle.read_bytes()
        self.bundle_sha256 = hashlib.sha256(code).hexdigest()

        worker = cloudflare.Worker(
            f"{name}-worker",
            account_id=args.account_id,
            name=args.worker_name,
            observability={
                "enabled": True,
                "head_sampling_rate": 1.0,
                "logs": {"enabled": True, "invocation_logs": True, "head_sampling_rate": 1.0},
            },
            # The API is served only through the zone's route, where the zone's security settings
            # apply; a workers.dev URL would be a second, unguarded way in.
            subdomain={"enabled": False, "previews_enabled": False},
            opts=pulumi.ResourceOptions(parent=self),
        )

        bindings: list[cloudflare.WorkerVersionBindingArgsDict] = [
            {"type": "d1", "name": DB_BINDING, "id": args.database_id},
            {"type": "plain_text", "name": ENVIRONMENT_VAR, "text": args.environment},
            # Lets /api/health report the version id that is actually serving.
            {"type": "version_metadata", "name": VERSION_METADATA_BINDING},
        ]
        for secret in SECRETS:
            bindings.append({"type": "secret_text", "name": secret.binding, "text": args.secrets[secret.binding]})
        # One data point per request (worker/src/index.js), the canary's per-version HTTP status and
        # time (ops/observation/analytics.py). The provider's binding type "analytics_engine" takes `dataset`,
        # "the name of the dataset to bind to"; Cloudflare creates the dataset on the first write
        # (cloudflare-docs analytics/analytics-engine/sql-api.mdx, "Table structure").
        bindings.append({"type": "analytics_engine", "name": REQUESTS_BINDING,
                         "dataset": requests_dataset(args.worker_name)})
        bindings.extend(args.extra_bindings)

        version = cloudflare.WorkerVersion(
            f"{name}-version",
            account_id=args.account_id,
            worker_id=worker.id,
            compatibility_date=args.compatibility_date,
            # An ES-module Worker with bindings must name its entry module.
            main_module=MAIN_MODULE,
            modules=[{
                "name": MAIN_MODULE,
                "content_type": "application/javascript+module",
                # Inline content (not a file path) so the same bundle plans identically on every
                # machine and only a real code change creates a new version.
                "content_base64": base64.b64encode(code).decode("ascii"),
            }],
            bindings=bindings,
            annotations={"workers_message": f"bundle sha256:{self.bundle_sha256[:16]}"},
            opts=pulumi.ResourceOptions(parent=self),
        )

        deployment = cloudflare.WorkersDeployment(
            f"{name}-deployment",
            account_id=args.account_id,
            script_name=worker.name,
            strategy="percentage",
            versions=[{"version_id": version.id, "percentage": 100.0}],
            annotations={"workers_message": pulumi_message(args.migrations_checksum)},
            opts=pulumi.ResourceOptions(parent=self, hooks=args.hooks),
        )

        # Read the name back from the deployment so that whatever routes traffic to this Worker
        # (routes take `worker_name`) is created only once a deployment exists to serve it.
        self.worker_name = deployment.script_name
        self.version_id = version.id
        self.deployment_id = deployment.id
        self.register_outputs({
            "workerName": self.worker_name,
            "versionId": self.version_id,
            "deploymentId": self.deployment_id,
        })
