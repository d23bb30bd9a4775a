"""The guide's pre-deployment checklist: the evidence keys CI records and the policy requires."""

from __future__ import annotations

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
# The policy config key the evidence lives under (the policy's name).
POLICY = "pre-deploy-checklist"
