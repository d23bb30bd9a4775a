"""The edge policies through the Analyzer gRPC path: each with a compliant and a failing stack.

The compliant stacks are the real plans; each failing case changes one thing in them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from booking_shared.project import Project, load_stack
from booking_shared.tokens import BOT_MANAGEMENT, RULESET, TURNSTILE
from bookingctl.gate import PackProcess
from bookingctl.planner import Plan, PlannedResource
from tests.helpers import PlanFn
from tests.helpers.policy_helpers import COMPLETE_EVIDENCE, PACK, changed, found, gate, not_applicable, without

RATE_LIMITED = "public-write-endpoints-rate-limited"
TURNSTILE_COVERS = "turnstile-covers-all-hostnames"
WEBHOOK = "payment-webhook-not-challenged"
FITS_PLAN = "rate-limit-rules-fit-zone-plan"
TENANTS = [{"slug": "glamour", "hostname": "book.glamoursalon.co.za", "zoneId": "ab" * 16, "zonePlan": "business"}]
RULESET_NAME = "edge-ratelimit-main"




@pytest.fixture(scope="module")
def tenant_pack(project: Project) -> Iterator[PackProcess]:
    """Production's pack with a tenant in booking:tenants, as the engine would pass it."""
    flat = {**load_stack(project, "production").flat, "booking:tenants": json.dumps(TENANTS)}
    with PackProcess(PACK, project.name, "production", flat) as pack:
        yield pack


@pytest.fixture
def with_tenant(plan_with: PlanFn) -> Plan:
    return plan_with("production", overrides={"booking:tenants": TENANTS})


def prod(pack: PackProcess, plan: Plan) -> Any:
    return gate(pack, plan, None, COMPLETE_EVIDENCE)


def rule_index(plan: Plan, ref: str) -> int:
    [ruleset] = [r for r in plan.resources if r.name == RULESET_NAME]
    return [rule["ref"] for rule in ruleset.value("rules")].index(ref)


# --- public-write-endpoints-rate-limited --------------------------------------------------------

def test_production_with_its_rulesets_rate_limits_every_public_write_endpoint(
        prod_pack: PackProcess, production: Plan) -> None:
    assert found(prod(prod_pack, production), RATE_LIMITED) == []


def test_production_without_rate_limiting_rules_is_a_mandatory_violation_per_endpoint(
        prod_pack: PackProcess, production: Plan) -> None:
    violations = found(prod(prod_pack, without(production, RULESET)), RATE_LIMITED)
    assert {v.level for v in violations} == {"mandatory"}
    assert sorted(v.message.split(" (")[0] for v in violations) == [
        "POST /api/auth/login", "POST /api/bookings", "POST /api/messages", "POST /api/payments/initialize"]


def test_a_disabled_booking_rule_leaves_booking_creation_unprotected(prod_pack: PackProcess, production: Plan) -> None:
    index = rule_index(production, "booking_bookings_rate_limit")
    plan = changed(production, RULESET_NAME, ("rules", index, "enabled"), False)
    [v] = found(prod(prod_pack, plan), RATE_LIMITED)
    assert "POST /api/bookings" in v.message and "www.instylehairboutique.co.za" in v.message


def test_a_rule_that_only_logs_does_not_count_as_a_limit(prod_pack: PackProcess, production: Plan) -> None:
    index = rule_index(production, "booking_login_rate_limit")
    [v] = found(prod(prod_pack, changed(production, RULESET_NAME, ("rules", index, "action"), "log")), RATE_LIMITED)
    assert "/api/auth/login" in v.message


def test_a_tenant_hostname_missing_from_the_rules_is_a_violation(tenant_pack: PackProcess, with_tenant: Plan) -> None:
    assert found(prod(tenant_pack, with_tenant), RATE_LIMITED) == []
    plan = dataclasses.replace(with_tenant, resources=[r for r in with_tenant.resources
                                                       if r.name != "edge-ratelimit-tenant-glamour"])
    violations = found(prod(tenant_pack, plan), RATE_LIMITED)
    assert len(violations) == 4 and all("book.glamoursalon.co.za" in v.message for v in violations)
    assert all("www.instylehairboutique.co.za" not in v.message.split("\n")[0] for v in violations)


