"""Typed stack configuration: the `booking:*` keys of `Pulumi.<stack>.yaml`, parsed once.

The Pulumi program, the offline planner and the operations all read configuration through
`parse_config`, which turns the engine's flat config map (``{"booking:domain": "..."}``, every
value a string, structured values JSON-encoded, exactly what the language host receives) into a
frozen `StackConfig`. Components receive that model, never `pulumi.Config`.

Every problem is reported at once, each naming the stack file, the key, what was found and what
is allowed, so one edit fixes a broken stack file instead of one edit per run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import json
import re
import stat
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from booking_shared.clock import today
from booking_shared.credentials import is_credential_key, looks_like_credential
from booking_shared.edge import (
    PUBLIC_WRITE_ENDPOINTS,
    RATE_LIMIT_ACTION,
    RATE_LIMIT_CHARACTERISTICS,
    owns_zone_rulesets,
    rule_expression,
)
from booking_shared.errors import InputError, KeyedValueError
from booking_shared.hostnames import hostname_problem, slug_problem
from booking_shared.limits import (
    HEALTH_CHECKS_BY_PLAN,
    PLAN_LABELS,
    RATE_LIMITS_BY_PLAN,
    TURNSTILE_WIDGETS_PER_ACCOUNT,
    PlanProblem,
    RateLimitRule,
    TurnstilePlan,
    ZonePlan,
    one_of,
    rate_limit_problems,
)
from booking_shared.naming import NAMESPACE, SECRET_KEYS, looks_like_staging
from booking_shared.rollout import DICTIONARY_KEY, VERSION_OVERRIDE_HEADER, OnInsufficientTraffic, RolloutSettings
from booking_shared.turnstile import over_account_limit
from booking_shared.watch import WatchThresholds

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
# D1 database, Worker and Pages project names: lowercase letters, digits and hyphens.
_RESOURCE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Cloudflare accepts at most 10 MB (compressed) for one Worker on the Workers Paid plan, 3 MB on
# Free. The plan reads the bundle whole and inlines it, so a larger file is refused unread.
WORKER_BUNDLE_MAX_BYTES = 10 * 1024 * 1024
# Path characters of RFC 3986 without '%' (no encoded dots or slashes), then at most a final '*'.
_ROUTE = re.compile(r"/[A-Za-z0-9\-._~!$&'()+,;=:@/]*\*?")
_ROUTE_ALLOWED = ("a Cloudflare route path: starting with '/', '*' only as the last character, no '..', '?', '#', "
                  "spaces, control characters or host part (the route is <domain><workerRoute>), e.g. '/*'")
# The health check and the booking API live under /api/; the route must hand them to the Worker.
_API_PROBE = "/api/health"
_BRANCH_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[]")
_BUNDLE_ALLOWED = ("a path relative to the project folder and inside it (no leading / or ~, no '..'), "
                   "e.g. worker/src/index.js")


def _check_hostname(value: str) -> str:
    problem = hostname_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _check_route(value: str) -> str:
    """A Workers route path: Cloudflare allows '*' only at the end and matches no query or fragment."""
    segments = value.rstrip("*").split("/")[1:]
    if not _ROUTE.fullmatch(value) or value.startswith("//") or any(seg in (".", "..") for seg in segments):
        raise ValueError(_ROUTE_ALLOWED)
    probe = _API_PROBE
    if not (probe.startswith(value[:-1]) if value.endswith("*") else probe == value):
        raise ValueError(f"a pattern that reaches {probe} (e.g. '/*' or '/api/*'): the Worker serves the API and "
                         "its health check there; any other route sends them to the Pages site")
    return value


def _check_branch(value: str) -> str:
    """A branch name as `git check-ref-format --branch` accepts it (Pages deploys that branch)."""
    parts = value.split("/")
    if (not value or len(value) > 255 or value == "@" or value.startswith("-") or value.endswith((".", "/"))
            or any(bad in value for bad in ("..", "//", "@{", "\\")) or _BRANCH_BAD.search(value)
            or any(not part or part.startswith(".") or part.endswith(".lock") for part in parts)):
        raise ValueError("a git branch name (no spaces, '..', '~^:?*[\\', '@{', no part starting with '.' or "
                         "ending '.lock', not starting with '-'), e.g. main")
    return value


def _check_hex_id(value: str) -> str:
    if not _HEX32.match(value):
        raise ValueError("a 32-character lowercase hexadecimal Cloudflare identifier")
    return value


# Field types that carry their check, so every model validates an id or a hostname the same way.
HexId = Annotated[str, AfterValidator(_check_hex_id)]
Hostname = Annotated[str, AfterValidator(_check_hostname)]


class Tenant(BaseModel):
    """An extra salon served by the same Worker on its own hostname and zone."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    slug: str
    hostname: Hostname
    zone_id: HexId
    # The plan of the salon's zone (free, pro, business, enterprise); unset: the plan stated for the
    # same zone elsewhere in this file, else free (see StackConfig.zone_plan).
    zone_plan: ZonePlan | None = None

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        problem = slug_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


