"""Cloudflare's account and plan limits that this project plans against, as data, each with its source.

Config validation (infra/config.py), the policy pack (policies/), the operations (ops/) and the API
double (tests/helpers/cf_double.py) read the limits from here, so the program cannot plan what the
double refuses and the double cannot accept what Cloudflare refuses. A limit that changes is
changed here once, with its new source.

Sources are paths in cloudflare/cloudflare-docs (rendered at developers.cloudflare.com) unless
named otherwise; the commit each was read at is beside it.
"""

from __future__ import annotations

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
