"""Migrations rehearsed on real data: what `bookingctl migrate rehearse` found, as evidence.

`migrate check` judges a migration on an empty copy of the schema; the rows are what break in
production (a rebuild whose DROP cascades into every child, a DELETE through a trigger, orphans).
The deploy workflow rehearses the pending migrations on the newest backup of the stack's D1
(`bookingctl migrate rehearse --stack S --r2 --format json`) and passes the output as policy config
(`scripts/migration_evidence.py` merges it, as it merges `migrate check`'s):
`{"migrations-rehearsed": {"verdict", "source", "database", "backupCreatedAt", "migrationsChecksum",
"migrations": [{"name", "sha256", "status", "problems": [{"rule", "severity", ...}]}]}}`.

The evidence counts only when it is bound to this deploy: its `database` is this stack's
booking:databaseName and its backup at most `maxBackupAgeDays` old (a pull request's rehearsal on
seeded data of the base branch's schema is accepted when marked `"scope": "pull-request"`), its
`migrationsChecksum` is this tree's `migrations/`, and each migration it lists is a file of this tree
with the same sha256.

A migration that deletes rows no DELETE of it names (`rows-deleted-unnamed`: a cascade, a trigger, a
DROP) or leaves rows pointing nowhere (`orphans`) is a violation unless the stack file approves that
very file under `booking:approvedUnsafeMigrations` (`{name, sha256, reason}`, the approval
`migrations-rollback-safe` and the deploy hook honour). Any other error (a constraint the rows break,
NULLs under a new NOT NULL, a `-- check:` that fails, a statement D1 refuses or that passed the
timeout) is a violation no approval lifts: the migration would fail on D1, so it must change. Missing
evidence is a violation too. Mandatory in production, advisory in staging (the pack's initial config).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, Severity, StackValidationArgs

from booking_shared import clock
from policies.common import Report, config_value, make_stack_policy, message, stack_environment
from policies.migrations import PULL_REQUEST, approved_migrations, tree_problems

NAME = "migrations-rehearsed"
DEFAULT_MAX_BACKUP_AGE_DAYS = 7  # the scheduled workflow makes one a day: a week of failed nights is too old
# What an approval in the stack file may lift: the data loss a reviewer can judge intended.
APPROVABLE = frozenset({"rows-deleted-unnamed", "references-nulled", "orphans"})

SCHEMA = PolicyConfigSchema(
    properties={
        "verdict": {"type": "string", "enum": ["safe", "unsafe"],
                    "description": "`bookingctl migrate rehearse` verdict for the pending migrations."},
        "source": {"type": "string", "description": "What the data came from: `backup NAME` or a local file."},
        "database": {"type": ["string", "null"], "description": "The D1 database the backup was taken of."},
        "backupCreatedAt": {"type": ["string", "null"], "description": "When that backup was taken (ISO 8601)."},
        "migrationsChecksum": {"type": "string", "description": "Checksum of the migration files rehearsed."},
        "scope": {"type": "string", "enum": [PULL_REQUEST],
                  "description": "`pull-request`: rehearsed on seeded data of the base branch's schema."},
        "maxBackupAgeDays": {"type": "integer", "minimum": 1, "default": DEFAULT_MAX_BACKUP_AGE_DAYS,
                             "description": "How old the rehearsed backup may be."},
        "migrations": {"type": "array", "items": {"type": "object"},
                       "description": "Per pending migration: name, sha256, status and problems {rule, severity, "
                                      "file, line, table, rows, message}, as `migrate rehearse --format json` "
                                      "prints them."},
    },
)

_RERUN = ("run `bookingctl migrate rehearse --stack STACK --r2 --format json > rehearsal.json` on this tree and "
          "`scripts/migration_evidence.py rehearsal.json CONFIG.json`, then pass CONFIG.json as policy config")


# The rules `migrate rehearse` writes with severity error (ops/database/rehearsal_model.py RULES): an
# error by its rule too, so evidence whose severity was edited down still counts.
ERROR_RULES = frozenset({"rows-deleted-unnamed", "references-nulled", "constraint-failed", "nulls-before-not-null",
                         "orphans", "check-failed", "apply-failed"})


def _errors(migration: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [p for p in migration["problems"]
            if str(p.get("severity", "")).lower() == "error" or p.get("rule") in ERROR_RULES]


def _age_problem(evidence: Mapping[str, Any]) -> str | None:
    created = evidence.get("backupCreatedAt")
    limit = evidence.get("maxBackupAgeDays", DEFAULT_MAX_BACKUP_AGE_DAYS)
    try:
        taken = dt.datetime.fromisoformat(str(created)).date()
    except ValueError:
        return f"its backupCreatedAt {created!r} is not a time"
    age = (clock.today() - taken).days
    if age > int(limit) or age < 0:
        return (f"its backup was taken {taken} ({age} days before today, the limit is {limit}): rehearse on a newer "
                "one (the scheduled workflow uploads one a day)")
    return None


def _binding_problems(evidence: Mapping[str, Any], migrations: list[Any]) -> list[str]:
    """Why this evidence is not evidence of this deploy: shape, database, age, files. Empty when it is."""
    problems = []
    malformed = [i for i, m in enumerate(migrations) if not isinstance(m, dict) or not isinstance(m.get("name"), str)
                 or not isinstance(m.get("problems"), list) or not all(isinstance(p, dict) for p in m["problems"])]
    if malformed:
        problems.append(f"migrations[{malformed[0]}] is not a migration object with a name and a list of problem "
                        "objects, as `migrate rehearse --format json` writes it")
    database = str(config_value("databaseName") or "")
    if evidence.get("scope") == PULL_REQUEST:
        if evidence.get("database") is not None:
            problems.append(f"pull-request evidence is of D1 {evidence.get('database')!r}, not of seeded data "
                            "(a local file)")
    elif not database or evidence.get("database") != database:
        problems.append(f"it rehearsed a backup of {evidence.get('database') or 'no database'!r}, not of this "
                        f"stack's D1 {database!r}")
    else:
        age = _age_problem(evidence)
        if age:
            problems.append(age)
    return problems + tree_problems(evidence, migrations, "rehearsed")


def _listed(errors: list[Mapping[str, Any]]) -> str:
    return "; ".join(f"{p.get('rule')} at {p.get('file')}:{p.get('line')}: {p.get('message')}" for p in errors)


def check_rehearsal(args: StackValidationArgs, report: Report) -> None:
    """Evidence of `migrate rehearse` for this stack and tree is present, and no migration loses or breaks rows
    unapproved."""
    evidence = args.get_config()
    where = "" if stack_environment() == "production" else " (here, on staging, it only warns)"
    migrations = evidence.get("migrations")
    if evidence.get("verdict") not in ("safe", "unsafe") or not isinstance(migrations, list):
        report(message("No `migrate rehearse` evidence for the pending migrations.",
                       "a migration can be right for the schema and still delete or orphan rows only production "
                       "holds (a table rebuild cascading into every booking); nobody has shown what this deploy's "
                       "migrations do to real rows" + where,
                       "have CI " + _RERUN + "; on your own machine: `venv/bin/bookingctl migrate rehearse --local "
                       "FILE --format json`, or see the gate pass with the example evidence: --policy-config "
                       "policies/examples/checklist-evidence.json"))
        return
    problems = _binding_problems(evidence, migrations)
    if problems:
        report(message(f"The `migrate rehearse` evidence is not evidence of this deploy: {'; '.join(problems)}.",
                       "a rehearsal of another database, an old backup or other migration files says nothing about "
                       "what this deploy does to the rows" + where, _RERUN))
        return
    approved = approved_migrations()
    unrehearsed = [m["name"] for m in migrations if m.get("status") != "applied" and not _errors(m)]
    if unrehearsed:
        report(message(f"Migration(s) {', '.join(unrehearsed)} were not rehearsed to the end (status not "
                       "\"applied\"): an earlier migration failed, or the evidence was edited.",
                       "what a migration the rehearsal never applied does to the rows is unknown" + where,
                       "fix the failing migration and rehearse again; " + _RERUN))
    for migration in migrations:
        errors = _errors(migration)
        if not errors:
            continue
        name = migration["name"]
        # A migration that failed never commits on D1 either: nothing an approval could let through.
        lifted = (migration.get("status") == "applied" and name in approved
                  and approved[name] == str(migration.get("sha256", "")).lower())
        blocking = [p for p in errors if p.get("rule") not in APPROVABLE or not lifted]
        if not blocking:
            continue
        if migration.get("status") == "applied" and all(p.get("rule") in APPROVABLE for p in blocking):
            report(message(f"Migration {name} deletes or orphans rows it does not name: {_listed(blocking)}.",
                           "a cascade, trigger or DROP takes rows of tables nobody asked to delete (a rebuild of a "
                           "parent under ON DELETE CASCADE empties its children on D1, workers-sdk#5438)" + where,
                           "rebuild without dropping the parent under foreign keys (docs/releases.md, 'Rollback-safe "
                           "migrations'), name the rows in a DELETE, or, if the loss is intended, approve this file "
                           f"in the stack file: booking:approvedUnsafeMigrations: [{{name: {name}, sha256: "
                           f"{migration.get('sha256')}, reason: ...}}]"))
        else:
            report(message(f"Migration {name} fails on real data: {_listed(blocking)}.",
                           "D1 would refuse it the same way (or its own `-- check:` says the rows are wrong), so the "
                           "deploy would stop halfway through its migrations" + where,
                           "change the migration (backfill before NOT NULL, remove duplicates before a unique "
                           "index, make a slow statement cheaper) and rehearse again; no approval lifts this"))
    if evidence.get("verdict") == "unsafe" and not any(_errors(m) for m in migrations):
        report(message("The `migrate rehearse` evidence says unsafe but lists no error.",
                       "evidence that contradicts itself was edited or truncated",
                       "pass the output of `bookingctl migrate rehearse --format json` unchanged"))


migrations_rehearsed = make_stack_policy(
    NAME,
    "The pending migrations were rehearsed on a recent backup of this stack's D1 and lose or break no row "
    "unapproved.",
    check_rehearsal,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Rehearse in CI with `bookingctl migrate rehearse --stack STACK --r2 --format json` and pass its JSON "
                "as policy config; fix migrations that fail on real data; approve intended deletions under "
                "booking:approvedUnsafeMigrations (name and sha256).",
    suppressible=False,
    locked=False,
    config_schema=SCHEMA,
)
