"""The booking API's public endpoints that edge protection is about, and how a rule expression reaches one.

The program (infra/edge.py) writes rate-limiting rules for the public write endpoints, the policy
pack (policies/edge.py) checks that they are covered and that Paystack's webhook is never
challenged or limited, and the reference Worker (worker/src/index.js) serves the same paths; one
list keeps the three in step.

The admin guide names no API path besides /api/health (and the booking page /book/<salon>), so
these paths are this repository's contract with the Worker; a Worker that serves other paths
changes them here, in one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """A public API endpoint: its `booking:rateLimits` key, method and path."""

    key: str
    method: str
    path: str
    what: str


LOGIN = Endpoint("login", "POST", "/api/auth/login", "login (credential stuffing)")
BOOKINGS = Endpoint("bookings", "POST", "/api/bookings", "booking creation (bot bookings take real slots)")
MESSAGES = Endpoint("messages", "POST", "/api/messages", "message sending (real WhatsApp messages)")
PAYMENTS = Endpoint("payments", "POST", "/api/payments/initialize", "payment initialisation")
# Paystack calls this from its own servers; it proves itself with the x-paystack-signature HMAC.
# A challenge or a rate limit here drops payment confirmations, so nothing at the edge may meet it.
PAYSTACK_WEBHOOK = Endpoint("paystackWebhook", "POST", "/api/payments/webhook", "Paystack's payment webhook")

PUBLIC_WRITE_ENDPOINTS: tuple[Endpoint, ...] = (LOGIN, BOOKINGS, MESSAGES, PAYMENTS)

# Worker bindings (the reference Worker reads these names from `env`).
TURNSTILE_SECRET_BINDING = "TURNSTILE_SECRET_KEY"
RATE_LIMIT_BINDING = "TENANT_RATE_LIMITER"
# With booking:saas: the secret of the second widget, whose domains are the SaaS salons' custom
# hostnames (data, listed by `bookingctl tenants`), and the hostnames the main widget covers (a JSON
# list), so the Worker knows which secret a request's hostname needs.
TURNSTILE_SAAS_SECRET_BINDING = "TURNSTILE_SAAS_SECRET_KEY"
SITE_HOSTNAMES_BINDING = "SITE_HOSTNAMES"


# What every SaaS salons' widget's name holds, whatever the Worker's name: the program reads the
# account's SaaS widgets with one name filter on it (a renamed Worker's widgets still match).
SAAS_WIDGET_MARK = "saas-salons"


def saas_turnstile_widget_name(worker_name: str) -> str:
    """The SaaS salons' Turnstile widget's name: how `bookingctl tenants` and the policy pack find it.

    Cloudflare does not keep widget names unique, so readers match the whole name, not a substring.
    """
    return f"{worker_name}-{SAAS_WIDGET_MARK}"

RATELIMIT_PHASE = "http_ratelimit"

# Version affinity (cloudflare-docs workers/versions-and-deployments/gradual-deployments/version-affinity.mdx):
# during a gradual deployment requests with the same Cloudflare-Workers-Version-Key go to the same
# version, which Cloudflare picks by hashing the key. The reference Worker sets VERSION_KEY_COOKIE
# (worker/src/index.js); each served zone's request header transform rule copies it into the
# header, in the phase Cloudflare runs those rules in (rules/transform/request-header-modification/
# create-api: action "rewrite", `action_parameters.headers.<name>` with operation "set" and an
# expression). One entry point per phase and zone, owned like the rate limiting one.
TRANSFORM_PHASE = "http_request_late_transform"
VERSION_KEY_HEADER = "Cloudflare-Workers-Version-Key"
VERSION_KEY_COOKIE = "booking-version-key"
VERSION_AFFINITY_REF = "booking_version_affinity"


def transform_ruleset_name(environment: str) -> str:
    return f"appointmentbooking {environment} request header transforms"


# The rule: where the browser has a key, the header takes its value (zone-wide: every Worker of
# the zone, staging's too on a shared zone, keeps a browser on one version, and a SaaS zone's custom
# hostnames are not known to the program). infra/edge.py declares it; the policy pack reads it back.
VERSION_AFFINITY_EXPRESSION = f'http.cookie contains "{VERSION_KEY_COOKIE}="'
VERSION_KEY_VALUE = f'http.request.cookies["{VERSION_KEY_COOKIE}"][0]'


def ratelimit_ruleset_name(environment: str) -> str:
    """The name of every http_ratelimit entry point a stack declares: how `doctor` tells the stack's
    own entry point from one the dashboard made."""
    return f"appointmentbooking {environment} rate limits"


# What every rate limiting rule of the program does: an API client cannot solve a challenge page, so
# past the limit a request is refused; counted per client IP and Cloudflare location (cf.colo.id is
# mandatory, ip.src the one other characteristic every plan allows).
RATE_LIMIT_ACTION = "block"
RATE_LIMIT_CHARACTERISTICS: tuple[str, ...] = ("cf.colo.id", "ip.src")
# Actions that stop or challenge a request: what the webhook must never meet.
STOPPING_ACTIONS = frozenset({"block", "challenge", "js_challenge", "managed_challenge"})

_PATH_FIELDS = ("http.request.uri.path", "http.request.uri", "http.request.full_uri", "raw.http.request.uri.path")
_STRING = r'"((?:[^"\\]|\\.)*)"'


def _strings(expression: str) -> list[str]:
    return [m.group(1) for m in re.finditer(_STRING, expression)]


def mentions_path(expression: str) -> bool:
    """Whether the expression looks at the request's path (or URI) at all."""
    return any(f in expression for f in _PATH_FIELDS)


