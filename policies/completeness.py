"""Completeness: a production stack declares every part of the platform the guide requires."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, Severity, StackValidationArgs

from booking_shared.tokens import (
    BUCKET,
    D1,
    DEPLOYMENT,
    HEALTHCHECK,
    LIFECYCLE,
    NOTIFICATION,
    PAGES,
    ROUTE,
    VERSION,
    WORKER,
)
from policies.common import Report, get, make_stack_policy, message, of_type, stack_environment

NAME = "production-completeness"

# What each required type is, in the guide's words.
REQUIRED = {
    D1: "the production D1 database",
    WORKER: "the API Worker",
    VERSION: "a Worker version (code and bindings)",
    DEPLOYMENT: "a Worker deployment",
    ROUTE: "the Worker route on the domain",
    PAGES: "the Pages project for the booking UI",
    BUCKET: "the backup bucket",
    LIFECYCLE: "the backup retention lifecycle",
    HEALTHCHECK: "the health check of /api/health",
    NOTIFICATION: "the alert when the health check fails",
}

SCHEMA = PolicyConfigSchema(
    properties={
        "requiredTypes": {"type": "array", "items": {"type": "string"}, "default": sorted(REQUIRED),
                          "description": "Resource type tokens a production stack must declare."},
    },
)


def check_completeness(args: StackValidationArgs, report: Report) -> None:
    """Every required type is declared, and the backup bucket has its lifecycle rule."""
    if stack_environment() != "production":
        args.not_applicable("only production must be complete")
        return
    present = {r.resource_type for r in args.resources}
    for type_token in args.get_config().get("requiredTypes") or sorted(REQUIRED):
        if type_token not in present:
            what = REQUIRED.get(type_token, type_token)
            report(message(f"The production stack declares no {type_token} ({what}).",
                           "the guide's production platform needs every part; a missing one is either down or "
                           "managed by hand outside review",
                           f"declare {what} in infra/ (see infra/program.py)"))
    buckets = {get(b.props, "name") for b in of_type(args.resources, BUCKET)}
    covered = {get(lc.props, "bucketName") for lc in of_type(args.resources, LIFECYCLE)}
    for bucket in sorted(str(b) for b in buckets - covered):
        report(message(f"Backup bucket '{bucket}' has no lifecycle rule.",
                       "without one, backups are never deleted and retention is whatever someone remembers",
                       "declare it through infra.backups.BackupBucket, which adds the rule"))


production_completeness = make_stack_policy(
    NAME,
    "A production stack declares the database, Worker, route, Pages project and backup bucket with lifecycle.",
    check_completeness,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Declare the missing parts in infra/ rather than by hand in the dashboard.",
    config_schema=SCHEMA,
)
