"""`bookingctl doctor`: read-only checks of what the stack and the commands assume about the account.

A wrong assumption about the Cloudflare account (a token without a permission, a zone plan that
cannot hold the rate-limiting rules, an entry point someone made in the dashboard, a full Turnstile
widget, a GraphQL field that does not exist, a missing database) otherwise shows up halfway through
a real `pulumi up`, or in a canary that never sees traffic. Each check here is a small function
that reads the account and returns one `Check` per thing it judged: passed, failed (with the fix),
or `ok=None` when it could not be checked, saying why; a check that cannot tell never passes.

Nothing here writes: every call is a GET, or the GraphQL introspection query (a read). The
expectations come from published sources named next to each one; the limits themselves live in
`booking_shared/limits.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ops.observation.doctor_account import (
    check_bucket,
    check_canary_query,
    check_custom_hostname_quota,
    check_database,
    check_entry_points,
    check_widgets,
    check_zone_plans,
)
from ops.observation.doctor_model import Check, DoctorInputError, Report, Target, last_read, target_of, unreadable
from ops.observation.doctor_token import check_token

if TYPE_CHECKING:
    from cloudflare import Cloudflare

# What callers and the tests take from here: the run and the model it reports in.
__all__ = ["CHECKS", "Check", "DoctorInputError", "Report", "Target", "run", "target_of"]


CHECKS: Sequence[Callable[[Cloudflare, Target], list[Check]]] = (
    check_token, check_zone_plans, check_entry_points, check_widgets, check_canary_query,
    check_custom_hostname_quota, check_database, check_bucket)


def run(client: Cloudflare, target: Target) -> Report:
    """Every check in order; raises DoctorInputError when the account cannot be read at all."""
    report = Report(target.stack)
    for check in CHECKS:
        try:
            report.checks.extend(check(client, target))
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            # An answer of the wrong shape (a string or a list where the SDK's model has an object):
            # unreadable, like a 5xx, never a check passed or failed on it.
            raise unreadable(last_read.get(), exc) from exc
    return report
