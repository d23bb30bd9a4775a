"""Turnstile at salon scale through the Analyzer gRPC path: widgets within their plan's limits, and
sharded site widgets and several SaaS widgets still covering every hostname with bound secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from booking_shared.project import Project, load_stack
from booking_shared.tokens import VERSION
from bookingctl.gate import PackProcess
from bookingctl.planner import Plan
from tests.helpers import PlanFn
from tests.helpers.policy_helpers import COMPLETE_EVIDENCE, PACK, changed, found, gate

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

LIMITS = "turnstile-widgets-within-plan-limits"
COVERS = "turnstile-covers-all-hostnames"
DOMAIN = "www.instylehairboutique.co.za"
SAAS = {"zoneId": "ef" * 16, "fallbackHostname": "salons.instylebookings.co.za", "zonePlan": "business"}
TENANTS = [{"slug": f"salon-{i}", "hostname": f"www.salon-{i}.co.za", "zoneId": f"{i + 1:032x}",
            "zonePlan": "business"} for i in range(15)]
SIXTEEN = [DOMAIN, *(f"www.salon-{i}.co.za" for i in range(15))]


def pack_for(project: Project, **config: Any) -> PackProcess:
    flat = {**load_stack(project, "production").flat,
            **{f"booking:{k}": json.dumps(v) for k, v in config.items()}}
    return PackProcess(PACK, project.name, "production", flat)


@pytest.fixture(scope="module")
def enterprise_pack(project: Project) -> Iterator[PackProcess]:
    with pack_for(project, turnstile={"plan": "enterprise"}) as pack:
        yield pack


@pytest.fixture(scope="module")
def sharded_pack(project: Project) -> Iterator[PackProcess]:
    with pack_for(project, tenants=TENANTS, saas=SAAS, turnstile={"saasWidgets": 2}) as pack:
        yield pack


@pytest.fixture
def sharded(plan_with: PlanFn) -> Plan:
    return plan_with("production", overrides={"booking:tenants": TENANTS, "booking:saas": SAAS,
                                              "booking:turnstile": {"saasWidgets": 2}})


def run(pack: PackProcess, plan: Plan) -> Any:
    return gate(pack, plan, None, COMPLETE_EVIDENCE)


def test_a_widget_with_sixteen_domains_is_refused_on_the_free_plan(prod_pack: PackProcess, production: Plan) -> None:
    plan = changed(production, "edge-turnstile", ("domains",), SIXTEEN)
    [v] = found(run(prod_pack, plan), LIMITS)
    assert v.level == "mandatory" and v.resource.endswith("::edge-turnstile")
    assert "appointmentbooking production booking form" in v.message and "lists 16 hostnames" in v.message
    assert "at most 15" in v.message and "booking:turnstile.plan" in v.message and "Fix:" in v.message


def test_the_committed_stacks_widgets_are_within_their_plan(prod_pack: PackProcess, production: Plan,
                                                            staging_pack: PackProcess, staging: Plan) -> None:
    assert found(run(prod_pack, production), LIMITS) == []
    assert found(gate(staging_pack, staging), LIMITS) == []


def test_on_turnstile_enterprise_sixteen_domains_pass_and_two_hundred_and_one_do_not(
        enterprise_pack: PackProcess, production: Plan) -> None:
    assert found(run(enterprise_pack, changed(production, "edge-turnstile", ("domains",), SIXTEEN)), LIMITS) == []
    many = [f"www.s{i}.co.za" for i in range(201)]
    [v] = found(run(enterprise_pack, changed(production, "edge-turnstile", ("domains",), many)), LIMITS)
    assert "lists 201 hostnames" in v.message and "at most 200" in v.message and "enterprise" in v.message


@pytest.mark.parametrize(("domains", "said"), [
    (["*.instylehairboutique.co.za"], "wildcard"),
    ([], "no hostname"),
])
def test_a_wildcard_or_no_hostname_is_refused(prod_pack: PackProcess, production: Plan, domains: list[str],
                                              said: str) -> None:
    [v] = found(run(prod_pack, changed(production, "edge-turnstile", ("domains",), domains)), LIMITS)
    assert said in v.message and "edge-turnstile" in v.resource


def test_fifteen_tenants_sharded_over_two_widgets_and_two_saas_widgets_pass_the_turnstile_policies(
        sharded_pack: PackProcess, sharded: Plan) -> None:
    result = run(sharded_pack, sharded)
    assert found(result, LIMITS) == [] and found(result, COVERS) == []


def test_a_sharded_site_widget_whose_secret_is_not_bound_is_a_violation(
        sharded_pack: PackProcess, sharded: Plan) -> None:
    names = [b["name"] for b in sharded.one(VERSION).value("bindings")]
    plan = changed(sharded, "api-version", ("bindings", names.index("TURNSTILE_SECRET_KEY_1"), "type"), "plain_text")
    [v] = found(run(sharded_pack, plan), COVERS)
    assert "'plain_text' TURNSTILE_SECRET_KEY_1 binding" in v.message


def test_a_missing_saas_widget_is_a_violation(sharded_pack: PackProcess, sharded: Plan) -> None:
    plan = changed(sharded, "edge-turnstile-saas-1", ("name",), "something-else")
    [v] = found(run(sharded_pack, plan), COVERS)
    assert "appointmentbooking-api-saas-salons-1" in v.message and "booking:turnstile.saasWidgets" in v.message