# Production's loosest canary thresholds (StackConfig._rollout_can_roll_back): looser ones never roll back.
PRODUCTION_ROLLOUT_MAX = {"errorRatePercent": 25.0, "latencySeconds": 10.0, "minRequests": 10_000}


class Rollout(BaseModel):
    """`booking:rollout`: how a new Worker version earns its traffic (ops/canary.py).

    Every key is checked on its own, so one run reports every bad value. Production bakes at least
    5 minutes, the guide's shortest rollback window (error rate above 5 % for 5 minutes); staging
    may bake for 0-2 minutes to keep its deploys quick.
    """

    # Strict: a value of the wrong YAML type is refused, not converted (`true` is not 1 %, "no" not false).
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True,
                              strict=True)

    canary_percent: float = Field(default=10.0, ge=1, le=50, allow_inf_nan=False)
    bake_minutes: int = Field(default=10, ge=0, le=60)
    error_rate_percent: float = Field(default=5.0, ge=0.1, le=100, allow_inf_nan=False)
    latency_seconds: float = Field(default=2.0, ge=0.1, le=60, allow_inf_nan=False)
    min_requests: int = Field(default=100, ge=1, le=1_000_000)
    on_insufficient_traffic: OnInsufficientTraffic = "probes"
    analytics_delay_minutes: float = Field(default=3.0, ge=0, le=30, allow_inf_nan=False)
    pre_deploy_export: bool = False

    def settings(self) -> RolloutSettings:
        """The same values as the operations layer reads them."""
        return RolloutSettings(**self.model_dump())


# --- rollback-safe migrations (issue 15): the serving-query corpus and approved unsafe migrations ---
_MIGRATION_FILE = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")
_CORPUS_ALLOWED = ("a list of paths relative to the project folder and inside it (no leading / or ~, no '..'), "
                   "e.g. [\"queries/booking-app.sql\"]")


