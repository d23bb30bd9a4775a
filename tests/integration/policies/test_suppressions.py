"""Suppressions with a reason: valid ones silence one finding and are listed; bad ones are violations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bookingctl.gate import GateResult, PackProcess
from bookingctl.planner import Plan
from bookingctl.project import Project, load_stack
from policies.common import SUPPRESSIONS_ENV, load_suppressions
from tests.helpers import REPO
from tests.helpers.policy_helpers import COMPLETE_EVIDENCE, changed, found, gate

TODAY = dt.date.today()
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
