"""preview-lifetime and preview-isolated through the Analyzer protocol: a preview stack's expiry is judged as of
BOOKING_TODAY, and everything it declares must be its own."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from booking_shared.project import Project, find_project, load_stack
from bookingctl.gate import PackProcess
from bookingctl.planner import Plan, plan_stack
from ops.previews.stackfile import write_stack
from tests.helpers import copy_project
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


def _isolation(project: Project, plan: Plan, stack: str, config: dict[str, str]) -> tuple[list[str], list[str]]:
    with PackProcess(PACK, project.name, stack, config) as pack:
        result = gate(pack, plan)
    return [v.message for v in found(result, "preview-isolated")], not_applicable(result, "preview-isolated")


def test_staging_s_plan_passed_off_as_a_preview_is_refused_for_every_name_and_hostname_it_would_change(
        project: Project, staging: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKING_TODAY", "2026-12-05")
    config = dict(load_stack(project, "staging").flat)
    config["booking:preview"] = json.dumps({"pr": 42, "expires": "2026-12-12"})
    messages, _ = _isolation(project, staging, "pr-42", config)
    named = " ".join(messages)
    for what in ("D1Database", "Worker ", "R2Bucket", "PagesProject", "WorkersDeployment", "DnsRecord",
                 "WorkersRoute", "PagesDomain", "TurnstileWidget"):
        assert what in named, (what, messages)
    assert all(m.startswith("Preview pr-42") for m in messages)
    _, skipped = _isolation(project, staging, "staging", dict(load_stack(project, "staging").flat))
    assert skipped and "not a preview stack" in skipped[0]


def test_a_derived_preview_is_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKING_TODAY", "2026-12-05")
    copy = find_project(copy_project(tmp_path))
    write_stack(copy, 42, today=dt.date(2026, 12, 5))
    settings = load_stack(copy, "pr-42")
    plan = plan_stack(copy, settings)
    messages, skipped = _isolation(copy, plan, "pr-42", dict(settings.flat))
    assert messages == [] and skipped == []