def test_staging_leaves_the_shared_zones_entry_point_to_production(staging_pack: PackProcess, staging: Plan) -> None:
    result = gate(staging_pack, staging)
    assert found(result, RATE_LIMITED) == []
    assert any("zoneRuleset is off" in reason for reason in not_applicable(result, RATE_LIMITED))


# --- rate-limit-rules-fit-zone-plan --------------------------------------------------------------

@pytest.fixture(scope="module")
def pro_pack(project: Project) -> Iterator[PackProcess]:
    """Production's pack with booking:zonePlan pro: the committed rules no longer fit the zone."""
    flat = {**load_stack(project, "production").flat, "booking:zonePlan": "pro"}
    with PackProcess(PACK, project.name, "production", flat) as pack:
        yield pack


def test_the_committed_production_rules_fit_its_business_zone(prod_pack: PackProcess, production: Plan) -> None:
    assert found(prod(prod_pack, production), FITS_PLAN) == []


def test_four_rules_on_a_pro_zone_are_a_mandatory_violation_naming_the_two_rule_limit(
        pro_pack: PackProcess, production: Plan) -> None:
    violations = found(prod(pro_pack, production), FITS_PLAN)
    assert {v.level for v in violations} == {"mandatory"}
    [count] = [v for v in violations if "rules" in v.message.split("\n")[0] and "at most 2" in v.message]
    assert "1a2b3c4d5e6f708192a3b4c5d6e7f809" in count.message and "booking:zonePlan" in count.message
    methods = [v for v in violations if "http.request.method" in v.message]
    assert len(methods) == 4 and all("on Pro" in v.message for v in methods)


def test_throttling_with_block_on_business_is_a_violation_naming_the_rule(
        prod_pack: PackProcess, production: Plan) -> None:
    index = rule_index(production, "booking_login_rate_limit")
    plan = changed(production, RULESET_NAME, ("rules", index, "ratelimit", "mitigationTimeout"), 0)
    [v] = found(prod(prod_pack, plan), FITS_PLAN)
    assert "booking_login_rate_limit" in v.message and "Enterprise only" in v.message
    assert "booking:rateLimits.login.mitigationTimeout" in v.message


@pytest.mark.parametrize("period", ["sixty", 60.5, "60"])
def test_a_period_that_is_no_integer_is_a_violation_not_a_crash_or_a_rounded_pass(
        prod_pack: PackProcess, production: Plan, period: object) -> None:
    index = rule_index(production, "booking_login_rate_limit")
    plan = changed(production, RULESET_NAME, ("rules", index, "ratelimit", "period"), period)
    [v] = found(prod(prod_pack, plan), FITS_PLAN)
    assert "booking_login_rate_limit" in v.message and "period" in v.message


def test_staging_declares_no_entry_point_so_its_plan_is_not_at_stake(staging_pack: PackProcess, staging: Plan) -> None:
    assert not_applicable(gate(staging_pack, staging), FITS_PLAN)


# --- turnstile-covers-all-hostnames ---------------------------------------------------------------

def test_the_widget_covers_the_domain_and_the_tenant(tenant_pack: PackProcess, with_tenant: Plan) -> None:
    assert found(prod(tenant_pack, with_tenant), TURNSTILE_COVERS) == []


def test_a_tenant_hostname_the_widget_does_not_allow_is_a_violation(
        tenant_pack: PackProcess, with_tenant: Plan) -> None:
    plan = changed(with_tenant, "edge-turnstile", ("domains",), ["www.instylehairboutique.co.za"])
    [v] = found(prod(tenant_pack, plan), TURNSTILE_COVERS)
    assert "No Turnstile widget allows book.glamoursalon.co.za" in v.message and v.level == "mandatory"