def may_reach(expression: str, path: str) -> bool:
    """Whether a rule with this expression may match a request for `path`, read broadly.

    Broadly, because the webhook check errs towards a finding: an expression that does not look
    at the path matches every path; one that names the path, a prefix of it (starts_with, a
    `wildcard` or `matches` pattern ending in *), or a substring of it (contains) may match it,
    unless it names the path in an exclusion (`ne "<path>"`, `not ... in {...}`), which is read as
    leaving the path out of the whole rule.
    This is a reading of rule text, not an evaluation: a rule written in some other way can
    still reach the path and is for review to catch.
    """
    if not mentions_path(expression):
        return True
    excluded = re.findall(r'\bne\s+"((?:[^"\\]|\\.)*)"', expression)
    excluded += [s for block in re.findall(r'\bnot\s+[\w.]+\s+in\s+\{([^}]*)\}', expression) for s in _strings(block)]
    if path in excluded:
        return False  # the rule names the path only to leave it out
    for value in _strings(expression):
        if value in excluded:
            continue
        pattern = value.rstrip("*")
        if value == path or (pattern and value.endswith("*") and path.startswith(pattern)):
            return True
        if re.search(rf'starts_with\([^,]+,\s*"{re.escape(value)}"\)', expression) and path.startswith(value):
            return True
        if re.search(rf'contains\s+"{re.escape(value)}"', expression) and value in path:
            return True
        if value and re.search(rf'matches\s+"{re.escape(value)}"', expression) and _regex_matches(value, path):
            return True
    return False


def may_match_method(expression: str, method: str) -> bool:
    """Whether a rule with this expression may match a request of `method`, read broadly.

    An expression that does not look at the method matches every method (on the Free and Pro plans
    rate-limiting rules cannot look at it); one that names methods (`eq`, `in {...}`) matches those
    only; one that names `method` in an exclusion (`ne`, `not ... in {...}`) does not match it.
    """
    if "http.request.method" not in expression:
        return True
    wanted = method.upper()
    excluded = re.findall(r'http\.request\.method\s+ne\s+"([^"]*)"', expression)
    excluded += [s for block in re.findall(r'\bnot\s+http\.request\.method\s+in\s+\{([^}]*)\}', expression)
                 for s in _strings(block)]
    if wanted in {e.upper() for e in excluded}:
        return False
    named = re.findall(r'http\.request\.method\s+eq\s+"([^"]*)"', expression)
    named += [s for block in re.findall(r'(?<!not )http\.request\.method\s+in\s+\{([^}]*)\}', expression)
              for s in _strings(block)]
    return not named or wanted in {n.upper() for n in named}


def _regex_matches(pattern: str, path: str) -> bool:
    try:
        return re.search(pattern.replace("\\\\", "\\"), path) is not None
    except re.error:
        return True  # a pattern we cannot read might match: the broad reading


def rule_expression(hostnames: Sequence[str] | None, endpoint: Endpoint) -> str:
    """The rule expression for one endpoint (exact method and path) on `hostnames` (None: any host)."""
    request = f'http.request.method eq "{endpoint.method}" and http.request.uri.path eq "{endpoint.path}"'
    if hostnames is None:
        return f"({request})"
    hosts = " ".join(f'"{h}"' for h in sorted(hostnames))
    return f"(http.host in {{{hosts}}} and {request})"


def hosts_named(expression: str) -> set[str] | None:
    """The hostnames an expression limits itself to (`http.host eq/in`), or None when it does not."""
    found = re.findall(r'http\.host\s+in\s+\{([^}]*)\}', expression)
    found_eq = re.findall(r'http\.host\s+eq\s+"([^"]*)"', expression)
    if not found and not found_eq:
        return None
    return {s for block in found for s in _strings(block)} | set(found_eq)


def turnstile_covers(domains: Iterable[str], hostname: str) -> bool:
    """Whether a Turnstile widget's domain list allows `hostname` (a listed domain allows its subdomains).

    Pass a frozenset made by `turnstile_domains` when asking for many hostnames: each question is
    then one lookup per label of the hostname, not one comparison per listed domain.
    """
    listed = domains if isinstance(domains, frozenset) else turnstile_domains(domains)
    labels = hostname.lower().rstrip(".").split(".")
    return any(".".join(labels[i:]) in listed for i in range(len(labels)))


def turnstile_domains(domains: Iterable[str]) -> frozenset[str]:
    """A widget's domains as `turnstile_covers` compares them."""
    return frozenset(d.lower().rstrip(".") for d in domains)


def owns_zone_rulesets(configured: bool | None, environment: str) -> bool:
    """Whether a stack declares the http_ratelimit entry point of its zones.

    A zone has one entry-point ruleset per phase, and the committed production and staging stacks
    share a zone: unless `booking:rateLimits.zoneRuleset` says otherwise, production owns it.
    """
    return environment == "production" if configured is None else configured
