"""The plan reads on the reader's width: COLUMNS is honoured when piped, and no input's words are split."""

from __future__ import annotations

import io
import sys

import pytest
from rich.console import Console

from bookingctl import output
from bookingctl.planner import Plan


def test_piped_output_takes_its_width_from_COLUMNS(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert output.console_for(io.StringIO()).width == 100


def test_piped_output_without_COLUMNS_is_wide_enough_for_ci_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert output.console_for(io.StringIO()).width == 200


def _printed(plan: Plan, width: int, monkeypatch: pytest.MonkeyPatch) -> str:
    buffer = io.StringIO()
    monkeypatch.setattr(output, "console_for", lambda stream: Console(
        file=buffer if stream is sys.stdout else io.StringIO(), width=width, highlight=False))
    output.print_plan(plan, "table")
    return buffer.getvalue()


@pytest.mark.parametrize("width", [80, 100])
def test_on_a_narrow_terminal_every_key_input_keeps_its_words_whole(production: Plan, width: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    text = _printed(production, width, monkeypatch)
    assert all(len(line) <= width for line in text.splitlines())
    words = {word for r in production.resources for line in output.key_inputs(r).splitlines()
             for word in line.split() if len(word) < width - 8}
    broken = sorted(word for word in words if word not in text)
    assert not broken, f"split across lines at {width} columns: {broken[:5]}"
