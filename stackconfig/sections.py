"""The sections of a stack's config: tenants, the rollout, rate limits, SaaS, Turnstile, approvals.

Each is a frozen pydantic model that `stackconfig.model.StackConfig` holds under one `booking:*`
key, with the field types (`HexId`, `Hostname`, `WorkerRoute`, `GitBranch`) that carry their check.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from booking_shared.hostnames import hostname_problem, slug_problem
from booking_shared.limits import TURNSTILE_WIDGETS_PER_ACCOUNT, TurnstilePlan, ZonePlan
from booking_shared.rollout import RolloutSettings

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
# Path characters of RFC 3986 without '%' (no encoded dots or slashes), then at most a final '*'.
_ROUTE = re.compile(r"/[A-Za-z0-9\-._~!$&'()+,;=:@/]*\*?")
_ROUTE_ALLOWED = ("a Cloudflare route path: starting with '/', '*' only as the last character, no '..', '?', '#', "
                  "spaces, control characters or host part (the route is <domain><workerRoute>), e.g. '/*'")
# The health check and the booking API live under /api/; the route must hand them to the Worker.
_API_PROBE = "/api/health"
_BRANCH_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[]")


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
WorkerRoute = Annotated[str, AfterValidator(_check_route)]
GitBranch = Annotated[str, AfterValidator(_check_branch)]


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


# `booking:rollout` is read by the canary as it is validated: one model (booking_shared/rollout.py).
Rollout = RolloutSettings


# --- rollback-safe migrations: approved unsafe migrations ---
_MIGRATION_FILE = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")


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
    # behind), which the program imports instead of creating a second one (docs/deploying.md, "A real pulumi up").
    existing_ruleset_ids: dict[HexId, HexId] = {}
    # The same for each zone's existing http_request_late_transform entry point (request header
    # transform rules made in the dashboard), where the stack declares version affinity.
    existing_transform_ruleset_ids: dict[HexId, HexId] = {}

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


class Preview(BaseModel):
    """`booking:preview` of a pull request's preview stack (stackconfig/preview.py derives it from
    staging's): which pull request, and the day after which the preview is to be destroyed."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    pr: int = Field(ge=1, le=9_999_999)
    expires: dt.date

