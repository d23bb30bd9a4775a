"""The guide's pre-deployment checklist, as evidence in the policy config.

CI generates the evidence from its own results and passes it as policy config
(`pulumi preview --policy-pack-config` or `bookingctl plan --policy-config`):
`{"pre-deploy-checklist": {"commit": "<sha>", "codeReview": true, ...}}`. A missing or false item
is a violation: mandatory in production, advisory in staging (the pack's initial config).
"""

from __future__ import annotations

import re

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, Severity, StackValidationArgs

from policies.common import Report, make_stack_policy, message, stack_environment

NAME = "pre-deploy-checklist"

# Config key -> (the guide's section, the guide's wording of the checklist line).
ITEMS: dict[str, tuple[str, str]] = {
    "codeReview": ("Code Review Complete", "All changes reviewed by senior developer"),
    "securityReview": ("Code Review Complete", "Security review completed"),
    "performanceReviewed": ("Code Review Complete", "Performance impact assessed"),
    "docsUpdated": ("Code Review Complete", "Documentation updated"),
    "unitTests": ("Testing Complete", "Unit tests passing (`pnpm test`)"),
    "integrationTests": ("Testing Complete", "Integration tests passing (`pnpm test:integration`)"),
    "e2eTests": ("Testing Complete", "End-to-end tests passing (`pnpm test:e2e`)"),
    "securityAudit": ("Testing Complete", "Security tests passing (`pnpm audit`)"),
    "performanceTests": ("Testing Complete", "Performance tests passing (`pnpm test:performance`)"),
    "stagingDeployed": ("Environment Ready", "Staging deployment successful"),
    "stagingSmokeTests": ("Environment Ready", "Smoke tests passing on staging"),
    "migrationsTested": ("Environment Ready", "Database migrations tested"),
    "externalApisVerified": ("Environment Ready", "External API connectivity verified"),
}
_SHA = re.compile(r"^[0-9a-f]{7,40}$")

SCHEMA = PolicyConfigSchema(
    properties={
        "commit": {"type": "string", "description": "The git commit being deployed (7-40 hex characters)."},
        **{key: {"type": "boolean", "description": f"{section}: {line}"} for key, (section, line) in ITEMS.items()},
    },
)


def check_checklist(args: StackValidationArgs, report: Report) -> None:
    """Every checklist item is present and true, and the evidence names the commit it is for."""
    evidence = args.get_config()
    env = stack_environment()
    commit = evidence.get("commit")
    if not isinstance(commit, str) or not _SHA.match(commit):
        report(message(f"Checklist evidence names no commit (found {commit!r}).",
                       "evidence that does not name the commit it was produced for can be replayed for "
                       "another change",
                       "have CI pass \"commit\": \"$GITHUB_SHA\" in the pre-deploy-checklist config"))
    for key, (section, line) in ITEMS.items():
        value = evidence.get(key)
        if value is not True:
            state = "missing" if value is None else f"{value!r}"
            report(message(f"Pre-deployment checklist item '{key}' is {state}: \"{section}: {line}\".",
                           f"the guide requires it before every {env} deployment",
                           f"complete it, then let CI record \"{key}\": true in the pre-deploy-checklist config"))


pre_deploy_checklist = make_stack_policy(
    NAME,
    "The guide's pre-deployment checklist is complete for the commit being deployed.",
    check_checklist,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Run the pipeline that produces the checklist evidence and pass it as policy config.",
    suppressible=False,
    config_schema=SCHEMA,
)