class UnsafeMigrationApproval(BaseModel):
    """A migration `migrate check` calls unsafe that a reviewer lets `pulumi up` apply anyway, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    name: str
    # The sha256 of the file's text (`migrate check --format json` prints it): the approval is of this
    # content, so a file changed after review (another DROP added) is refused again.
    sha256: str
    reason: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _MIGRATION_FILE.match(value):
            raise ValueError("a migration file name as in migrations/, e.g. 0007_drop_legacy_notes.sql")
        return value

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("the file's sha256 as `bookingctl migrate check --format json` prints it (64 hex digits)")
        return value.lower()

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        value = value.strip()
        if not 15 <= len(value) <= 500 or any(ord(ch) < 32 for ch in value):
            raise ValueError("why it is safe anyway, in a sentence of 15 to 500 characters on one line")
        return value


def _check_corpus_path(value: Any) -> Any:
    # Read by `migrate check` and the deploy hook: a path out of the project would read any file.
    if isinstance(value, str) and (
            not value.strip() or value.startswith(("/", "~", "\\")) or ".." in re.split(r"[/\\]", value)
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in value)):
        raise ValueError(_CORPUS_ALLOWED)
    return value


# --- booking:rateLimits (edge protection, infra/edge.py) ------------------------------------
# Periods and mitigation timeouts the Rulesets API accepts for rate limiting rules (which of them a
# zone may use depends on its plan: Free only 10 s, Pro up to 60 s, Business and above all).
RULE_PERIODS = Literal[10, 60, 120, 300, 600, 3600]
RULE_TIMEOUTS = Literal[0, 10, 60, 120, 300, 600, 3600, 86400]


class EndpointLimit(BaseModel):
    """One edge rate-limiting rule: at most `requestsPerPeriod` requests per `period` seconds from one
    client IP (per Cloudflare location), then blocked for `mitigationTimeout` seconds."""

    # Strict: a value of the wrong YAML type is refused, not converted (`true` is not 1 %, "no" not false).
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True,
                              strict=True)

    requests_per_period: int = Field(ge=1, le=100_000)
    period: RULE_PERIODS = 60
    mitigation_timeout: RULE_TIMEOUTS = 600


# The Worker's rate-limit namespace of each environment when `rateLimits.worker.namespaceId` is unset
# (infra/edge.py). Namespaces are account-wide, and production and staging share an account.
DEFAULT_RATE_LIMIT_NAMESPACE = {"production": 1001, "staging": 1002}


class WorkerLimit(BaseModel):
    """The Worker's rate-limit binding: `limit` requests per `period` (10 or 60 s, the only periods the
    binding takes) per tenant hostname, endpoint and client IP. `namespaceId` must be unique in the
    account; unset, each environment gets its own (infra/edge.py)."""

    # Strict: a value of the wrong YAML type is refused, not converted (`true` is not 1 %, "no" not false).
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True,
                              strict=True)

    limit: int = Field(default=20, ge=1, le=100_000)
    period: Literal[10, 60] = 60
    namespace_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class RateLimits(BaseModel):
    """`booking:rateLimits`: thresholds for the public write endpoints (booking_shared/edge.py).

    Defaults: 5 logins, 10 bookings, 5 messages and 10 payment initialisations a minute per client
    IP, each blocked for 10 minutes past the limit; well above what one person does by hand.
    `zoneRuleset` says whether this stack declares the zone's `http_ratelimit` entry point, which a
    zone has only one of (unset: production does, staging does not, since they share a zone).
    """

    # Strict: a value of the wrong YAML type is refused, not converted (`true` is not 1 %, "no" not false).
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True,
                              strict=True)

    login: EndpointLimit = EndpointLimit(requests_per_period=5)
    bookings: EndpointLimit = EndpointLimit(requests_per_period=10)
    messages: EndpointLimit = EndpointLimit(requests_per_period=5)
    payments: EndpointLimit = EndpointLimit(requests_per_period=10)
    worker: WorkerLimit = WorkerLimit()
    zone_ruleset: bool | None = None
    # Zone id -> the id of the zone's existing http_ratelimit entry point (one a dashboard rule left
    # behind), which the program imports instead of creating a second one (README, "A real pulumi up").
    existing_ruleset_ids: dict[HexId, HexId] = {}

    def for_endpoint(self, key: str) -> EndpointLimit:
        """The limit of a public write endpoint by its key (booking_shared.edge.Endpoint.key)."""
        limit = getattr(self, key)
        assert isinstance(limit, EndpointLimit), key
        return limit


class SaasConfig(BaseModel):
    """`booking:saas`: salons' own hostnames as Cloudflare for SaaS custom hostnames on one zone.

    The zone gets an originless fallback record (`fallback_hostname`, proxied), the custom hostname
    fallback origin and a `*/*` Worker route; each salon is then a row in D1 plus a custom hostname
    (`bookingctl tenants add`), not resources of the stack. `min_tls_version` is what every custom
    hostname `tenants add` creates accepts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    zone_id: HexId
    fallback_hostname: Hostname
    min_tls_version: Literal["1.0", "1.1", "1.2", "1.3"] = "1.2"
    # The SaaS zone's plan (as Tenant.zone_plan): its rate limiting rules must fit it.
    zone_plan: ZonePlan | None = None

    @field_validator("min_tls_version", mode="before")
    @classmethod
    def _tls(cls, value: Any) -> Any:
        # `minTlsVersion: 1.2` unquoted in the stack file arrives as a number; it means the same thing.
        if isinstance(value, float) and value in (1.0, 1.1, 1.2, 1.3):
            return f"{value:.1f}"
        return value


