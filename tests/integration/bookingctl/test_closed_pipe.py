"""A reader that goes away early (`bookingctl ... | head -1`) is not a failure of the command.

The CLI framework exits 1 when stdout's reader has closed, which this CLI documents as "the
operation failed". The exit code is 141 instead, as a process ended by SIGPIPE reports it
(128 + 13) and as `git log | head` does, with nothing on stderr. The reader's end of the pipe is
closed before the child writes anything, so the first write meets a closed pipe every time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bookingctl.errors import EXIT_READER_GONE
from tests.helpers import REPO


def _run_with_stdout_closed(*args: str, cwd: Path) -> tuple[int, str]:
    child = subprocess.Popen([sys.executable, "-m", "bookingctl", *args], cwd=cwd,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader is gone before the first line
    err = child.stderr.read()
    return child.wait(timeout=120), err


def test_the_frameworks_own_output_to_a_closed_pipe_exits_141_silently(tmp_path: Path) -> None:
    code, err = _run_with_stdout_closed("migrate", "--help", cwd=tmp_path)
    assert (code, err) == (EXIT_READER_GONE, "") and EXIT_READER_GONE == 141


@pytest.mark.parametrize("command", [["migrate", "status"], ["tenants", "list"]])
def test_a_commands_table_to_a_closed_pipe_exits_141_silently(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "dev.sqlite"
    done = subprocess.run([sys.executable, "-m", "bookingctl", "migrate", "apply", "--local", str(db), "--yes",
                           "--project-dir", str(REPO)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    code, err = _run_with_stdout_closed(*command, "--local", str(db), "--project-dir", str(REPO),
                                        cwd=tmp_path)
    assert (code, err) == (EXIT_READER_GONE, "")
