"""Typed objects in a stack file take their YAML type as written: `true` is not 1 %, `"no"` is not false.

And production refuses canary thresholds that can never roll a bad version back.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stackconfig.files import parse_config
from stackconfig.model import StackConfig
from stackconfig.problems import ConfigError
from tests.helpers import REPO
from tests.helpers.stack_config import BASE, SECRETS


def parse(stack: str = "production", **objects: Any) -> StackConfig:
    flat = dict(BASE)
    if stack == "staging":
        flat.update({"booking:environment": "staging", "booking:domain": "staging.instylehairboutique.co.za",
                     "booking:databaseName": "appointmentbooking-db-staging"})
    flat.update({f"booking:{k}": json.dumps(v) for k, v in objects.items()})
    return parse_config(flat, set(SECRETS), stack=stack, source=f"Pulumi.{stack}.yaml", project_root=REPO)


def only_problem(stack: str = "production", **objects: Any) -> tuple[str, str, str, str]:
    with pytest.raises(ConfigError) as info:
        parse(stack, **objects)
    [p] = info.value.problems
    assert f"Pulumi.{stack}.yaml" in str(info.value)
    return p.key, p.found, p.allowed, str(info.value)


@pytest.mark.parametrize(("objects", "key", "allowed"), [
    ({"rollout": {"canaryPercent": True}}, "rollout.canaryPercent", "a number"),
    ({"rollout": {"bakeMinutes": "10"}}, "rollout.bakeMinutes", "a whole number"),
    ({"rollout": {"bakeMinutes": 10.0}}, "rollout.bakeMinutes", "a whole number"),
    ({"rollout": {"minRequests": False}}, "rollout.minRequests", "a whole number"),
    ({"rollout": {"preDeployExport": "yes"}}, "rollout.preDeployExport", "true or false"),
    ({"rollout": {"preDeployExport": 1}}, "rollout.preDeployExport", "true or false"),
    ({"rateLimits": {"zoneRuleset": "no"}}, "rateLimits.zoneRuleset", "true or false"),
    ({"rateLimits": {"login": {"requestsPerPeriod": "5"}}}, "rateLimits.login.requestsPerPeriod", "a whole number"),
    ({"rateLimits": {"login": {"requestsPerPeriod": True}}}, "rateLimits.login.requestsPerPeriod",
     "a whole number"),
    ({"rateLimits": {"worker": {"limit": 20.0}}}, "rateLimits.worker.limit", "a whole number"),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else str(v))
def test_a_value_of_the_wrong_yaml_type_is_refused_not_converted(objects: dict[str, Any], key: str,
                                                                  allowed: str) -> None:
    found_key, _, found_allowed, message = only_problem(**objects)
    assert (found_key, found_allowed) == (key, allowed)
    assert f"booking:{key}" in message


def test_values_of_the_right_yaml_type_still_parse() -> None:
    cfg = parse(rollout={"canaryPercent": 5, "bakeMinutes": 15, "preDeployExport": True},
                rateLimits={"zoneRuleset": False, "login": {"requestsPerPeriod": 3}})
    assert (cfg.rollout.canary_percent, cfg.rollout.bake_minutes, cfg.rollout.pre_deploy_export) == (5.0, 15, True)
    assert cfg.rate_limits.zone_ruleset is False and cfg.rate_limits.login.requests_per_period == 3


@pytest.mark.parametrize(("rollout", "key", "bound"), [
    ({"errorRatePercent": 100}, "rollout.errorRatePercent", "at most 25 in production"),
    ({"latencySeconds": 60}, "rollout.latencySeconds", "at most 10 in production"),
    ({"minRequests": 1_000_000}, "rollout.minRequests", "at most 10000 in production"),
])
def test_production_refuses_canary_thresholds_that_can_never_roll_back(rollout: dict[str, Any], key: str,
                                                                        bound: str) -> None:
    found_key, _, allowed, _ = only_problem(rollout=rollout)
    assert found_key == key and bound in allowed
    parse("staging", rollout=rollout)  # staging may try anything


def test_production_may_loosen_the_thresholds_up_to_its_bounds() -> None:
    cfg = parse(rollout={"errorRatePercent": 25, "latencySeconds": 10, "minRequests": 10_000})
    assert (cfg.rollout.error_rate_percent, cfg.rollout.latency_seconds, cfg.rollout.min_requests) == (25, 10, 10_000)


def test_a_stack_may_not_share_the_other_environments_default_rate_limit_namespace() -> None:
    key, found, allowed, _ = only_problem(rateLimits={"worker": {"namespaceId": 1002}})
    assert key == "rateLimits.worker.namespaceId" and found == "1002" and "staging" in allowed
    with pytest.raises(ConfigError, match=r"rateLimits\.worker\.namespaceId"):
        parse("staging", rateLimits={"worker": {"namespaceId": 1001}})
    assert parse(rateLimits={"worker": {"namespaceId": 1001}}).rate_limits.worker.namespace_id == 1001
