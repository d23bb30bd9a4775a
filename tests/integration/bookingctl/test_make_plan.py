"""`make plan` keeps machine-readable output clean (make would echo the recipe line on stdout)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.helpers import REPO


@pytest.mark.skipif(shutil.which("make") is None, reason="make is needed")
def test_make_plan_with_format_json_prints_only_json() -> None:
    result = subprocess.run(["make", "-C", str(REPO), "--no-print-directory", "plan", "STACK=staging", "FORMAT=json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stack"] == "staging"
