"""Which hostnames a stack serves, which environment it is, and whether a route pattern reaches a host.

The stack config (booking_shared/project.py, across every committed stack file) and the policy pack
(policies/isolation.py, under the real engine too) judge one rule with these: a hostname belongs
to one environment, so no stack may route, point DNS at or attach a Pages domain to a hostname
another environment's stack serves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from booking_shared.naming import NAMESPACE, looks_like_staging

ENVIRONMENTS = ("production", "staging")


def normalize(hostname: str) -> str:
    """Hostnames compare case-insensitively and without a trailing dot, as DNS does."""
    return hostname.strip().lower().rstrip(".")


def declared_hostnames(flat: Mapping[str, Any]) -> dict[str, str]:
    """Hostname -> the config key declaring it: `booking:domain` and each `booking:tenants[i].hostname`.

    `flat` is a stack's config in the engine's form (structured values as JSON text). Malformed
    values are skipped: reporting them is the typed config's job, not this one's.
    """
    found: dict[str, str] = {}
    domain = flat.get(f"{NAMESPACE}:domain")
    if isinstance(domain, str) and domain.strip():
        found[normalize(domain)] = f"{NAMESPACE}:domain"
    tenants: Any = flat.get(f"{NAMESPACE}:tenants")
    if isinstance(tenants, str):
        try:
            tenants = json.loads(tenants)
        except ValueError:
            tenants = None
    if isinstance(tenants, list):
        for index, tenant in enumerate(tenants):
            hostname = tenant.get("hostname") if isinstance(tenant, dict) else None
            if isinstance(hostname, str) and hostname.strip():
                found.setdefault(normalize(hostname), f"{NAMESPACE}:tenants[{index}].hostname")
    return found


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
