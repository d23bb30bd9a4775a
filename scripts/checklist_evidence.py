#!/usr/bin/env python3
"""Write the pre-deploy-checklist evidence from the pipeline's own results, or check it (never typed by hand).

    scripts/checklist_evidence.py OUT.json        write the evidence
    scripts/checklist_evidence.py --check FILE    exit 1 unless every item in FILE is true

Writing reads environment variables the workflow sets from its jobs' results:
  COMMIT                 the commit being deployed
  REVIEW_APPROVED        "true" when the merged pull request had an approving review
  TESTS_RESULT           result of the test job (ruff, mypy, pytest)
  AUDIT_RESULT           result of the dependency audit (pip-audit)
  PERF_RESULT            result of `bookingctl monitor perf` on staging
  STAGING_RESULT         result of the staging deployment (`pulumi up`, after its gated preview)
  SMOKE_RESULT           result of `bookingctl verify` on staging
  MIGRATIONS_RESULT      result of `bookingctl migrate status` on staging (after `pulumi up` applied them)
  INTEGRATIONS_RESULT    result of `bookingctl monitor health` on staging
An item is true only when its result is "success" (REVIEW_APPROVED: "true"). Items this
repository has no job for are stood in for, and SOURCES below says by what: the documentation,
security and performance reviews by the approving review (as the guide's "Code Review Complete"
does), and the app's end-to-end suite (`pnpm test:e2e`, which lives in the app repository) by
`bookingctl verify` against staging, the nearest end-to-end check this repository has.

--check exists because `pulumi up` evaluates the checklist (a stack policy) only after every step
has been applied: the deploy job refuses to start while any item is not true.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # started as a file: again as a module, in the venv
    from _rerun import rerun_as_module

    rerun_as_module(__file__)

from booking_shared.checklist import ITEMS, POLICY

# Each checklist item and the job result (environment variable) that proves it.
SOURCES: dict[str, str] = {
    "codeReview": "REVIEW_APPROVED",
    "securityReview": "REVIEW_APPROVED",
    "performanceReviewed": "REVIEW_APPROVED",
    "docsUpdated": "REVIEW_APPROVED",
    "unitTests": "TESTS_RESULT",
    "integrationTests": "TESTS_RESULT",
    "e2eTests": "SMOKE_RESULT",
    "securityAudit": "AUDIT_RESULT",
    "performanceTests": "PERF_RESULT",
    "stagingDeployed": "STAGING_RESULT",
    "stagingSmokeTests": "SMOKE_RESULT",
    "migrationsTested": "MIGRATIONS_RESULT",
    "externalApisVerified": "INTEGRATIONS_RESULT",
}
if set(SOURCES) != set(ITEMS):  # a new checklist item must say which job proves it
    raise SystemExit(f"checklist_evidence.py: no source for {sorted(set(ITEMS) ^ set(SOURCES))}")


def evidence_from(env: dict[str, str]) -> dict[str, object]:
    def met(source: str) -> bool:
        return env.get(source, "") == ("true" if source == "REVIEW_APPROVED" else "success")

    return {"commit": env.get("COMMIT", ""), **{item: met(source) for item, source in SOURCES.items()}}


def missing_items(evidence: dict[str, object]) -> list[str]:
    return [item for item in ITEMS if evidence.get(item) is not True]


def write(out: Path) -> int:
    evidence = evidence_from(dict(os.environ))
    out.write_text(json.dumps({POLICY: evidence}, indent=2) + "\n", encoding="utf-8")
    missing = missing_items(evidence)
    print(f"checklist evidence for {str(evidence['commit'])[:12]}: {len(ITEMS) - len(missing)} of {len(ITEMS)} "
          "items met" + (f"; missing: {', '.join(missing)}" if missing else ""))
    return 0


def check(path: Path) -> int:
    try:
        evidence = json.loads(path.read_text(encoding="utf-8"))[POLICY]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {path}: no {POLICY} evidence ({exc})", file=sys.stderr)
        return 2
    missing = missing_items(evidence)
    if missing:
        print(f"error: not deploying: checklist items not true in {path}: {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"all {len(ITEMS)} checklist items are true in {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, help="where to write the evidence JSON")
    parser.add_argument("--check", type=Path, metavar="FILE", help="check FILE instead of writing")
    args = parser.parse_args(argv)
    if (args.out is None) == (args.check is None):
        parser.error("give OUT.json to write the evidence, or --check FILE to check it")
    return check(args.check) if args.check else write(args.out)


if __name__ == "__main__":
    sys.exit(main())