class TurnstileConfig(BaseModel):
    """`booking:turnstile`: the account's Turnstile plan and how many widgets the SaaS salons get.

    `plan` sets how many hostnames a widget takes (booking_shared.limits: 15 on free, 200 on
    enterprise), so how the site hostnames are spread over widgets. `saasWidgets` (with
    `booking:saas`) is how many widgets the program declares for the salons' custom hostnames;
    `bookingctl tenants add` refuses a salon once every one of them is full, naming this key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    plan: TurnstilePlan = "free"
    saas_widgets: int = Field(default=1, ge=1, le=TURNSTILE_WIDGETS_PER_ACCOUNT)

    @field_validator("saas_widgets", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        # pydantic reads `true` as 1: a count written as a boolean is a slip, not one widget.
        if isinstance(value, bool):
            raise ValueError(f"a number of widgets from 1 to {TURNSTILE_WIDGETS_PER_ACCOUNT}, not a boolean")
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

    environment: Literal["production", "staging"]
    account_id: HexId
    zone_id: HexId
    # The main zone's plan. Unset means free: every zone starts on Free, and the strictest reading
    # means a forgotten key can only make the program refuse what the zone cannot hold (naming this
    # key), never let `pulumi up` fail half-way at Cloudflare. The committed stacks state it.
    zone_plan: ZonePlan | None = None
    domain: Hostname
    worker_route: str
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
    pages_production_branch: str = "main"
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

    @field_validator("worker_route")
    @classmethod
    def _route(cls, value: str) -> str:
        return _check_route(value)

    @field_validator("pages_production_branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        return _check_branch(value)

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
        value = _json_value(value, "valid JSON: an object of limits, e.g. {login: {requestsPerPeriod: 5}}")
        if not isinstance(value, (dict, RateLimits)):
            raise ValueError("an object of limits, e.g. {login: {requestsPerPeriod: 5, period: 60}}")
        return value

    @field_validator("saas", mode="before")
    @classmethod
    def _saas_json(cls, value: Any) -> Any:
        value = _json_value(value, "valid JSON: an object {zoneId, fallbackHostname, minTlsVersion}")
        if value is not None and not isinstance(value, (dict, SaasConfig)):
            raise ValueError("an object {zoneId, fallbackHostname, minTlsVersion}, e.g. "
                             "{zoneId: <32 hex>, fallbackHostname: salons.example.co.za}")
        return value

    @field_validator("turnstile", mode="before")
    @classmethod
    def _turnstile_json(cls, value: Any) -> Any:
        value = _json_value(value, "valid JSON: an object {plan, saasWidgets}")
        if not isinstance(value, (dict, TurnstileConfig)):
            raise ValueError("an object {plan, saasWidgets}, e.g. {plan: enterprise}")
        return value

    @field_validator("watch", mode="before")
    @classmethod
    def _watch(cls, value: Any) -> Any:
        if isinstance(value, WatchThresholds):
            return value
        value = _json_value(value, "valid JSON: an object of thresholds")
        if not isinstance(value, dict):
            raise ValueError("an object of thresholds, e.g. {errorRatePercent: 5, errorWindowSeconds: 300}")
        try:
            return WatchThresholds.parse(value)
        except KeyedValueError as exc:
            raise KeyedValueError(f"watch.{exc.key}", exc.found, exc.allowed) from None

    @model_validator(mode="after")
    def _environment_isolation(self) -> StackConfig:
        production = self.environment == "production"
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


def _json_value(value: Any, allowed: str) -> Any:
    """Structured config as the engine hands it to the program: a JSON string (or already parsed)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(allowed) from exc
    return value


@dataclass(frozen=True)
class ConfigProblem:
    key: str  # without the namespace, e.g. "domain" or "tenants[0].hostname"; other namespaces in full
    found: str
    allowed: str
    fix: str | None = None  # None: the usual edit / `pulumi config set` hint


class ConfigError(InputError, pulumi.RunError):
    """A stack's configuration cannot be used; `problems` lists every bad key.

    A `RunError`, so under `pulumi up` the language host prints the message alone (every bad key
    with its fix) instead of a Python traceback.
    """

    def __init__(self, source: str, stack: str, problems: Iterable[ConfigProblem]) -> None:
        self.source, self.stack, self.problems = source, stack, list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} configuration problem(s) in stack '{self.stack}':"]
        for p in self.problems:
            lines.append(f"  - {_full_key(p.key)}: found {p.found}; expected {p.allowed}.")
            lines.append(f"    fix: {p.fix or _fix_hint(p.key, self.stack, self.source)}")
        return "\n".join(lines)


def _full_key(key: str) -> str:
    return key if ":" in key.split("[")[0].split(".")[0] else f"{NAMESPACE}:{key}"


def _fix_hint(key: str, stack: str, source: str) -> str:
    top = key.split("[")[0].split(".")[0]
    if top in SECRET_KEYS:
        return (f"remove any plain value from {source}, then run "
                f"`pulumi config set --secret {NAMESPACE}:{top} <value> --stack {stack}`")
    if top == "tenants":
        return f"edit the {NAMESPACE}:tenants list in {source}"
    if top == "saas":
        field = key.split(".", 1)[1] if "." in key else "zoneId"
        return (f"edit the {NAMESPACE}:saas object in {source}, or run "
                f"`pulumi config set --path {NAMESPACE}:saas.{field} <value> --stack {stack}`")
    return f"edit {NAMESPACE}:{top} in {source}, or run `pulumi config set {NAMESPACE}:{top} <value> --stack {stack}`"


def _show(value: object) -> str:
    if value is None:
        return "nothing (key not set)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "...'"


