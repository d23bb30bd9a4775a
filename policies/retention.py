"""Backup retention: the R2 lifecycle keeps backups exactly the environment's retention."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationArgs, Severity

from booking_shared.retention import SECONDS_PER_DAY
from booking_shared.tokens import LIFECYCLE
from policies.common import Report, get, make_resource_policy, message, stack_environment

NAME = "backup-retention"

SCHEMA = PolicyConfigSchema(
    properties={
        "retentionDays": {
            "type": "object",
            "description": "Days to keep backups, per environment (the guide: production 30, staging 7).",
            "properties": {"production": {"type": "integer", "minimum": 1},
                           "staging": {"type": "integer", "minimum": 1}},
            "required": ["production", "staging"],
        },
    },
    required=["retentionDays"],
)


def check_backup_retention(args: ResourceValidationArgs, report: Report) -> None:
    """An enabled whole-bucket rule deletes objects after exactly the configured days."""
    if args.resource_type != LIFECYCLE:
        args.not_applicable("not an R2 bucket lifecycle")
        return
    env = stack_environment()
    days = int(args.get_config()["retentionDays"][env])
    found = []
    for rule in args.props.get("rules") or []:
        condition = get(rule, "deleteObjectsTransition", "condition") or {}
        if get(rule, "enabled") and get(rule, "conditions", "prefix") == "" and get(condition, "type") == "Age":
            found.append(int(get(condition, "maxAge") or 0))
    if found == [days * SECONDS_PER_DAY]:
        return
    seen = ", ".join(f"{age / SECONDS_PER_DAY:g} days" for age in found) or "no enabled whole-bucket Age rule"
    report(message(f"Backups in bucket '{args.props.get('bucketName')}' are kept {seen}; {env} keeps {days} days.",
                   "the guide's retention (production 30 days, staging 7) bounds both restore options and "
                   "how long customer data lingers in dumps",
                   f"set booking:backupRetentionDays to {days} so the lifecycle rule deletes objects after "
                   f"{days * SECONDS_PER_DAY} seconds"))


backup_retention = make_resource_policy(
    NAME,
    "The backup bucket's lifecycle rule deletes backups after exactly the environment's retention.",
    check_backup_retention,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Keep booking:backupRetentionDays equal to the retention in policy config "
                "(retentionDays.production / retentionDays.staging).",
    config_schema=SCHEMA,
)
