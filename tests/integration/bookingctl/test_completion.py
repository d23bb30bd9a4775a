"""Shell completion: the installed `bookingctl` completes its commands and options (newcomer review, problem 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BOOKINGCTL = Path(sys.executable).with_name("bookingctl")  # the console script `make install` puts in the venv


def complete(line: str) -> list[str]:
    words = line.split(" ")
    env = {**os.environ, "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1), "_BOOKINGCTL_COMPLETE": "complete_bash"}
    done = subprocess.run([str(BOOKINGCTL)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize(("line", "expected"), [
    ("bookingctl mig", ["migrate"]),
    ("bookingctl backup re", ["restore"]),
    ("bookingctl backup restore --rep", ["--replace"]),
    ("bookingctl release quarantine ", ["clear", "list"]),
])
def test_commands_and_options_complete(line: str, expected: list[str]) -> None:
    assert sorted(complete(line)) == expected


def test_the_completion_script_for_bash_is_shown() -> None:
    # typer finds the shell from the processes above it (shellingham), not from an argument: started
    # from bash, as a user would. Run straight from pytest under `make`, the nearest shell is make's sh.
    # (a second command keeps bash alive as the parent instead of exec-ing the CLI in its place.)
    done = subprocess.run(["bash", "-c", f"{BOOKINGCTL} --show-completion; exit $?"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "SHELL": "/bin/bash"})
    assert done.returncode == 0 and "complete -o default -F _bookingctl_completion bookingctl" in done.stdout
