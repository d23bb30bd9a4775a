"""Wires the platform's components for one environment from its typed config."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pulumi
import pulumi_cloudflare as cloudflare

from booking_shared.deploy import API_COMPONENT, migrations_checksum
from booking_shared.naming import PAGES_ORIGIN_VAR, SECRETS
from booking_shared.turnstile import SaasWidgetContext
from infra.backups import BackupBucket, BackupBucketArgs
from infra.database import Database, DatabaseArgs
from infra.edge import EdgeProtection, EdgeProtectionArgs, EdgeZone
from infra.hooks import deployment_hooks
from infra.monitoring import Monitoring, MonitoringArgs
from infra.pages import BookingSite, BookingSiteArgs
from infra.routing import SiteHostname, SiteHostnameArgs
from infra.saas import SaasZone, SaasZoneArgs
from infra.worker import ApiWorker, ApiWorkerArgs
from stackconfig.deploy import DeployContext
from stackconfig.model import StackConfig


def declare_stack(cfg: StackConfig, project_root: Path) -> dict[str, pulumi.Input[object]]:
    """Declare every resource of the stack and return the stack outputs a reader needs.

    `project_root` holds migrations/ (applied by the deployment hooks) and backups/.
    """
    env = cfg.environment
    # The quarantine record of a failed canary names the bundle by its sha256 (ApiWorker reads the
    # same bytes; a hash of up to 10 MiB costs milliseconds).
    bundle_sha256 = hashlib.sha256(cfg.worker_bundle.read_bytes()).hexdigest()
    hook_context = DeployContext.of(cfg, project_root, bundle_sha256)
    database = Database(
        "database",
        DatabaseArgs(account_id=cfg.account_id, name=cfg.database_name, protect=cfg.is_production),
    )
    backups = BackupBucket(
        "backups",
        BackupBucketArgs(
            account_id=cfg.account_id,
            name=cfg.backup_bucket_name,
            retention_days=cfg.backup_retention_days,
            protect=cfg.is_production,
        ),
    )
    site = BookingSite(
        "site",
        BookingSiteArgs(
            account_id=cfg.account_id,
            project_name=cfg.pages_project_name,
            production_branch=cfg.pages_production_branch,
            environment=env,
            domain=cfg.domain,
            compatibility_date=cfg.compatibility_date.isoformat(),
            database_id=database.database_id,
        ),
    )
    edge = EdgeProtection("edge", edge_args(cfg))
    # On the SaaS path a salon's hostname has no origin of its own: the Worker serves its pages from
    # the Pages project (worker/src/index.js, toSite).
    site_origin: list[cloudflare.WorkerVersionBindingArgsDict] = (
        [{"type": "plain_text", "name": PAGES_ORIGIN_VAR, "text": site.subdomain}] if cfg.saas is not None else [])
    api = ApiWorker(
        API_COMPONENT,
        ApiWorkerArgs(
            account_id=cfg.account_id,
            worker_name=cfg.worker_name,
            bundle=cfg.worker_bundle,
            compatibility_date=cfg.compatibility_date.isoformat(),
            environment=env,
            database_id=database.database_id,
            # Output.secret keeps the values encrypted in state and redacted in every display.
            secrets={s.binding: pulumi.Output.secret(getattr(cfg, s.field).get_secret_value()) for s in SECRETS},
            migrations_checksum=migrations_checksum(hook_context.migrations_dir),
            hooks=deployment_hooks(hook_context),
            extra_bindings=[*edge.worker_bindings, *site_origin],
        ),
    )

    # Routes take the Worker name from its deployment, so they go live only once it exists.
    hostnames = [(cfg.domain, cfg.zone_id, "main")] + [(t.hostname, t.zone_id, f"tenant-{t.slug}") for t in cfg.tenants]
    for hostname, zone_id, name in hostnames:
        SiteHostname(
            name,
            SiteHostnameArgs(
                account_id=cfg.account_id,
                zone_id=zone_id,
                hostname=hostname,
                route_path=cfg.worker_route,
                worker_name=api.worker_name,
                pages_project_name=site.project_name,
                pages_subdomain=site.subdomain,
            ),
        )

    # Salons on their own domains through Cloudflare for SaaS: three resources however many salons
    # there are (each is a D1 row and a custom hostname, added by `bookingctl tenants add`). The
    # per-zone path above stays for hostnames whose zone is in this account.
    saas = None
    if cfg.saas is not None:
        saas = SaasZone(
            "saas",
            SaasZoneArgs(zone_id=cfg.saas.zone_id, fallback_hostname=cfg.saas.fallback_hostname,
                         worker_name=api.worker_name),
        )

    monitoring = None
    if cfg.health_check:
        monitoring = Monitoring(
            "monitoring",
            MonitoringArgs(account_id=cfg.account_id, zone_id=cfg.zone_id, domain=cfg.domain, environment=env,
                           alert_email=cfg.alert_email if cfg.is_production else None),
        )

    return {
        "environment": env,
        "domain": cfg.domain,
        "routePattern": cfg.route_pattern,
        "healthUrl": cfg.health_url,
        "workerName": api.worker_name,
        "workerVersionId": api.version_id,
        "deploymentId": api.deployment_id,
        "databaseName": database.name,
        "databaseId": database.database_id,
        "pagesUrl": site.url,
        "backupBucket": backups.bucket_name,
        "tenantHostnames": [t.hostname for t in cfg.tenants],
        "saasFallbackHostname": saas.fallback_origin if saas else None,
        "healthCheckId": monitoring.health_check_id if monitoring else None,
        "turnstileSitekey": edge.turnstile_sitekey,
        # The SaaS salons' first widget (booking:saas): the booking UI renders it on a salon's own hostname.
        "turnstileSaasSitekey": edge.turnstile_saas_sitekey,
        # Every widget's sitekey, by widget index: which one a hostname's page renders, the Worker
        # says (GET /api/turnstile/sitekey).
        "turnstileSitekeys": edge.turnstile_sitekeys,
        "turnstileSaasSitekeys": edge.turnstile_saas_sitekeys,
    }


def edge_args(cfg: StackConfig) -> EdgeProtectionArgs:
    """Edge protection for every zone the stack serves hostnames in: the main zone, each tenant zone and
    the SaaS zone."""
    existing = cfg.rate_limits.existing_ruleset_ids
    transforms = cfg.rate_limits.existing_transform_ruleset_ids
    zones = [EdgeZone(z.label, z.zone_id, z.hostnames, existing.get(z.zone_id), transforms.get(z.zone_id))
             for z in cfg.zones]
    return EdgeProtectionArgs(
        account_id=cfg.account_id,
        environment=cfg.environment,
        zones=zones,
        hostnames=[cfg.domain, *(t.hostname for t in cfg.tenants)],
        rate_limits=cfg.rate_limits,
        zone_rulesets=cfg.owns_zone_rulesets,
        worker_name=cfg.worker_name,
        saas_fallback_hostname=cfg.saas.fallback_hostname if cfg.saas is not None else None,
        turnstile_plan=cfg.turnstile.plan,
        saas_widgets=cfg.turnstile.saas_widgets,
        saas_widget_context=saas_widget_context(cfg),
    )


def saas_widget_context(cfg: StackConfig) -> SaasWidgetContext | None:
    """What the SaaS widgets' relist hook needs (None without booking:saas)."""
    if cfg.saas is None:
        return None
    return SaasWidgetContext(stack=cfg.stack, account_id=cfg.account_id, database_name=cfg.database_name,
                             worker_name=cfg.worker_name, fallback_hostname=cfg.saas.fallback_hostname,
                             plan=cfg.turnstile.plan,
                             served=frozenset([cfg.domain, *(t.hostname for t in cfg.tenants)]))
