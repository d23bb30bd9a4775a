"""`bookingctl doctor` end to end on the API double: one line per check, JSON for CI, exit 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from tests.helpers.cf_double import TOKEN, CloudflareDouble, Fault
from tests.helpers.doctor_account import MAIN_ZONE, doctor_project, healthy_account
from tests.helpers.saas_stack import STACK

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    healthy_account(double)
    (tmp_path / "project").mkdir()
    return doctor_project(tmp_path / "project")


def doctor(project: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["doctor", *args, "--project-dir", str(project)])
    return result.exit_code, result.stdout, result.stderr


def test_a_healthy_account_exits_0_with_one_passing_line_per_check(project: Path) -> None:
    code, out, err = doctor(project, "--stack", STACK)
    assert code == 0, out + err
    lines = out.strip().splitlines()
    assert all(line.startswith("PASS ") for line in lines[:-1]), out
    assert lines[-1].startswith(f"stack {STACK}: ") and " 0 fail" in lines[-1]
    assert any(line.startswith("PASS token permissions: all ") for line in lines)


def test_a_failed_check_exits_1_with_its_line_and_fix(project: Path, double: CloudflareDouble) -> None:
    double.zones[MAIN_ZONE].plan = "free"
    code, out, _ = doctor(project, "--stack", STACK)
    assert code == 1
    [line] = [x for x in out.splitlines() if x.startswith(f"FAIL zone plan main ({MAIN_ZONE})")]
    assert "at most 1 on Free" in line and "-> fix: upgrade the zone to Business" in line


def test_json_output_parses_and_carries_every_check(project: Path, double: CloudflareDouble) -> None:
    double.buckets.clear()
    code, out, _ = doctor(project, "--stack", STACK, "-f", "json")
    assert code == 1
    report = json.loads(out)
    assert report["stack"] == STACK and report["ok"] is False and report["counts"]["fail"] == 1
    [bucket] = [c for c in report["checks"] if c["name"].startswith("R2 bucket")]
    assert bucket["status"] == "fail" and bucket["ok"] is False and "pulumi up" in bucket["fix"]
    assert {"name", "status", "ok", "detail", "fix", "source"} <= set(bucket)


def test_an_unknown_stack_exits_2(project: Path) -> None:
    code, out, err = doctor(project, "--stack", "nosuchstack")
    assert code == 2 and out == ""
    assert "nosuchstack" in err


def test_a_stack_is_required(project: Path) -> None:
    code, _, _ = doctor(project)
    assert code == 2


def test_an_invalid_token_exits_2_naming_the_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "not-a-token")
    code, _, err = doctor(project, "--stack", STACK)
    assert code == 2 and "CLOUDFLARE_API_TOKEN is not a valid token" in err


def test_an_unreachable_api_exits_2(project: Path, double: CloudflareDouble) -> None:
    double.inject(Fault("GET", r"/user/tokens/verify$", status=503, times=20))
    double.inject(Fault("GET", r"/tokens/verify$", status=503, times=20))
    code, _, err = doctor(project, "--stack", STACK)
    assert code == 2 and "503" in err and "try again" in err


@pytest.mark.parametrize("garbage", [b"<html>502 Bad Gateway</html>", b'{"result": "not a zone", "success": true}',
                                     b"[]"])
def test_an_api_answering_garbage_exits_2_naming_the_call_not_a_bug(project: Path, double: CloudflareDouble,
                                                                    garbage: bytes) -> None:
    double.inject(Fault("GET", rf"/zones/{MAIN_ZONE}$", status=200, body=garbage, times=20))
    code, out, err = doctor(project, "--stack", STACK, "-f", "json")
    assert (code, out) == (2, ""), out + err
    assert f"GET /zones/{MAIN_ZONE}" in err and "bug" not in err