def parse_config(
    flat: Mapping[str, Any],
    secret_keys: Iterable[str],
    *,
    stack: str,
    source: str,
    project_root: Path,
) -> StackConfig:
    """Validate the engine's flat config map for one stack and return the typed model.

    `flat` holds namespaced keys (``booking:domain``); keys of other namespaces (a provider's,
    say) are ignored. `secret_keys` names the keys the engine marks secret. `source` is the stack
    file named in errors. Raises `ConfigError` listing every problem; never echoes secret values.
    """
    secret_set = set(secret_keys)
    prefix = f"{NAMESPACE}:"
    raw: dict[str, Any] = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
    problems: list[ConfigProblem] = []

    for key in SECRET_KEYS:
        if key in raw and f"{prefix}{key}" not in secret_set:
            problems.append(ConfigProblem(key, "a plain-text value (not shown)",
                                          "a Pulumi secret (a `secure:` entry), never plain text"))
            raw[key] = ""  # already reported; keep it from being reported as missing too
    hidden = _committed_credentials(flat, secret_set, stack, source, problems)
    for key in hidden:
        raw.pop(key, None)  # never validated (a validator would echo it), never planned
    try:
        cfg = StackConfig.model_validate(raw)
    except ValidationError as exc:
        problems.extend(p for p in _problems_from(exc, raw, stack, source) if _top(p.key) not in hidden)
    except KeyedValueError as exc:  # pragma: no cover - pydantic wraps these; kept for safety
        problems.append(ConfigProblem(exc.key, _show(exc.found), exc.allowed))
    else:
        if not problems:
            bundle, problem = _bundle_file(cfg.worker_bundle, project_root)
            problems += _corpus_problems(cfg.serving_queries, project_root)
            problems += zone_plan_problems(cfg, source)
            if problem is None and not problems:
                return cfg.model_copy(update={"worker_bundle": bundle})
            problems += [problem] if problem else []
    raise ConfigError(source, stack, problems)


def zone_plan_problems(cfg: StackConfig, source: str) -> list[ConfigProblem]:
    """What the zones' plans cannot hold: two plans stated for one zone, a Health Check on a Free
    zone, and each rate limiting rule the program would write in a zone whose entry point this
    stack declares (booking_shared/limits.py: rule count, fields, period, mitigation timeout)."""
    problems: list[ConfigProblem] = []
    first: dict[str, tuple[ZonePlan, str]] = {}
    for zone_id, stated, key in cfg.plan_keys():
        if stated is None:
            continue
        if zone_id in first and first[zone_id][0] != stated:
            problems.append(ConfigProblem(key, f"{stated!r} for zone {zone_id}",
                                          f"{first[zone_id][0]!r}, the plan booking:{first[zone_id][1]} states for the "
                                          "same zone (a zone has one plan)",
                                          f"state the zone's plan once (booking:{first[zone_id][1]}) and remove "
                                          f"booking:{key}, or make them agree"))
        first.setdefault(zone_id, (stated, key))
    if problems:
        return problems
    plan = cfg.plan_of(cfg.zone_id)
    if cfg.health_check and HEALTH_CHECKS_BY_PLAN[plan] == 0:
        problems.append(ConfigProblem(
            "healthCheck", f"true (the default) on the main zone (booking:zoneId {cfg.zone_id}), whose "
                           f"booking:zonePlan is {plan}",
            "false on a Free zone: Health Checks need Pro or above (Free holds 0)",
            f'set booking:healthCheck "false" in {source} (production-completeness then flags production), or, if '
            "the zone is on a paid plan, set booking:zonePlan to it"))
    if cfg.owns_zone_rulesets:
        for zone in cfg.zones:
            problems += _rate_limit_problems(cfg, zone, source)
    declared = {z.zone_id for z in cfg.zones} if cfg.owns_zone_rulesets else set()
    owner: dict[str, str] = {}
    for zone_id, ruleset_id in cfg.rate_limits.existing_ruleset_ids.items():
        key = f"rateLimits.existingRulesetIds.{zone_id}"
        # A ruleset lives in one zone (its import id is zones/<zone_id>/<ruleset_id>), and ids are
        # unique: one id under two zones, or a zone's own id, is a copy-paste slip that would import
        # the wrong thing or fail the import.
        if ruleset_id in owner:
            problems.append(ConfigProblem(key, f"ruleset {ruleset_id}, already given for zone {owner[ruleset_id]}",
                                          f"the id of zone {zone_id}'s own http_ratelimit entry point (a ruleset "
                                          f"belongs to one zone; zone {owner[ruleset_id]} has it)",
                                          "run `bookingctl doctor --stack S`, which names each zone's entry point"))
        elif ruleset_id in {z for z, _p, _k in cfg.plan_keys()}:
            problems.append(ConfigProblem(key, f"{ruleset_id}, a zone id of this stack, not a ruleset id",
                                          "the id of the zone's http_ratelimit entry point ruleset",
                                          "run `bookingctl doctor --stack S`, which names each zone's entry point"))
        owner.setdefault(ruleset_id, zone_id)
    for zone_id in cfg.rate_limits.existing_ruleset_ids:
        if zone_id not in declared:
            problems.append(ConfigProblem(
                f"rateLimits.existingRulesetIds.{zone_id}", "a zone this stack declares no rate limiting rules in",
                f"the id of a zone whose http_ratelimit entry point this stack declares: {', '.join(sorted(declared))}"
                if declared else "no entry: this stack declares no http_ratelimit entry point "
                                 "(booking:rateLimits.zoneRuleset is off)",
                f"remove booking:rateLimits.existingRulesetIds.{zone_id} from {source}"))
    return problems


