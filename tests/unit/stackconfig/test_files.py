"""Reading a stack file offline, as bookingctl does: the config names its stack and project, and reading
it costs pydantic, never the Pulumi SDK."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stackconfig.files import parse_config, read_stack_config
from stackconfig.model import StackConfig
from stackconfig.problems import ConfigError
from tests.helpers import REPO
from tests.helpers.stack_config import BASE, SECRETS


def test_reading_a_stack_file_does_not_import_pulumi() -> None:
    # A fresh interpreter: this test process has long imported pulumi through other tests.
    code = ("import sys, pathlib; from bookingctl.options import load_stack_config; "
            "cfg = load_stack_config('production', pathlib.Path(sys.argv[1])); "
            "print(cfg.database_name); "
            "print(sorted(m for m in sys.modules if m == 'pulumi' or m.startswith(('pulumi.', 'pulumi_', 'infra'))))")
    result = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True, timeout=120,
                            check=True)
    database, loaded = result.stdout.splitlines()
    assert database == "appointmentbooking-db", result.stdout  # the file was really read and parsed
    assert loaded == "[]", f"reading a stack file imported {loaded}"


def test_a_stack_file_read_offline_names_its_stack_and_project() -> None:
    cfg = read_stack_config("staging", REPO)
    assert (cfg.stack, cfg.project) == ("staging", "appointmentbooking")


def test_the_stack_and_project_are_not_keys_of_the_stack_file() -> None:
    # They come from the file's name and Pulumi.yaml; a `booking:stack` key would be a second source.
    assert not {"stack", "project", "_stack", "_project"} & set(StackConfig.model_fields)
    with pytest.raises(ConfigError) as info:
        parse_config({**BASE, "booking:stack": "staging"}, SECRETS, stack="production", source="Pulumi.production.yaml",
                     project_root=REPO, project="appointmentbooking")
    assert [p.key for p in info.value.problems] == ["stack"]
    assert "an unknown key" in info.value.render()


def test_a_config_copied_with_changes_keeps_its_stack() -> None:
    cfg = read_stack_config("production", REPO)
    assert cfg.model_copy(update={"domain": "www.example.org"}).stack == "production"
