"""`booking:rateLimits`: typed, defaulted, and every bad value named with its key and what is allowed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stackconfig.files import parse_config
from stackconfig.model import StackConfig
from stackconfig.problems import ConfigError
from tests.helpers import REPO
from tests.helpers.stack_config import BASE, SECRETS


def parse(limits: Any = None, **changes: str) -> StackConfig:
    flat = dict(BASE)
    if limits is not None:
        flat["booking:rateLimits"] = limits if isinstance(limits, str) else json.dumps(limits)
    flat.update({f"booking:{k}": v for k, v in changes.items()})
    return parse_config(flat, set(SECRETS), stack="production", source="Pulumi.production.yaml", project_root=REPO)


def only_problem(limits: Any) -> tuple[str, str, str]:
    with pytest.raises(ConfigError) as info:
        parse(limits)
    [p] = info.value.problems
    return p.key, p.found, p.allowed


def test_rate_limits_default_to_sane_thresholds_for_every_public_write_endpoint() -> None:
    limits = parse().rate_limits
    assert (limits.login.requests_per_period, limits.login.period, limits.login.mitigation_timeout) == (5, 60, 600)
    assert limits.bookings.requests_per_period == 10 and limits.messages.requests_per_period == 5
    assert limits.payments.requests_per_period == 10
    assert (limits.worker.limit, limits.worker.period, limits.worker.namespace_id) == (20, 60, None)


def test_production_owns_the_zone_ruleset_unless_told_otherwise_and_staging_does_not() -> None:
    assert parse().owns_zone_rulesets
    assert not parse({"zoneRuleset": False}).owns_zone_rulesets


def test_one_endpoint_can_be_tightened_and_keeps_the_others_defaults() -> None:
    limits = parse({"login": {"requestsPerPeriod": 3, "period": 10, "mitigationTimeout": 3600}}).rate_limits
    assert (limits.login.requests_per_period, limits.login.period, limits.login.mitigation_timeout) == (3, 10, 3600)
    assert limits.bookings.requests_per_period == 10


@pytest.mark.parametrize(("limits", "key", "allowed"), [
    ({"login": {"requestsPerPeriod": 0}}, "rateLimits.login.requestsPerPeriod", "greater than or equal to 1"),
    ({"bookings": {"requestsPerPeriod": 5, "period": 30}}, "rateLimits.bookings.period", "60"),
    ({"messages": {"requestsPerPeriod": 5, "mitigationTimeout": 7}}, "rateLimits.messages.mitigationTimeout",
     "86400"),
    ({"worker": {"period": 30}}, "rateLimits.worker.period", "10"),
    ({"worker": {"namespaceId": 0}}, "rateLimits.worker.namespaceId", "greater than or equal to 1"),
    ({"zoneRuleset": "maybe"}, "rateLimits.zoneRuleset", "true or false"),
])
def test_a_bad_threshold_names_its_key_and_what_is_allowed(limits: dict[str, Any], key: str, allowed: str) -> None:
    found_key, _found, found_allowed = only_problem(limits)
    assert found_key == key and allowed in found_allowed, (found_key, found_allowed)


def test_a_misspelt_key_inside_rate_limits_is_answered_with_the_nearest_real_one() -> None:
    key, found, allowed = only_problem({"login": {"requestsPerPeriod": 5, "perod": 60}})
    assert key == "rateLimits.login.perod" and found == "an unknown key"
    assert "did you mean booking:rateLimits.login.period?" in allowed


def test_rate_limits_that_are_not_an_object_are_refused() -> None:
    key, _found, allowed = only_problem("[5, 60]")
    assert key == "rateLimits" and "an object of limits" in allowed
