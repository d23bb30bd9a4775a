"""`bookingctl preview derive|list`: a pull request's stack file from staging's, checked as the program reads it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from tests.helpers import REPO, copy_project

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

runner = CliRunner()
BIN = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what planning a stack reads: the program, the pack, the stack files, the Worker, migrations."""
    return copy_project(tmp_path)


def run(project: Path, *args: str, today: str = "2026-12-05") -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project-dir", str(project)], env={"BOOKING_TODAY": today})
    return result.exit_code, result.stdout, result.stderr


def test_a_derived_preview_is_listed_and_passes_the_gate_as_its_own_stack(project: Path) -> None:
    code, out, _ = run(project, "preview", "derive", "--pr", "42")
    assert code == 0 and "wrote Pulumi.pr-42.yaml" in out and "expires 2026-12-12" in out
    assert "pulumi up --stack pr-42 --policy-pack policies" in out
    code, out, _ = run(project, "preview", "list", "--json")
    [listed] = json.loads(out)["previews"]
    assert listed == {"stack": "pr-42", "pr": 42, "expires": "2026-12-12", "expired": False,
                      "url": "https://staging-pr-42.instylehairboutique.co.za"}
    assert json.loads(run(project, "preview", "list", "--json", today="2026-12-13")[1])["previews"][0]["expired"]
    planned = subprocess.run([str(BIN / "bookingctl"), "plan", "pr-42", "-f", "json", "--project-dir", str(project),
                              "--policy-config", str(REPO / "policies" / "examples" / "checklist-evidence.json")],
                             capture_output=True, text=True, timeout=180, env={"BOOKING_TODAY": "2026-12-05",
                                                                                "PATH": str(BIN)})
    assert planned.returncode == 0, planned.stderr
    mandatory = [v for v in json.loads(planned.stdout)["violations"] if v["level"] == "mandatory"]
    assert mandatory == []


def test_a_preview_the_model_refuses_leaves_the_previous_file_as_it_was(project: Path) -> None:
    assert run(project, "preview", "derive", "--pr", "42")[0] == 0
    before = (project / "Pulumi.pr-42.yaml").read_bytes()
    staging = project / "Pulumi.staging.yaml"
    # A rollout the model refuses, copied from staging: the derived file fails the model's check.
    staging.write_text(staging.read_text().replace("    bakeMinutes: 2", "    bakeMinutes: -1"))
    code, _, err = run(project, "preview", "derive", "--pr", "42")
    assert code == 2 and "booking:rollout.bakeMinutes" in err
    assert (project / "Pulumi.pr-42.yaml").read_bytes() == before
    code, _, err = run(project, "preview", "derive", "--pr", "43")
    assert code == 2 and not (project / "Pulumi.pr-43.yaml").exists()
    assert not list(project.glob(".*.partial"))


def test_a_pull_request_number_or_lifetime_out_of_range_changes_nothing(project: Path) -> None:
    for args in (("--pr", "0"), ("--pr", "42", "--lifetime-days", "31")):
        code, _, err = run(project, "preview", "derive", *args)
        assert code == 2 and err.strip()
    assert not list(project.glob("Pulumi.pr-*.yaml"))


def test_a_preview_whose_hostname_another_environment_serves_leaves_no_file(project: Path) -> None:
    production = project / "Pulumi.production.yaml"
    production.write_text(production.read_text().replace("booking:domain: www.instylehairboutique.co.za",
                                                         "booking:domain: staging-pr-42.instylehairboutique.co.za"))
    code, _, err = run(project, "preview", "derive", "--pr", "42")
    assert code == 2 and "staging-pr-42.instylehairboutique.co.za" in err
    assert not (project / "Pulumi.pr-42.yaml").exists()
