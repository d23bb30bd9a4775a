"""`StackConfig`: the `booking:*` keys of `Pulumi.<stack>.yaml`, validated into one frozen model.

The Pulumi program, the offline planner and the operations all read configuration through this
model (`stackconfig.files.parse_config` builds it from the engine's flat config map); components
receive it, never `pulumi.Config`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel

from booking_shared.clock import today
from booking_shared.edge import (
    PUBLIC_WRITE_ENDPOINTS,
    RATE_LIMIT_ACTION,
    RATE_LIMIT_CHARACTERISTICS,
    owns_zone_rulesets,
    rule_expression,
)
from booking_shared.errors import KeyedValueError
from booking_shared.limits import RateLimitRule, ZonePlan
from booking_shared.naming import looks_like_staging
from booking_shared.rollout import DICTIONARY_KEY, VERSION_OVERRIDE_HEADER
from booking_shared.turnstile import over_account_limit
from booking_shared.watch import WatchThresholds
from stackconfig.jsonvalues import json_object as _json_object
from stackconfig.jsonvalues import json_value as _json_value
from stackconfig.preview import preview_isolated
from stackconfig.sections import (
    DEFAULT_RATE_LIMIT_NAMESPACE,
    PRODUCTION_ROLLOUT_MAX,
    GitBranch,
    HexId,
    Hostname,
    Preview,
    RateLimits,
    Rollout,
    SaasConfig,
    Tenant,
    TurnstileConfig,
    UnsafeMigrationApproval,
    WorkerRoute,
)

# D1 database, Worker and Pages project names: lowercase letters, digits and hyphens.
_RESOURCE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Cloudflare accepts at most 10 MB (compressed) for one Worker on the Workers Paid plan, 3 MB on
# Free. The plan reads the bundle whole and inlines it, so a larger file is refused unread.
WORKER_BUNDLE_MAX_BYTES = 10 * 1024 * 1024
_BUNDLE_ALLOWED = ("a path relative to the project folder and inside it (no leading / or ~, no '..'), "
                   "e.g. worker/src/index.js")
_CORPUS_ALLOWED = ("a list of paths relative to the project folder and inside it (no leading / or ~, no '..'), "
                   "e.g. [\"queries/booking-app.sql\"]")


def _check_corpus_path(value: Any) -> Any:
    # Read by `migrate check` and the deploy hook: a path out of the project would read any file.
    if isinstance(value, str) and (
            not value.strip() or value.startswith(("/", "~", "\\")) or ".." in re.split(r"[/\\]", value)
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in value)):
        raise ValueError(_CORPUS_ALLOWED)
    return value


class StackConfig(BaseModel):
    """Everything the program needs to know about one environment, validated."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    # Which stack of which Pulumi project this is: set by whoever read the file or the engine's map
    # (`stackconfig.files.parse_config`), never a key of it, so messages and Cloudflare calls name the
    # stack without carrying its name beside the config. Private attributes: not config keys, so a
    # `booking:stack` in a stack file is still an unknown key, and the config's schema lists neither.
    _stack: str = PrivateAttr(default="")
    _project: str = PrivateAttr(default="")

    environment: Literal["production", "staging"]
    account_id: HexId
    zone_id: HexId
    # The main zone's plan. Unset means free: every zone starts on Free, and the strictest reading
    # means a forgotten key can only make the program refuse what the zone cannot hold (naming this
    # key), never let `pulumi up` fail half-way at Cloudflare. The committed stacks state it.
    zone_plan: ZonePlan | None = None
    domain: Hostname
    worker_route: WorkerRoute
    database_name: str
    backup_retention_days: int = Field(ge=1, le=3650)
    tenants: tuple[Tenant, ...] = ()
    # Cloudflare for SaaS: salons' hostnames as data (custom hostnames), one route for all of them.
    saas: SaasConfig | None = None
    # Turnstile plan and SaaS widget count: how many widgets the hostnames above need.
    turnstile: TurnstileConfig = TurnstileConfig()
    worker_name: str
    worker_bundle: Path
    compatibility_date: dt.date
    pages_project_name: str
    pages_production_branch: GitBranch = "main"
    backup_bucket_name: str
    # A Cloudflare Health Check on /api/health. Health Checks need a paid zone plan (Pro or above):
    # on a Free zone (booking:zonePlan) it is refused, so such a stack turns it off and
    # production-completeness then flags production.
    health_check: bool = True
    # Receives the health-check alert; required in production (the guide's alerts are production's).
    alert_email: str | None = None
    # The canary, its bake and thresholds, and whether a SQL export precedes every deployment
    # (`rollout.preDeployExport`, off: an export blocks the database's other queries while it runs,
    # so bookings would fail during deploys; the Time Travel bookmark is the restore point, and the
    # scheduled workflow exports daily).
    rollout: Rollout = Rollout()
    watch: WatchThresholds = WatchThresholds()
    rate_limits: RateLimits = RateLimits()
    paystack_secret_key: SecretStr
    google_calendar_credentials: SecretStr
    whatsapp_token: SecretStr
    # Rollback-safe migrations: the application's query corpus `migrate check` and the deploy hook
    # prepare against every pending migration (booking:servingQueries), and the migrations the
    # check calls unsafe that a reviewed change of this file approves for `pulumi up`.
    serving_queries: tuple[str, ...] = ()
    approved_unsafe_migrations: tuple[UnsafeMigrationApproval, ...] = ()
    # Set only in a pull request's preview stack (`bookingctl preview derive`, stackconfig/preview.py).
    preview: Preview | None = None
    # How many pull-request previews may live at once (staging's file; `bookingctl preview up` destroys
    # the least recently updated beyond it). Each costs a Worker, a D1 database, a bucket and a Pages
    # project; D1 allows 10 databases an account on the Free plan (developers.cloudflare.com/d1/platform/limits/).
    preview_cap: int = Field(default=3, ge=1, le=20)

    @field_validator("serving_queries", mode="before")
    @classmethod
    def _serving_queries(cls, value: Any) -> Any:
        value = _json_value(value, f"valid JSON: {_CORPUS_ALLOWED}")
        if not isinstance(value, list | tuple):
            raise ValueError(_CORPUS_ALLOWED)
        return [_check_corpus_path(v) for v in value]

    @field_validator("approved_unsafe_migrations", mode="before")
    @classmethod
    def _approvals_json(cls, value: Any) -> Any:
        return _json_value(value, "valid JSON: a list of {name, sha256, reason}")

    @field_validator("worker_bundle", mode="before")
    @classmethod
    def _bundle(cls, value: Any) -> Any:
        # The bundle's bytes go into the plan and, under `pulumi up`, to Cloudflare as the Worker:
        # a path out of the project (/proc/self/environ, ../../etc/passwd) would publish that file.
        if isinstance(value, str) and (
                value.startswith(("/", "~", "\\")) or ".." in re.split(r"[/\\]", value)
                or any(ord(ch) < 32 or ord(ch) == 127 for ch in value)):
            raise ValueError(_BUNDLE_ALLOWED)
        return value

    @field_validator("database_name", "worker_name", "pages_project_name", "backup_bucket_name")
    @classmethod
    def _resource_name(cls, value: str) -> str:
        if not _RESOURCE_NAME.match(value):
            raise ValueError("1-63 lowercase letters, digits and hyphens, not starting or ending with '-'")
        return value

    @field_validator("worker_name")
    @classmethod
    def _override_key(cls, value: str) -> str:
        # Cloudflare accepts a leading digit in a Worker's name (workers/wrangler/configuration.mdx:
        # alphanumerics and dashes), but the canary pins requests with the name as the key of an RFC
        # 8941 Dictionary (booking_shared.rollout.override_header), and a key starts with a letter.
        if not DICTIONARY_KEY.fullmatch(value):
            raise ValueError(f"a name starting with a lowercase letter: it is the key of the {VERSION_OVERRIDE_HEADER} "
                             "header the canary's pinned smoke test sends (an RFC 8941 Dictionary key cannot start "
                             "with a digit), e.g. prefix it with a letter")
        return value

    @field_validator("compatibility_date", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError("a date written YYYY-MM-DD, e.g. 2026-10-01")
        return value

    @field_validator("compatibility_date")
    @classmethod
    def _date_not_future(cls, value: dt.date) -> dt.date:
        if value > today():
            raise ValueError(f"a date no later than today ({today().isoformat()})")
        return value

    @field_validator("alert_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", value):
            raise ValueError("an email address such as devops@company.com")
        return value

    @field_validator("tenants", mode="before")
    @classmethod
    def _tenants_json(cls, value: Any) -> Any:
        return _json_value(value, "valid JSON: a list of {slug, hostname, zoneId}")

    @field_validator("rollout", mode="before")
    @classmethod
    def _rollout_json(cls, value: Any) -> Any:
        return _json_value(value, "valid JSON: an object such as {canaryPercent: 10, bakeMinutes: 10}")

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _rate_limits_json(cls, value: Any) -> Any:
        return _json_object(value, RateLimits, "an object of limits", "{login: {requestsPerPeriod: 5, period: 60}}")

    @field_validator("saas", mode="before")
    @classmethod
    def _saas_json(cls, value: Any) -> Any:
        # null (also as the JSON text "null") is no SaaS section.
        value = _json_value(value, "valid JSON: an object {zoneId, fallbackHostname, minTlsVersion}")
        return None if value is None else _json_object(
            value, SaasConfig, "an object {zoneId, fallbackHostname, minTlsVersion}",
            "{zoneId: <32 hex>, fallbackHostname: salons.example.co.za}")

    @field_validator("turnstile", mode="before")
    @classmethod
    def _turnstile_json(cls, value: Any) -> Any:
        return _json_object(value, TurnstileConfig, "an object {plan, saasWidgets}", "{plan: enterprise}")

    @field_validator("preview", mode="before")
    @classmethod
    def _preview_json(cls, value: Any) -> Any:
        return _json_object(value, Preview, "an object {pr, expires}", "{pr: 42, expires: 2026-12-19}")

    @field_validator("watch", mode="before")
    @classmethod
    def _watch(cls, value: Any) -> Any:
        return _json_object(value, WatchThresholds, "an object of thresholds",
                            "{errorRatePercent: 5, errorWindowSeconds: 300}")

    @model_validator(mode="after")
    def _environment_isolation(self) -> StackConfig:
        production = self.environment == "production"
        if self.preview is not None:
            preview_isolated(self)
        if production and looks_like_staging(self.database_name):
            raise KeyedValueError("databaseName", self.database_name,
                              "a production database name without a staging/test marker "
                              "(e.g. appointmentbooking-db)")
        if not production and not looks_like_staging(self.database_name):
            raise KeyedValueError("databaseName", self.database_name,
                              "a staging database name that says so (e.g. appointmentbooking-db-staging), "
                              "so it can never be mistaken for production")
        if production and looks_like_staging(self.domain):
            raise KeyedValueError("domain", self.domain, "a production hostname without a staging/test label")
        if self.alert_email and not self.health_check:
            raise KeyedValueError("alertEmail", self.alert_email, "no alert address while booking:healthCheck is false "
                                                              "(the alert is the health check's)")
        if production and self.health_check and not self.alert_email:
            raise KeyedValueError("alertEmail", None, "an address for production's health alerts "
                                                  "(the guide: alert when the health check fails)")
        if production and self.rollout.bake_minutes < 5:
            raise KeyedValueError("rollout.bakeMinutes", self.rollout.bake_minutes,
                                  "at least 5 in production (the guide's shortest rollback window: an error rate "
                                  "above 5 % for 5 minutes); only staging may bake for 0-2 minutes")
        if production:
            self._rollout_can_roll_back()
        self._own_rate_limit_namespace()
        seen: dict[str, str] = {self.domain: "booking:domain"}
        slugs: set[str] = set()
        for index, tenant in enumerate(self.tenants):
            where = f"tenants[{index}]"
            if production and looks_like_staging(tenant.hostname):
                raise KeyedValueError(f"{where}.hostname", tenant.hostname,
                                  "a production hostname without a staging/test label")
            if tenant.hostname in seen:
                raise KeyedValueError(where, tenant.hostname,
                                  f"a hostname not already served by {seen[tenant.hostname]}")
            if tenant.slug in slugs:
                raise KeyedValueError(where, tenant.slug, "a slug used by one tenant only")
            seen[tenant.hostname] = f"booking:{where}"
            slugs.add(tenant.slug)
        if self.saas is not None:
            fallback = self.saas.fallback_hostname
            if production and looks_like_staging(fallback):
                raise KeyedValueError("saas.fallbackHostname", fallback,
                                      "a production hostname without a staging/test label")
            if fallback in seen:
                # Its record is originless (AAAA 100::): serving a site on it would blank that site.
                raise KeyedValueError("saas.fallbackHostname", fallback,
                                      f"a hostname of its own, not one already served by {seen[fallback]} (the "
                                      "fallback record is originless: only the Worker answers there)")
        self._turnstile_fits()
        return self

    def _rollout_can_roll_back(self) -> None:
        """Production's canary thresholds stay near the guide's triggers (5 % errors, 2 s), or it never rolls back."""
        rollout = self.rollout
        for key, value, most, why in (
                ("errorRatePercent", rollout.error_rate_percent, PRODUCTION_ROLLOUT_MAX["errorRatePercent"],
                 "the guide rolls back above 5 %; a canary failing 1 request in 4 must not take all traffic"),
                ("latencySeconds", rollout.latency_seconds, PRODUCTION_ROLLOUT_MAX["latencySeconds"],
                 "the guide rolls back above 2 s; a booking page slower than 10 s is down for a salon's client"),
                # The error rate is taken over at least minRequests requests, so a minimum above the
                # canary's traffic turns 1,000 errors in 1,000 requests into 0.1 %, and a verdict on probes.
                ("minRequests", rollout.min_requests, PRODUCTION_ROLLOUT_MAX["minRequests"],
                 "errors are counted over at least minRequests requests, so a minimum above the canary's traffic "
                 "hides every error")):
            if value > most:
                raise KeyedValueError(f"rollout.{key}", value, f"at most {most:g} in production ({why})")

    def _own_rate_limit_namespace(self) -> None:
        """The Worker's rate-limit counters are account-wide: a stack never uses the other environment's default."""
        chosen = self.rate_limits.worker.namespace_id
        for other, default in DEFAULT_RATE_LIMIT_NAMESPACE.items():
            if other != self.environment and chosen == default:
                raise KeyedValueError("rateLimits.worker.namespaceId", chosen,
                                      f"a namespace other than {default}, {other}'s default: production and staging "
                                      "share the account, so one namespace would share their counters (leave it "
                                      "unset for this environment's own)")

    def _turnstile_fits(self) -> None:
        """The widgets the program declares fit the account (Cloudflare refuses a 21st widget)."""
        if self.saas is None and "saas_widgets" in self.turnstile.model_fields_set:
            raise KeyedValueError("turnstile.saasWidgets", self.turnstile.saas_widgets,
                                  "no saasWidgets without booking:saas (there are no SaaS salons to list)")
        hostnames = [self.domain, *(t.hostname for t in self.tenants)]
        problem = over_account_limit(hostnames, self.turnstile.plan, self.turnstile.saas_widgets if self.saas else 0)
        if problem is not None:
            raise KeyedValueError(
                "tenants", f"{len(self.tenants)} tenants",
                f"Turnstile widgets that fit the account; {problem}. With Turnstile Enterprise set "
                "booking:turnstile.plan to enterprise (200 hostnames a widget); otherwise serve fewer "
                "booking:tenants (or fewer booking:turnstile.saasWidgets with booking:saas)")

    def of_stack(self, stack: str, project: str) -> StackConfig:
        """This config as stack `stack` of project `project` (the file's reader knows both)."""
        named = self.model_copy()
        named._stack, named._project = stack, project
        return named

    @property
    def stack(self) -> str:
        """The stack's name (Pulumi.<stack>.yaml); empty for a config built from keys alone."""
        return self._stack

    @property
    def project(self) -> str:
        """The Pulumi project's name (Pulumi.yaml `name`); empty for a config built from keys alone."""
        return self._project

    # Derived values used by several components; kept here so they are computed one way.
    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def route_pattern(self) -> str:
        return f"{self.domain}{self.worker_route}"

    @property
    def site_url(self) -> str:
        return f"https://{self.domain}"

    @property
    def health_url(self) -> str:
        return f"{self.site_url}/api/health"

    @property
    def owns_zone_rulesets(self) -> bool:
        """Whether this stack declares the http_ratelimit entry point of the zones it serves."""
        return owns_zone_rulesets(self.rate_limits.zone_ruleset, self.environment)

    @property
    def zones(self) -> list[ServedZone]:
        """Every zone the stack serves hostnames in, once each: the main zone, the tenants' zones and
        the SaaS zone, each with its plan (the first stated for that zone id, else free)."""
        zones: dict[str, ServedZone] = {
            self.zone_id: ServedZone("main", self.zone_id, "zonePlan", "the main zone (booking:zoneId)",
                                     self.plan_of(self.zone_id), (self.domain,))}
        for index, tenant in enumerate(self.tenants):
            known = zones.get(tenant.zone_id) or ServedZone(
                f"tenant-{tenant.slug}", tenant.zone_id, f"tenants[{index}].zonePlan",
                f"tenant {tenant.slug}'s zone (booking:tenants[{index}].zoneId)", self.plan_of(tenant.zone_id), ())
            assert known.hostnames is not None
            zones[tenant.zone_id] = dataclasses.replace(known, hostnames=(*known.hostnames, tenant.hostname))
        if self.saas is not None:
            # Salons' custom hostnames are data (bookingctl tenants): the SaaS zone's rules cover every
            # hostname of the zone (hostnames None); the zone belongs to this environment alone.
            zones[self.saas.zone_id] = ServedZone("saas", self.saas.zone_id, "saas.zonePlan",
                                                  "the SaaS zone (booking:saas.zoneId)",
                                                  self.plan_of(self.saas.zone_id), None)
        return list(zones.values())

    def rate_limit_rules(self, zone: ServedZone) -> tuple[RateLimitRule, ...]:
        """The rate limiting rules infra/edge.py writes in `zone`'s entry point (one per public write
        endpoint), as config's plan check and `doctor` read them."""
        return tuple(RateLimitRule(e.key, rule_expression(zone.hostnames, e), RATE_LIMIT_ACTION,
                                   self.rate_limits.for_endpoint(e.key).period,
                                   self.rate_limits.for_endpoint(e.key).mitigation_timeout, RATE_LIMIT_CHARACTERISTICS)
                     for e in PUBLIC_WRITE_ENDPOINTS)

    def plan_of(self, zone_id: str) -> ZonePlan:
        """A zone's plan: the first key that states it (zonePlan, tenants[].zonePlan, saas.zonePlan),
        else free (why: StackConfig.zone_plan)."""
        return next((plan for zone, plan, _key in self.plan_keys() if zone == zone_id and plan is not None), "free")

    def plan_keys(self) -> list[tuple[str, ZonePlan | None, str]]:
        """(zone id, the plan stated or None, the key) for every key that may state a zone's plan."""
        keys: list[tuple[str, ZonePlan | None, str]] = [(self.zone_id, self.zone_plan, "zonePlan")]
        keys += [(t.zone_id, t.zone_plan, f"tenants[{i}].zonePlan") for i, t in enumerate(self.tenants)]
        if self.saas is not None:
            keys.append((self.saas.zone_id, self.saas.zone_plan, "saas.zonePlan"))
        return keys


@dataclass(frozen=True)
class ServedZone:
    """A zone the stack serves hostnames in, as edge protection and the plan checks see it."""

    label: str  # names its ruleset: main, tenant-<slug> (the first tenant in the zone), saas
    zone_id: str
    plan_key: str  # the booking key whose plan applies (messages and fixes name it)
    what: str  # the zone in words, e.g. "tenant glamour's zone (booking:tenants[0].zoneId)"
    plan: ZonePlan
    # The hostnames the rules are limited to; None: every hostname of the zone (the SaaS zone).
    hostnames: tuple[str, ...] | None

    def named(self) -> str:
        return f"{self.what[:-1]} {self.zone_id})"
