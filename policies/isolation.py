"""Environment isolation: each environment's Worker and Pages project see only its own database."""

from __future__ import annotations

from typing import Any

from pulumi_policy import EnforcementLevel, Severity, StackValidationArgs

from booking_shared.naming import looks_like_staging
from booking_shared.tokens import D1, PAGES, VERSION
from policies.common import Report, get, make_stack_policy, message, of_type, stack_environment

NAME = "environment-isolation"


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