_PLAN_FIX = ("check the zone's plan (dashboard: the zone's Overview, Plan) and set {key} to it; a zone below "
             "Business cannot hold the four rules, each matching one endpoint's exact method and host (the "
             "program does not drop the method, which would count other requests to the path, nor merge "
             "endpoints, which would share one counter): upgrade the zone to Business{other}")


def _rate_limit_problems(cfg: StackConfig, zone: ServedZone, source: str) -> list[ConfigProblem]:
    """The program's rules for one zone (one per public write endpoint) against the zone's plan."""
    rules = cfg.rate_limit_rules(zone)
    found = rate_limit_problems(zone.plan, rules)
    label = PLAN_LABELS[zone.plan]
    other = (", or serve the salon through booking:saas (the SaaS zone's rules cover it)"
             if zone.plan_key.startswith("tenants") else
             ", or set booking:rateLimits.zoneRuleset false and rely on the Worker's rate-limit binding "
             "(production's public-write-endpoints-rate-limited then blocks)")
    fix = _PLAN_FIX.format(key=f"booking:{zone.plan_key}", other=other)
    count: list[ConfigProblem] = []
    values: list[ConfigProblem] = []
    by_fields: dict[str, list[PlanProblem]] = {}
    for problem in found:
        if problem.field == "rules":
            better = min((p for p, limits in RATE_LIMITS_BY_PLAN.items() if limits.rules >= len(rules)),
                         key=lambda p: RATE_LIMITS_BY_PLAN[p].rules)
            count.append(ConfigProblem(
                zone.plan_key, f"{zone.plan} for {zone.named()}, which gets {len(rules)} rate limiting rules "
                               f"({', '.join(r.name for r in rules)})",
                f"a plan that holds {len(rules)} rules: {problem.allowed} ({PLAN_LABELS[better]} holds "
                f"{RATE_LIMITS_BY_PLAN[better].rules})", fix))
        elif problem.field == "expression":
            by_fields.setdefault(problem.found, []).append(problem)
        else:
            field = {"period": "period", "mitigation_timeout": "mitigationTimeout"}.get(problem.field, problem.field)
            key = f"rateLimits.{problem.rule}.{field}"
            values.append(ConfigProblem(
                key, f"{problem.found} for {zone.named()}, on the {label} plan ({zone.plan_key})", problem.allowed,
                f"set booking:{key} to {one_of(problem.choices)} in {source}, "
                f"or, if the zone's plan is higher, set booking:{zone.plan_key} to it"))
    fields = [ConfigProblem(zone.plan_key, f"{zone.plan} for {zone.named()}, where the rules for "
                                           f"{', '.join(str(p.rule) for p in using)} use {named}",
                            using[0].allowed, fix)
              for named, using in by_fields.items()]
    return count + fields + values


def _bundle_file(relative: Path, project_root: Path) -> tuple[Path, ConfigProblem | None]:
    """The bundle's real path, or why it cannot be the Worker: outside the project, not a file, too big."""
    root = project_root.resolve()
    found = _show(str(relative))
    try:
        bundle = (root / relative).resolve(strict=True)
        status = bundle.stat()
    except (OSError, RuntimeError):
        return root / relative, ConfigProblem("workerBundle", found, f"a path to the Worker's ES-module bundle, "
                                                                    f"relative to {root} (no file is there)")
    if not bundle.is_relative_to(root):
        return bundle, ConfigProblem("workerBundle", f"{found}, which resolves to {bundle}",
                                     f"a file inside the project ({root}); a symlink out of it is not followed")
    if not stat.S_ISREG(status.st_mode):
        return bundle, ConfigProblem("workerBundle", found, "a regular file (the built bundle), not a folder, "
                                                            "device or pipe")
    if status.st_size > WORKER_BUNDLE_MAX_BYTES:
        return bundle, ConfigProblem("workerBundle", f"{found} of {status.st_size:,} bytes",
                                     "at most 10 MiB: Cloudflare's limit for one Worker is 10 MB compressed on the "
                                     "Workers Paid plan (3 MB on Free)")
    return bundle, None


