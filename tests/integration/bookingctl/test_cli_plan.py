"""`bookingctl plan`: formats, exit codes, and secrets that never reach the output."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from booking_shared.tokens import VERSION
from bookingctl.cli import app
from bookingctl.commands.plan import PlanFormat
from bookingctl.output import plan_json, plan_markdown, print_plan
from tests.helpers import FAKE_SECRETS, REPO, PlanFn

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

runner = CliRunner()
EVIDENCE = str(REPO / "policies" / "examples" / "checklist-evidence.json")


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def scratch_project(tmp_path: Path) -> Path:
    """A copy of this project's files in a temporary folder, safe to break."""
    for name in ("Pulumi.yaml", "Pulumi.production.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "infra", tmp_path / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "worker", tmp_path / "worker", ignore=shutil.ignore_patterns("node_modules"))
    shutil.copytree(REPO / "policies", tmp_path / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    # The migrate-check evidence is bound to the tree's migrations (their checksum): they come along.
    shutil.copytree(REPO / "migrations", tmp_path / "migrations")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new))


def test_json_plan_lists_resources_with_type_name_inputs_protect_and_outputs() -> None:
    code, out, _ = invoke("plan", "production", "--format", "json", "--project-dir", str(REPO),
                          "--policy-config", EVIDENCE)
    assert code == 0
    data = json.loads(out)
    assert data["stack"] == "production"
    assert {"type", "name", "inputs", "protect"} <= set(data["resources"][0])
    db = next(r for r in data["resources"] if r["type"] == "cloudflare:index/d1Database:D1Database")
    assert db["protect"] is True
    assert db["inputs"]["readReplication"] == {"mode": "disabled"}  # camelCase, as the engine sees them
    assert data["outputs"]["healthUrl"] == "https://www.instylehairboutique.co.za/api/health"


def test_table_plan_shows_every_resource_and_outputs() -> None:
    code, out, err = invoke("plan", "staging", "--project-dir", str(REPO))
    assert code == 0
    for expected in ("cloudflare:index/workersRoute:WorkersRoute", "staging.instylehairboutique.co.za/*",
                     "appointmentbooking-db-staging", "Stack outputs", "[secret]"):
        assert expected in out
    assert "booking:paystackSecretKey is not set" in err  # the placeholder is announced


def test_markdown_plan_is_a_table_for_pull_requests() -> None:
    code, out, _ = invoke("plan", "production", "-f", "markdown", "--project-dir", str(REPO),
                          "--policy-config", EVIDENCE)
    assert code == 0
    assert out.startswith("### Offline plan: `production`")
    assert "| Type | Name | Protect | Key inputs |" in out
    assert "| `cloudflare:index/d1Database:D1Database` | &nbsp;&nbsp;`database-d1` | yes |" in out


def test_unknown_stack_exits_2_naming_the_missing_file_and_known_stacks() -> None:
    code, _, err = invoke("plan", "prod", "--project-dir", str(REPO))
    assert code == 2
    assert "Pulumi.prod.yaml does not exist" in err
    assert "production, staging" in err


@pytest.mark.parametrize("stack", ["../production", "..", "prod uction", "a/b"])
def test_a_name_no_stack_could_have_exits_2_saying_what_a_stack_name_is(stack: str) -> None:
    code, out, err = invoke("plan", stack, "--project-dir", str(REPO))
    assert code == 2 and out == "" and f"stack name {stack!r}" in err and "letters, digits" in err


def test_no_project_file_exits_2(tmp_path: Path) -> None:
    code, _, err = invoke("plan", "production", "--project-dir", str(tmp_path))
    assert code == 2
    assert "no Pulumi.yaml" in err


def test_bad_config_exits_2_naming_file_key_found_and_allowed(scratch_project: Path) -> None:
    stack = scratch_project / "Pulumi.staging.yaml"
    edit(stack, 'booking:backupRetentionDays: "7"', 'booking:backupRetentionDays: "0"')
    code, out, err = invoke("plan", "staging", "--project-dir", str(scratch_project))
    assert code == 2
    assert out == ""
    assert "Pulumi.staging.yaml" in err
    assert "booking:backupRetentionDays: found '0'" in err
    assert "greater than or equal to 1" in err


