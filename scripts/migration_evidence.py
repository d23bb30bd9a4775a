#!/usr/bin/env python3
"""Add `bookingctl migrate check` or `migrate rehearse` JSON to a policy config file, as a policy's evidence.

    scripts/migration_evidence.py REPORT.json OUT.json [--base CONFIG.json] [--pull-request]

Writes OUT.json: the policy config in CONFIG.json (default: OUT.json itself if it exists, else
nothing) with the report's policy entry set to its output, unchanged: `migrations-rollback-safe`
(policies/migrations.py) for a check, `migrations-rehearsed` (policies/rehearsal.py) for a
rehearsal (its `"kind": "migration-rehearsal"` says which). Both are mandatory in production,
advisory in staging. The deploy workflow adds it to the checklist evidence, the pull-request
workflow to the base branch's policy config. Never typed by hand: only a check's own output is
accepted (a verdict, a list of migrations and the checksum of the migration files it read). The
policy accepts it only for the stack whose D1 it names and for the tree whose migrations it read;
`--pull-request` marks the check of a scratch copy of the base branch's schema (the pull-request
workflow's), whose target is a local file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # started as a file: again as a module, in the venv
    from _rerun import rerun_as_module

    rerun_as_module(__file__)

POLICY = "migrations-rollback-safe"
REHEARSAL_POLICY = "migrations-rehearsed"
# The keys `migrate check --format json` (and `migrate rehearse`) write. Only these are copied: a
# policy's config entry also takes `enforcementLevel`, which evidence must never be able to lower.
CHECK_KEYS = ("verdict", "target", "servingQueries", "migrationsChecksum", "migrations")
REHEARSAL_KEYS = ("verdict", "source", "database", "backupCreatedAt", "migrationsChecksum", "migrations")


def _json(path: Path, what: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError: the message alone names no file
        raise ValueError(f"{path} is not {what} ({exc})") from None


def merged(check: Path, base: Path | None, *, pull_request: bool = False) -> tuple[str, dict[str, object]]:
    """(the policy the report is evidence of, the policy config with it)."""
    report = _json(check, "the output of `bookingctl migrate check` or `migrate rehearse` `--format json`: an "
                          "empty file means the command itself failed, see its error above")
    if not isinstance(report, dict) or report.get("verdict") not in ("safe", "unsafe") or not isinstance(
            report.get("migrations"), list) or not isinstance(report.get("migrationsChecksum"), str):
        raise ValueError(f"{check} is not the output of `bookingctl migrate check` or `migrate rehearse` "
                         "`--format json` (a verdict, migrations and migrationsChecksum)")
    policy, keys = (REHEARSAL_POLICY, REHEARSAL_KEYS) if _is_rehearsal(report) else (POLICY, CHECK_KEYS)
    config = _json(base, "a policy config (JSON)") if base is not None and base.is_file() else {}
    if not isinstance(config, dict):
        raise ValueError(f"{base} is not a policy config (a JSON object)")
    evidence = {key: report[key] for key in keys if key in report}
    if pull_request:
        evidence["scope"] = "pull-request"
    return policy, {**config, policy: evidence}


def _is_rehearsal(report: dict[str, object]) -> bool:
    return report.get("kind") == "migration-rehearsal"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("check", type=Path,
                        help="the output of `bookingctl migrate check` or `migrate rehearse` `--format json`")
    parser.add_argument("out", type=Path, help="the policy config file to write")
    parser.add_argument("--base", type=Path, help="policy config to start from (default: OUT if it exists)")
    parser.add_argument("--pull-request", action="store_true",
                        help="the check (or rehearsal) read a scratch copy of the base branch's schema (pull-request "
                             "workflow)")
    args = parser.parse_args(argv)
    try:
        policy, config = merged(args.check, args.base or args.out, pull_request=args.pull_request)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    report = config[policy]
    assert isinstance(report, dict)
    print(f"{policy} evidence in {args.out}: {report['verdict']} ({len(report['migrations'])} pending)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
