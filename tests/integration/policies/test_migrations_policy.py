"""migrations-rollback-safe through the Analyzer gRPC path: `migrate check` evidence as policy config."""

from __future__ import annotations

import copy
import json
from typing import Any

from booking_shared.deploy import migrations_checksum
from booking_shared.migration_files import text_sha256
from booking_shared.project import Project, load_stack
from bookingctl.gate import PackProcess
from bookingctl.planner import Plan
from tests.helpers import REPO
from tests.helpers.policy_helpers import COMPLETE_EVIDENCE, PACK, SAFE_MIGRATIONS, found, gate

POLICY = "migrations-rollback-safe"

# This tree's migrations: evidence is bound to them (migrationsChecksum, each file's sha256).
TREE = REPO / "migrations"
LAST = sorted(p.name for p in TREE.glob("*.sql"))[-1]
LAST_SHA = text_sha256((TREE / LAST).read_text())
UNSAFE: dict[str, Any] = {"verdict": "unsafe", "target": "D1 appointmentbooking-db (0b1c)", "servingQueries": 16,
                          "migrationsChecksum": migrations_checksum(TREE), "migrations": [
                              {"name": LAST, "sha256": LAST_SHA, "class": "contract", "unsafe": True, "findings": [
                                  {"rule": "contract", "severity": "info", "file": LAST, "line": 1,
                                   "message": "removes column appointments.notes"},
                                  {"rule": "serving-query-breaks", "severity": "error", "file": LAST,
                                   "line": 4, "message": "queries.sql:7 no longer prepares (no such column: notes)"},
                              ]}]}


def unsafe(**changes: Any) -> dict[str, Any]:
    evidence = copy.deepcopy(UNSAFE)
    evidence.update(changes)
    return evidence


def approving(project: Project, sha256: str) -> dict[str, str]:
    flat = dict(load_stack(project, "production").flat)
    flat["booking:approvedUnsafeMigrations"] = json.dumps(
        [{"name": LAST, "sha256": sha256, "reason": "the booking app stopped reading notes in release 41"}])
    return flat


def test_a_safe_check_passes_production(prod_pack: PackProcess, production: Plan) -> None:
    result = gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, migrations=SAFE_MIGRATIONS)
    assert result.passed and found(result, POLICY) == []


def test_missing_evidence_blocks_production(prod_pack: PackProcess, production: Plan) -> None:
    result = gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, migrations=None)
    [violation] = found(result, POLICY)
    assert violation.level == "mandatory" and "No `migrate check` evidence" in violation.message
    assert not result.passed


def test_an_unsafe_migration_blocks_production_naming_its_finding(prod_pack: PackProcess, production: Plan) -> None:
    result = gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, migrations=UNSAFE)
    [violation] = found(result, POLICY)
    assert violation.level == "mandatory" and not result.passed
    assert f"Migration {LAST} (contract) is not rollback-safe" in violation.message
    assert f"serving-query-breaks at {LAST}:4" in violation.message
    assert "booking:approvedUnsafeMigrations" in violation.message


def test_evidence_that_says_unsafe_but_lists_no_error_is_refused(prod_pack: PackProcess, production: Plan) -> None:
    edited = copy.deepcopy(UNSAFE)
    edited["migrations"] = []
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, migrations=edited), POLICY)
    assert "lists no error finding" in violation.message


def test_unsafe_migrations_only_warn_on_staging(project: Project, staging: Plan) -> None:
    with PackProcess(PACK, project.name, "staging", load_stack(project, "staging").flat) as pack:
        result = gate(pack, staging, migrations=UNSAFE)
    [violation] = found(result, POLICY)
    assert violation.level == "advisory" and result.passed


def test_a_migration_the_stack_file_approves_passes(project: Project, production: Plan) -> None:
    with PackProcess(PACK, project.name, "production", approving(project, LAST_SHA)) as pack:
        result = gate(pack, production, evidence=COMPLETE_EVIDENCE, migrations=UNSAFE)
    assert found(result, POLICY) == [] and result.passed


