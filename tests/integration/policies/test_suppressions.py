"""Suppressions with a reason: valid ones silence one finding and are listed; bad ones are violations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from booking_shared import clock
from booking_shared.project import Project, load_stack
from bookingctl.gate import GateResult, PackProcess
from bookingctl.planner import Plan
from policies.common import SUPPRESSIONS_ENV, load_suppressions
from tests.helpers import REPO
from tests.helpers.policy_helpers import COMPLETE_EVIDENCE, changed, found, gate

TODAY = clock.today()  # the pinned day (conftest)
REASON = "Waiting for the upstream runtime fix, tracked in issue #123"


def entry(policy: str, resource: str, **extra: object) -> dict[str, object]:
    return {"policy": policy, "resource": resource, "reason": REASON, "approvedBy": "lead@example.co.za",
            "expires": (TODAY + dt.timedelta(days=30)).isoformat(), **extra}


ENTRIES = [
    entry("worker-compatibility-date", "api-version"),                                     # 1 valid
    entry("dns-records-proxied", "main-dns", expires=(TODAY - dt.timedelta(days=1)).isoformat()),  # 2 expired
    entry("worker-observability", "api-worker", reason=""),                                # 3 no reason
    entry("data-protection", "database-d1"),                                               # 4 not suppressible
    entry("backup-retention", "backups-lifecycle", expires=(TODAY + dt.timedelta(days=400)).isoformat()),  # 5
    entry("no-such-policy", "api-worker"),                                                 # 6 unknown policy
    entry("worker-routes-on-own-hostnames", "main-route", stack="staging"),                # 7 other stack
]


@pytest.fixture(scope="module")
def result(project: Project, production: Plan, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GateResult]:
    path = tmp_path_factory.mktemp("suppressions") / "suppressions.yaml"
    path.write_text(yaml.safe_dump({"suppressions": ENTRIES}))
    plan = changed(production, "api-version", ("compatibilityDate",), "2020-01-01")
    plan = changed(plan, "main-dns", ("proxied",), False)
    plan = changed(plan, "api-worker", ("observability", "logs", "enabled"), False)
    plan = changed(plan, "database-d1", protect=False)
    plan = changed(plan, "main-route", ("pattern",), "www.someone-else.co.za/*")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SUPPRESSIONS_ENV, str(path))
        pack = PackProcess(REPO / "policies", project.name, "production", load_stack(project, "production").flat)
    with pack:
        yield gate(pack, plan, evidence=COMPLETE_EVIDENCE)


def invalid(result: GateResult, number: int) -> str:
    messages = [v.message for v in found(result, "suppressions-valid") if f"Suppression #{number} " in v.message]
    assert len(messages) == 1, f"suppression #{number} should be reported invalid exactly once"
    return messages[0]


def test_valid_suppression_silences_its_finding(result: GateResult) -> None:
    assert not found(result, "worker-compatibility-date")
    assert not any("Suppression #1 " in v.message for v in found(result, "suppressions-valid"))


def test_valid_suppression_is_listed_as_advisory_with_reason_approver_and_expiry(result: GateResult) -> None:
    [listed] = found(result, "suppressions-active")
    assert listed.level == "advisory"
    assert "worker-compatibility-date on api-version" in listed.message
    assert "lead@example.co.za" in listed.message and REASON in listed.message


def test_expired_suppression_is_a_violation_and_suppresses_nothing(result: GateResult) -> None:
    assert "expired on" in invalid(result, 2)
    assert found(result, "dns-records-proxied"), "an expired suppression must not hide the finding"


def test_suppression_without_reason_is_a_violation(result: GateResult) -> None:
    assert "`reason` is missing" in invalid(result, 3)
    assert found(result, "worker-observability")


def test_non_suppressible_production_rule_stays_enforced(result: GateResult) -> None:
    assert "cannot be suppressed" in invalid(result, 4)
    [v] = found(result, "data-protection")
    assert v.level == "mandatory"


def test_suppression_longer_than_180_days_is_a_violation(result: GateResult) -> None:
    assert "more than 180 days away" in invalid(result, 5)


def test_suppression_of_an_unknown_policy_is_a_violation(result: GateResult) -> None:
    assert "no policy is named `no-such-policy`" in invalid(result, 6)


def test_suppression_for_another_stack_does_not_apply(result: GateResult) -> None:
    assert found(result, "worker-routes-on-own-hostnames")


def test_invalid_suppressions_block_the_gate(result: GateResult) -> None:
    assert all(v.level == "mandatory" for v in found(result, "suppressions-valid"))
    assert not result.passed


def test_committed_suppressions_file_is_valid_and_empty() -> None:
    assert load_suppressions() == []


def test_malformed_suppressions_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "suppressions.yaml"
    path.write_text("suppressions: {policy: x}\n")
    monkeypatch.setenv(SUPPRESSIONS_ENV, str(path))
    [bad] = load_suppressions()
    assert bad.problems and "expected `suppressions:` list" in bad.problems[0]


def _entries_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> list[str]:
    path = tmp_path / "suppressions.yaml"
    path.write_text(text)
    monkeypatch.setenv(SUPPRESSIONS_ENV, str(path))
    return ["; ".join(entry.problems) for entry in load_suppressions()]


VALID_ENTRY = ("suppressions:\n  - policy: worker-observability\n    resource: api-worker\n"
               "    reason: Waiting for the upstream runtime fix, tracked in issue #123\n"
               "    approvedBy: lead@example.co.za\n    expires: {expires}\n")
SOON = (TODAY + dt.timedelta(days=30)).isoformat()


def test_a_valid_entry_with_an_unquoted_date_has_no_problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _entries_from(tmp_path, monkeypatch, VALID_ENTRY.format(expires=SOON)) == [""]


@pytest.mark.parametrize(("change", "expected"), [
    ("    approvedBy: lead@example.co.za\n", "    approvedBy: [nobody]\n"),
    ("    approvedBy: lead@example.co.za\n", "    approvedBy: lead@example.co.za\n    reason2: extra\n"),
    ("    approvedBy: lead@example.co.za\n", "    approvedBy: lead@example.co.za\n    stack: [production]\n"),
])
def test_mistyped_or_unknown_fields_make_an_entry_invalid(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str, expected: str) -> None:
    [problems] = _entries_from(tmp_path, monkeypatch, VALID_ENTRY.format(expires=SOON).replace(change, expected))
    assert problems, "the entry must not be valid"
    if "[nobody]" in expected:
        assert "`approvedBy` must be text" in problems and "a list" in problems
    elif "reason2" in expected:
        assert "unknown key `reason2`" in problems and "approvedBy" in problems
    else:
        assert "`stack` must be one stack name" in problems


@pytest.mark.parametrize("expires", ["2026-13-45", f"{SOON} 10:00:00", "tomorrow", "20261201"])
def test_an_invalid_or_date_time_expiry_is_an_invalid_entry_not_a_crash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expires: str) -> None:
    [problems] = _entries_from(tmp_path, monkeypatch, VALID_ENTRY.format(expires=expires))
    assert "`expires` must be a date (YYYY-MM-DD)" in problems


@pytest.mark.parametrize(("text", "expected"), [
    ("suppressions: [\n", "not valid YAML"),
    ("suppressions: []\nsuppressions: []\n", "`suppressions` is set on line 1 and again on line 2"),
    ("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
     + "".join(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 9))
     + "suppressions: *a8\n", "aliases expand"),
])
def test_an_unsafe_or_broken_suppressions_file_is_one_invalid_entry_naming_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str) -> None:
    [problems] = _entries_from(tmp_path, monkeypatch, text)
    assert problems.startswith("suppressions.yaml: ") and expected in problems


def test_the_pack_reports_an_invalid_expiry_naming_the_file_and_entry(
        project: Project, production: Plan, tmp_path: Path) -> None:
    path = tmp_path / "suppressions.yaml"
    path.write_text(VALID_ENTRY.format(expires="2026-13-45"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SUPPRESSIONS_ENV, str(path))
        pack = PackProcess(REPO / "policies", project.name, "production", load_stack(project, "production").flat)
    with pack:
        result = gate(pack, production, evidence=COMPLETE_EVIDENCE)
    [v] = found(result, "suppressions-valid")
    assert "Suppression #1 in suppressions.yaml" in v.message and "`expires` must be a date" in v.message
