"""Cloudflare's account and plan limits that this project plans against, as data, each with its source.

Config validation (stackconfig/), the policy pack (policies/), the operations (ops/) and the API
double (tests/helpers/cf_double/) read the limits from here, so the program cannot plan what the
double refuses and the double cannot accept what Cloudflare refuses. A limit that changes is
changed here once, with its new source.

Sources are paths in cloudflare/cloudflare-docs (rendered at developers.cloudflare.com) unless
named otherwise; the commit each was read at is beside it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

# --- Zone plans --------------------------------------------------------------------------------

ZonePlan = Literal["free", "pro", "business", "enterprise"]
ZONE_PLANS: Final[tuple[ZonePlan, ...]] = ("free", "pro", "business", "enterprise")

# --- Turnstile ----------------------------------------------------------------------------------
# src/content/docs/turnstile/additional-configuration/hostname-management/index.mdx (30e10106):
# "Free users are entitled to a maximum of 15 hostnames per widget. Enterprise customers can have
# up to 200 hostnames per widget"; "No wildcards are supported. You must specify each hostname
# individually." A widget also needs at least one hostname ("By default, every widget requires at
# least one hostname to be configured").
TurnstilePlan = Literal["free", "enterprise"]
TURNSTILE_HOSTNAMES_PER_WIDGET: Final[dict[TurnstilePlan, int]] = {"free": 15, "enterprise": 200}
TURNSTILE_MIN_HOSTNAMES_PER_WIDGET: Final = 1


def turnstile_hostname_limit(plan: TurnstilePlan) -> int:
    """How many hostnames one Turnstile widget may list on this plan."""
    return TURNSTILE_HOSTNAMES_PER_WIDGET[plan]


# src/content/docs/turnstile/plans.mdx (41f410ed): "Free users are limited to 20 widgets per account.
# Customers with Enterprise Bot Management and Enterprise Turnstile can have this limit increased."
# Per account: the stacks that share an account (the committed production and staging) share it.
TURNSTILE_WIDGETS_PER_ACCOUNT: Final = 20


# --- Workers ------------------------------------------------------------------------------------
# src/content/docs/workers/platform/limits.mdx (01589d2e), "Environment variables": "Each environment
# variable has a size limitation of 5 KB." Read as 5,000 bytes, the stricter reading of "KB". (The
# same section allows 64 variables, secret and text combined, on Workers Free: the Turnstile
# bindings of the 20 widgets an account holds are at most 41 of them.)
WORKER_ENV_VAR_BYTES: Final = 5_000


# --- Ruleset engine -------------------------------------------------------------------------------
# src/content/docs/ruleset-engine/about/rulesets.mdx: "Each phase has at most one entry point ruleset
# at the account level and at the zone level." Creating a second one fails; an existing entry point
# (even an empty one left by the dashboard) has to be adopted (imported) instead.
ENTRY_POINT_RULESETS_PER_PHASE: Final = 1


# --- Rate limiting rules, by zone plan ------------------------------------------------------------
# src/content/partials/waf/rate-limiting-availability-by-plan.mdx (07acbb66), the table "Features
# vary by plan type" (columns Free, Pro, Business, Enterprise with app security).
#
# Footnote 3, the supported period values in seconds: "10, 15, 20, 30, 40, 45, 60 (1 min), 90, 120
# (2 min), 180 (3 min), 240 (4 min), 300 (5 min), 480, 600 (10 min), 900, 1200 (20 min), 1800, 2400,
# 3600 (1 h), 65535, 86400 (1 day). Not all values are available on all plans."
RATE_LIMIT_SUPPORTED_SECONDS: Final[tuple[int, ...]] = (
    10, 15, 20, 30, 40, 45, 60, 90, 120, 180, 240, 300, 480, 600, 900, 1200, 1800, 2400, 3600, 65535, 86400)


@dataclass(frozen=True)
class RateLimitPlan:
    """What one zone plan allows in rate limiting rules (the table's row for that plan)."""

    rules: int  # "Number of rules"
    # "Available fields in rule expression", as the Rules language names them.
    fields: frozenset[str]
    max_period: int  # "Counting periods": all supported values up to this many seconds
    max_mitigation_timeout: int  # "Mitigation timeout periods": all supported values up to this
    # "Rate limiting action behavior": throttling ("Throttle requests above rate with block action",
    # which the API spells as mitigation_timeout 0 with action block) is Enterprise only.
    throttle: bool
    # "Counting characteristics": IP on every plan (the API also requires cf.colo.id: "mandatory");
    # only the ones this project uses are listed (IP with NAT support, from Business, is left out).
    characteristics: frozenset[str]


# Fields of the Rules language (src/content/docs/ruleset-engine/rules-language/fields/reference/):
# Path http.request.uri.path, Host http.host, URI http.request.uri, Full URI http.request.full_uri,
# Query http.request.uri.query, Method http.request.method, Source IP ip.src, User Agent
# http.user_agent, Verified Bot cf.bot_management.verified_bot.
_FREE_FIELDS = frozenset({"http.request.uri.path", "cf.bot_management.verified_bot"})
_PRO_FIELDS = _FREE_FIELDS | {"http.host", "http.request.uri", "http.request.full_uri", "http.request.uri.query"}
_BUSINESS_FIELDS = _PRO_FIELDS | {"http.request.method", "ip.src", "http.user_agent"}
_IP = frozenset({"cf.colo.id", "ip.src"})

RATE_LIMITS_BY_PLAN: Final[dict[ZonePlan, RateLimitPlan]] = {
    "free": RateLimitPlan(rules=1, fields=_FREE_FIELDS, max_period=10, max_mitigation_timeout=10, throttle=False,
                          characteristics=_IP),
    "pro": RateLimitPlan(rules=2, fields=_PRO_FIELDS, max_period=60, max_mitigation_timeout=3600, throttle=False,
                         characteristics=_IP),
    "business": RateLimitPlan(rules=5, fields=_BUSINESS_FIELDS, max_period=600, max_mitigation_timeout=86400,
                              throttle=False, characteristics=_IP),
    # "Enterprise with app security": 100 rules ("The number of rules depends on the exact contract
    # terms"), general request fields (modelled as the Business fields: this project uses no other).
    "enterprise": RateLimitPlan(rules=100, fields=_BUSINESS_FIELDS, max_period=65535, max_mitigation_timeout=86400,
                                throttle=True, characteristics=_IP),
}


# What the Rules language calls each field the table names, for messages in the table's words.
FIELD_LABELS: Final[dict[str, str]] = {
    "http.request.uri.path": "Path", "cf.bot_management.verified_bot": "Verified Bot", "http.host": "Host",
    "http.request.uri": "URI", "http.request.full_uri": "Full URI", "http.request.uri.query": "Query",
    "http.request.method": "Method", "ip.src": "Source IP", "http.user_agent": "User Agent"}
PLAN_LABELS: Final[dict[ZonePlan, str]] = {"free": "Free", "pro": "Pro", "business": "Business",
                                           "enterprise": "Enterprise"}

# The values the API takes at all, whatever the plan (src/content/docs/waf/rate-limiting-rules/
# parameters.mdx, 12dd7ce4 and 5d2cc64b): period "The available API values are: 10, 60 (one minute),
# 120 (two minutes), 300 (five minutes), 600 (10 minutes), or 3600 (one hour)" (cloudflare/api-schemas
# pull 31 added 120 and 300 to the schema's enum); mitigation_timeout "0, 10, 60 (one minute), 120
# (two minutes), 300 (five minutes), 600 (10 minutes), 3600 (one hour), or 86400 (one day)". The
# availability table's footnote 3 lists more values (15, 20, 30, ...): where the two pages differ
# the shorter list is kept, so neither the program nor the API double accepts a value one of them
# leaves out. A zone plan then allows the values up to its maximum (RateLimitPlan).
RATE_LIMIT_API_PERIODS: Final[tuple[int, ...]] = (10, 60, 120, 300, 600, 3600)
RATE_LIMIT_API_MITIGATION_TIMEOUTS: Final[tuple[int, ...]] = (0, 10, 60, 120, 300, 600, 3600, 86400)
# parameters.mdx, "Then take action": "Use one of the following values in the API: block, challenge,
# js_challenge, managed_challenge, or log."
RATE_LIMIT_ACTIONS: Final = frozenset({"block", "challenge", "js_challenge", "managed_challenge", "log"})
# parameters.mdx, "Notes for API users": "If you are on a Free, Pro, or Business plan and are using the
# API, you must enable request throttling by setting the mitigation_timeout value to 0 (zero) when
# using the actions managed_challenge, js_challenge, or challenge."
CHALLENGE_ACTIONS: Final = frozenset({"challenge", "js_challenge", "managed_challenge"})
# parameters.mdx, "With the same characteristics": cf.colo.id "(mandatory)".
MANDATORY_CHARACTERISTIC: Final = "cf.colo.id"


@dataclass(frozen=True)
class RateLimitRule:
    """One rate limiting rule as the checks below read it; `name` is how the caller names it."""

    name: str
    expression: str
    action: str
    period: int
    mitigation_timeout: int
    characteristics: tuple[str, ...]


@dataclass(frozen=True)
class PlanProblem:
    """Something a zone's plan does not allow: in rule `rule` (None: the ruleset as a whole, the rule
    count) at `index`, the API field `field` holds `found`, and the plan allows `allowed`."""

    rule: str | None
    index: int | None
    field: Literal["rules", "expression", "action", "period", "mitigation_timeout", "characteristics"]
    found: str
    allowed: str
    choices: tuple[int, ...] = ()  # period and mitigation_timeout: the values the plan allows there


_STRING_LITERAL = re.compile(r'r(#*)".*?"\1|"(?:[^"\\]|\\.)*"', re.DOTALL)
_FIELD = re.compile(r"(?<![\w.$])[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+")


def expression_fields(expression: str) -> list[str]:
    """The Rules-language fields an expression reads (outside string literals), first use first."""
    bare = _STRING_LITERAL.sub('""', expression)
    return list(dict.fromkeys(_FIELD.findall(bare)))


def one_of(values: Sequence[int]) -> str:
    """`10` or `one of 10, 60`: allowed values as messages say them."""
    return str(values[0]) if len(values) == 1 else f"one of {', '.join(str(v) for v in values)}"


def rate_limit_problems(plan: ZonePlan, rules: Sequence[RateLimitRule]) -> list[PlanProblem]:
    """Everything in an http_ratelimit entry point's rules that a zone on `plan` cannot hold.

    Checked against the availability table (RATE_LIMITS_BY_PLAN) and the API's own values: the
    rule count, the fields of each expression, the action, the period and mitigation timeout (each
    an API value and at most the plan's maximum), throttling (mitigation timeout 0) with `block`
    below Enterprise, a challenge action with a duration below Enterprise, and the characteristics.
    """
    limits = RATE_LIMITS_BY_PLAN[plan]
    problems: list[PlanProblem] = []
    if len(rules) > limits.rules:
        problems.append(PlanProblem(None, None, "rules", f"{len(rules)} rules ({', '.join(r.name for r in rules)})",
                                    f"at most {limits.rules} on {PLAN_LABELS[plan]}"))
    for index, rule in enumerate(rules):
        problems += [PlanProblem(rule.name, index, *found) for found in _rule_problems(plan, rule)]
    return problems


def allowed_mitigation_timeouts(plan: ZonePlan, action: str) -> tuple[int, ...]:
    """The mitigation timeouts a rule with `action` may have on `plan` (0: throttling)."""
    limits = RATE_LIMITS_BY_PLAN[plan]
    if not limits.throttle and action in CHALLENGE_ACTIONS:
        return (0,)  # below Enterprise a challenge action always throttles
    return tuple(v for v in RATE_LIMIT_API_MITIGATION_TIMEOUTS
                 if v <= limits.max_mitigation_timeout and (v > 0 or limits.throttle))


def allowed_periods(plan: ZonePlan) -> tuple[int, ...]:
    """The counting periods a rule may have on `plan`."""
    return tuple(v for v in RATE_LIMIT_API_PERIODS if v <= RATE_LIMITS_BY_PLAN[plan].max_period)


_Field = Literal["expression", "action", "period", "mitigation_timeout", "characteristics"]


def _rule_problems(plan: ZonePlan, rule: RateLimitRule) -> list[tuple[_Field, str, str, tuple[int, ...]]]:
    limits, label = RATE_LIMITS_BY_PLAN[plan], PLAN_LABELS[plan]
    found: list[tuple[_Field, str, str, tuple[int, ...]]] = []
    refused = [f for f in expression_fields(rule.expression) if f not in limits.fields]
    if refused:
        named = ", ".join(f"{f} ({FIELD_LABELS[f]})" if f in FIELD_LABELS else f for f in refused)
        allowed = ", ".join(sorted(FIELD_LABELS[f] for f in limits.fields))
        found.append(("expression", named, f"only {allowed} in rate limiting rules on {label}", ()))
    if rule.action not in RATE_LIMIT_ACTIONS:
        found.append(("action", rule.action, f"one of {', '.join(sorted(RATE_LIMIT_ACTIONS))}", ()))
    periods = allowed_periods(plan)
    if rule.period not in periods:
        found.append(("period", f"{rule.period} s", f"{one_of(periods)} s on {label}", periods))
    timeouts, timeout = allowed_mitigation_timeouts(plan, rule.action), rule.mitigation_timeout
    if timeout not in timeouts:
        if timeout == 0:
            why, shown = f": throttling with {rule.action} is Enterprise only", f"0 s (throttling) with {rule.action}"
        elif timeouts == (0,):
            why, shown = ": below Enterprise a challenge action always throttles", f"{timeout} s with {rule.action}"
        else:
            why, shown = "", f"{timeout} s"
        found.append(("mitigation_timeout", shown, f"{one_of(timeouts)} s on {label}{why}", timeouts))
    if (any(c not in limits.characteristics for c in rule.characteristics)
            or MANDATORY_CHARACTERISTIC not in rule.characteristics):
        found.append(("characteristics", ", ".join(rule.characteristics) or "none",
                      f"cf.colo.id (mandatory) and ip.src on {label}", ()))
    return found


# --- Health Checks, by zone plan --------------------------------------------------------------------
# src/content/plans/index.json (0188ca2f), traffic.health_checks: availability "Pro and above";
# "Number of checks": free "0", pro "10", biz "50", ent "1,000".
HEALTH_CHECKS_BY_PLAN: Final[dict[ZonePlan, int]] = {"free": 0, "pro": 10, "business": 50, "enterprise": 1000}


# --- Cloudflare for SaaS: custom hostname and certificate statuses -------------------------------
# Every status the API lists for a custom hostname (the SDK's `hostname_status` and `ssl_status`
# filters, cloudflare/types/custom_hostnames/custom_hostname_list_params.py, from Cloudflare's OpenAPI
# document), by what it means for the salon; tests/unit/ops/test_tenant_states.py holds each class to
# that list; ops/tenants/custom_hostnames.py acts on them. Cloudflare documents six hostname statuses
# (cloudflare-docs src/content/docs/
# cloudflare-for-platforms/cloudflare-for-saas/domain-support/hostname-validation/validation-status.mdx):
# Pending, Active, "Active re-deploying" ("Customer hostname is active and the changes have been
# processed": live), Blocked, Moved and Deleted. What stays so until someone acts (blocked by
# Cloudflare, moved, deleted or being deleted, a validation that timed out) is "blocked", not
# "pending"; the undocumented intermediate statuses are "pending": followed, never counted as live.
ACTIVE_STATUSES = frozenset({"active", "active_redeploying"})
PENDING_STATUSES = frozenset({"pending", "pending_migration", "pending_provisioned", "provisioned", "test_pending",
                              "test_active", "test_active_apex"})
BLOCKED_STATUSES = frozenset({"blocked", "pending_blocked", "test_blocked", "test_failed", "moved", "deleted",
                              "pending_deletion"})
# "Moved" and "Deleted" come back to pending when validation is refreshed (validation-status.mdx).
REFRESHABLE_STATUSES = frozenset({"moved", "deleted"})
# Certificates (stages: cloudflare-docs src/content/docs/ssl/reference/certificate-statuses.mdx): only
# "active" counts as live; timed out, expired, inactive or deleted ones need someone to act (`tenants
# add` restarts their validation); the rest are on their way somewhere and are followed.
PENDING_SSL = frozenset({"initializing", "pending_validation", "pending_issuance", "pending_deployment",
                         "pending_deletion", "pending_expiration", "pending_cleanup", "staging_deployment",
                         "staging_active", "deactivating", "backup_issued", "holding_deployment"})
BLOCKED_SSL = frozenset({"initializing_timed_out", "validation_timed_out", "issuance_timed_out",
                         "deployment_timed_out", "deletion_timed_out", "expired", "deleted", "inactive"})


# --- D1 -------------------------------------------------------------------------------------------
# cloudflare-docs src/content/docs/d1/platform/limits.mdx @ d532f313: "Maximum SQL statement length:
# 100,000 bytes (100 KB)", each statement of a batch alike; "Maximum bound parameters per query: 100";
# "Maximum string, BLOB or table row size: 2,000,000 bytes (2 MB)". The migration check, the tenant
# restore and the API double read these.
D1_STATEMENT_BYTES: Final = 100_000
D1_BOUND_PARAMETERS: Final = 100
D1_ROW_BYTES: Final = 2_000_000
