"""A violation's Fix line gives a newcomer the command that works on their own machine, not only CI's job."""

from __future__ import annotations

from typing import Any

import pytest

from policies import checklist, migrations, rehearsal

EXAMPLE_FLAG = "--policy-config policies/examples/checklist-evidence.json"


class Args:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def get_config(self) -> dict[str, Any]:
        return self.config


def fixes(check: Any, monkeypatch: pytest.MonkeyPatch, module: Any) -> list[str]:
    monkeypatch.setattr(module, "stack_environment", lambda: "production")
    monkeypatch.setattr(migrations, "approved_migrations", lambda: {})
    found: list[str] = []
    check(Args({}), lambda text, *rest: found.append(text))
    return [line for text in found for line in text.splitlines() if line.startswith("Fix: ")]


def test_every_missing_checklist_item_names_the_example_evidence_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = fixes(checklist.check_checklist, monkeypatch, checklist)
    assert lines and all(EXAMPLE_FLAG in line for line in lines), lines


def test_missing_migration_evidence_names_the_local_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    (line,) = fixes(migrations.check_migrations, monkeypatch, migrations)
    assert "bookingctl migrate check --local" in line
    assert "scripts/migration_evidence.py" in line and "python scripts/" not in line
    assert EXAMPLE_FLAG in line


def test_missing_rehearsal_evidence_names_the_local_command_and_the_example(monkeypatch: pytest.MonkeyPatch) -> None:
    (line,) = fixes(rehearsal.check_rehearsal, monkeypatch, rehearsal)
    assert "bookingctl migrate rehearse --local" in line and "--r2" in line
    assert "scripts/migration_evidence.py" in line and EXAMPLE_FLAG in line
