"""`bookingctl plan` as the offline merge gate: verdicts, exit codes, Markdown and SARIF."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from booking_shared.checklist import ITEMS
from booking_shared.project import Project, load_stack
from bookingctl.cli import app
from bookingctl.gate import PackProcess
from bookingctl.planner import Plan
from bookingctl.sarif import to_sarif
from policies.pack import POLICIES
from tests.helpers import REPO
from tests.helpers.policy_helpers import COMPLETE_EVIDENCE, SAFE_MIGRATIONS, SAFE_REHEARSAL, changed, gate

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

EVIDENCE = str(REPO / "policies" / "examples" / "checklist-evidence.json")
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project-dir", str(REPO)])
    return result.exit_code, result.stdout, result.stderr


def test_production_with_complete_evidence_passes_the_gate() -> None:
    code, out, _ = invoke("plan", "production", "-f", "json", "--policy-config", EVIDENCE)
    data = json.loads(out)
    assert code == 0
    assert data["policyGate"]["passed"] is True and data["policyGate"]["policies"] == len(POLICIES)
    assert data["violations"] == []


def test_production_without_evidence_fails_naming_each_missing_item() -> None:
    code, out, _ = invoke("plan", "production", "-f", "json")
    data = json.loads(out)
    assert code == 1
    # every checklist item, the commit, and the missing migrate check and migrate rehearse evidence
    assert data["policyGate"]["mandatory"] == len(ITEMS) + 3
    violation = next(v for v in data["violations"] if "'codeReview'" in v["message"])
    assert violation == {"policy": "pre-deploy-checklist", "level": "mandatory", "severity": "high",
                         "resource": "", "message": violation["message"]}
    assert "All changes reviewed by senior developer" in violation["message"]


def test_staging_without_evidence_passes_with_advisories() -> None:
    code, out, _ = invoke("plan", "staging")
    assert code == 0
    assert "policy gate: PASS: 0 mandatory, 16 advisory" in out  # 14 checklist, migrate check and rehearse


def test_markdown_puts_the_verdict_before_the_resources() -> None:
    code, out, _ = invoke("plan", "production", "-f", "markdown")
    assert code == 1
    verdict = out.index("❌ policy gate: FAIL")
    assert verdict < out.index("| Level | Policy | Resource | Finding |") < out.index("<details>")
    assert out.rstrip().endswith("</details>")


def test_table_output_shows_violations_and_verdict() -> None:
    code, out, _ = invoke("plan", "production")
    assert code == 1
    assert "Policy violations" in out and f"policy gate: FAIL: {len(ITEMS) + 3} mandatory" in out


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "not valid JSON"),
    ('{"pre-deploy-checklist": "sometimes"}', "allowed: advisory, mandatory"),
    ('{"pre-deploy-checklst": {"commit": "abc1234"}}', "unknown policies: pre-deploy-checklst"),
    ('{"backup-retention": {"retentionDays": {"production": "thirty", "staging": 7}}}', "retentionDays/production"),
])
def test_bad_policy_config_exits_2(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "policy-config.json"
    path.write_text(content)
    code, out, err = invoke("plan", "staging", "--policy-config", str(path))
    assert code == 2
    assert expected in err
    assert out == ""


def test_missing_policy_config_file_exits_2(tmp_path: Path) -> None:
    code, _, err = invoke("plan", "staging", "--policy-config", str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read policy config" in err


def test_folder_that_is_not_a_policy_pack_exits_2(tmp_path: Path) -> None:
    code, _, err = invoke("plan", "staging", "--policy-pack", str(tmp_path))
    assert code == 2 and "is not a policy pack" in err


def test_a_pack_that_crashes_at_start_fails_the_gate(tmp_path: Path) -> None:
    pack = tmp_path / "broken-pack"
    shutil.copytree(REPO / "policies", pack, ignore=shutil.ignore_patterns("__pycache__"))
    (pack / "__main__.py").write_text("raise ImportError('policy module missing')\n")
    code, _, err = invoke("plan", "staging", "--policy-pack", str(pack))
    assert code == 1
    assert "exited" in err and "policy module missing" in err


def test_sarif_output_is_sarif_2_1_0_with_every_policy_as_a_rule() -> None:
    code, out, err = invoke("plan", "production", "-f", "sarif")
    assert code == 1
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    [run] = sarif["runs"]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert sorted(rules) == sorted(p.name for p in POLICIES)  # every policy of the pack is a rule
    result = run["results"][0]
    assert result["level"] == "error" and result["ruleId"] == rules[result["ruleIndex"]]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "Pulumi.production.yaml"  # a stack-wide finding
    assert "policy gate: FAIL" in err


def test_sarif_points_a_resource_finding_at_the_line_that_declares_it(project: Project, production: Plan) -> None:
    plan = changed(production, "api-version", ("compatibilityDate",), "2020-01-01")
    with PackProcess(REPO / "policies", project.name, "production", load_stack(project, "production").flat) as pack:
        result = gate(pack, plan, evidence=COMPLETE_EVIDENCE)
    [finding] = to_sarif(plan, result, REPO)["runs"][0]["results"]
    location = finding["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "infra/worker.py"
    line = location["physicalLocation"]["region"]["startLine"]
    assert 'f"{name}-version"' in (REPO / "infra" / "worker.py").read_text().splitlines()[line - 1]
    assert location["logicalLocations"][0]["fullyQualifiedName"].endswith("::api-version")


def test_wrapper_script_keeps_bookingctls_exit_codes() -> None:
    import subprocess

    script = str(REPO / "scripts" / "bookingctl")
    failed = subprocess.run([script, "plan", "production", "-f", "json"], cwd=REPO, capture_output=True, text=True)
    assert failed.returncode == 1 and json.loads(failed.stdout)["policyGate"]["passed"] is False
    passed = subprocess.run([script, "plan", "production", "-f", "json", "--policy-config", EVIDENCE],
                            cwd=REPO, capture_output=True, text=True)
    assert passed.returncode == 0, passed.stderr
    usage = subprocess.run([script, "plan", "nope"], cwd=REPO, capture_output=True, text=True)
    assert usage.returncode == 2


@pytest.fixture(scope="module")
def pr_config(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The pull-request gate's config as the workflow builds it: the base branch's file plus the
    pull request's `migrate check` and `migrate rehearse` evidence (scripts/migration_evidence.py)."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("pr")
    (folder / "check.json").write_text(json.dumps(SAFE_MIGRATIONS))
    (folder / "rehearsal.json").write_text(json.dumps({**SAFE_REHEARSAL, "kind": "migration-rehearsal"}))
    out = folder / "pr-policy-config.json"
    subprocess.run([sys.executable, str(REPO / "scripts" / "migration_evidence.py"), str(folder / "check.json"),
                    str(out), "--base", str(REPO / ".github" / "pr-policy-config.json"), "--pull-request"], check=True)
    subprocess.run([sys.executable, str(REPO / "scripts" / "migration_evidence.py"), str(folder / "rehearsal.json"),
                    str(out), "--pull-request"], check=True)
    return str(out)


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "sarif"])
def test_the_pull_request_config_still_passes_production_and_lists_the_downgrade(fmt: str, pr_config: str) -> None:
    code, out, err = invoke("plan", "production", "-f", fmt, "--policy-config", pr_config)
    assert code == 0, err
    if fmt == "json":
        gate_summary = json.loads(out)["policyGate"]
        assert gate_summary["passed"] is True
        assert gate_summary["downgrades"] == [{"policy": "pre-deploy-checklist", "from": "mandatory",
                                               "to": "advisory"}]
    elif fmt == "sarif":
        [invocation] = json.loads(out)["runs"][0]["invocations"]
        [override] = invocation["ruleConfigurationOverrides"]
        assert override["descriptor"]["id"] == "pre-deploy-checklist"
        assert override["configuration"] == {"level": "warning", "enabled": True}
        assert "pre-deploy-checklist" in invocation["toolConfigurationNotifications"][0]["message"]["text"]
        assert "lowered by the policy config: pre-deploy-checklist mandatory→advisory" in err
    else:
        assert "lowered by the policy config: pre-deploy-checklist mandatory→advisory" in out


def test_a_policy_config_disabling_every_policy_exits_2_naming_the_locked_ones(tmp_path: Path) -> None:
    path = tmp_path / "all-disabled.json"
    path.write_text('{"all": "disabled"}')
    code, out, err = invoke("plan", "production", "--policy-config", str(path))
    assert code == 2 and out == ""
    assert str(path) in err and "data-protection" in err and "environment-hostname-isolation" in err


@pytest.mark.parametrize(("content", "expected"), [
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested"),
    (b'{"backup-retention": {"retentionDays": ' + b'{"a": ' * 200 + b"1" + b"}" * 200 + b"}}", "nested"),
])
def test_unreadable_policy_config_exits_2_with_one_line_naming_the_file(
        tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "policy-config.json"
    path.write_bytes(content)
    code, out, err = invoke("plan", "staging", "--policy-config", str(path))
    assert code == 2 and out == ""
    assert str(path) in err and expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_stack_too_large_to_hand_to_the_pack_exits_2_explaining_the_limit(tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "Pulumi.production.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "infra", tmp_path / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "policies", tmp_path / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    tenants = "".join(f"    - slug: salon{i:04d}\n      hostname: book.salon{i:04d}.example.co.za\n"
                      f"      zoneId: '{i:032x}'\n" for i in range(1300))
    stack = tmp_path / "Pulumi.staging.yaml"
    stack.write_text(stack.read_text() + "  booking:tenants:\n" + tenants)
    result = runner.invoke(app, ["plan", "staging", "--project-dir", str(tmp_path)])
    assert result.exit_code == 2, result.stderr
    assert "PULUMI_CONFIG" in result.stderr and "128 KiB" in result.stderr
    assert "1300 tenants" in result.stderr and "Cloudflare for SaaS" in result.stderr
    assert "Traceback" not in result.stderr
