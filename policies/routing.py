"""Routing: Worker routes serve only the environment's own hostnames, through proxied DNS."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from booking_shared.hostnames import declared_hostnames, route_host, saas_zone
from booking_shared.naming import NAMESPACE
from booking_shared.tokens import DNS, ROUTE
from policies.common import (
    Report,
    config_value,
    get,
    make_resource_policy,
    make_stack_policy,
    message,
    of_type,
)

ROUTES = "worker-routes-on-own-hostnames"
PROXIED = "dns-records-proxied"
_PROXYABLE = {"A", "AAAA", "CNAME"}


def allowed_hostnames() -> dict[str, str]:
    """Hostname -> where it is declared: booking:domain and each booking:tenants entry."""
    # A malformed tenants list is skipped here: it is the program's config error to report, not ours.
    return declared_hostnames({f"{NAMESPACE}:{key}": config_value(key) for key in ("domain", "tenants", "saas")})


# The host part of a `*/*` route: every hostname entering its zone (Cloudflare for SaaS).
ALL_HOSTS = "*"


def _check_saas_route(route: PolicyResource, records: dict[str, bool], report: Report) -> None:
    """A `*/*` route is the SaaS zone's catch-all: only on booking:saas.zoneId, with its fallback proxied."""
    flat = {f"{NAMESPACE}:saas": config_value("saas")}
    zone, fallback = saas_zone(flat), declared_hostnames(flat)
    route_zone = str(get(route.props, "zoneId") or "").lower()
    pattern = str(get(route.props, "pattern"))
    if zone is None or route_zone != zone:
        where = f"booking:saas.zoneId ({zone})" if zone else "no zone: booking:saas is not set"
        report(message(f"Worker route '{pattern}' catches every hostname of zone {route_zone}, which is not the "
                       f"stack's SaaS zone ({where}).",
                       "a catch-all route sends every site of that zone (another environment's or another "
                       "customer's included) to this Worker",
                       "use '*/*' only on the SaaS zone declared in booking:saas; elsewhere derive routes from "
                       "booking:domain"), route.urn)
        return
    for host in fallback:
        if not records.get(host):
            state = "is not proxied" if host in records else "has no DNS record in this stack"
            report(message(f"The SaaS fallback hostname {host} {state}.",
                           "custom hostnames reach the Worker through the fallback origin; without a proxied "
                           "record Cloudflare cannot activate the fallback origin and no salon's hostname is served",
                           f"declare a proxied (originless AAAA 100::) DNS record for {host}"), route.urn)


def check_routes(args: StackValidationArgs, report: Report) -> None:
    """Each route's host is declared in the stack config and has a proxied DNS record here."""
    allowed = allowed_hostnames()
    if not allowed:
        args.not_applicable("booking:domain is not in the stack config passed to the policy pack")
        return
    records = {str(get(r.props, "name")): bool(get(r.props, "proxied")) for r in of_type(args.resources, DNS)}
    for route in of_type(args.resources, ROUTE):
        pattern = str(get(route.props, "pattern"))
        host = route_host(pattern)
        if host == ALL_HOSTS:
            _check_saas_route(route, records, report)
        elif host not in allowed:
            report(message(f"Worker route '{pattern}' is on {host}, which this stack does not serve "
                           f"(declared: {', '.join(sorted(allowed))}).",
                           "a route on another environment's or another customer's hostname hijacks its traffic",
                           "derive routes from booking:domain or add the hostname to booking:tenants (a salon on "
                           "the SaaS path needs no route: `bookingctl tenants add`)"), route.urn)
        elif not records.get(host):
            state = "is not proxied" if host in records else "has no DNS record in this stack"
            report(message(f"Route hostname {host} {state}.",
                           "Worker routes only run for proxied hostnames; otherwise requests bypass the Worker "
                           "and the origin is exposed",
                           f"declare a proxied DNS record for {host}"), route.urn)


def check_dns_proxied(args: ResourceValidationArgs, report: Report) -> None:
    """Address and CNAME records this stack manages go through Cloudflare's proxy."""
    if args.resource_type != DNS or args.props.get("type") not in _PROXYABLE:
        args.not_applicable("not an A, AAAA or CNAME record")
        return
    if args.props.get("proxied") is not True:
        report(message(f"DNS record {args.props.get('name')} ({args.props.get('type')}) is not proxied.",
                       "an unproxied record skips the Worker route, the WAF and TLS at the edge, and reveals "
                       "the origin",
                       "set proxied=True (with ttl=1)"))


worker_routes = make_stack_policy(
    ROUTES,
    "Worker routes are on the environment's own domain or a declared tenant hostname, each with a proxied "
    "DNS record; a '*/*' route only on the booking:saas zone, with its fallback hostname proxied.",
    check_routes,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Build route patterns from booking:domain / booking:tenants and give each hostname a proxied "
                "DNS record in the same stack.",
)

dns_proxied = make_resource_policy(
    PROXIED,
    "DNS records for the platform's hostnames are proxied through Cloudflare.",
    check_dns_proxied,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Set proxied=True on A, AAAA and CNAME records.",
)
