"""A pull request's preview stack lives a bounded time (stackconfig/preview.py derives it).

A preview holds a scrubbed copy of real data and a public hostname: one forgotten after its pull
request closed (a workflow that failed to destroy it) keeps both up. Its `booking:preview.expires`
is set when it is derived; a plan of a preview past that day, or one set further ahead than
MAX_LIFETIME_DAYS, is refused, so the preview is destroyed rather than updated (`pulumi destroy`
reads no policy). Names, hostname and database of a preview are its own by the config's own
checks (stackconfig/preview.py `preview_isolated`); hostnames of other environments by
hostname-isolation.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pulumi
from pulumi_policy import EnforcementLevel, Severity, StackValidationArgs

from booking_shared import clock
from policies.common import Report, config_value, make_stack_policy, message
from stackconfig.preview import MAX_LIFETIME_DAYS, pr_of

NAME = "preview-lifetime"


def _preview() -> dict[str, Any] | None:
    value = config_value("preview")
    if value is None:
        return None
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def check_preview_lifetime(args: StackValidationArgs, report: Report) -> None:
    """A preview stack's expiry day is set, not passed, and at most MAX_LIFETIME_DAYS ahead."""
    preview, stack = _preview(), pulumi.get_stack()
    if preview is None:
        if pr_of(stack) is not None:
            report(message(f"Stack {stack} is named as a pull request's preview but has no booking:preview.",
                           "without an expiry nothing bounds how long its data and hostname stay up",
                           f"derive it with `bookingctl preview derive --pr {pr_of(stack)}`"))
            return
        args.not_applicable("not a preview stack (no booking:preview)")
        return
    try:
        expires = dt.date.fromisoformat(str(preview.get("expires")))
    except ValueError:
        report(message(f"booking:preview.expires of {stack} is {preview.get('expires')!r}, not a date.",
                       "a preview without a readable expiry lives forever", "derive it again: "
                       f"`bookingctl preview derive --pr {pr_of(stack) or 'N'}`"))
        return
    today = clock.today()
    if expires < today:
        report(message(f"Preview {stack} expired on {expires} (today is {today}).",
                       "an expired preview keeps a copy of the data and a public hostname up after its review",
                       f"destroy it (`pulumi destroy --stack {stack}`), or derive it again with a new expiry "
                       f"(`bookingctl preview derive --pr {preview.get('pr')}`)"))
    elif (expires - today).days > MAX_LIFETIME_DAYS:
        report(message(f"Preview {stack} expires on {expires}, {(expires - today).days} days ahead.",
                       f"a preview lives at most {MAX_LIFETIME_DAYS} days: longer, and it outlives its review",
                       f"set booking:preview.expires at most {MAX_LIFETIME_DAYS} days ahead (`bookingctl preview "
                       "derive` does)"))


preview_lifetime = make_stack_policy(
    NAME,
    f"A pull request's preview stack has not passed its booking:preview.expires, set at most {MAX_LIFETIME_DAYS} "
    "days ahead.",
    check_preview_lifetime,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.MEDIUM,
    remediation="Destroy an expired preview (`bookingctl preview down --pr N`) or derive it again.",
    suppressible=False,
    locked=False,
)
