"""The guide's pre-deployment checklist, as evidence in the policy config.

CI generates the evidence from its own results and passes it as policy config
(`pulumi preview --policy-pack-config` or `bookingctl plan --policy-config`):
`{"pre-deploy-checklist": {"commit": "<sha>", "codeReview": true, ...}}`. A missing or false item
is a violation: mandatory in production, advisory in staging (the pack's initial config).
"""

from __future__ import annotations

import re

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, Severity, StackValidationArgs

from booking_shared.checklist import ITEMS, POLICY
from policies.common import Report, make_stack_policy, message, stack_environment

NAME = POLICY

_SHA = re.compile(r"^[0-9a-f]{7,40}$")

SCHEMA = PolicyConfigSchema(
    properties={
        "commit": {"type": "string", "description": "The git commit being deployed (7-40 hex characters)."},
        **{key: {"type": "boolean", "description": f"{section}: {line}"} for key, (section, line) in ITEMS.items()},
    },
)


# On a laptop there is no deploy evidence: the example CI would produce shows the gate passing.
_LOCALLY = ("; on your own machine, see the gate pass with the example evidence: `scripts/bookingctl plan STACK "
            "--policy-config policies/examples/checklist-evidence.json`")


def check_checklist(args: StackValidationArgs, report: Report) -> None:
    """Every checklist item is present and true, and the evidence names the commit it is for."""
    evidence = args.get_config()
    env = stack_environment()
    commit = evidence.get("commit")
    # All zeros is git's null object id (what a hook gets for a ref that does not exist): no commit.
    if not isinstance(commit, str) or not _SHA.match(commit) or not commit.strip("0"):
        found = "nothing" if commit is None else repr(commit)
        report(message(f"Checklist evidence names no commit (found {found}).",
                       "evidence that does not name the commit it was produced for can be replayed for "
                       "another change",
                       "have CI pass \"commit\": \"$GITHUB_SHA\" in the pre-deploy-checklist config" + _LOCALLY))
    for key, (section, line) in ITEMS.items():
        value = evidence.get(key)
        if value is not True:
            state = "missing" if value is None else f"{value!r}"
            report(message(f"Pre-deployment checklist item '{key}' is {state}: \"{section}: {line}\".",
                           "the guide requires it before every production deployment"
                           + ("" if env == "production" else " (here, on staging, it only warns)"),
                           f"complete it, then let CI record \"{key}\": true in the pre-deploy-checklist config"
                           + _LOCALLY))


pre_deploy_checklist = make_stack_policy(
    NAME,
    "The guide's pre-deployment checklist is complete for the commit being deployed.",
    check_checklist,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Run the pipeline that produces the checklist evidence and pass it as policy config.",
    suppressible=False,
    # Never suppressed, but its level is configured by design: advisory on staging (the pack's
    # initial config) and in pull requests, which cannot have deploy evidence yet.
    locked=False,
    config_schema=SCHEMA,
)