def test_plain_text_secret_in_stack_file_exits_2_without_printing_it(scratch_project: Path) -> None:
    stack = scratch_project / "Pulumi.production.yaml"
    stack.write_text(stack.read_text() + "  booking:whatsappToken: EAAG-PLAIN-TEXT-TOKEN\n")
    code, out, err = invoke("plan", "production", "--project-dir", str(scratch_project))
    assert code == 2
    assert "booking:whatsappToken: found a plain-text value" in err
    assert "EAAG-PLAIN-TEXT-TOKEN" not in out + err


def test_secure_values_in_stack_file_plan_as_placeholders(scratch_project: Path) -> None:
    stack = scratch_project / "Pulumi.production.yaml"
    # What `pulumi config set --secret` writes with a passphrase: v1:<12-byte nonce>:<sealed data>.
    ciphertext = "v1:AAECAwQFBgcICQoL:Y2lwaGVydGV4dC1vZi1hLXRva2VuLTAw"
    stack.write_text(stack.read_text() + f"  booking:whatsappToken:\n    secure: {ciphertext}\n")
    code, out, err = invoke("plan", "production", "-f", "json", "--project-dir", str(scratch_project),
                            "--policy-config", EVIDENCE)
    assert code == 0
    assert "whatsappToken is not set" not in err
    assert "Y2lwaGVydGV4dC1vZi1hLXRva2Vu" not in out


def test_invalid_yaml_exits_2_naming_the_file(scratch_project: Path) -> None:
    (scratch_project / "Pulumi.staging.yaml").write_text("config:\n  booking:environment: [staging\n")
    code, _, err = invoke("plan", "staging", "--project-dir", str(scratch_project))
    assert code == 2
    assert "Pulumi.staging.yaml: not valid YAML" in err


def test_a_crashing_program_exits_1_with_its_traceback(scratch_project: Path) -> None:
    (scratch_project / "infra" / "__main__.py").write_text("raise RuntimeError('boom in program')\n")
    code, _, err = invoke("plan", "production", "--project-dir", str(scratch_project))
    assert code == 1
    assert "the Pulumi program failed" in err and "boom in program" in err


def test_bad_format_is_a_usage_error() -> None:
    code, _, _ = invoke("plan", "production", "--format", "yaml", "--project-dir", str(REPO))
    assert code == 2


