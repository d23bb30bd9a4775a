"""The routing and isolation policies on the Cloudflare for SaaS path (`booking:saas`), over gRPC."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from booking_shared.project import Project, load_stack
from booking_shared.tokens import VERSION
from bookingctl.gate import PackProcess
from bookingctl.planner import Plan
from tests.helpers import PlanFn
from tests.helpers.policy_helpers import COMPLETE_EVIDENCE, PACK, changed, found, gate

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

ROUTES, PROXIED, HOSTNAMES = "worker-routes-on-own-hostnames", "dns-records-proxied", "environment-hostname-isolation"
PROD_ZONE = "1a2b3c4d5e6f708192a3b4c5d6e7f809"  # the committed stacks' zone (production's domain)
PROD_SAAS = {"zoneId": "ef" * 16, "fallbackHostname": "salons.instylebookings.co.za", "zonePlan": "business"}


def pack_with(project: Project, stack: str, saas: dict[str, str] | None) -> PackProcess:
    flat = dict(load_stack(project, stack).flat)
    if saas is not None:
        flat["booking:saas"] = json.dumps(saas)
    return PackProcess(PACK, project.name, stack, flat)


@pytest.fixture(scope="module")
def saas_pack(project: Project) -> Iterator[PackProcess]:
    with pack_with(project, "production", PROD_SAAS) as pack:
        yield pack


@pytest.fixture
def saas_production(plan_with: PlanFn) -> Plan:
    return plan_with("production", overrides={"booking:saas": PROD_SAAS})


def test_production_on_the_saas_path_passes_every_policy(saas_pack: PackProcess, saas_production: Plan) -> None:
    result = gate(saas_pack, saas_production, evidence=COMPLETE_EVIDENCE)
    assert result.violations == [], [v.to_dict() for v in result.violations]


def test_catch_all_route_on_another_zone_than_the_saas_zone_is_a_violation(
        saas_pack: PackProcess, saas_production: Plan) -> None:
    plan = changed(saas_production, "saas-route", ("zoneId",), PROD_ZONE)
    [v] = found(gate(saas_pack, plan, evidence=COMPLETE_EVIDENCE), ROUTES)
    assert v.level == "mandatory" and v.resource.endswith("::saas-route")
    assert PROD_ZONE in v.message and "booking:saas.zoneId" in v.message and "Fix:" in v.message


def test_catch_all_route_without_booking_saas_is_a_violation(project: Project, saas_production: Plan) -> None:
    with pack_with(project, "production", None) as pack:
        violations = found(gate(pack, saas_production, evidence=COMPLETE_EVIDENCE), ROUTES)
    assert [v.resource.rsplit("::", 1)[-1] for v in violations] == ["saas-route"]
    assert "booking:saas is not set" in violations[0].message


def test_unproxied_fallback_record_violates_both_routing_policies(
        saas_pack: PackProcess, saas_production: Plan) -> None:
    plan = changed(saas_production, "saas-fallback-dns", ("proxied",), False)
    result = gate(saas_pack, plan, evidence=COMPLETE_EVIDENCE)
    [dns] = found(result, PROXIED)
    [route] = found(result, ROUTES)
    assert dns.resource.endswith("::saas-fallback-dns")
    assert "salons.instylebookings.co.za is not proxied" in route.message and route.resource.endswith("::saas-route")


def test_staging_catch_all_route_on_productions_zone_is_a_critical_isolation_violation(
        project: Project, plan_with: PlanFn) -> None:
    staging_saas = {"zoneId": PROD_ZONE, "fallbackHostname": "salons-staging.instylebookings.co.za"}
    plan = plan_with("staging", overrides={"booking:saas": staging_saas})
    with pack_with(project, "staging", staging_saas) as pack:
        result = gate(pack, plan)
    [v] = found(result, HOSTNAMES)
    assert v.level == "mandatory" and v.severity == "critical" and not result.passed
    assert v.resource.endswith("::saas-route")
    assert "Pulumi.production.yaml (production) uses as booking:zoneId" in v.message


def test_staging_fallback_origin_on_productions_domain_is_an_isolation_violation(
        project: Project, plan_with: PlanFn) -> None:
    staging_saas = {"zoneId": "cd" * 16, "fallbackHostname": "salons-staging.instylebookings.co.za"}
    plan = changed(plan_with("staging", overrides={"booking:saas": staging_saas}), "saas-fallback-origin",
                   ("origin",), "www.instylehairboutique.co.za")
    with pack_with(project, "staging", staging_saas) as pack:
        [v] = found(gate(pack, plan), HOSTNAMES)
    assert v.resource.endswith("::saas-fallback-origin") and "www.instylehairboutique.co.za" in v.message


def test_staging_with_a_saas_zone_of_its_own_passes_isolation(project: Project, plan_with: PlanFn) -> None:
    staging_saas = {"zoneId": "cd" * 16, "fallbackHostname": "salons-staging.instylebookings.co.za"}
    plan = plan_with("staging", overrides={"booking:saas": staging_saas})
    with pack_with(project, "staging", staging_saas) as pack:
        result = gate(pack, plan)
    assert not found(result, HOSTNAMES) and not found(result, ROUTES)
    assert result.passed


# --- turnstile-covers-all-hostnames on the SaaS path -------------------------------------------

TURNSTILE_COVERS = "turnstile-covers-all-hostnames"


def test_the_saas_widget_and_its_secret_binding_pass(saas_pack: PackProcess, saas_production: Plan) -> None:
    assert found(gate(saas_pack, saas_production, evidence=COMPLETE_EVIDENCE), TURNSTILE_COVERS) == []


def test_booking_saas_without_the_saas_widget_is_a_violation(saas_pack: PackProcess, saas_production: Plan) -> None:
    plan = dataclasses.replace(saas_production,
                               resources=[r for r in saas_production.resources if r.name != "edge-turnstile-saas"])
    [v] = found(gate(saas_pack, plan, evidence=COMPLETE_EVIDENCE), TURNSTILE_COVERS)
    assert v.level == "mandatory" and "appointmentbooking-api-saas-salons" in v.message


def test_a_renamed_saas_widget_is_a_violation(saas_pack: PackProcess, saas_production: Plan) -> None:
    plan = changed(saas_production, "edge-turnstile-saas", ("name",), "salons")
    [v] = found(gate(saas_pack, plan, evidence=COMPLETE_EVIDENCE), TURNSTILE_COVERS)
    assert "no Turnstile widget named appointmentbooking-api-saas-salons" in v.message


def test_the_saas_widgets_secret_bound_as_plain_text_is_a_violation(
        saas_pack: PackProcess, saas_production: Plan) -> None:
    names = [b["name"] for b in saas_production.one(VERSION).value("bindings")]
    plan = changed(saas_production, "api-version", ("bindings", names.index("TURNSTILE_SAAS_SECRET_KEY"), "type"),
                   "plain_text")
    [v] = found(gate(saas_pack, plan, evidence=COMPLETE_EVIDENCE), TURNSTILE_COVERS)
    assert "'plain_text' TURNSTILE_SAAS_SECRET_KEY binding" in v.message


def test_without_booking_saas_the_saas_binding_is_not_required(prod_pack: PackProcess, production: Plan) -> None:
    assert found(gate(prod_pack, production, evidence=COMPLETE_EVIDENCE), TURNSTILE_COVERS) == []
