"""preview-lifetime through the Analyzer protocol: a preview stack's expiry is judged as of BOOKING_TODAY."""

from __future__ import annotations

import json

import pytest

from booking_shared.project import Project, load_stack
from bookingctl.gate import PackProcess
from bookingctl.planner import Plan
from tests.helpers.policy_helpers import PACK, found, gate, not_applicable

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

POLICY = "preview-lifetime"


def _judged(project: Project, plan: Plan, stack: str, preview: dict[str, object] | None,
            monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    monkeypatch.setenv("BOOKING_TODAY", "2026-12-05")
    config = dict(load_stack(project, "staging").flat)
    if preview is not None:
        config["booking:preview"] = json.dumps(preview)
    with PackProcess(PACK, project.name, stack, config) as pack:
        result = gate(pack, plan)
    return [v.message for v in found(result, POLICY)], not_applicable(result, POLICY)


@pytest.mark.parametrize(("expires", "problem"), [("2026-12-04", "expired on 2026-12-04"),
                                                  ("2027-01-05", "31 days ahead"), ("tomorrow", "not a date")])
def test_a_preview_past_its_day_or_set_too_far_ahead_is_refused(
        project: Project, staging: Plan, monkeypatch: pytest.MonkeyPatch, expires: str, problem: str) -> None:
    messages, _ = _judged(project, staging, "pr-42", {"pr": 42, "expires": expires}, monkeypatch)
    assert len(messages) == 1 and problem in messages[0], messages


def test_a_preview_within_its_days_passes_and_staging_is_not_a_preview(
        project: Project, staging: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _judged(project, staging, "pr-42", {"pr": 42, "expires": "2026-12-12"}, monkeypatch) == ([], [])
    messages, skipped = _judged(project, staging, "staging", None, monkeypatch)
    assert messages == [] and skipped and "not a preview stack" in skipped[0]


def test_a_stack_named_as_a_preview_without_its_section_is_refused(
        project: Project, staging: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    messages, _ = _judged(project, staging, "pr-42", None, monkeypatch)
    assert len(messages) == 1 and "has no booking:preview" in messages[0]
