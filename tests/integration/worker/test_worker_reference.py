"""The reference Worker's health contract, run with Node's test runner (Node ships Request/Response)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.helpers import REPO


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed on this machine")
def test_reference_worker_health_contract_passes_its_node_tests() -> None:
    result = subprocess.run(["node", "--test", "test/"], cwd=REPO / "worker",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = int(result.stdout.split("# pass ")[1].split()[0])
    assert passed >= 1 and "# fail 0" in result.stdout  # the contract's cases ran, and none failed