def test_an_approval_of_another_version_of_the_file_approves_nothing(project: Project, production: Plan) -> None:
    with PackProcess(PACK, project.name, "production", approving(project, "0" * 64)) as pack:
        [violation] = found(gate(pack, production, evidence=COMPLETE_EVIDENCE, migrations=UNSAFE), POLICY)
    assert "is not rollback-safe" in violation.message and "another version of the file" in violation.message


def test_evidence_of_another_stacks_database_is_refused(prod_pack: PackProcess, production: Plan) -> None:
    evidence = unsafe(verdict="safe", target="D1 appointmentbooking-db-staging (0b1c)", migrations=[])
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, migrations=evidence), POLICY)
    assert violation.level == "mandatory" and "not of this stack's D1 'appointmentbooking-db'" in violation.message


def test_evidence_of_other_migration_files_is_refused_as_stale(prod_pack: PackProcess, production: Plan) -> None:
    evidence = unsafe(verdict="safe", migrationsChecksum="f" * 64, migrations=[])
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, migrations=evidence), POLICY)
    assert "other migration files than this tree's" in violation.message
    assert migrations_checksum(TREE) in violation.message  # the fix is in the message


def test_evidence_naming_a_file_the_tree_lacks_or_another_version_is_refused(
        prod_pack: PackProcess, production: Plan) -> None:
    evidence = unsafe(verdict="safe", migrations=[
        {"name": "0002_appointment_reminders.sql", "sha256": LAST_SHA, "findings": []},
        {"name": LAST, "sha256": "1" * 64, "findings": []}])
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, migrations=evidence), POLICY)
    assert "0002_appointment_reminders.sql, which is not in this tree's migrations/" in violation.message
    assert f"its {LAST} is another version of the file" in violation.message


def test_findings_that_are_not_a_list_of_objects_are_refused(prod_pack: PackProcess, production: Plan) -> None:
    evidence = unsafe(verdict="safe",
                      migrations=[{"name": LAST, "sha256": LAST_SHA, "findings": "serving-query-breaks"}])
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, migrations=evidence), POLICY)
    assert "not a migration object with a name and a list of findings objects" in violation.message


def test_a_migration_marked_unsafe_without_findings_blocks(prod_pack: PackProcess, production: Plan) -> None:
    evidence = unsafe(verdict="safe", migrations=[{"name": LAST, "sha256": LAST_SHA, "unsafe": True, "findings": []}])
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, migrations=evidence), POLICY)
    assert f"Migration {LAST}" in violation.message and "marked unsafe" in violation.message


def test_an_error_severity_in_any_case_counts(prod_pack: PackProcess, production: Plan) -> None:
    shouting = copy.deepcopy(UNSAFE)
    shouting["migrations"][0]["findings"][1]["severity"] = "ERROR"
    shouting["migrations"][0]["unsafe"] = False
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, migrations=shouting), POLICY)
    assert "serving-query-breaks" in violation.message


def test_the_example_evidence_is_evidence_of_this_tree(prod_pack: PackProcess, production: Plan) -> None:
    example = json.loads((REPO / "policies" / "examples" / "checklist-evidence.json").read_text())
    result = gate(prod_pack, production, evidence=example["pre-deploy-checklist"],
                  migrations=example["migrations-rollback-safe"])
    assert found(result, POLICY) == [], "regenerate policies/examples/checklist-evidence.json (docs/policies.md)"


def test_production_refuses_a_policy_config_that_disables_the_migration_check(
        prod_pack: PackProcess, production: Plan) -> None:
    import pytest

    from bookingctl.policy_config import PolicyConfigError

    for level in ("disabled", "advisory"):
        with pytest.raises(PolicyConfigError, match="migrations-rollback-safe to " + level):
            gate(prod_pack, production, {POLICY: level}, evidence=COMPLETE_EVIDENCE, migrations=None)


def test_staging_may_still_lower_it(staging_pack: PackProcess, staging: Plan) -> None:
    result = gate(staging_pack, staging, {POLICY: "disabled"}, migrations=None)
    assert found(result, POLICY) == [] and [d.policy for d in result.downgrades] == [POLICY]
