"""Worker hygiene: a pinned, recent compatibility date and logs that operators can read."""

from __future__ import annotations

import datetime as dt

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationArgs, Severity

from booking_shared import clock
from booking_shared.tokens import VERSION, WORKER
from policies.common import Report, get, make_resource_policy, message

COMPAT = "worker-compatibility-date"
OBSERVABILITY = "worker-observability"

COMPAT_SCHEMA = PolicyConfigSchema(
    properties={
        "maxAgeDays": {"type": "integer", "minimum": 1, "default": 365,
                       "description": "Oldest compatibility date accepted, in days before today."},
    },
)


def check_compatibility_date(args: ResourceValidationArgs, report: Report) -> None:
    """The compatibility date is set, a real date, not in the future and not older than maxAgeDays."""
    if args.resource_type != VERSION:
        args.not_applicable("not a Worker version")
        return
    value = args.props.get("compatibilityDate")
    max_age = int(args.get_config().get("maxAgeDays", 365))
    fix = "set booking:compatibilityDate to a tested date (YYYY-MM-DD)"
    try:
        date = dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        date = None
    today = clock.today()
    if date is None:
        report(message(f"Worker version has no valid compatibility date (found {value!r}).",
                       "without a pinned date the runtime's behaviour changes under the Worker without a deploy",
                       fix))
    elif date > today:
        report(message(f"Compatibility date {date} is in the future.", "the runtime rejects future dates", fix))
    elif (today - date).days > max_age:
        report(message(f"Compatibility date {date} is {(today - date).days} days old (limit {max_age}).",
                       "old dates keep long-fixed runtime bugs and block security-relevant changes",
                       f"{fix} within the last {max_age} days and run the tests against it"))


def check_observability(args: ResourceValidationArgs, report: Report) -> None:
    """Workers logs are on, so the post-deploy watch and incident review have data."""
    if args.resource_type != WORKER:
        args.not_applicable("not a Worker")
        return
    if get(args.props, "observability", "enabled") is not True or \
            get(args.props, "observability", "logs", "enabled") is not True:
        report(message(f"Worker {args.props.get('name')} has observability or logs turned off.",
                       "the guide's rollback triggers (error rate, latency) and incident review need the logs",
                       "set observability={'enabled': True, 'logs': {'enabled': True, 'invocation_logs': True}}"))


compatibility_date = make_resource_policy(
    COMPAT,
    "Worker versions pin a compatibility date that is valid and not older than the configured age.",
    check_compatibility_date,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.MEDIUM,
    remediation="Pin booking:compatibilityDate to a recent date and re-run the tests.",
    config_schema=COMPAT_SCHEMA,
)

observability = make_resource_policy(
    OBSERVABILITY,
    "Workers have observability and logs enabled.",
    check_observability,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.MEDIUM,
    remediation="Enable observability and logs on the Worker resource.",
)
