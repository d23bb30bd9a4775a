"""The plan prints the same bytes for the same code, and reads well on a narrow terminal."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from bookingctl import output
from bookingctl.planner import Plan
from tests.helpers import REPO

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def test_two_plans_of_the_same_code_print_the_same_bytes() -> None:
    """Registration order depends on when outputs resolve (and on hash seeds); printed order must not.
    Markdown and the table print the same ordered list as JSON."""
    runs = [subprocess.run([str(BIN / "bookingctl"), "plan", "production", "-f", "json", "--project-dir", str(REPO)],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": seed})
            for seed in ("1", "2")]
    # Minus the one thing that may differ: how long the gate took.
    texts = [re.sub(r'"seconds": [0-9.]+', "", r.stdout) for r in runs]
    assert texts[0] == texts[1] and texts[0]


def test_resources_are_listed_parents_first_then_by_name(production: Plan) -> None:
    urns = {r.urn for r in production.resources}
    seen: set[str] = set()
    for resource in production.resources:
        assert resource.parent not in urns or resource.parent in seen, f"{resource.urn} before its parent"
        seen.add(resource.urn)
    top = [r.name for r in production.resources if r.parent not in urns]
    assert top == sorted(top)


def test_on_an_80_column_terminal_types_and_names_are_never_split(production: Plan,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.StringIO()
    monkeypatch.setattr(output, "console_for", lambda stream: Console(
        file=buffer if stream is sys.stdout else io.StringIO(), width=80, highlight=False))
    output.print_plan(production, "table")
    text = buffer.getvalue()
    assert all(len(line) <= 80 for line in text.splitlines())
    for resource in production.resources:
        assert resource.name in text  # whole, on one line
        assert resource.type.rsplit(":", 1)[-1] in text