def test_a_parent_domain_in_the_widget_covers_its_subdomains(tenant_pack: PackProcess, with_tenant: Plan) -> None:
    plan = changed(with_tenant, "edge-turnstile", ("domains",), ["instylehairboutique.co.za", "glamoursalon.co.za"])
    assert found(prod(tenant_pack, plan), TURNSTILE_COVERS) == []


def test_a_stack_without_a_widget_is_a_violation(prod_pack: PackProcess, production: Plan) -> None:
    [v] = found(prod(prod_pack, without(production, TURNSTILE)), TURNSTILE_COVERS)
    assert "no Turnstile widget" in v.message


def test_the_widget_secret_bound_as_plain_text_is_a_violation(prod_pack: PackProcess, production: Plan) -> None:
    names = [b["name"] for b in production.one("cloudflare:index/workerVersion:WorkerVersion").value("bindings")]
    plan = changed(production, "api-version", ("bindings", names.index("TURNSTILE_SECRET_KEY"), "type"), "plain_text")
    [v] = found(prod(prod_pack, plan), TURNSTILE_COVERS)
    assert "'plain_text' TURNSTILE_SECRET_KEY binding" in v.message


# --- payment-webhook-not-challenged -----------------------------------------------------------

def test_exact_path_rules_leave_the_webhook_alone(prod_pack: PackProcess, production: Plan) -> None:
    assert found(prod(prod_pack, production), WEBHOOK) == []


def test_a_rule_that_may_reach_the_webhook_is_a_violation(prod_pack: PackProcess, production: Plan) -> None:
    # One rewrite of the rule: which expressions may reach the webhook (prefixes, wildcards, host-only
    # rules, `in` sets, and a prefix that excludes it) is may_reach's table in
    # tests/unit/policies/test_edge_expressions.py.
    index = rule_index(production, "booking_payments_rate_limit")
    expression = '(http.request.uri.path wildcard "/api/*")'
    plan = changed(production, RULESET_NAME, ("rules", index, "expression"), expression)
    [v] = found(prod(prod_pack, plan), WEBHOOK)
    assert "booking_payments_rate_limit" in v.message and "/api/payments/webhook" in v.message
    assert v.level == "mandatory"


def test_bot_fight_mode_is_a_violation(prod_pack: PackProcess, production: Plan) -> None:
    zone = production.resources[0]
    bots = PlannedResource(type=BOT_MANAGEMENT, name="bots", urn=zone.urn.rsplit("::", 1)[0] + "::bots",
                           parent=None, custom=True, protect=False, retain_on_delete=False,
                           inputs={"fightMode": True}, dependencies=(),
                           raw_inputs={"zoneId": "1a2b3c4d5e6f708192a3b4c5d6e7f809", "fightMode": True},
                           raw_outputs={"zoneId": "1a2b3c4d5e6f708192a3b4c5d6e7f809", "fightMode": True,
                                        "id": "bots-id"})
    [v] = found(prod(prod_pack, dataclasses.replace(production, resources=[*production.resources, bots])), WEBHOOK)
    assert "Bot Fight Mode is on" in v.message and v.resource.endswith("::bots")


def test_the_webhook_policy_does_not_apply_without_rulesets(staging_pack: PackProcess, staging: Plan) -> None:
    assert not_applicable(gate(staging_pack, staging), WEBHOOK)


@pytest.mark.parametrize("expression", [
    '(http.request.method eq "POST" and http.request.uri.path ne "/api/bookings")',
    '(http.request.method eq "POST" and not http.request.uri.path in {"/api/bookings"})',
    '(http.request.method eq "GET" and http.request.uri.path eq "/api/bookings")',
])
def test_a_rule_that_leaves_out_booking_creation_does_not_count_as_its_limit(
        prod_pack: PackProcess, production: Plan, expression: str) -> None:
    index = rule_index(production, "booking_bookings_rate_limit")
    plan = changed(production, RULESET_NAME, ("rules", index, "expression"), expression)
    violations = found(prod(prod_pack, plan), RATE_LIMITED)
    assert [v.message.split(" (")[0] for v in violations] == ["POST /api/bookings"]
