"""migrations-rehearsed through the Analyzer gRPC path: `migrate rehearse` evidence as policy config."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from booking_shared.deploy import migrations_checksum
from booking_shared.migration_files import text_sha256
from booking_shared.project import Project, load_stack
from bookingctl.gate import PackProcess
from bookingctl.planner import Plan
from ops.database.rehearsal_model import MigrationRehearsal, Problem, RehearsalReport
from tests.helpers import REPO, TODAY
from tests.helpers.policy_helpers import COMPLETE_EVIDENCE, PACK, found, gate

POLICY = "migrations-rehearsed"
TREE = REPO / "migrations"
LAST = sorted(p.name for p in TREE.glob("*.sql"))[-1]
LAST_SHA = text_sha256((TREE / LAST).read_text())
CASCADE = Problem("rows-deleted-unnamed", "1,200 rows of appointments deleted by `DROP TABLE tenants` (the table's "
                  "DROP; no DELETE of the migration names appointments)", LAST, 3, "appointments", 1200)
DUPLICATES = Problem("constraint-failed", "UNIQUE constraint failed: users.email: 2 values of (email) are held by "
                     "more than one row of users", LAST, 5, "users", 2)


def evidence(*problems: Problem, created: dt.date = TODAY - dt.timedelta(days=1),
             database: str = "appointmentbooking-db", sha256: str = LAST_SHA) -> dict[str, Any]:
    """What `migrate rehearse --stack production --r2 -f json` writes, through the report's own to_dict:
    a migration with a cascade or orphans applied (rehearsal.py keeps it), with any other error failed."""
    status: Any = "failed" if any(p.rule not in ("rows-deleted-unnamed", "orphans") for p in problems) else "applied"
    report = RehearsalReport(f"backup daily-{created:%Y%m%d}-013000", rows=5000, database=database,
                             backup_created_at=f"{created.isoformat()}T01:30:00+00:00",
                             migrations_checksum=migrations_checksum(TREE),
                             migrations=[MigrationRehearsal(LAST, sha256, status, problems=list(problems))])
    return report.to_dict()


def approving(project: Project, sha256: str) -> dict[str, str]:
    flat = dict(load_stack(project, "production").flat)
    flat["booking:approvedUnsafeMigrations"] = json.dumps(
        [{"name": LAST, "sha256": sha256, "reason": "tenants are rebuilt; their bookings are re-imported after"}])
    return flat


def test_a_safe_rehearsal_of_productions_recent_backup_passes(prod_pack: PackProcess, production: Plan) -> None:
    result = gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=evidence())
    assert result.passed and found(result, POLICY) == []


def test_missing_evidence_blocks_production_and_only_warns_on_staging(
        prod_pack: PackProcess, production: Plan, staging_pack: PackProcess, staging: Plan) -> None:
    result = gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=None)
    [violation] = found(result, POLICY)
    assert violation.level == "mandatory" and not result.passed
    assert "No `migrate rehearse` evidence" in violation.message and "--r2" in violation.message
    [warning] = found(gate(staging_pack, staging, rehearsal=None), POLICY)
    assert warning.level == "advisory"


def test_a_cascade_blocks_naming_table_rows_and_statement_until_the_stack_file_approves_the_file(
        project: Project, prod_pack: PackProcess, production: Plan) -> None:
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=evidence(CASCADE)), POLICY)
    assert violation.level == "mandatory"
    assert f"Migration {LAST} deletes or orphans rows it does not name: rows-deleted-unnamed at {LAST}:3" \
           in violation.message and "1,200 rows of appointments" in violation.message
    assert f"sha256: {LAST_SHA}" in violation.message  # the approval to write, if the loss is intended
    with PackProcess(PACK, project.name, "production", approving(project, LAST_SHA)) as pack:
        assert found(gate(pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=evidence(CASCADE)), POLICY) == []
    with PackProcess(PACK, project.name, "production", approving(project, "0" * 64)) as pack:
        assert len(found(gate(pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=evidence(CASCADE)), POLICY)) == 1


def test_a_failure_on_real_rows_blocks_and_no_approval_lifts_it(project: Project, production: Plan) -> None:
    with PackProcess(PACK, project.name, "production", approving(project, LAST_SHA)) as pack:
        [violation] = found(gate(pack, production, evidence=COMPLETE_EVIDENCE,
                                 rehearsal=evidence(CASCADE, DUPLICATES)), POLICY)
    assert f"Migration {LAST} fails on real data: " in violation.message
    assert f"constraint-failed at {LAST}:5" in violation.message  # it failed: the approval lifts neither
    assert "no approval lifts this" in violation.message


@pytest.mark.parametrize(("change", "named"), [
    ({"database": "appointmentbooking-db-staging"}, "not of this stack's D1 'appointmentbooking-db'"),
    ({"created": TODAY - dt.timedelta(days=8)}, "8 days before today, the limit is 7"),
    ({"created": TODAY + dt.timedelta(days=2)}, "-2 days before today"),
    ({"sha256": "1" * 64}, f"its {LAST} is another version of the file"),
])
def test_evidence_not_of_this_deploy_is_refused_naming_why(
        prod_pack: PackProcess, production: Plan, change: dict[str, Any], named: str) -> None:
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=evidence(**change)), POLICY)
    assert "not evidence of this deploy" in violation.message and named in violation.message


def test_stale_files_shapes_and_contradictions_are_refused(prod_pack: PackProcess, production: Plan) -> None:
    stale = {**evidence(), "migrationsChecksum": "f" * 64}
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=stale), POLICY)
    assert migrations_checksum(TREE) in violation.message
    malformed = copy.deepcopy(evidence())
    malformed["migrations"][0]["problems"] = "rows-deleted-unnamed"
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=malformed), POLICY)
    assert "not a migration object with a name and a list of problem objects" in violation.message
    contradiction = {**evidence(), "verdict": "unsafe"}
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=contradiction), POLICY)
    assert "says unsafe but lists no error" in violation.message


def test_pull_request_evidence_must_be_of_seeded_data(prod_pack: PackProcess, production: Plan) -> None:
    claimed = {**evidence(), "scope": "pull-request"}  # says pull request, but rehearsed production's backup
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=claimed), POLICY)
    assert "pull-request evidence is of D1 'appointmentbooking-db'" in violation.message


def test_the_example_evidence_passes_and_production_refuses_a_config_that_lowers_the_policy(
        prod_pack: PackProcess, production: Plan) -> None:
    from bookingctl.policy_config import PolicyConfigError

    example = json.loads((REPO / "policies" / "examples" / "checklist-evidence.json").read_text())
    result = gate(prod_pack, production, evidence=example["pre-deploy-checklist"],
                  migrations=example["migrations-rollback-safe"], rehearsal=example[POLICY])
    assert found(result, POLICY) == [], "regenerate policies/examples/checklist-evidence.json (docs/policies.md)"
    with pytest.raises(PolicyConfigError, match=POLICY + " to advisory"):
        gate(prod_pack, production, {POLICY: "advisory"}, evidence=COMPLETE_EVIDENCE)


def test_a_failed_migration_is_never_lifted_and_the_ones_after_it_were_not_rehearsed(
        project: Project, production: Plan) -> None:
    refused_at_commit = copy.deepcopy(evidence(CASCADE))
    refused_at_commit["migrations"][0]["status"] = "failed"  # e.g. its COMMIT refused on deferred foreign keys
    with PackProcess(PACK, project.name, "production", approving(project, LAST_SHA)) as pack:
        [violation] = found(gate(pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=refused_at_commit), POLICY)
        assert "no approval lifts this" in violation.message
        not_run = copy.deepcopy(evidence())
        not_run["migrations"][0]["status"] = "not run"
        [violation] = found(gate(pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=not_run), POLICY)
    assert "were not rehearsed to the end" in violation.message


def test_an_error_rule_counts_whatever_severity_the_evidence_claims(prod_pack: PackProcess, production: Plan) -> None:
    edited = copy.deepcopy(evidence(CASCADE))
    edited["migrations"][0]["problems"][0]["severity"] = "warning"
    [violation] = found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE, rehearsal=edited), POLICY)
    assert "rows-deleted-unnamed" in violation.message
