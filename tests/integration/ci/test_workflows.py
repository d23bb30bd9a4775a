"""The CI workflows: valid against GitHub's schema, free of zizmor findings, and the validators bite."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from booking_shared.checklist import ITEMS
from tests.helpers import REPO, TODAY
from tests.helpers.policy_helpers import SAFE_MIGRATIONS, SAFE_REHEARSAL

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


def test_every_workflow_matches_githubs_schema() -> None:
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_in_the_workflows() -> None:
    result = run(BIN / "zizmor", "--offline", "--format", "json", REPO / ".github" / "workflows")
    assert result.returncode == 0, result.stdout
    assert json.loads(result.stdout) == []


def test_zizmor_would_catch_injection_unpinned_actions_and_credential_leaks(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("""name: bad
on: pull_request_target
permissions: write-all
jobs:
  x:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
""")
    result = run(BIN / "zizmor", "--offline", "--format", "json", bad)
    found = {f["ident"] for f in json.loads(result.stdout)}
    assert {"template-injection", "unpinned-uses", "dangerous-triggers", "artipacked"} <= found
    assert result.returncode != 0


def test_every_action_is_pinned_to_a_full_commit_sha() -> None:
    for path in WORKFLOWS:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job.get("steps", []):
                if "uses" in step:
                    ref = step["uses"].split("@", 1)[1]
                    assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), (path.name, step["uses"])


def workflow(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    return data


def steps_of(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def pulumi_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in steps_of(job) if str(s.get("uses", "")).startswith("pulumi/actions@")]


def secrets_used(node: Any) -> bool:
    return "secrets." in json.dumps(node)


def test_every_deploy_runs_a_gated_preview_with_the_same_pack_and_config_before_up() -> None:
    """pulumi/actions' `up` skips the preview and the engine runs stack policies only after every
    step is applied: only a preview can stop a failing checklist before production changes."""
    jobs = workflow("deploy.yml")["jobs"]
    for name in ("staging", "production"):
        steps = pulumi_steps(jobs[name])
        assert [s["with"]["command"] for s in steps] == ["preview", "up"], name
        preview, up = (s["with"] for s in steps)
        assert preview["stack-name"] == up["stack-name"] == name
        for key in ("policyPacks", "policyPackConfigs"):
            assert preview.get(key) == up.get(key), (name, key)
    production = steps_of(jobs["production"])
    order = [json.dumps(s) for s in production]
    check = next(i for i, s in enumerate(order) if "checklist_evidence.py --check evidence.json" in s)
    write = next(i for i, s in enumerate(order) if "checklist_evidence.py evidence.json" in s)
    preview = next(i for i, s in enumerate(production) if s.get("id") == "preview")
    assert write < check < preview
    assert pulumi_steps(jobs["production"])[0]["with"]["policyPackConfigs"] == "evidence.json"


def test_every_deploy_fails_when_the_state_does_not_name_the_version_that_serves() -> None:
    """A rollback outside `pulumi up` leaves the state naming the rolled-back deployment, which
    refresh cannot see; re-running the failed job would make `up` a no-op. The check after `up`
    (and after production's watch) compares the state's version with what serves."""
    jobs = workflow("deploy.yml")["jobs"]
    for name in ("staging", "production"):
        steps = steps_of(jobs[name])
        ids = [s.get("id") for s in steps]
        converged = steps[ids.index("converged")]
        assert "release status --stack " + name in converged["run"] and "--require-converged" in converged["run"]
        assert converged["env"]["VERSION"] == "${{ steps.up.outputs.workerVersionId }}"
        assert "!cancelled()" in converged["if"]
        assert ids.index("up") < ids.index("converged")
        if name == "production":
            assert ids.index("watch") < ids.index("converged")
        up = steps[ids.index("up")]
        assert up["env"]["BOOKING_CANARY_REPORT"].endswith("/canary-report.json")
    report = next(s for s in steps_of(jobs["production"]) if s.get("name") == "Deployment report")
    assert '"canary"' in report["run"] and "canary-report.json" in report["run"]
    assert report["env"]["CONVERGED"] == "${{ steps.converged.outcome }}"


def test_every_pulumi_step_pins_the_cli_version_the_project_requires() -> None:
    pinned = (REPO / ".pulumi.version").read_text().strip()
    required = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["requiredPulumiVersion"]
    version = tuple(int(p) for p in pinned.split("."))
    for clause in required.split():
        op, bound = clause[:2] if clause[1] == "=" else clause[:1], clause.lstrip("<>=")
        limit = tuple(int(p) for p in bound.split("."))
        assert {">=": version >= limit, "<": version < limit, ">": version > limit, "<=": version <= limit}[op]
    # 3.238.0: a failed after hook fails the update; 3.244.0: a plain provider error reaches the error hook.
    assert tuple(int(p) for p in required.split()[0].lstrip(">=").split(".")) >= (3, 244, 0)
    for path in WORKFLOWS:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in pulumi_steps(job):
                assert step["with"].get("pulumi-version-file") == ".pulumi.version", (path.name, step.get("name"))


def test_secrets_are_given_only_to_the_steps_that_use_them() -> None:
    """No secret at workflow level, none in a test or gate job, none while third-party install code runs."""
    for path in WORKFLOWS:
        data = yaml.safe_load(path.read_text())
        assert not secrets_used(data.get("env", {})), path.name
        for name, job in data["jobs"].items():
            assert not secrets_used(job.get("env", {})), (path.name, name)
            for step in steps_of(job):
                if secrets_used(step):
                    assert "environment" in job, (path.name, name, step.get("name"))
                    assert "make install" not in str(step.get("run", "")), (path.name, name)
    for name in ("test",):
        assert not secrets_used(workflow("deploy.yml")["jobs"][name])
    pull_request = workflow("pull-request.yml")["jobs"]
    assert not secrets_used(pull_request["test"]) and not secrets_used(pull_request["gate"])


def test_pull_request_code_meets_credentials_only_after_approval_and_never_production_s() -> None:
    """A preview decrypts the stack's secrets for the program: only staging's, after approval."""
    preview = workflow("pull-request.yml")["jobs"]["preview"]
    assert preview["environment"] == "pull-request-preview"  # required reviewers (README)
    assert "head.repo.full_name == github.repository" in preview["if"]
    [step] = pulumi_steps(preview)
    assert step["with"]["stack-name"] == "staging" and "strategy" not in preview
    assert step["env"]["CLOUDFLARE_API_TOKEN"] == "${{ secrets.CLOUDFLARE_API_TOKEN_READONLY }}"
    assert step["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.STAGING_CONFIG_PASSPHRASE }}"
    assert step["with"]["policyPackConfigs"] == "pr-policy-config.json"


def test_pull_request_gates_read_their_policy_config_from_the_base_branch() -> None:
    jobs = workflow("pull-request.yml")["jobs"]
    for name in ("gate", "preview"):
        runs = " ".join(str(s.get("run", "")) for s in steps_of(jobs[name]))
        assert 'git show "origin/$BASE_REF:.github/pr-policy-config.json"' in runs, name
    gate = " ".join(str(s.get("run", "")) for s in steps_of(jobs["gate"]))
    assert "--policy-config .github/pr-policy-config.json" not in gate  # never the pull request's own copy


def test_pull_requests_plan_both_stacks_with_sarif_and_one_updated_comment() -> None:
    jobs = workflow("pull-request.yml")["jobs"]
    gate = " ".join(str(s.get("run", "")) for s in steps_of(jobs["gate"]))
    assert "for stack in staging production" in gate and "--format sarif" in gate and "bookingctl diff" in gate
    uploads = [s for s in steps_of(jobs["gate"]) if "upload-sarif" in str(s.get("uses", ""))]
    assert {u["with"]["sarif_file"] for u in uploads} == {"plan-staging.sarif", "plan-production.sarif"}
    comment = " ".join(str(s.get("run", "")) for s in steps_of(jobs["gate"]))
    assert "bookingctl-infra-diff" in comment and "--method PATCH" in comment


def test_production_deploy_is_gated_by_generated_evidence_behind_approval() -> None:
    production = workflow("deploy.yml")["jobs"]["production"]
    assert production["environment"] == "production" and set(production["needs"]) == {"test", "staging"}
    ids = [s.get("id") for s in steps_of(production)]
    assert ids.index("up") < ids.index("verify") < ids.index("watch")
    report = next(s for s in steps_of(production) if s.get("name") == "Deployment report")
    assert report["env"]["DEPLOYMENT_ID"] == "${{ steps.up.outputs.deploymentId }}"  # Cloudflare's id


def test_scheduled_jobs_run_without_waiting_for_an_approval() -> None:
    daily = workflow("scheduled.yml")["jobs"]["daily"]
    assert daily["environment"] == "production-ops"  # not `production`, which has required reviewers
    runs = " ".join(str(s.get("run", "")) for s in steps_of(daily))
    for needed in ("backup create --stack production", "--upload", "backup verify", "report daily", "audit security"):
        assert needed in runs, needed


# What the production job's `migrate check --stack production` writes: of production's own D1.
PRODUCTION_CHECK = {**{k: v for k, v in SAFE_MIGRATIONS.items() if k != "scope"},
                    "target": "D1 appointmentbooking-db (0b1c7e2a)"}


# What its `migrate rehearse --stack production --r2` writes: on yesterday's backup of production's D1.
PRODUCTION_REHEARSAL = {**{k: v for k, v in SAFE_REHEARSAL.items() if k != "scope"}, "kind": "migration-rehearsal",
                        "source": "backup daily-20261126-013000", "database": "appointmentbooking-db",
                        "backupCreatedAt": f"{TODAY - dt.timedelta(days=1)}T01:30:00+00:00"}


def evidence(tmp_path: Path, *, migrations: dict[str, Any] | None = PRODUCTION_CHECK,
             rehearsal: dict[str, Any] | None = PRODUCTION_REHEARSAL, **results: str) -> Path:
    """evidence.json as the production job writes it: the checklist, then the `migrate check` and
    `migrate rehearse` outputs."""
    env = {**os.environ, "COMMIT": "3e8d5e0a1b2c", "REVIEW_APPROVED": "true",
           **{k: "success" for k in ("TESTS_RESULT", "AUDIT_RESULT", "PERF_RESULT", "STAGING_RESULT", "SMOKE_RESULT",
                                     "MIGRATIONS_RESULT", "INTEGRATIONS_RESULT")}, **results}
    out = tmp_path / "evidence.json"
    subprocess.run([sys.executable, str(REPO / "scripts" / "checklist_evidence.py"), str(out)], env=env,
                   check=True, capture_output=True)
    if migrations is not None:
        (tmp_path / "migrate-check.json").write_text(json.dumps(migrations))
        subprocess.run([sys.executable, str(REPO / "scripts" / "migration_evidence.py"),
                        str(tmp_path / "migrate-check.json"), str(out)], check=True, capture_output=True)
    if rehearsal is not None:
        (tmp_path / "rehearsal.json").write_text(json.dumps(rehearsal))
        subprocess.run([sys.executable, str(REPO / "scripts" / "migration_evidence.py"),
                        str(tmp_path / "rehearsal.json"), str(out)], check=True, capture_output=True)
    return out


def test_evidence_is_true_only_for_successful_results(tmp_path: Path) -> None:
    out = evidence(tmp_path, SMOKE_RESULT="failure", INTEGRATIONS_RESULT="skipped")
    found = json.loads(out.read_text())["pre-deploy-checklist"]
    assert set(found) == {"commit", *ITEMS}
    assert found["unitTests"] and found["stagingDeployed"] and found["codeReview"]
    assert not found["stagingSmokeTests"] and not found["e2eTests"] and not found["externalApisVerified"]


def test_the_deploy_refuses_to_start_while_any_item_is_not_true(tmp_path: Path) -> None:
    script = [sys.executable, str(REPO / "scripts" / "checklist_evidence.py"), "--check"]
    incomplete = run(*script, evidence(tmp_path, REVIEW_APPROVED="false"))
    assert incomplete.returncode == 1 and "codeReview" in incomplete.stderr and "docsUpdated" in incomplete.stderr
    assert run(*script, evidence(tmp_path)).returncode == 0


def test_the_evidence_script_helps_instead_of_writing_a_file_named_help(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "checklist_evidence.py"), "--help"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and "--check" in result.stdout and list(tmp_path.iterdir()) == []


def test_generated_evidence_passes_the_production_gate_only_when_complete(tmp_path: Path) -> None:
    complete = run(BIN / "bookingctl", "plan", "production", "-f", "json", "--policy-config", evidence(tmp_path),
                   "--project-dir", REPO)
    assert complete.returncode == 0, complete.stderr
    (tmp_path / "second").mkdir()
    failing = run(BIN / "bookingctl", "plan", "production", "-f", "json", "--policy-config",
                  evidence(tmp_path / "second", SMOKE_RESULT="failure"), "--project-dir", REPO)
    assert failing.returncode == 1
    assert {v["policy"] for v in json.loads(failing.stdout)["violations"] if v["level"] == "mandatory"} == {
        "pre-deploy-checklist"}


# --- rollback-safe migrations (issue 15) ------------------------------------------------------

def runs_of(job: dict[str, Any]) -> list[str]:
    return [str(s.get("run", "")) for s in steps_of(job)]


def test_every_deploy_gates_on_a_migrate_check_of_the_database_it_will_migrate() -> None:
    jobs = workflow("deploy.yml")["jobs"]
    for name in ("staging", "production"):
        steps = steps_of(jobs[name])
        check = next(i for i, s in enumerate(steps) if f"migrate check --stack {name} -f json" in str(s.get("run")))
        preview = next(i for i, s in enumerate(steps) if s.get("id") == "preview")
        assert check < preview, name
        assert "scripts/migration_evidence.py migrate-check.json" in str(steps[check]["run"])
        assert steps[check]["env"] == {"CLOUDFLARE_API_TOKEN": "${{ secrets.CLOUDFLARE_API_TOKEN }}"}
        config = pulumi_steps(jobs[name])[0]["with"]["policyPackConfigs"]
        assert config in str(steps[check]["run"]), (name, config)  # the file the preview and up read
    production = steps_of(jobs["production"])
    written = next(i for i, s in enumerate(production) if "checklist_evidence.py evidence.json" in str(s.get("run")))
    added = next(i for i, s in enumerate(production) if "migration_evidence.py" in str(s.get("run")))
    assert written < added  # added to the checklist evidence, not overwritten by it


def test_pull_requests_check_new_migrations_against_the_base_schema_and_comment_the_verdict() -> None:
    gate = " ".join(runs_of(workflow("pull-request.yml")["jobs"]["gate"]))
    base = gate.index('git archive "origin/$BASE_REF" migrations')
    check = gate.index("migrate check --local")
    merged = gate.index('migration_evidence.py migrate-check.json "$RUNNER_TEMP/pr-policy-config.json"')
    assert base < check < merged < gate.index("for stack in staging production")  # the gate sees it
    assert "--corpus-stack production" in gate and "-f markdown >> comment.md" in gate
    assert "--pull-request" in gate[merged:]  # a scratch copy as target: accepted only as a pull request's


def test_migration_evidence_refuses_what_is_not_a_checks_output(tmp_path: Path) -> None:
    (tmp_path / "check.json").write_text('{"verdict": "fine"}')
    result = run(sys.executable, REPO / "scripts" / "migration_evidence.py", tmp_path / "check.json",
                 tmp_path / "out.json")
    assert result.returncode == 2 and "not the output of `bookingctl migrate check" in result.stderr
    assert not (tmp_path / "out.json").exists()


def test_production_without_migrate_check_evidence_is_refused(tmp_path: Path) -> None:
    result = run(BIN / "bookingctl", "plan", "production", "-f", "json", "--policy-config",
                 evidence(tmp_path, migrations=None), "--project-dir", REPO)
    assert result.returncode == 1
    assert {v["policy"] for v in json.loads(result.stdout)["violations"] if v["level"] == "mandatory"} == {
        "migrations-rollback-safe"}


def test_production_without_rehearsal_evidence_is_refused(tmp_path: Path) -> None:
    result = run(BIN / "bookingctl", "plan", "production", "-f", "json", "--policy-config",
                 evidence(tmp_path, rehearsal=None), "--project-dir", REPO)
    assert result.returncode == 1
    assert {v["policy"] for v in json.loads(result.stdout)["violations"] if v["level"] == "mandatory"} == {
        "migrations-rehearsed"}


def test_production_rehearses_on_its_newest_r2_backup_before_the_preview_and_pull_requests_on_seeded_rows() -> None:
    production = steps_of(workflow("deploy.yml")["jobs"]["production"])
    runs = [str(s.get("run", "")) for s in production]
    rehearse = next(i for i, r in enumerate(runs) if "migrate rehearse --stack production --r2 -f json" in r)
    assert "scripts/migration_evidence.py rehearsal.json evidence.json" in runs[rehearse]
    assert production[rehearse]["env"] == {"CLOUDFLARE_API_TOKEN": "${{ secrets.CLOUDFLARE_API_TOKEN }}"}
    assert rehearse < [s.get("id") for s in production].index("preview")
    assert "backup create" not in runs[rehearse]  # never an export on the deploy's path
    gate = " ".join(runs_of(workflow("pull-request.yml")["jobs"]["gate"]))
    seeded = gate.index('db seed --local "$RUNNER_TEMP/base.sqlite"')
    merged = gate.index('migration_evidence.py rehearsal.json "$RUNNER_TEMP/pr-policy-config.json"')
    assert seeded < gate.index("migrate rehearse --local") < merged < gate.index("for stack in staging production")
    assert "--pull-request" in gate[merged:merged + 120]


def test_every_deploy_runs_doctor_on_its_stack_before_the_preview() -> None:
    """A wrong assumption about the account (a permission, a zone plan, an entry point, a full widget)
    stops the job before the preview, not halfway through `pulumi up`."""
    jobs = workflow("deploy.yml")["jobs"]
    for name in ("staging", "production"):
        steps = steps_of(jobs[name])
        ids = [s.get("id") for s in steps]
        doctor = steps[ids.index("doctor")]
        assert doctor["run"] == f"scripts/bookingctl doctor --stack {name}"
        assert doctor["env"] == {"CLOUDFLARE_API_TOKEN": "${{ secrets.CLOUDFLARE_API_TOKEN }}"}
        assert ids.index("doctor") < ids.index("preview") < ids.index("up")


def test_pull_request_previews_come_up_after_approval_and_go_down_with_the_base_branchs_code() -> None:
    """Issue #26: the order of the preview's steps and where each secret is visible (the second hostile
    review's findings 4-6 and 19 each hold here)."""
    data = workflow("pull-request.yml")
    # A `pull_request` run is defined by the pull request's own copy of the file: no job of it may hold
    # the cleanup credentials, and no closed event is handled here at all.
    assert data[True]["pull_request"] is None and "preview-environment-down" not in data["jobs"]
    assert "concurrency" not in data  # per job: a push never cancels a preview up mid-operation
    jobs = data["jobs"]
    assert jobs["test"]["concurrency"]["cancel-in-progress"] is True
    up = jobs["preview-environment"]
    assert up["needs"] == "gate" and up["environment"] == "pull-request-preview"
    assert "head.repo.full_name == github.repository" in up["if"]
    assert up["concurrency"] == {"group": "preview-environment-${{ github.event.pull_request.number }}",
                                 "cancel-in-progress": False}
    names = [s.get("name", s.get("uses", "")) for s in steps_of(up)]
    install = next(i for i, n in enumerate(names) if n.startswith("Install, and take the policy config"))
    run_up = next(i for i, n in enumerate(names) if n.startswith("bookingctl preview up"))
    comment = next(i for i, n in enumerate(names) if "pull-request comment" in n)
    assert install < run_up < comment
    base = steps_of(up)[install]["run"]
    assert 'git show "origin/$BASE_REF:migrations/columns.yaml" > base-columns.yaml' in base
    step = steps_of(up)[run_up]
    assert "--classification base-columns.yaml" in step["run"]
    assert "--policy-config pr-policy-config.json" in step["run"]
    assert step["shell"] == "bash"  # pipefail: `| tee` cannot turn a failed up into a green step
    assert [s.get("name") for s in steps_of(up) if secrets_used(s)] == [names[run_up]]
    assert all(v.startswith("${{ secrets.PREVIEW_") for v in step["env"].values() if "secrets." in v)
    assert "STAGING_CONFIG_PASSPHRASE" not in json.dumps(up) and "PRODUCTION" not in json.dumps(up).upper()
    cleanup = workflow("preview-cleanup.yml")
    assert set(cleanup[True]) == {"schedule", "workflow_dispatch"}  # the default branch's code only
    prune = cleanup["jobs"]["prune"]
    assert prune["environment"] == "pull-request-preview-cleanup"
    [with_secret] = [s for s in steps_of(prune) if secrets_used(s)]
    assert "bookingctl preview prune --open" in with_secret["run"] and "PREVIEW_PAYSTACK" not in json.dumps(prune)


def test_drift_runs_daily_for_both_stacks_read_only_with_one_issue_each_and_feeds_the_report() -> None:
    """Issue #27: the scheduled drift job, its token, its issue per stack, and the report's drift line."""
    jobs = workflow("scheduled.yml")["jobs"]
    drift = jobs["drift"]
    assert drift["strategy"]["matrix"]["stack"] == ["staging", "production"]
    assert drift["permissions"] == {"contents": "read", "issues": "write"}
    [with_secret] = [s for s in steps_of(drift) if secrets_used(s)]
    assert with_secret["env"]["CLOUDFLARE_API_TOKEN"] == "${{ secrets.CLOUDFLARE_API_TOKEN_READONLY }}"
    assert "bookingctl drift --stack" in with_secret["run"] and "make install" not in with_secret["run"]
    issue = " ".join(str(s.get("run", "")) for s in steps_of(drift))
    assert "gh issue create" in issue and "gh issue edit" in issue and "gh issue close" in issue
    daily = jobs["daily"]
    assert daily["needs"] == "drift" and daily["if"] == "always()"
    report = next(s for s in steps_of(daily) if s.get("name") == "Daily report")
    assert "--drift drift-production.json" in report["run"]
