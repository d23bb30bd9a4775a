"""migrations-rollback-safe through the Analyzer gRPC path: `migrate check` evidence as policy config."""

from __future__ import annotations

import copy
import json
from typing import Any

from booking_shared.project import Project, load_stack
from bookingctl.gate import PackProcess
from bookingctl.planner import Plan
from tests.helpers.policy_helpers import COMPLETE_EVIDENCE, PACK, SAFE_MIGRATIONS, found, gate

POLICY = "migrations-rollback-safe"

UNSAFE: dict[str, Any] = {"verdict": "unsafe", "target": "D1 appointmentbooking-db", "servingQueries": 16,
                          "migrations": [
                              {"name": "0002_add.sql", "class": "expand", "unsafe": False, "findings": []},
                              {"name": "0003_drop_notes.sql", "class": "contract", "unsafe": True, "findings": [
                                  {"rule": "contract", "severity": "info", "file": "0003_drop_notes.sql", "line": 1,
                                   "message": "removes column appointments.notes"},
                                  {"rule": "serving-query-breaks", "severity": "error", "file": "0003_drop_notes.sql",
                                   "line": 4, "message": "queries.sql:7 no longer prepares (no such column: notes)"},
                              ]}]}



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
    assert "Migration 0003_drop_notes.sql (contract) is not rollback-safe" in violation.message
    assert "serving-query-breaks at 0003_drop_notes.sql:4" in violation.message
    assert "booking:approvedUnsafeMigrations" in violation.message


def test_evidence_that_says_unsafe_but_lists_no_error_is_refused(prod_pack: PackProcess, production: Plan) -> None:
    edited = copy.deepcopy(UNSAFE)
    edited["migrations"] = edited["migrations"][:1]
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, migrations=edited), POLICY)
    assert "lists no error finding" in violation.message


def test_unsafe_migrations_only_warn_on_staging(project: Project, staging: Plan) -> None:
    with PackProcess(PACK, project.name, "staging", load_stack(project, "staging").flat) as pack:
        result = gate(pack, staging, migrations=UNSAFE)
    [violation] = found(result, POLICY)
    assert violation.level == "advisory" and result.passed


def test_a_migration_the_stack_file_approves_passes(project: Project, production: Plan) -> None:
    flat = dict(load_stack(project, "production").flat)
    flat["booking:approvedUnsafeMigrations"] = json.dumps(
        [{"name": "0003_drop_notes.sql", "reason": "the booking app stopped reading notes in release 41"}])
    with PackProcess(PACK, project.name, "production", flat) as pack:
        result = gate(pack, production, evidence=COMPLETE_EVIDENCE, migrations=UNSAFE)
    assert found(result, POLICY) == [] and result.passed
