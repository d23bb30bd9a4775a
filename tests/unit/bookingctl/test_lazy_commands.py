"""The root group loads each command when it is used (bookingctl/cli.py COMMANDS)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from typer._click import Command

from bookingctl.cli import COMMANDS, load_command


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_summary_in_the_table_is_the_commands_own_short_help(name: str) -> None:
    command = load_command(name)
    assert command.get_short_help_str(limit=10_000) == COMMANDS[name][2]  # the root shortens it as click would
    assert command.name == name


def test_every_command_module_defines_what_the_table_names() -> None:
    for name in COMMANDS:
        assert isinstance(load_command(name), Command), name


def _command_modules_loaded_by(*args: str) -> list[str]:
    """The bookingctl.commands.* modules a fresh interpreter has loaded after `bookingctl ARGS`."""
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom bookingctl.cli import app\n"
            f"result = CliRunner().invoke(app, {list(args)!r})\nassert result.exit_code == 0, result.output\n"
            "print(sorted(m for m in sys.modules if m.startswith('bookingctl.commands.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return list(ast.literal_eval(done.stdout.strip()))


def test_the_roots_help_imports_no_command_module() -> None:
    assert _command_modules_loaded_by("--help") == []


def test_a_command_loads_only_its_own_module() -> None:
    assert _command_modules_loaded_by("migrate", "--help") == ["bookingctl.commands.migrate"]
