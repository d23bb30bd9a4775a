"""Each zone's plan (`booking:zonePlan`, `tenants[].zonePlan`, `saas.zonePlan`) and what it can hold:
the rate limiting rules the program writes there, and the health check. A rule or check the plan
cannot hold is a config problem naming the zone, the rule, the value, the plan's limit and the fix."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from booking_shared.limits import (
    RATE_LIMIT_API_MITIGATION_TIMEOUTS,
    RATE_LIMIT_API_PERIODS,
    RateLimitRule,
    rate_limit_problems,
)
from booking_shared.project import find_project, load_stack
from stackconfig.files import parse_config
from stackconfig.model import StackConfig
from stackconfig.problems import ConfigError, ConfigProblem
from stackconfig.sections import RULE_PERIODS, RULE_TIMEOUTS
from tests.helpers import REPO
from tests.helpers.stack_config import BASE, SECRETS

MAIN = BASE["booking:zoneId"]
SALON_ZONE = "ab" * 16
RULESET_ID = "3b1354cbe4a34d9296939969e23fcb7c"


def parse(**changes: Any) -> StackConfig:
    """BASE (production, Business) with `changes` (booking: keys without the namespace; None removes one)."""
    flat = dict(BASE)
    for key, value in changes.items():
        if value is None:
            flat.pop(f"booking:{key}", None)
        else:
            flat[f"booking:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return parse_config(flat, set(SECRETS), stack="production", source="Pulumi.production.yaml", project_root=REPO)


def problems(**changes: Any) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        parse(**changes)
    return info.value.problems


def keyed(found: list[ConfigProblem], key: str) -> list[ConfigProblem]:
    return [p for p in found if p.key == key]


def test_a_pro_zone_with_the_four_rules_is_refused_naming_its_two_rule_limit() -> None:
    [p, fields] = keyed(problems(zonePlan="pro"), "zonePlan")
    assert "http.request.method (Method)" in fields.found
    assert "pro" in p.found and MAIN in p.found and "4 rate limiting rules" in p.found
    assert "at most 2 on Pro" in p.allowed
    assert p.fix is not None and "Business" in p.fix and "booking:zonePlan" in p.fix


def test_a_method_term_on_a_free_salon_zone_is_refused_naming_the_field_and_the_tenant() -> None:
    tenant = {"slug": "glamour", "hostname": "book.glamoursalon.co.za", "zoneId": SALON_ZONE, "zonePlan": "free"}
    found = keyed(problems(tenants=[tenant]), "tenants[0].zonePlan")
    [fields] = [p for p in found if "http.request.method" in p.found]
    assert "Method" in fields.found and "tenant glamour" in fields.found and SALON_ZONE in fields.found
    assert "only Path, Verified Bot" in fields.allowed and "on Free" in fields.allowed
    assert fields.fix is not None and "booking:saas" in fields.fix


def test_a_mitigation_timeout_of_zero_on_business_is_refused_as_enterprise_only_throttling() -> None:
    [p] = problems(rateLimits={"login": {"requestsPerPeriod": 5, "mitigationTimeout": 0}})
    assert p.key == "rateLimits.login.mitigationTimeout"
    assert "0 s (throttling)" in p.found and MAIN in p.found
    assert "Enterprise only" in p.allowed and "on Business" in p.allowed


def test_an_enterprise_zone_may_throttle_with_block() -> None:
    cfg = parse(zonePlan="enterprise", rateLimits={"login": {"requestsPerPeriod": 5, "mitigationTimeout": 0}})
    assert cfg.rate_limits.login.mitigation_timeout == 0


def test_a_600_second_period_on_pro_is_refused_naming_the_plans_periods() -> None:
    [p] = keyed(problems(zonePlan="pro", rateLimits={"bookings": {"requestsPerPeriod": 10, "period": 600}}),
                "rateLimits.bookings.period")
    assert "600 s" in p.found and "pro" in p.found.lower()
    assert p.allowed == "one of 10, 60 s on Pro"
    assert p.fix is not None and "booking:rateLimits.bookings.period" in p.fix


def test_an_unset_zone_plan_is_free_the_strictest_so_a_forgotten_key_can_only_refuse() -> None:
    found = problems(zonePlan=None)
    assert [p.key for p in found][:3] == ["healthCheck", "zonePlan", "zonePlan"]
    # Every default period (60 s) and timeout (600 s) is over Free's 10 s, each reported with its key.
    assert {p.key for p in found[3:]} == {f"rateLimits.{e}.{f}" for e in ("login", "bookings", "messages", "payments")
                                          for f in ("period", "mitigationTimeout")}
    assert all("free" in p.found.lower() for p in found)


def test_a_health_check_on_a_free_zone_names_both_keys() -> None:
    [p] = problems(zonePlan="free", rateLimits={"zoneRuleset": False})
    assert p.key == "healthCheck" and "booking:zonePlan" in p.found and "free" in p.found
    assert "Pro or above" in p.allowed
    assert p.fix is not None and 'booking:healthCheck "false"' in p.fix


def test_a_stack_that_does_not_declare_the_entry_point_is_not_held_to_its_rule_limits() -> None:
    cfg = parse(zonePlan="pro", rateLimits={"zoneRuleset": False})
    assert cfg.zone_plan == "pro"


def test_a_zones_plan_stated_once_holds_for_every_tenant_in_that_zone() -> None:
    tenants = [{"slug": "a", "hostname": "a.glamoursalon.co.za", "zoneId": SALON_ZONE, "zonePlan": "business"},
               {"slug": "b", "hostname": "b.glamoursalon.co.za", "zoneId": SALON_ZONE},
               {"slug": "c", "hostname": "c.instylehairboutique.co.za", "zoneId": MAIN}]
    cfg = parse(tenants=tenants)
    assert {z.zone_id: z.plan for z in cfg.zones} == {MAIN: "business", SALON_ZONE: "business"}


def test_two_plans_stated_for_one_zone_are_refused() -> None:
    tenants = [{"slug": "a", "hostname": "a.instylehairboutique.co.za", "zoneId": MAIN, "zonePlan": "pro"}]
    [p] = problems(tenants=tenants)
    assert p.key == "tenants[0].zonePlan" and "pro" in p.found
    assert "business" in p.allowed and "booking:zonePlan" in p.allowed


def test_an_existing_entry_point_is_named_by_its_zone_id() -> None:
    cfg = parse(rateLimits={"existingRulesetIds": {MAIN: RULESET_ID}})
    assert cfg.rate_limits.existing_ruleset_ids == {MAIN: RULESET_ID}


def test_an_existing_entry_point_for_a_zone_the_stack_does_not_declare_is_refused() -> None:
    [p] = problems(rateLimits={"existingRulesetIds": {SALON_ZONE: RULESET_ID}})
    assert p.key == f"rateLimits.existingRulesetIds.{SALON_ZONE}"
    assert MAIN in p.allowed


def test_an_existing_entry_point_id_that_is_not_a_ruleset_id_is_refused() -> None:
    [p] = problems(rateLimits={"existingRulesetIds": {MAIN: "default"}})
    assert p.key.startswith("rateLimits.existingRulesetIds") and "32-character" in p.allowed


def test_an_existing_transform_entry_point_is_checked_like_the_rate_limiting_one() -> None:
    cfg = parse(rateLimits={"existingTransformRulesetIds": {MAIN: RULESET_ID}})
    assert cfg.rate_limits.existing_transform_ruleset_ids == {MAIN: RULESET_ID}
    [p] = problems(rateLimits={"existingTransformRulesetIds": {SALON_ZONE: RULESET_ID}})
    assert p.key == f"rateLimits.existingTransformRulesetIds.{SALON_ZONE}"
    assert "http_request_late_transform" in p.allowed and MAIN in p.allowed
    [p] = problems(rateLimits={"existingTransformRulesetIds": {MAIN: MAIN}})
    assert "a zone id of this stack, not a ruleset id" in p.found


@pytest.mark.parametrize("stack", ["production", "staging"])
def test_the_committed_stacks_state_their_zone_plan_and_pass(stack: str) -> None:
    settings = load_stack(find_project(REPO), stack)
    assert "booking:zonePlan" in settings.flat, f"Pulumi.{stack}.yaml must state booking:zonePlan"
    cfg = parse_config(settings.flat, settings.secret_keys, stack=stack, source=settings.source, project_root=REPO)
    assert cfg.zone_plan == "business"


def test_the_periods_and_timeouts_config_accepts_are_the_apis_values() -> None:
    assert get_args(RULE_PERIODS) == RATE_LIMIT_API_PERIODS
    assert get_args(RULE_TIMEOUTS) == RATE_LIMIT_API_MITIGATION_TIMEOUTS


def test_a_field_name_inside_a_string_is_not_a_field_the_rule_reads() -> None:
    expression = 'http.host eq "http.request.method.example.co.za" and http.request.uri.path eq "/api/auth/login"'
    rule = RateLimitRule("login", expression, "block", 10, 10, ("cf.colo.id", "ip.src"))
    assert rate_limit_problems("pro", [rule]) == []
    assert [p.found for p in rate_limit_problems("free", [rule])] == ["http.host (Host)"]


def test_one_ruleset_id_given_for_two_zones_is_refused_a_ruleset_belongs_to_one_zone() -> None:
    tenant = {"slug": "glamour", "hostname": "book.glamoursalon.co.za", "zoneId": SALON_ZONE, "zonePlan": "business"}
    found = problems(tenants=[tenant], rateLimits={"existingRulesetIds": {MAIN: RULESET_ID, SALON_ZONE: RULESET_ID}})
    [p] = [p for p in found if p.key.startswith("rateLimits.existingRulesetIds")]
    assert p.key == f"rateLimits.existingRulesetIds.{SALON_ZONE}" and RULESET_ID in p.found and MAIN in p.allowed


def test_a_zone_id_given_as_the_zones_own_ruleset_id_is_refused() -> None:
    [p] = problems(rateLimits={"existingRulesetIds": {MAIN: MAIN}})
    assert p.key == f"rateLimits.existingRulesetIds.{MAIN}" and "zone id" in p.found