@pytest.mark.parametrize("fmt", list(PlanFormat))
def test_secret_values_never_appear_in_plan_output(plan_with: PlanFn, fmt: PlanFormat,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    plan = plan_with("production", secrets=FAKE_SECRETS)
    # The program did receive the real values (so redaction, not absence, is what hides them)...
    raw = json.dumps(plan.one(VERSION).value("bindings"))
    assert "sk_live_FAKEFAKEFAKE0123456789" in raw
    # ...and no rendering of the plan contains any of them.
    print_plan(plan, fmt)
    printed = capsys.readouterr()
    rendered = printed.out + printed.err + plan_json(plan) + plan_markdown(plan)
    for value in FAKE_SECRETS.values():
        assert value not in rendered
        assert "FAKE-KEY-0001" not in rendered


def test_installed_console_script_plans_a_stack_from_the_repository() -> None:
    script = Path(sys.executable).with_name("bookingctl")
    result = subprocess.run([str(script), "plan", "staging", "-f", "json"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outputs"]["databaseName"] == "appointmentbooking-db-staging"


def test_a_plan_process_ends_without_teardown_but_with_all_its_output_and_its_exit_code(tmp_path: Path) -> None:
    """`bookingctl` skips the interpreter's teardown once the provider SDK is loaded (bookingctl/cli.py):
    stdout piped to a file must still be complete, stderr too, and the exit code the gate's."""
    script = Path(sys.executable).with_name("bookingctl")
    out = tmp_path / "plan.md"
    with out.open("w") as sink:
        failed = subprocess.run([str(script), "plan", "production", "-f", "markdown"], cwd=REPO, stdout=sink,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    assert failed.returncode == 1  # the checklist evidence is missing: the gate's verdict, not a crash
    text = out.read_text()
    assert re.search(r"policy gate: FAIL: [1-9][0-9]* mandatory", text.split("\n\n")[1]), text[:300]
    assert text.rstrip().endswith("</details>"), "the last bytes of the plan reached the file"
    assert "placeholder" in failed.stderr
    usage = subprocess.run([str(script), "plan", "production", "--policy-config", str(tmp_path / "missing.json")],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and usage.stderr.strip().splitlines()[-1].startswith("error: ")


def test_cli_does_not_import_the_cloudflare_provider_until_a_command_plans() -> None:
    # Importing pulumi_cloudflare costs ~2-3 s; --help and non-planning commands must not pay it.
    code = ("import sys, bookingctl.cli, bookingctl.output, booking_shared.project; "
            "print('pulumi_cloudflare' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
    help_run = subprocess.run([sys.executable, "-m", "bookingctl", "--help"], capture_output=True, text=True)
    assert help_run.returncode == 0


@pytest.mark.parametrize("command", [
    ["plan", "advdate"], ["plan", "advdate", "-f", "json"],
    ["migrate", "status", "--stack", "advdate", "--dir", str(REPO / "migrations")],
    ["verify", "--stack", "advdate"], ["watch", "--stack", "advdate", "--duration", "1s"],
    ["monitor", "perf", "--stack", "advdate"], ["backup", "list", "--stack", "advdate", "--r2"],
])
def test_every_command_reading_a_stack_file_refuses_an_unquoted_date_without_a_traceback(
        scratch_project: Path, command: list[str]) -> None:
    staging = (scratch_project / "Pulumi.staging.yaml").read_text()
    (scratch_project / "Pulumi.advdate.yaml").write_text(
        staging.replace('booking:compatibilityDate: "2026-10-01"', "booking:compatibilityDate: 2026-10-01"))
    code, out, err = invoke(*command, "--project-dir", str(scratch_project))
    assert code == 2, err
    assert "booking:compatibilityDate (line" in err and "quote it" in err
    assert "Traceback" not in out + err and "unexpected error" not in err


@pytest.mark.parametrize("fmt", list(PlanFormat))
@pytest.mark.parametrize("line", [
    "  booking:pagesProductionBranch: sk_live_LEAKCANARY0123456789\n",
    "  booking:alertEmail: sk_live_LEAKCANARY0123456789@company.com\n",
    "  cloudflare:apiToken: LEAKCANARY_cf_token_0123456789\n",
    "  booking:paystackSecretKey:\n    secure: sk_live_LEAKCANARY0123456789\n",
])
def test_a_committed_credential_exits_2_in_every_format_without_printing_it(
        scratch_project: Path, fmt: PlanFormat, line: str) -> None:
    stack = scratch_project / "Pulumi.production.yaml"
    text = stack.read_text().replace("  booking:alertEmail: devops@company.com\n", "")
    stack.write_text(text + line)
    code, out, err = invoke("plan", "production", "-f", fmt.value, "--project-dir", str(scratch_project),
                            "--policy-config", EVIDENCE)
    assert code == 2, err
    assert "LEAKCANARY" not in out + err
    assert "not shown" in err


def test_worker_bundle_pointing_at_the_process_environment_is_refused_and_the_canary_never_printed(
        scratch_project: Path) -> None:
    import base64
    import os

    stack = scratch_project / "Pulumi.staging.yaml"
    edit(stack, "booking:workerBundle: worker/src/index.js", "booking:workerBundle: /proc/self/environ")
    env = {**os.environ, "CLOUDFLARE_API_TOKEN": "cf-LEAKCANARY", "PULUMI_CONFIG_PASSPHRASE": "pp-LEAKCANARY"}
    script = str(Path(sys.executable).with_name("bookingctl"))
    for fmt in PlanFormat:
        run = subprocess.run([script, "plan", "staging", "-f", fmt.value, "--project-dir", str(scratch_project)],
                             capture_output=True, text=True, env=env, timeout=120)
        shown = run.stdout + run.stderr
        # The leak this guards against printed the environment base64-encoded (a module's contentBase64).
        decoded = b"".join(base64.b64decode(m + "=" * (-len(m) % 4))
                           for m in re.findall(r"[A-Za-z0-9+/]{40,}", shown))
        assert run.returncode == 2, (fmt, run.stderr)
        assert "booking:workerBundle" in run.stderr and "relative to the project" in run.stderr
        assert "LEAKCANARY" not in shown and b"LEAKCANARY" not in decoded
