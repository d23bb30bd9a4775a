"""The program as `pulumi up` runs it: config from the engine's environment variables.

`pulumi-language-python-exec` passes the stack config as JSON in PULUMI_CONFIG and the secret
keys in PULUMI_CONFIG_SECRET_KEYS, runs `main: infra/` with runpy from a working directory of its
choosing, and (in older hosts) never sets the SDK's root directory.
"""

from __future__ import annotations

import json

import pulumi
import pytest

from booking_shared.project import Project, load_stack
from bookingctl.planner import run_program
from infra.config import project_root
from stackconfig.problems import ConfigError
from tests.helpers import FAKE_SECRETS, REPO


def engine_env(project: Project, stack: str, monkeypatch: pytest.MonkeyPatch, **changes: str) -> None:
    flat = {k: v for k, v in load_stack(project, stack).flat.items() if k not in FAKE_SECRETS}
    flat.update(FAKE_SECRETS)
    flat.update(changes)
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(flat))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(sorted(FAKE_SECRETS)))


def test_program_reads_config_and_secret_keys_from_the_engine_environment(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    engine_env(project, "staging", monkeypatch)
    monkeypatch.chdir(REPO / "infra")
    plan = run_program(project, "staging", flat={}, secret_keys=[])
    assert plan.outputs["databaseName"] == "appointmentbooking-db-staging"
    bindings = {b["name"]: b for b in plan.one("cloudflare:index/workerVersion:WorkerVersion").value("bindings")}
    assert bindings["WHATSAPP_TOKEN"]["text"] == FAKE_SECRETS["booking:whatsappToken"]


def test_bad_engine_config_stops_the_program_with_a_run_error(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    engine_env(project, "production", monkeypatch, **{"booking:environment": "prod"})
    with pytest.raises(ConfigError) as info:
        run_program(project, "production", flat={}, secret_keys=[])
    # The language host prints a RunError's message alone, without a traceback.
    assert isinstance(info.value, pulumi.RunError)
    assert "booking:environment: found 'prod'" in str(info.value)


def test_project_root_is_found_when_the_sdk_reports_a_dummy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO / "infra")
    assert project_root("root_directory") == REPO
    assert project_root(None) == REPO
    assert project_root(str(REPO)) == REPO
