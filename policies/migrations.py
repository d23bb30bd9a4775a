"""Rollback-safe migrations: the pending migrations `bookingctl migrate check` judged, as evidence.

CI runs `bookingctl migrate check --stack S --format json` against the database the deploy will
migrate and passes its output as policy config (`scripts/migration_evidence.py` merges it into the
config file, as the checklist evidence is): `{"migrations-rollback-safe": {"verdict": "safe",
"migrations": [{"name", "class", "findings": [...]}]}}`. Every migration with an error finding is a
violation, unless the stack file approves it by name under `booking:approvedUnsafeMigrations` (a
reviewed change, the same approval the deploy hook honours). Missing evidence is a violation too:
a gate that passes when nobody ran the check guards nothing. Mandatory in production, advisory in
staging (the pack's initial config).
"""

from __future__ import annotations

import json
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, Severity, StackValidationArgs

from policies.common import Report, config_value, make_stack_policy, message, stack_environment

NAME = "migrations-rollback-safe"

SCHEMA = PolicyConfigSchema(
    properties={
        "verdict": {"type": "string", "enum": ["safe", "unsafe"],
                    "description": "`bookingctl migrate check` verdict for the pending migrations."},
        "target": {"type": "string", "description": "The database the check read (for the record)."},
        "servingQueries": {"type": "integer", "description": "How many serving queries were prepared."},
        "migrations": {"type": "array", "items": {"type": "object"},
                       "description": "Per pending migration: name, class and findings {rule, severity, file, "
                                      "line, message}, as `migrate check --format json` prints them."},
    },
)


def _approved() -> set[str]:
    raw = config_value("approvedUnsafeMigrations")
    try:
        entries = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return set()  # the program refuses a malformed key, naming it; nothing is approved meanwhile
    return {str(e.get("name")) for e in entries or [] if isinstance(e, dict)}


def _errors(migration: dict[str, Any]) -> list[dict[str, Any]]:
    findings = migration.get("findings")
    return [f for f in findings if isinstance(f, dict) and f.get("severity") == "error"] if isinstance(
        findings, list) else []


def check_migrations(args: StackValidationArgs, report: Report) -> None:
    """Evidence of `migrate check` is present, and no pending migration it calls unsafe is unapproved."""
    evidence = args.get_config()
    env = stack_environment()
    where = "" if env == "production" else " (here, on staging, it only warns)"
    migrations = evidence.get("migrations")
    if evidence.get("verdict") not in ("safe", "unsafe") or not isinstance(migrations, list):
        report(message("No `migrate check` evidence for the pending migrations.",
                       "a migration that removes what the serving version reads breaks it, and any rollback to "
                       "it; nobody has shown this deploy's migrations are safe" + where,
                       "have CI run `bookingctl migrate check --stack STACK --format json > check.json` and "
                       "`scripts/migration_evidence.py check.json CONFIG.json`, then pass CONFIG.json as "
                       "policy config; on your own machine: `venv/bin/bookingctl migrate check --local FILE "
                       "--format json > check.json`, the same script, then `scripts/bookingctl plan STACK "
                       "--policy-config CONFIG.json` (or see the gate pass with the example evidence: "
                       "--policy-config policies/examples/checklist-evidence.json)"))
        return
    approved = _approved()
    for migration in (m for m in migrations if isinstance(m, dict)):
        errors = _errors(migration)
        name = str(migration.get("name"))
        if not errors or name in approved:
            continue
        listed = "; ".join(f"{f.get('rule')} at {f.get('file')}:{f.get('line')}: {f.get('message')}" for f in errors)
        report(message(f"Migration {name} ({migration.get('class')}) is not rollback-safe: {listed}.",
                       "the version serving now, or a Worker rolled back to it, would fail against the new schema "
                       "(or D1 rejects the migration); rolling the Worker back cannot help and a Time Travel "
                       "restore erases every booking since" + where,
                       "expand first and contract in a later release (README: 'Rollback-safe migrations'), or, "
                       f"if it is safe anyway, approve it in the stack file: booking:approvedUnsafeMigrations: "
                       f"[{{name: {name}, reason: ...}}]"))
    if evidence.get("verdict") == "unsafe" and not any(_errors(m) for m in migrations if isinstance(m, dict)):
        report(message("The `migrate check` evidence says unsafe but lists no error finding.",
                       "evidence that contradicts itself was edited or truncated",
                       "pass the output of `bookingctl migrate check --format json` unchanged"))


migrations_rollback_safe = make_stack_policy(
    NAME,
    "Every pending migration is rollback-safe and D1-compatible per `bookingctl migrate check`, or approved.",
    check_migrations,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Run `bookingctl migrate check` in CI and pass its JSON as policy config; make unsafe migrations "
                "safe (expand, deploy, contract) or approve them under booking:approvedUnsafeMigrations.",
    suppressible=False,
    # Never suppressed (the stack file's approval is the one way past it), but advisory on staging.
    locked=False,
    config_schema=SCHEMA,
)
