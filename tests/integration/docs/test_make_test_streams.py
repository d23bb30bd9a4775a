"""`make test` shows the tests' progress as it happens, not all at once when a long step ends."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import REPO

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

# Stand-ins for the tools `make test` runs: the test run prints a line at once and then works for
# a while; the type check works for a while and prints at its end.
TOOLS = {
    "ruff": "echo ruff ok",
    "check-jsonschema": "echo schema ok",
    "zizmor": "echo zizmor ok",
    "mypy": "sleep 4; echo 'Success: no issues found'",
    "pytest": "echo 'tests: first dots'; sleep 4; echo 'tests: passed'",
}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is needed")
def test_make_test_prints_the_tests_progress_while_the_type_check_still_runs(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in TOOLS.items():
        tool = bin_dir / name
        tool.write_text(f"#!/bin/sh\n{body}\n")
        tool.chmod(0o755)
    stamp = tmp_path / ".installed"
    stamp.touch()  # newer than pyproject.toml: nothing is installed
    start = time.monotonic()
    proc = subprocess.Popen(["make", "-C", str(REPO), "--no-print-directory", "test", f"BIN={bin_dir}",
                             f"STAMP={stamp}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen_at = None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "tests: first dots" in line and seen_at is None:
            seen_at = time.monotonic() - start
    assert proc.wait(timeout=60) == 0, "".join(lines)
    total = time.monotonic() - start
    assert seen_at is not None, "".join(lines)
    # Held back (make's --output-sync), the line would arrive with the test run's end, after 4 s.
    assert seen_at < 3 <= total, f"first test output after {seen_at:.1f} s of {total:.1f} s:\n{''.join(lines)}"
