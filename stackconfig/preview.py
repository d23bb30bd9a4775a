"""A pull request's preview stack, derived from staging's: its own Worker, database, bucket, Pages
project and hostname, nothing of production's, no salon's hostname, no alerts, no zone rules.

`bookingctl preview derive --pr N` writes `Pulumi.pr-N.yaml` from `Pulumi.staging.yaml` with `derive`;
the model (stackconfig.model) checks every preview stack with `preview_isolated`, and the policy
pack's preview policies check the plan. Names carry `pr-N` after staging's own, so a preview's
database is `appointmentbooking-db-staging-pr-42`: its staging marker keeps the environment
isolation rules true, and `pr-42` keeps it apart from staging's and every other preview's.
The hostname is one label under the apex (`staging-pr-42.instylehairboutique.co.za`): Universal
SSL covers one level of subdomain (developers.cloudflare.com/ssl/edge-certificates/universal-ssl/
limitations/), so `pr-42.staging.<apex>` would have no certificate.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Protocol

from booking_shared.errors import InputError, KeyedValueError
from stackconfig.sections import Preview, RateLimits, SaasConfig, Tenant

PREFIX = "pr-"
DEFAULT_LIFETIME_DAYS = 7
MAX_LIFETIME_DAYS = 30
# Copied from staging as they are; everything else is set here or left out (tenants, SaaS, alerts).
_KEPT = ("accountId", "zoneId", "zonePlan", "workerRoute", "workerBundle", "compatibilityDate", "backupRetentionDays",
         "pagesProductionBranch", "rollout", "watch", "servingQueries", "approvedUnsafeMigrations", "turnstile")
_NAMED = ("workerName", "databaseName", "pagesProjectName", "backupBucketName")
_MAX_NAME = 63
SECRETS = ("paystackSecretKey", "googleCalendarCredentials", "whatsappToken")


class PreviewError(InputError):
    """A preview stack cannot be derived (a number out of range, a name too long)."""


def stack_name(pr: int) -> str:
    return f"{PREFIX}{pr}"


def pr_of(stack: str) -> int | None:
    """The pull request a stack name is the preview of, or None."""
    match = re.fullmatch(rf"{PREFIX}([1-9][0-9]{{0,6}})", stack)
    return int(match.group(1)) if match else None


def derive(staging: Mapping[str, Any], pr: int, *, today: dt.date,
           lifetime_days: int = DEFAULT_LIFETIME_DAYS) -> dict[str, Any]:
    """The `config:` of stack pr-`pr`, from staging's (`booking:*` keys as the file holds them).

    No secret is copied: a secret in a stack file is encrypted for that stack, and a preview gets
    the integrations' test-mode keys set by the workflow (SECRETS), never a production credential.
    """
    if not 1 <= pr <= 9_999_999:
        raise PreviewError(f"pull request number {pr} is not one (1 to 9,999,999)")
    if not 1 <= lifetime_days <= MAX_LIFETIME_DAYS:
        raise PreviewError(f"a preview lives 1 to {MAX_LIFETIME_DAYS} days, not {lifetime_days}")
    if staging.get("booking:environment") != "staging":
        raise PreviewError("a preview is derived from the staging stack (booking:environment: staging)")
    suffix = f"-{stack_name(pr)}"
    config: dict[str, Any] = {"booking:environment": "staging"}
    for key in _KEPT:
        if f"booking:{key}" in staging:
            config[f"booking:{key}"] = staging[f"booking:{key}"]
    for key in _NAMED:
        base = str(staging.get(f"booking:{key}") or "")
        if not base:
            raise PreviewError(f"Pulumi.staging.yaml has no booking:{key} to derive the preview's from")
        if len(base) + len(suffix) > _MAX_NAME:
            raise PreviewError(f"booking:{key} {base!r} + {suffix!r} is over {_MAX_NAME} characters: shorten "
                               "staging's name or use a lower pull request number")
        config[f"booking:{key}"] = base + suffix
    first, _, apex = str(staging.get("booking:domain") or "").partition(".")
    if not apex:
        raise PreviewError("Pulumi.staging.yaml's booking:domain has no label under an apex to derive from")
    config["booking:domain"] = f"{first}{suffix}.{apex}"
    config["booking:healthCheck"] = False  # nobody is paged for a preview
    config["booking:rateLimits"] = {**_mapping(staging.get("booking:rateLimits")), "zoneRuleset": False}
    turnstile = _mapping(staging.get("booking:turnstile"))
    turnstile.pop("saasWidgets", None)  # no SaaS salons in a preview
    if turnstile:
        config["booking:turnstile"] = turnstile
    config["booking:preview"] = {"pr": pr, "expires": (today + dt.timedelta(days=lifetime_days)).isoformat()}
    return config


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


class _Previewed(Protocol):
    """What `preview_isolated` reads of a stack's config (stackconfig.model.StackConfig has it)."""

    @property
    def is_production(self) -> bool: ...
    @property
    def preview(self) -> Preview | None: ...
    @property
    def worker_name(self) -> str: ...
    @property
    def database_name(self) -> str: ...
    @property
    def pages_project_name(self) -> str: ...
    @property
    def backup_bucket_name(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def tenants(self) -> tuple[Tenant, ...]: ...
    @property
    def saas(self) -> SaasConfig | None: ...
    @property
    def health_check(self) -> bool: ...
    @property
    def alert_email(self) -> str | None: ...
    @property
    def rate_limits(self) -> RateLimits: ...


def preview_isolated(cfg: _Previewed) -> None:
    """A preview stack's config holds nothing of production's and nothing shared with staging's own
    (raises KeyedValueError naming the key)."""
    preview = cfg.preview
    assert preview is not None
    marker = stack_name(preview.pr)
    if cfg.is_production:
        raise KeyedValueError("preview", marker, "no preview section in a production stack")
    for key, value in (("workerName", cfg.worker_name), ("databaseName", cfg.database_name),
                       ("pagesProjectName", cfg.pages_project_name), ("backupBucketName", cfg.backup_bucket_name)):
        if not value.endswith(f"-{marker}"):
            raise KeyedValueError(key, value, f"a name ending in -{marker}: a preview's resources are its own")
    if f"-{marker}." not in f"{cfg.domain}.":
        raise KeyedValueError("domain", cfg.domain, f"a hostname whose first label ends in -{marker}")
    if cfg.tenants or cfg.saas is not None:
        raise KeyedValueError("tenants", len(cfg.tenants), "no tenants or saas in a preview: salons' hostnames are "
                                                           "production's")
    if cfg.health_check or cfg.alert_email:
        raise KeyedValueError("healthCheck", cfg.health_check, "false, and no alertEmail: nobody is paged for a "
                                                               "preview")
    if cfg.rate_limits.zone_ruleset:
        raise KeyedValueError("rateLimits.zoneRuleset", True, "false: a zone has one rate-limit entry point, "
                                                              "production's")
