"""Worker hygiene: a pinned, recent compatibility date, logs that operators can read, and the
per-request analytics the canary judges a new version by."""

from __future__ import annotations

import datetime as dt

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationArgs, Severity

from booking_shared import clock
from booking_shared.naming import REQUESTS_BINDING, VERSION_METADATA_BINDING
from booking_shared.tokens import VERSION, WORKER
from policies.common import Report, get, make_resource_policy, message

COMPAT = "worker-compatibility-date"
OBSERVABILITY = "worker-observability"
REQUEST_ANALYTICS = "worker-request-analytics"

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


def check_request_analytics(args: ResourceValidationArgs, report: Report) -> None:
    """The version writes its requests to Analytics Engine, indexed by the version id it reads from its metadata."""
    if args.resource_type != VERSION:
        args.not_applicable("not a Worker version")
        return
    bindings = {get(b, "name"): b for b in args.props.get("bindings") or []}
    requests, metadata = bindings.get(REQUESTS_BINDING), bindings.get(VERSION_METADATA_BINDING)
    why = ("the canary judges a new version's HTTP 5xx and latency by the data points the Worker writes there: "
           "Cloudflare's Workers analytics have invocation statuses, not HTTP status codes, so without them a "
           "version answering 503s passes its canary")
    if requests is None or get(requests, "type") != "analytics_engine" or not get(requests, "dataset"):
        report(message(f"Worker version has no analytics_engine binding {REQUESTS_BINDING} with a dataset "
                       f"(found {get(requests, 'type') if requests else 'none'}).", why,
                       f"bind {{'type': 'analytics_engine', 'name': '{REQUESTS_BINDING}', 'dataset': "
                       "requests_dataset(worker_name)} (infra/worker.py does)"))
    if metadata is None or get(metadata, "type") != "version_metadata":
        report(message(f"Worker version has no version_metadata binding {VERSION_METADATA_BINDING}.",
                       "each data point is indexed by the version id the Worker reads from it; without it the "
                       "canary cannot tell the new version's requests from the serving one's",
                       f"bind {{'type': 'version_metadata', 'name': '{VERSION_METADATA_BINDING}'}}"))


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

request_analytics = make_resource_policy(
    REQUEST_ANALYTICS,
    "Worker versions write one Analytics Engine data point per request (binding REQUESTS), indexed by their "
    "version id (binding CF_VERSION_METADATA), for the canary's per-version HTTP 5xx and latency.",
    check_request_analytics,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Bind the Worker version's REQUESTS analytics_engine dataset and CF_VERSION_METADATA.",
)
