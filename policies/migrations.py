"""Rollback-safe migrations: the pending migrations `bookingctl migrate check` judged, as evidence.

CI runs `bookingctl migrate check --stack S --format json` against the database the deploy will
migrate and passes its output as policy config (`scripts/migration_evidence.py` merges it into the
config file, as the checklist evidence is): `{"migrations-rollback-safe": {"verdict": "safe",
"target", "migrationsChecksum", "migrations": [{"name", "sha256", "class", "unsafe", "findings": [...]}]}}`.

The evidence counts only when it is bound to what is deployed: its `target` is this stack's own D1
(`D1 <booking:databaseName> (...)`; a pull request's check of a scratch copy built from the base
branch is accepted only when marked `"scope": "pull-request"`), its `migrationsChecksum` is the
checksum of this tree's `migrations/` (booking_shared.deploy.migrations_checksum), and every migration it
lists is a file of this tree with the same sha256. Evidence of another stack, of other files (stale),
or malformed (findings not a list of objects) is a violation naming the mismatch.

Every migration marked `unsafe` or with an error finding is a violation, unless the stack file
approves that very file under `booking:approvedUnsafeMigrations` (`{name, sha256, reason}`: a
reviewed change naming the content, the same approval the deploy hook honours). Missing evidence is
a violation too: a gate that passes when nobody ran the check guards nothing. Mandatory in
production, advisory in staging (the pack's initial config).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, Severity, StackValidationArgs

from booking_shared.deploy import migrations_checksum
from booking_shared.migration_files import text_sha256
from policies.common import Report, config_value, make_stack_policy, message, project_root, stack_environment

NAME = "migrations-rollback-safe"
# The scope a pull request's evidence declares: its target is a scratch copy of the base branch's schema.
PULL_REQUEST = "pull-request"

SCHEMA = PolicyConfigSchema(
    properties={
        "verdict": {"type": "string", "enum": ["safe", "unsafe"],
                    "description": "`bookingctl migrate check` verdict for the pending migrations."},
        "target": {"type": "string", "description": "The database the check read: this stack's D1."},
        "servingQueries": {"type": "integer", "description": "How many serving queries were prepared."},
        "migrationsChecksum": {"type": "string", "description": "Checksum of the migration files the check read."},
        "scope": {"type": "string", "enum": [PULL_REQUEST],
                  "description": "`pull-request`: checked against a scratch copy of the base branch's schema."},
        "migrations": {"type": "array", "items": {"type": "object"},
                       "description": "Per pending migration: name, sha256, class, unsafe and findings {rule, "
                                      "severity, file, line, message}, as `migrate check --format json` prints them."},
    },
)

_RERUN = ("run `bookingctl migrate check --stack STACK --format json > check.json` on this tree and "
          "`scripts/migration_evidence.py check.json CONFIG.json`, then pass CONFIG.json as policy config")


def approved_migrations() -> dict[str, str]:
    """name -> sha256 of each approval in the stack file (entries without a sha256 approve nothing)."""
    raw = config_value("approvedUnsafeMigrations")
    try:
        entries = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}  # the program refuses a malformed key, naming it; nothing is approved meanwhile
    return {str(e.get("name")): str(e.get("sha256", "")).lower() for e in entries or [] if isinstance(e, dict)}


def _errors(migration: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in migration["findings"] if str(f.get("severity", "")).lower() == "error"]


def tree_migrations() -> tuple[str, dict[str, str]]:
    """(checksum, name -> sha256) of this tree's migrations/."""
    folder = project_root() / "migrations"
    files = {p.name: text_sha256(p.read_text(encoding="utf-8")) for p in folder.glob("*.sql") if p.is_file()}
    return migrations_checksum(folder), files


def _binding_problems(evidence: Mapping[str, Any], migrations: list[Any]) -> list[str]:
    """Why this evidence is not evidence of this deploy: shape, target, files. Empty when it is."""
    problems = []
    malformed = [i for i, m in enumerate(migrations) if not isinstance(m, dict) or not isinstance(m.get("name"), str)
                 or not isinstance(m.get("findings"), list) or not all(isinstance(f, dict) for f in m["findings"])]
    if malformed:
        problems.append(f"migrations[{malformed[0]}] is not a migration object with a name and a list of findings "
                        "objects, as `migrate check --format json` writes it")
    database = str(config_value("databaseName") or "")
    target = str(evidence.get("target", ""))
    if evidence.get("scope") == PULL_REQUEST:
        if not target.startswith("local "):
            problems.append(f"pull-request evidence is of {target!r}, not of a scratch copy (`local ...`)")
    elif not database or not target.startswith(f"D1 {database} ("):
        problems.append(f"it was taken of {target or 'no target'!r}, not of this stack's D1 {database!r}")
    return problems + tree_problems(evidence, migrations, "was taken of")