def _corpus_problems(paths: tuple[str, ...], project_root: Path) -> list[ConfigProblem]:
    """Each booking:servingQueries entry must be a regular file inside the project."""
    root = project_root.resolve()
    problems = []
    for index, relative in enumerate(paths):
        try:
            path = (root / relative).resolve(strict=True)
        except (OSError, RuntimeError):
            problems.append(ConfigProblem(f"servingQueries[{index}]", _show(relative),
                                          f"a query corpus file relative to {root} (no file is there)"))
            continue
        if not path.is_relative_to(root) or not path.is_file():
            problems.append(ConfigProblem(f"servingQueries[{index}]", _show(relative),
                                          f"a regular file inside the project ({root})"))
    return problems


def _committed_credentials(flat: Mapping[str, Any], secret_keys: set[str], stack: str, source: str,
                           problems: list[ConfigProblem]) -> set[str]:
    """Report credentials committed in plain text under any key; return the booking keys holding one.

    A plain provider token (`cloudflare:apiToken`) or a credential-shaped value in an ordinary key
    (`pagesProductionBranch: sk_live_...`) would be printed by the plan and is already exposed to
    everyone who can read the repository; the value is never repeated here.
    """
    prefix = f"{NAMESPACE}:"
    hidden = set()
    for key, value in flat.items():
        name = key.removeprefix(prefix)
        if key in secret_keys or (key.startswith(prefix) and name in SECRET_KEYS):
            continue  # secrets are redacted; plain booking secrets are reported above
        rotate = "rotate the credential (it stays in the file's git history)"
        if not key.startswith(prefix) and is_credential_key(key):
            problems.append(ConfigProblem(
                key, "a plain-text value (not shown)", "a credential only as a Pulumi secret, never in plain text",
                f"remove {key} from {source} and {rotate}; the provider reads its credential from the "
                f"environment (CLOUDFLARE_API_TOKEN from the CI secret store), or set it encrypted with "
                f"`pulumi config set --secret {key} <value> --stack {stack}`"))
            continue
        kind = looks_like_credential(value)
        if kind:
            shown = name if key.startswith(prefix) else key
            problems.append(ConfigProblem(
                shown, f"what looks like {kind} (not shown)",
                "no credential in a plain config value: credentials belong only in `secure:` entries",
                f"remove the value from {_full_key(shown)} in {source} and {rotate}"))
            if key.startswith(prefix):
                hidden.add(name)
    return hidden


def _top(key: str) -> str:
    return key.split("[")[0].split(".")[0]


def _problems_from(exc: ValidationError, raw: Mapping[str, Any], stack: str, source: str) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, KeyedValueError):
            problems.append(ConfigProblem(ctx_err.key, _show(ctx_err.found), ctx_err.allowed))
            continue
        key = _format_loc(loc)
        top = loc[0] if loc else ""
        if err["type"] == "extra_forbidden":
            problems.append(_unknown_key(key, loc, stack, source))
            continue
        if err["type"] == "missing":
            found = "nothing (key not set)"
        elif top in SECRET_KEYS:
            found = "a value (not shown)"
        else:
            found = _show(_dig(raw, loc))
        # Our validators' ValueErrors already say what is allowed; pydantic's own errors do not.
        allowed = str(ctx_err) if isinstance(ctx_err, Exception) else _plain(err)
        problems.append(ConfigProblem(key, found, allowed))
    return problems


