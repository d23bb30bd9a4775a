"""Data protection: production data cannot be deleted by a mistaken `pulumi destroy` or rename."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, Severity

from booking_shared.tokens import BUCKET, D1
from policies.common import Report, make_resource_policy, message, stack_environment

NAME = "data-protection"
_KINDS = {D1: "D1 database", BUCKET: "backup bucket"}


def check_data_protection(args: ResourceValidationArgs, report: Report) -> None:
    """Production D1 databases and the backup bucket must carry `protect=True`."""
    kind = _KINDS.get(args.resource_type)
    if kind is None:
        args.not_applicable("not a data-bearing resource")
        return
    if stack_environment() != "production":
        args.not_applicable("only production data is protected")
        return
    if not args.opts.protect:
        report(message(f"Production {kind} '{args.props.get('name')}' ({args.name}) is not protected.",
                       "without protect=True a `pulumi destroy`, a rename or a replacement deletes customer "
                       "bookings or the backups that could restore them",
                       "create it with pulumi.ResourceOptions(protect=True, retain_on_delete=True)"))


data_protection = make_resource_policy(
    NAME,
    "Production D1 databases and the backup bucket are protected against deletion.",
    check_data_protection,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    remediation="Set protect=True (and retain_on_delete=True) on production D1 databases and the backup bucket.",
    suppressible=False,
)
