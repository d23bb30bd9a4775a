"""scripts/*.py and bench/*.py run as the README writes them: executable, and as modules of the project."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

FILES = sorted([*REPO.glob("scripts/*.py"), *REPO.glob("bench/*.py")])
FILES = [f for f in FILES if not f.name.startswith("_")]


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH and no virtualenv on PATH: what a newcomer's shell has."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return env


@pytest.mark.parametrize("script", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_script_is_executable_with_a_shebang_and_runs_from_the_repository_root(script: Path) -> None:
    assert os.access(script, os.X_OK), f"{script.relative_to(REPO)} is not executable: chmod +x it"
    assert script.read_text().startswith("#!/usr/bin/env python3\n"), f"{script.name} has no python3 shebang"
    result = subprocess.run([f"./{script.relative_to(REPO)}", "--help"], cwd=REPO, env=_clean_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


@pytest.mark.parametrize("script", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_script_runs_as_a_module_with_the_venvs_python(script: Path) -> None:
    module = ".".join(script.relative_to(REPO).with_suffix("").parts)
    result = subprocess.run([str(REPO / "venv" / "bin" / "python"), "-m", module, "--help"], cwd=REPO,
                            env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
