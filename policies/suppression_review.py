"""Suppressions are reviewed exceptions: every entry has a reason, an approver and an expiry.

`suppressions-valid` (mandatory) rejects malformed, reason-less, expired, too-long or
non-suppressible entries. `suppressions-active` (advisory) lists each suppression in force so
that no exception is ever silent in a plan or a pull-request comment.

Both need to know the pack's other policies (which names exist, which cannot be silenced), so
they are built by `review_policies(area_policies)` from the pack's list rather than imported from
it: no cycle, and no answer that depends on which modules happen to be imported.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
from pulumi_policy import EnforcementLevel, Severity, StackValidationArgs

from booking_shared import clock
from policies.common import (
    Catalog,
    PackPolicy,
    Report,
    Suppression,
    load_suppressions,
    make_stack_policy,
    message,
    suppressions_path,
)

VALID = "suppressions-valid"
ACTIVE = "suppressions-active"


def problems_of(entry: Suppression, catalog: Catalog) -> list[str]:
    """Why an entry is invalid (empty when it is valid); one judgement for both policies here."""
    problems = list(entry.problems)
    if entry.policy and entry.policy not in catalog.names:
        problems.append(f"no policy is named `{entry.policy}`")
    elif entry.policy in catalog.non_suppressible:
        problems.append(f"policy `{entry.policy}` cannot be suppressed")
    return problems


def check_suppressions_valid(args: StackValidationArgs, report: Report, catalog: Catalog) -> None:
    """Every entry of the suppressions file is well-formed, justified, approved and unexpired."""
    entries = load_suppressions()
    if not entries:
        args.not_applicable("no suppressions")
        return
    for entry in entries:
        problems = problems_of(entry, catalog)
        if problems:
            report(message(f"Suppression #{entry.index + 1} in {suppressions_path().name} "
                           f"({entry.policy or '?'} on {entry.resource or '?'}) is not valid: {'; '.join(problems)}.",
                           "an exception without a reason, an approver and an end date is a silent rule change",
                           "fix or delete the entry; it does not suppress anything until it is valid"))


def check_suppressions_active(args: StackValidationArgs, report: Report, catalog: Catalog) -> None:
    """Lists every valid suppression that applies to this stack."""
    stack = pulumi.get_stack()
    active = [e for e in load_suppressions() if not problems_of(e, catalog) and e.stack in (None, stack)]
    if not active:
        args.not_applicable("no suppression is in force")
        return
    for entry in active:
        left = (entry.expires - clock.today()).days if entry.expires else 0
        report(f"Suppressed: {entry.policy} on {entry.resource} until {entry.expires} ({left} days), "
               f"approved by {entry.approved_by}: {entry.reason}")


def review_policies(area_policies: Sequence[PackPolicy]) -> list[PackPolicy]:
    """`suppressions-valid` and `suppressions-active` for a pack of `area_policies` plus these two."""
    catalog = Catalog(frozenset(), frozenset())  # replaced below, before any policy can run

    def valid(args: StackValidationArgs, report: Report) -> None:
        check_suppressions_valid(args, report, catalog)

    def active(args: StackValidationArgs, report: Report) -> None:
        check_suppressions_active(args, report, catalog)

    reviews = [
        make_stack_policy(
            VALID,
            "Every policy suppression has a reason, an approver and an expiry no more than 180 days away, and "
            "names a suppressible policy.",
            valid,
            level=EnforcementLevel.MANDATORY,
            severity=Severity.HIGH,
            remediation="Edit policies/suppressions.yaml: give each entry policy, resource, reason, approvedBy and "
                        "expires, or delete it.",
            suppressible=False,
        ),
        make_stack_policy(
            ACTIVE,
            "Suppressions in force for this stack, listed so reviewers see every exception.",
            active,
            level=EnforcementLevel.ADVISORY,
            severity=Severity.LOW,
            remediation="Fix the suppressed finding and delete the entry before it expires.",
            suppressible=False,
        ),
    ]
    catalog = Catalog.of([*area_policies, *reviews])
    return reviews
