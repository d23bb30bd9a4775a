"""Which hostnames a stack serves, which environment it is, and whether a route pattern reaches a host.

The stack config (booking_shared/project.py, across every committed stack file) and the policy pack
(policies/isolation.py, under the real engine too) judge one rule with these: a hostname belongs
to one environment, so no stack may route, point DNS at or attach a Pages domain to a hostname
another environment's stack serves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from booking_shared.naming import NAMESPACE, looks_like_staging

ENVIRONMENTS = ("production", "staging")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def normalize(hostname: str) -> str:
    """Hostnames compare case-insensitively and without a trailing dot, as DNS does."""
    return hostname.strip().lower().rstrip(".")


def _tenants(flat: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(index, entry) of each well-formed `booking:tenants` entry (JSON text or a list); others skipped."""
    tenants: Any = flat.get(f"{NAMESPACE}:tenants")
    if isinstance(tenants, str):
        try:
            tenants = json.loads(tenants)
        except ValueError:
            return []
    if not isinstance(tenants, list):
        return []
    return [(index, tenant) for index, tenant in enumerate(tenants) if isinstance(tenant, dict)]


def declared_hostnames(flat: Mapping[str, Any]) -> dict[str, str]:
    """Hostname -> the config key declaring it: `booking:domain`, each `booking:tenants[i].hostname` and
    `booking:saas.fallbackHostname`.

    `flat` is a stack's config in the engine's form (structured values as JSON text). Malformed
    values are skipped: reporting them is the typed config's job, not this one's.
    """
    found: dict[str, str] = {}
    domain = flat.get(f"{NAMESPACE}:domain")
    if isinstance(domain, str) and domain.strip():
        found[normalize(domain)] = f"{NAMESPACE}:domain"
    for index, tenant in _tenants(flat):
        hostname = tenant.get("hostname")
        if isinstance(hostname, str) and hostname.strip():
            found.setdefault(normalize(hostname), f"{NAMESPACE}:tenants[{index}].hostname")
    fallback = _saas(flat).get("fallbackHostname")
    if isinstance(fallback, str) and fallback.strip():
        # The SaaS zone's fallback origin: its DNS record is this stack's, and every salon's CNAME
        # points at it, so it belongs to one environment like the domain does.
        found.setdefault(normalize(fallback), f"{NAMESPACE}:saas.fallbackHostname")
    return found


def _saas(flat: Mapping[str, Any]) -> dict[str, Any]:
    value: Any = flat.get(f"{NAMESPACE}:saas")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def saas_zone(flat: Mapping[str, Any]) -> str | None:
    """The zone id of `booking:saas` (the zone whose `*/*` route serves every custom hostname), if set."""
    zone = _saas(flat).get("zoneId")
    return zone.strip().lower() if isinstance(zone, str) and zone.strip() else None


def declared_zones(flat: Mapping[str, Any]) -> dict[str, str]:
    """Zone id -> the config key naming it: `booking:zoneId`, each tenant's `zoneId`, `booking:saas.zoneId`.

    A SaaS zone carries a `*/*` Worker route: every hostname in it (and every custom hostname on it)
    reaches that stack's Worker. So a SaaS zone must be no zone another environment uses at all.
    Malformed values are skipped, as in `declared_hostnames`.
    """
    found: dict[str, str] = {}
    zone = flat.get(f"{NAMESPACE}:zoneId")
    if isinstance(zone, str) and zone.strip():
        found[zone.strip().lower()] = f"{NAMESPACE}:zoneId"
    for index, tenant in _tenants(flat):
        tenant_zone = tenant.get("zoneId")
        if isinstance(tenant_zone, str) and tenant_zone.strip():
            found.setdefault(tenant_zone.strip().lower(), f"{NAMESPACE}:tenants[{index}].zoneId")
    saas = saas_zone(flat)
    if saas:
        found.setdefault(saas, f"{NAMESPACE}:saas.zoneId")
    return found


def hostname_problem(value: object) -> str | None:
    """Why `value` cannot be a salon's or the platform's hostname, or None when it can.

    One rule for the stack config (`booking:domain`, tenants, the SaaS fallback) and for
    `bookingctl tenants add`: a lowercase DNS name of two labels or more, not an IP address.
    """
    if not isinstance(value, str) or "://" in value or "/" in value:
        return "a bare hostname such as www.example.co.za (no scheme, no path)"
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return "a lowercase hostname with at least two dot-separated labels of letters, digits and hyphens"
    if labels[-1].isdigit():
        # 10.0.0.1 passes the label rule; a route, CNAME and Pages domain need a name in a zone.
        return "a DNS name in a Cloudflare zone, not an IP address (no all-numeric top-level label)"
    return None


def slug_problem(value: object) -> str | None:
    """Why `value` cannot be a tenant's slug, or None when it can."""
    if not isinstance(value, str) or not _SLUG.match(value):
        return "a slug of lowercase letters, digits and hyphens (e.g. instylehairboutique)"
    return None


def environment_of(flat: Mapping[str, Any], stack: str) -> str:
    """`production` or `staging`: `booking:environment` if valid, else judged from the stack name.

    Unknown names count as production, the strictest reading.
    """
    configured = flat.get(f"{NAMESPACE}:environment")
    if configured in ENVIRONMENTS:
        return str(configured)
    return "staging" if looks_like_staging(stack) else "production"


def route_host(pattern: str) -> str:
    """The host part of a Workers route pattern such as `*.example.co.za/*`."""
    return normalize(pattern.split("/", 1)[0])


def host_pattern_covers(host_pattern: str, hostname: str) -> bool:
    """Whether a route's host pattern matches `hostname` (Cloudflare allows a leading `*` only).

    `*.example.com` matches every subdomain; `*example.com` whatever ends so (the apex too, and
    read broadly: for an isolation check a pattern that might reach a host counts as reaching it).
    """
    pattern, host = normalize(host_pattern), normalize(hostname)
    if pattern.startswith("*"):
        return host.endswith(pattern[1:])
    return pattern == host
