"""Environment isolation: each environment sees only its own database and serves only its own hostnames."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pulumi
from pulumi_policy import EnforcementLevel, PolicyResource, Severity, StackValidationArgs

from booking_shared.hostnames import host_pattern_covers, route_host
from booking_shared.naming import looks_like_staging

# Reads the other committed stack files exactly as `bookingctl plan` does (one hardened reader,
# PyYAML and the standard library only), so the pack and the config check judge the same files.
from booking_shared.project import other_stacks
from booking_shared.tokens import D1, DNS, FALLBACK_ORIGIN, PAGES, PAGES_DOMAIN, ROUTE, VERSION
from policies.common import Report, get, make_stack_policy, message, of_type, project_root, stack_environment

NAME = "environment-isolation"
HOSTNAMES = "environment-hostname-isolation"


def check_environment_isolation(args: StackValidationArgs, report: Report) -> None:
    """Production binds only production data, staging only staging data."""
    env = stack_environment()
    databases = list(of_type(args.resources, D1))
    if not databases and not any(r.resource_type in (VERSION, PAGES) for r in args.resources):
        args.not_applicable("the stack declares no database, Worker version or Pages project")
        return
    declared = {get(db.props, "id"): get(db.props, "name") for db in databases}

    for db in databases:
        name = str(get(db.props, "name"))
        if env == "production" and looks_like_staging(name):
            report(message(f"Production D1 database '{name}' is named like a staging/test database.",
                           "the guide keeps appointmentbooking-db and appointmentbooking-db-staging apart so a "
                           "deploy can never write production bookings into a test database or the reverse",
                           "set booking:databaseName to the production name (appointmentbooking-db)"), db.urn)
        if env == "staging" and not looks_like_staging(name):
            report(message(f"Staging D1 database '{name}' is not named as a staging database.",
                           "a staging stack holding a production-looking database is how staging tests end up "
                           "against real customer data",
                           "set booking:databaseName to a name with -staging (appointmentbooking-db-staging)"), db.urn)

    def check_binding(owner: Any, where: str, database_id: Any) -> None:
        if database_id not in declared:
            report(message(f"{where} binds D1 database id '{database_id}', which this {env} stack does not "
                           "declare.",
                           "a hard-coded or borrowed database id points this environment at another "
                           "environment's data",
                           "bind the database this stack declares (its id output), never a literal id"), owner.urn)

    for version in of_type(args.resources, VERSION):
        for binding in get(version.props, "bindings") or []:
            if get(binding, "type") == "d1":
                check_binding(version, f"Worker binding {get(binding, 'name')}",
                              get(binding, "id") or get(binding, "databaseId"))
            if get(binding, "name") == "ENVIRONMENT" and get(binding, "text") != env:
                report(message(f"Worker variable ENVIRONMENT is '{get(binding, 'text')}' in the {env} stack.",
                               "the Worker chooses payment keys and behaviour by ENVIRONMENT",
                               f"set ENVIRONMENT to '{env}' (it comes from booking:environment)"), version.urn)
    for pages in of_type(args.resources, PAGES):
        for kind in ("production", "preview"):
            config = get(pages.props, "deploymentConfigs", kind) or {}
            for binding, value in (get(config, "d1Databases") or {}).items():
                check_binding(pages, f"Pages {kind} binding {binding}", get(value, "id"))
            environment = get(config, "envVars", "ENVIRONMENT", "value")
            if environment is not None and environment != env:
                report(message(f"Pages {kind} variable ENVIRONMENT is '{environment}' in the {env} stack.",
                               "the booking UI would talk to the wrong environment's API",
                               f"set ENVIRONMENT to '{env}'"), pages.urn)


environment_isolation = make_stack_policy(
    NAME,
    "A production Worker or Pages project binds only the production database, staging only staging; "
    "database names match their environment.",
    check_environment_isolation,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    remediation="Bind the database declared by the same stack (its id output) and name databases after their "
                "environment: appointmentbooking-db, appointmentbooking-db-staging.",
    suppressible=False,
)


def _hostname_targets(resources: list[PolicyResource]) -> Iterator[tuple[PolicyResource, str, str]]:
    """(resource, how to name it, the host or host pattern it claims) for routes, DNS records, Pages domains."""
    for route in of_type(resources, ROUTE):
        pattern = str(get(route.props, "pattern"))
        yield route, f"Worker route '{pattern}'", route_host(pattern)
    for record in of_type(resources, DNS):
        yield record, f"DNS record {get(record.props, 'name')}", str(get(record.props, "name"))
    for domain in of_type(resources, PAGES_DOMAIN):
        yield domain, f"Pages domain {get(domain.props, 'name')}", str(get(domain.props, "name"))
    for origin in of_type(resources, FALLBACK_ORIGIN):
        yield origin, f"Custom hostname fallback origin {get(origin.props, 'origin')}", str(get(origin.props, "origin"))


# A `*/*` route's host part: it matches no name but every hostname entering its zone.
_ALL_HOSTS = "*"


def check_hostname_isolation(args: StackValidationArgs, report: Report) -> None:
    """No route, DNS record or Pages domain on another environment's hostname; none staging-labelled in production."""
    targets = list(_hostname_targets(args.resources))
    if not targets:
        args.not_applicable("the stack declares no Worker route, DNS record or Pages domain")
        return
    env, stack = stack_environment(), pulumi.get_stack()
    root = project_root()
    others, unreadable = other_stacks(root, stack)
    for problem in unreadable:
        report(message(f"Another committed stack file cannot be read to check hostname ownership: {problem}.",
                       "if it serves a hostname this stack also uses, one environment would take the other's "
                       "traffic; the pack cannot rule that out",
                       "fix that stack file (`bookingctl plan <stack>` lists its problems) or delete it"))
    foreign = [(hostname, key, other) for other in others if other.environment != env
               for hostname, key in other.hostnames.items()]
    for resource, what, host in targets:
        if host == _ALL_HOSTS:
            # The SaaS zone's catch-all: which hostnames it takes depends on its zone, not on a name.
            _check_catch_all_zone(resource, what, others, env, stack, report)
            continue
        for hostname, key, other in foreign:
            if host_pattern_covers(host, hostname):
                report(message(f"{what} is on {hostname}, which {other.source} ({other.environment}) serves as "
                               f"{key}.",
                               f"requests for {other.environment}'s hostname would reach this {env} stack's Worker, "
                               f"database or Pages project (or the two stacks would overwrite each other's record)",
                               f"use a hostname of this stack (booking:domain or booking:tenants in "
                               f"Pulumi.{stack}.yaml): a hostname belongs to one environment"), resource.urn)
        if env == "production" and looks_like_staging(host.lstrip("*.")):
            report(message(f"Production {what} is on {host}, a staging/test-labelled hostname.",
                           "production traffic and data on a name that reads as a test environment is how "
                           "the two get mixed up, by people and by tooling that treats such names as disposable",
                           "serve production only on production hostnames; put this one in a staging stack"),
                   resource.urn)


