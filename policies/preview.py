"""A pull request's preview stack lives a bounded time and touches only what is its own.

A preview holds a scrubbed copy of real data and a public hostname: one forgotten after its pull
request closed (a workflow that failed to destroy it) keeps both up. Its `booking:preview.expires`
is set when it is derived; a plan of a preview past that day, or one set further ahead than
MAX_LIFETIME_DAYS, is refused, so the preview is destroyed rather than updated (`pulumi destroy`
reads no policy).

`preview-isolated` checks the plan itself, after the config's own checks (stackconfig/preview.py
`preview_isolated`): every database, Worker, bucket and Pages project a preview declares is named
with its own `-pr-N`, every hostname it routes, points DNS at, adds to Pages or lets a widget
accept has `-pr-N` in its first label, and it declares nothing zone-wide or shared (rulesets,
custom hostnames, health checks, notification policies), so a preview of production's or
staging's config (a hand-edited file, a derive bug) is stopped before `pulumi up` creates or
changes anything of theirs. Secrets: a preview's file carries none (the config check); its stack
secrets are the pull-request environment's test-mode keys, set by `bookingctl preview up`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pulumi
from pulumi_policy import EnforcementLevel, Severity, StackValidationArgs

from booking_shared import clock
from policies.common import Report, config_value, get, make_stack_policy, message
from stackconfig.preview import MAX_LIFETIME_DAYS, pr_of

NAME = "preview-lifetime"
ISOLATED = "preview-isolated"
# Named resources and the input holding the name a preview must own.
_NAMED = {"cloudflare:index/d1Database:D1Database": "name", "cloudflare:index/worker:Worker": "name",
          "cloudflare:index/r2Bucket:R2Bucket": "name", "cloudflare:index/pagesProject:PagesProject": "name",
          "cloudflare:index/workersDeployment:WorkersDeployment": "scriptName"}
# Hostnames and the input holding them (a list for widgets).
_HOSTS = {"cloudflare:index/dnsRecord:DnsRecord": "name", "cloudflare:index/workersRoute:WorkersRoute": "pattern",
          "cloudflare:index/pagesDomain:PagesDomain": "name",
          "cloudflare:index/turnstileWidget:TurnstileWidget": "domains"}
# What acts on a whole zone or account, or on salons' hostnames: never a preview's.
_SHARED = ("cloudflare:index/ruleset:Ruleset", "cloudflare:index/customHostname:CustomHostname",
           "cloudflare:index/healthcheck:Healthcheck", "cloudflare:index/notificationPolicy:NotificationPolicy",
           "cloudflare:index/customHostnameFallbackOrigin:CustomHostnameFallbackOrigin")


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


def check_preview_isolated(args: StackValidationArgs, report: Report) -> None:
    """Everything a preview stack declares carries its own `-pr-N`, and nothing of it is zone-wide."""
    stack = pulumi.get_stack()
    pr = pr_of(stack)
    if pr is None and _preview() is None:
        args.not_applicable("not a preview stack")
        return
    mark = f"-{stack}"
    fix = f"derive the stack again (`bookingctl preview derive --pr {pr or 'N'}`) instead of editing it"
    for r in args.resources:
        if r.resource_type in _SHARED:
            report(message(f"Preview {stack} declares {r.resource_type.rsplit(':', 1)[-1]} {r.name}.",
                           "a preview must not change what a whole zone or other stacks share", fix), r.urn)
        key = _NAMED.get(r.resource_type)
        name = get(r.props, key) if key else None
        if key and not (isinstance(name, str) and name.endswith(mark)):
            report(message(f"Preview {stack}: {r.resource_type.rsplit(':', 1)[-1]} {r.name} is named {name!r}.",
                           f"a name without {mark} at its end is staging's, production's or another preview's, "
                           "and `pulumi up` would change it", fix), r.urn)
        key = _HOSTS.get(r.resource_type)
        value = get(r.props, key) if key else None
        # A widget's domains arrive as the policy SDK's list proxy, not a list.
        hosts = [] if not key else [value] if isinstance(value, str) or value is None else list(value)
        for host in hosts:
            first = str(host).split("/", 1)[0].split(".", 1)[0]
            if not first.endswith(mark):
                report(message(f"Preview {stack}: {r.resource_type.rsplit(':', 1)[-1]} {r.name} serves {host!r}.",
                               f"a preview answers only on its own hostname ({mark[1:]} in the first label)", fix),
                       r.urn)


preview_isolated = make_stack_policy(
    ISOLATED,
    "Every database, Worker, bucket, Pages project and hostname of a pull request's preview is its own (`-pr-N`), "
    "and it declares nothing zone-wide.",
    check_preview_isolated,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Derive the preview again with `bookingctl preview derive --pr N`; never edit its names.",
    suppressible=False,
    locked=True,
)
