"""`plan --fresh`: what the first real preview of a new stack can and cannot block."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from booking_shared.project import find_project, load_stack
from booking_shared.tokens import D1, VERSION
from bookingctl.planner import UNKNOWN_SHOWN, run_program
from tests.helpers import REPO

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def test_a_fresh_plan_knows_no_ids_or_computed_outputs() -> None:
    project = find_project(REPO)
    settings = load_stack(project, "staging")
    plan = run_program(project, "staging", settings.flat, settings.secret_keys, fresh=True)
    assert plan.one(D1).raw_outputs["id"] != "database-d1-id"
    assert plan.outputs["databaseId"] == UNKNOWN_SHOWN and plan.outputs["workerVersionId"] == UNKNOWN_SHOWN
    # What the program passes on from a resource not yet created is unknown too: the D1 binding's id.
    [d1_binding] = [b for b in plan.one(VERSION).value("bindings") if b["type"] == "d1"]
    assert d1_binding["id"] == "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown sentinel
    # Known inputs stay known.
    assert plan.outputs["workerName"] == "appointmentbooking-api-staging"


def test_policies_that_need_an_unknown_value_only_warn_as_in_a_real_first_preview() -> None:
    """environment-isolation is mandatory, but on a fresh stack it must read the database id, which is
    unknown until created: pulumi_policy reports it as advisory, so a first preview does not block on it."""
    run = subprocess.run([str(BIN / "bookingctl"), "plan", "staging", "--fresh", "-f", "json", "--project-dir",
                          str(REPO)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    downgraded = {v["policy"] for v in data["violations"]
                  if v["level"] == "advisory" and "during preview" in v["message"]}
    assert "environment-isolation" in downgraded
    normal = subprocess.run([str(BIN / "bookingctl"), "plan", "staging", "-f", "json", "--project-dir", str(REPO)],
                            capture_output=True, text=True, timeout=120)
    assert not [v for v in json.loads(normal.stdout)["violations"] if "during preview" in v["message"]]


def test_a_plan_runs_after_asyncio_run_has_left_the_thread_without_a_loop() -> None:
    """A hook or an operation run with asyncio.run earlier in the process unsets the thread's loop;
    the Pulumi runtime's futures need one."""
    import asyncio

    async def nothing() -> None:
        return None

    asyncio.run(nothing())
    project = find_project(REPO)
    settings = load_stack(project, "staging")
    plan = run_program(project, "staging", settings.flat, settings.secret_keys)
    assert plan.outputs["workerName"] == "appointmentbooking-api-staging"
