"""The Cloudflare for SaaS path: three resources on the SaaS zone, however many salons there are."""

from __future__ import annotations

import json

from booking_shared.edge import SITE_HOSTNAMES_BINDING, TURNSTILE_SAAS_SECRET_BINDING, TURNSTILE_SECRET_BINDING
from booking_shared.naming import PAGES_ORIGIN_VAR
from booking_shared.tokens import DEPLOYMENT, DNS, FALLBACK_ORIGIN, PAGES, PAGES_DOMAIN, ROUTE, TURNSTILE, VERSION
from bookingctl.planner import Plan
from tests.helpers import PlanFn

SAAS_ZONE = "ef" * 16
SAAS = {"zoneId": SAAS_ZONE, "fallbackHostname": "salons.instylebookings.co.za", "zonePlan": "business"}


def saas_plan(plan_with: PlanFn) -> Plan:
    return plan_with("production", overrides={"booking:saas": SAAS})


def test_saas_zone_gets_a_proxied_originless_fallback_record(plan_with: PlanFn) -> None:
    plan = saas_plan(plan_with)
    [record] = [r for r in plan.of_type(DNS) if r.value("zoneId") == SAAS_ZONE]
    assert (record.value("name"), record.value("type"), record.value("content")) == (
        "salons.instylebookings.co.za", "AAAA", "100::")
    assert record.value("proxied") is True and record.value("ttl") == 1


def test_fallback_origin_names_the_fallback_record_and_waits_for_it(plan_with: PlanFn) -> None:
    plan = saas_plan(plan_with)
    origin = plan.one(FALLBACK_ORIGIN)
    assert (origin.value("zoneId"), origin.value("origin")) == (SAAS_ZONE, "salons.instylebookings.co.za")
    record = next(r for r in plan.of_type(DNS) if r.value("zoneId") == SAAS_ZONE)
    assert record.urn in origin.dependencies, "Cloudflare activates a fallback origin only once its record exists"
    assert plan.outputs["saasFallbackHostname"] == "salons.instylebookings.co.za"


def test_catch_all_route_on_the_saas_zone_serves_the_api_worker_after_its_deployment(plan_with: PlanFn) -> None:
    plan = saas_plan(plan_with)
    routes = {r.value("pattern"): r for r in plan.of_type(ROUTE)}
    assert set(routes) == {"www.instylehairboutique.co.za/*", "*/*"}  # the domain's own route stays
    catch_all = routes["*/*"]
    assert (catch_all.value("zoneId"), catch_all.value("script")) == (SAAS_ZONE, "appointmentbooking-api")
    deployment = plan.one(DEPLOYMENT)
    assert deployment.urn in catch_all.dependencies, "the route would serve a Worker with no deployment"
    assert plan.registered.index(catch_all.urn) > plan.registered.index(deployment.urn)


def test_saas_path_is_one_component_of_three_resources(plan_with: PlanFn, production: Plan) -> None:
    plan = saas_plan(plan_with)
    [component] = [r for r in plan.resources if r.type == "booking:saas:SaasZone"]
    children = {r.type for r in plan.resources if r.parent == component.urn}
    assert children == {DNS, FALLBACK_ORIGIN, ROUTE}
    # The component and its three children, plus the SaaS zone's own rate-limiting and request header
    # transform (version affinity) rulesets and the SaaS salons' Turnstile widget (edge).
    assert len(plan.resources) == len(production.resources) + 7
    rulesets = [r for r in plan.resources if r.type == "cloudflare:index/ruleset:Ruleset"]
    assert SAAS_ZONE in {r.value("zoneId") for r in rulesets}
    assert not any(r.value("name") == SAAS["fallbackHostname"] for r in plan.of_type(PAGES_DOMAIN))


def test_without_booking_saas_nothing_of_the_saas_path_is_declared(production: Plan) -> None:
    assert not production.of_type(FALLBACK_ORIGIN)
    assert "*/*" not in {r.value("pattern") for r in production.of_type(ROUTE)}
    assert production.outputs["saasFallbackHostname"] is None


def test_on_the_saas_path_the_worker_serves_salon_pages_from_the_pages_project(plan_with: PlanFn,
                                                                            production: Plan) -> None:
    """The fallback record's origin (100::) never answers, so a salon's page must come from Pages."""
    plan = saas_plan(plan_with)
    bindings = {b["name"]: b for b in plan.one(VERSION).value("bindings")}
    assert bindings[PAGES_ORIGIN_VAR]["type"] == "plain_text"
    assert plan.one(PAGES).urn in plan.one(VERSION).dependencies
    plain = {b["name"] for b in production.one(VERSION).value("bindings")}
    assert PAGES_ORIGIN_VAR not in plain, "a stack without booking:saas keeps its own origin"


TENANTS = [{"slug": "glamour", "hostname": "book.glamoursalon.co.za", "zoneId": "ab" * 16, "zonePlan": "business"}]


def test_saas_salons_get_a_second_turnstile_widget_whose_domains_are_data(plan_with: PlanFn) -> None:
    plan = saas_plan(plan_with)
    widgets = {r.name: r for r in plan.of_type(TURNSTILE)}
    assert set(widgets) == {"edge-turnstile", "edge-turnstile-saas"}
    saas = widgets["edge-turnstile-saas"]
    # Named after the Worker, so `bookingctl tenants` finds it; its domains are what the live widget
    # lists (`bookingctl tenants` puts the salons there), offline none: the fallback hostname, which
    # a widget needs. No ignore_changes: the engine would then send the state's domains.
    assert saas.value("name") == "appointmentbooking-api-saas-salons"
    assert saas.value("domains") == [SAAS["fallbackHostname"]]
    assert saas.value("mode") == "managed"
    assert saas.ignore_changes == () and "ignoreChanges" not in saas.to_dict()
    assert widgets["edge-turnstile"].ignore_changes == ()
    assert widgets["edge-turnstile"].value("domains") == ["www.instylehairboutique.co.za"]


def test_the_worker_gets_the_saas_widgets_secret_and_the_main_widgets_hostnames(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:saas": SAAS, "booking:tenants": TENANTS})
    bindings = {b["name"]: b for b in plan.one(VERSION).value("bindings")}
    assert bindings[TURNSTILE_SAAS_SECRET_BINDING] == {"type": "secret_text", "name": TURNSTILE_SAAS_SECRET_BINDING,
                                                       "text": "0x4AAAAAAAplannedSecretNotReal"}
    assert bindings[TURNSTILE_SECRET_BINDING]["type"] == "secret_text"
    site = bindings[SITE_HOSTNAMES_BINDING]
    assert site["type"] == "plain_text"
    assert json.loads(site["text"]) == ["book.glamoursalon.co.za", "www.instylehairboutique.co.za"]
    assert "0x4AAAAAAAplannedSecretNotReal" not in json.dumps(plan.to_dict())
    assert plan.outputs["turnstileSaasSitekey"] == "0x4AAAAAAAplannedSiteKey"


def test_without_booking_saas_there_is_one_widget_and_no_saas_binding(production: Plan) -> None:
    assert [r.name for r in production.of_type(TURNSTILE)] == ["edge-turnstile"]
    names = {b["name"] for b in production.one(VERSION).value("bindings")}
    assert TURNSTILE_SAAS_SECRET_BINDING not in names
    # The site widgets' hostnames are bound either way: with several site widgets the Worker needs them.
    assert SITE_HOSTNAMES_BINDING in names
    assert production.outputs["turnstileSaasSitekey"] is None
