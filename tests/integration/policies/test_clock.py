"""The date rules judge as of BOOKING_TODAY when it is set: the clock is an input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
EVIDENCE = REPO / "policies" / "examples" / "checklist-evidence.json"


def plan_production_on(day: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "bookingctl"), "plan", "production", "-f", "json", "--policy-config",
                           str(EVIDENCE), "--project-dir", str(REPO)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "BOOKING_TODAY": day})


def test_a_year_after_the_committed_compatibility_date_the_gate_asks_to_bump_it() -> None:
    aged = plan_production_on("2027-10-02")  # 366 days after booking:compatibilityDate 2026-10-01
    assert aged.returncode == 1
    [violation] = [v for v in json.loads(aged.stdout)["violations"] if v["level"] == "mandatory"]
    assert violation["policy"] == "worker-compatibility-date" and "366 days old" in violation["message"]
    assert "booking:compatibilityDate" in violation["message"]
    assert plan_production_on("2027-10-01").returncode == 0  # 365 days: still within the window


def test_a_compatibility_date_after_the_given_day_is_a_config_error() -> None:
    early = plan_production_on("2026-09-30")
    assert early.returncode == 2 and "no later than today (2026-09-30)" in early.stderr