def _unknown_key(key: str, loc: list[str], stack: str, source: str) -> ConfigProblem:
    """An unknown key, answered with the keys allowed where it is and the nearest of them."""
    if loc == ["preDeployExport"]:
        return ConfigProblem(key, "the key's old place", "booking:rollout.preDeployExport",
                             f"move it into booking:rollout in {source}: `booking:rollout: "
                             "{preDeployExport: true}`")
    in_tenant = loc[0] == "tenants" and len(loc) == 3
    in_rollout = loc[0] == "rollout" and len(loc) == 2
    in_saas = loc[0] == "saas" and len(loc) == 2
    model: type[BaseModel] = Tenant if in_tenant else _model_at(loc[:-1])
    known = sorted(field.alias or name for name, field in model.model_fields.items())
    nearest = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    where = f"{NAMESPACE}:{key.rsplit('.', 1)[0]}." if in_tenant or len(loc) > 1 else f"{NAMESPACE}:"
    hint = f" (did you mean {where}{nearest[0]}?)" if nearest else ""
    if nearest:
        fix = f"rename {NAMESPACE}:{key} to {where}{nearest[0]} in {source}"
    else:
        fix = f"remove {NAMESPACE}:{key} from {source}: the program reads no such key"
    if in_rollout:
        fix += f" (booking:rollout has only {', '.join(known)})"
    if in_tenant:
        fix += f" (a tenant has only {', '.join(known)})"
    if in_saas:
        fix += f" (booking:saas has only {', '.join(known)})"
    return ConfigProblem(key, "an unknown key", f"one of: {', '.join(known)}{hint}", fix)


def _model_at(path: list[str]) -> type[BaseModel]:
    """The model that holds the keys at `path` (e.g. rateLimits.login -> EndpointLimit)."""
    model: type[BaseModel] = StackConfig
    for part in path:
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        inner = field.annotation if field is not None else None
        # An optional section (`saas: SaasConfig | None`) holds the keys of its model.
        inner = next((a for a in typing.get_args(inner) if isinstance(a, type) and issubclass(a, BaseModel)), inner)
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return model
        model = inner
    return model


# Pydantic's error types in the words of this file's other messages ("expected <allowed>").
_PLAIN = {
    "missing": "a value (the key is required)",
    "int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_parsing": "a number", "float_type": "a number", "finite_number": "a finite number",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list", "tuple_type": "a list",
    "model_type": "an object of keys and values", "model_attributes_type": "an object of keys and values",
    "dict_type": "an object of keys and values",
    "date_type": "a date written YYYY-MM-DD", "date_parsing": "a date written YYYY-MM-DD",
    "date_from_datetime_parsing": "a date written YYYY-MM-DD",
    "date_from_datetime_inexact": "a date written YYYY-MM-DD",
}
_BOUNDS = {"greater_than_equal": ("ge", "greater than or equal to"), "greater_than": ("gt", "greater than"),
           "less_than_equal": ("le", "less than or equal to"), "less_than": ("lt", "less than")}


def _plain(err: Any) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        return f"a number {words} {ctx.get(name)}"
    if kind == "literal_error":
        return f"one of {ctx.get('expected')}"
    if kind in _PLAIN:
        detail = ctx.get("error")
        return _PLAIN[kind] + (f" ({detail})" if kind.startswith("date") and detail else "")
    return str(err["msg"]).removeprefix("Value error, ").removeprefix("Input should be ")


def _format_loc(loc: list[str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _dig(raw: Mapping[str, Any], loc: list[str]) -> Any:
    value: Any = raw
    for part in loc:
        if isinstance(value, str) and value.startswith(("[", "{")):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return value
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return value
    return value


def read_runtime_config() -> StackConfig:
    """Parse the configuration the Pulumi engine handed to this program run.

    Used by `infra/__main__.py` under `pulumi preview/up` and under the offline planner alike.
    """
    from pulumi.runtime import config as runtime_config

    stack = pulumi.get_stack()
    # The language host loads the whole stack config into this map before the program starts;
    # reading the map (not key by key) is what lets us report misspelt, unknown keys.
    flat = dict(runtime_config.CONFIG.get())
    if not flat:  # an older host that passes config through the environment only
        flat = dict(runtime_config.get_config_env())
    secret_keys = [k for k in flat if pulumi.runtime.is_config_secret(k)]
    secret_keys += runtime_config.get_config_secret_keys_env()
    return parse_config(flat, secret_keys, stack=stack, source=f"Pulumi.{stack}.yaml",
                        project_root=project_root(pulumi.get_root_directory()))


def project_root(reported: str | None) -> Path:
    """The folder holding Pulumi.yaml, where relative paths in config (workerBundle) start.

    Older language hosts never set the root directory (the SDK then reports a dummy value), and
    the program's working directory depends on `main:`; so trust only a folder that really holds
    Pulumi.yaml: the reported one, else the working directory or a parent, else infra/'s parent.
    """
    candidates = [Path(reported)] if reported else []
    cwd = Path.cwd().resolve()
    candidates += [cwd, *cwd.parents, Path(__file__).resolve().parent.parent]
    for folder in candidates:
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return cwd