def _check_catch_all_zone(route: PolicyResource, what: str, others: list[Any], env: str, stack: str,
                          report: Report) -> None:
    """A `*/*` route may sit only on a zone no other environment's stack uses (zone, tenant or SaaS zone)."""
    zone = str(get(route.props, "zoneId") or "").lower()
    for other in others:
        if other.environment != env and zone in other.zones:
            report(message(f"{what} is on zone {zone}, which {other.source} ({other.environment}) uses as "
                           f"{other.zones[zone]}.",
                           f"a '*/*' route sends every hostname of its zone, and every custom hostname on it, to "
                           f"this {env} stack's Worker: {other.environment}'s salons would be served {env}'s "
                           f"code and data",
                           f"give each environment its own SaaS zone (booking:saas.zoneId in Pulumi.{stack}.yaml); "
                           f"a zone belongs to one environment once it carries a '*/*' route"), route.urn)


hostname_isolation = make_stack_policy(
    HOSTNAMES,
    "No Worker route, DNS record, Pages domain or SaaS fallback origin is on a hostname another environment's "
    "committed stack serves, and no '*/*' route on a zone another environment uses; production serves no "
    "staging-labelled hostname.",
    check_hostname_isolation,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    remediation="Give each environment its own hostnames in its own Pulumi.<stack>.yaml (booking:domain, "
                "booking:tenants), e.g. staging.<domain> for staging.",
    suppressible=False,
)