def tree_problems(evidence: Mapping[str, Any], migrations: list[Any], verb: str) -> list[str]:
    """Why evidence is not of this tree's migration files (its checksum, each file's sha256); shared
    with policies/rehearsal.py, whose evidence binds the same way. `verb`: "was taken of", ..."""
    problems = []
    checksum, files = tree_migrations()
    if evidence.get("migrationsChecksum") != checksum:
        problems.append(f"it {verb} other migration files than this tree's (migrationsChecksum "
                        f"{str(evidence.get('migrationsChecksum') or 'missing')[:12]}, this tree's {checksum})")
    for migration in (m for m in migrations if isinstance(m, dict) and isinstance(m.get("name"), str)):
        digest = files.get(migration["name"])
        if digest is None:
            problems.append(f"it lists {migration['name']}, which is not in this tree's migrations/")
        elif str(migration.get("sha256", "")).lower() != digest:
            problems.append(f"its {migration['name']} is another version of the file (sha256 "
                            f"{str(migration.get('sha256') or 'missing')[:12]}, this tree's {digest[:12]})")
    return problems


def check_migrations(args: StackValidationArgs, report: Report) -> None:
    """Evidence of `migrate check` for this stack and tree is present, and no unsafe migration is unapproved."""
    evidence = args.get_config()
    env = stack_environment()
    where = "" if env == "production" else " (here, on staging, it only warns)"
    migrations = evidence.get("migrations")
    if evidence.get("verdict") not in ("safe", "unsafe") or not isinstance(migrations, list):
        report(message("No `migrate check` evidence for the pending migrations.",
                       "a migration that removes what the serving version reads breaks it, and any rollback to "
                       "it; nobody has shown this deploy's migrations are safe" + where,
                       "have CI " + _RERUN + "; on your own machine: `venv/bin/bookingctl migrate check "
                       "--local FILE --format json > check.json`, the same script, then `scripts/bookingctl plan "
                       "STACK --policy-config CONFIG.json` (or see the gate pass with the example evidence: "
                       "--policy-config policies/examples/checklist-evidence.json)"))
        return
    problems = _binding_problems(evidence, migrations)
    if problems:
        report(message(f"The `migrate check` evidence is not evidence of this deploy: {'; '.join(problems)}.",
                       "evidence of another stack, of other migration files or edited by hand says nothing about "
                       "the migrations this deploy applies" + where, _RERUN))
        return
    approved = approved_migrations()
    for migration in migrations:
        errors = _errors(migration)
        name = migration["name"]
        if not errors and migration.get("unsafe") is not True:
            continue
        if name in approved and approved[name] == str(migration.get("sha256", "")).lower():
            continue
        listed = "; ".join(f"{f.get('rule')} at {f.get('file')}:{f.get('line')}: {f.get('message')}"
                           for f in errors) or "marked unsafe"
        stale = (f" (booking:approvedUnsafeMigrations approves {name} with sha256 {approved[name][:12] or 'missing'}, "
                 "another version of the file)" if name in approved else "")
        report(message(f"Migration {name} ({migration.get('class')}) is not rollback-safe: {listed}.{stale}",
                       "the version serving now, or a Worker rolled back to it, would fail against the new schema "
                       "(or D1 rejects the migration); rolling the Worker back cannot help and a Time Travel "
                       "restore erases every booking since" + where,
                       "expand first and contract in a later release (docs/releases.md: 'Rollback-safe "
                       "migrations'), or, "
                       f"if it is safe anyway, approve this file in the stack file: booking:approvedUnsafeMigrations: "
                       f"[{{name: {name}, sha256: {migration.get('sha256')}, reason: ...}}]"))
    if evidence.get("verdict") == "unsafe" and not any(_errors(m) or m.get("unsafe") is True for m in migrations):
        report(message("The `migrate check` evidence says unsafe but lists no error finding.",
                       "evidence that contradicts itself was edited or truncated",
                       "pass the output of `bookingctl migrate check --format json` unchanged"))


migrations_rollback_safe = make_stack_policy(
    NAME,
    "Every pending migration is rollback-safe and D1-compatible per `bookingctl migrate check`, or approved.",
    check_migrations,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Run `bookingctl migrate check` against this stack's D1 in CI and pass its JSON as policy config; make "
                "unsafe migrations safe (expand, deploy, contract) or approve the file under "
                "booking:approvedUnsafeMigrations (name and sha256).",
    suppressible=False,
    # Never suppressed (the stack file's approval is the one way past it), but advisory on staging.
    locked=False,
    config_schema=SCHEMA,
)
