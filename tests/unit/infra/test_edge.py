"""Edge protection as the program declares it: rate-limiting rules, the Turnstile widget, Worker bindings."""

from __future__ import annotations

import json
from typing import Any

from booking_shared.edge import PUBLIC_WRITE_ENDPOINTS, rule_expression
from booking_shared.tokens import RULESET, TURNSTILE, VERSION
from bookingctl.planner import Plan
from tests.helpers import PlanFn

# The salons' zones are on Business, which the four rate limiting rules need (a zone's plan is
# stated once: glamour-two shares glamour's zone).
TENANTS = [
    {"slug": "glamour", "hostname": "book.glamoursalon.co.za", "zoneId": "ab" * 16, "zonePlan": "business"},
    {"slug": "glamour-two", "hostname": "www.glamoursalon.co.za", "zoneId": "ab" * 16},
    {"slug": "fade-kings", "hostname": "www.fadekings.co.za", "zoneId": "cd" * 16, "zonePlan": "business"},
]
MOCK_SECRET = "0x4AAAAAAAplannedSecretNotReal"


def ratelimits(plan: Plan) -> list[Any]:
    """The plan's http_ratelimit entry points (each zone also gets a request header transform one)."""
    return [r for r in plan.of_type(RULESET) if r.value("phase") == "http_ratelimit"]


def transforms(plan: Plan) -> list[Any]:
    return [r for r in plan.of_type(RULESET) if r.value("phase") == "http_request_late_transform"]


def bindings(plan: Plan) -> dict[str, dict[str, object]]:
    return {b["name"]: b for b in plan.one(VERSION).value("bindings")}


def rules_by_ref(plan: Plan, name: str = "edge-ratelimit-main") -> dict[str, dict[str, object]]:
    [ruleset] = [r for r in ratelimits(plan) if r.name == name]
    return {rule["ref"]: rule for rule in ruleset.value("rules")}


def test_production_rate_limits_each_public_write_endpoint_in_its_zones_ratelimit_phase(production: Plan) -> None:
    [ruleset] = ratelimits(production)
    assert (ruleset.value("kind"), ruleset.value("phase")) == ("zone", "http_ratelimit")
    assert ruleset.value("zoneId") == "1a2b3c4d5e6f708192a3b4c5d6e7f809"
    rules = rules_by_ref(production)
    for endpoint in PUBLIC_WRITE_ENDPOINTS:
        rule = rules[f"booking_{endpoint.key}_rate_limit"]
        assert rule["action"] == "block" and rule["enabled"] is True
        assert f'http.request.uri.path eq "{endpoint.path}"' in str(rule["expression"])
        assert '"www.instylehairboutique.co.za"' in str(rule["expression"])
    login = rules["booking_login_rate_limit"]["ratelimit"]
    assert login == {"characteristics": ["cf.colo.id", "ip.src"], "period": 60, "requestsPerPeriod": 5,
                     "mitigationTimeout": 600}


def test_thresholds_come_from_booking_rate_limits(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:rateLimits": {
        "bookings": {"requestsPerPeriod": 3, "period": 10, "mitigationTimeout": 3600}}})
    assert rules_by_ref(plan)["booking_bookings_rate_limit"]["ratelimit"] == {
        "characteristics": ["cf.colo.id", "ip.src"], "period": 10, "requestsPerPeriod": 3, "mitigationTimeout": 3600}


def test_staging_shares_productions_zone_so_it_declares_no_entry_point_ruleset_unless_told(
        staging: Plan, plan_with: PlanFn) -> None:
    assert staging.of_type(RULESET) == []  # neither entry point: production owns the zone's
    assert len(ratelimits(plan_with("staging", overrides={"booking:rateLimits": {"zoneRuleset": True}}))) == 1


def test_each_tenant_zone_gets_its_own_ruleset_naming_its_hostnames(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:tenants": TENANTS})
    zones = {r.name: r.value("zoneId") for r in ratelimits(plan)}
    assert zones == {"edge-ratelimit-main": "1a2b3c4d5e6f708192a3b4c5d6e7f809",
                     "edge-ratelimit-tenant-glamour": "ab" * 16, "edge-ratelimit-tenant-fade-kings": "cd" * 16}
    expression = str(rules_by_ref(plan, "edge-ratelimit-tenant-glamour")["booking_login_rate_limit"]["expression"])
    assert '"book.glamoursalon.co.za" "www.glamoursalon.co.za"' in expression
    assert "fadekings" not in expression and "instyle" not in expression


def test_the_turnstile_widget_covers_the_domain_and_every_tenant_hostname(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:tenants": TENANTS})
    widget = plan.one(TURNSTILE)
    assert widget.value("domains") == sorted(["www.instylehairboutique.co.za", *(t["hostname"] for t in TENANTS)])
    assert widget.value("mode") == "managed"
    assert plan.outputs["turnstileSitekey"] == "0x4AAAAAAAplannedSiteKey"


def test_the_worker_gets_the_widgets_secret_as_secret_text_and_never_shows_it(production: Plan) -> None:
    found = bindings(production)
    assert found["TURNSTILE_SECRET_KEY"] == {"type": "secret_text", "name": "TURNSTILE_SECRET_KEY",
                                             "text": MOCK_SECRET}
    assert MOCK_SECRET not in json.dumps(production.to_dict())


def test_the_worker_rate_limit_binding_has_a_namespace_per_environment(production: Plan, staging: Plan,
                                                                        plan_with: PlanFn) -> None:
    prod, stage = bindings(production)["TENANT_RATE_LIMITER"], bindings(staging)["TENANT_RATE_LIMITER"]
    assert prod == {"type": "ratelimit", "name": "TENANT_RATE_LIMITER", "namespaceId": "1001",
                    "simple": {"limit": 20.0, "period": 60}}
    assert stage["namespaceId"] == "1002"
    chosen = plan_with("staging", overrides={"booking:rateLimits": {"worker": {"limit": 7, "period": 10,
                                                                               "namespaceId": 4242}}})
    assert bindings(chosen)["TENANT_RATE_LIMITER"]["simple"] == {"limit": 7.0, "period": 10}
    assert bindings(chosen)["TENANT_RATE_LIMITER"]["namespaceId"] == "4242"


def test_a_rule_for_a_zone_whose_hostnames_are_data_matches_any_host() -> None:
    expression = rule_expression(None, PUBLIC_WRITE_ENDPOINTS[0])
    assert "http.host" not in expression and '"/api/auth/login"' in expression


MAIN_ZONE = "1a2b3c4d5e6f708192a3b4c5d6e7f809"
EXISTING = "3b1354cbe4a34d9296939969e23fcb7c"


def test_a_zones_existing_entry_point_is_imported_with_the_providers_id_format(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:tenants": [TENANTS[2]], "booking:rateLimits": {
        "existingRulesetIds": {MAIN_ZONE: EXISTING}}})
    imports = {r.name: r.import_id for r in ratelimits(plan)}
    # `<{accounts|zones}/{account_id|zone_id}>/<ruleset_id>` (pulumi_cloudflare.Ruleset's docstring).
    assert imports == {"edge-ratelimit-main": f"zones/{MAIN_ZONE}/{EXISTING}",
                       "edge-ratelimit-tenant-fade-kings": None}
    # `bookingctl plan` shows it, so a reviewer sees the adoption.
    main = next(r for r in ratelimits(plan) if r.name == "edge-ratelimit-main")
    assert main.to_dict()["importId"] == f"zones/{MAIN_ZONE}/{EXISTING}"


def test_without_an_existing_entry_point_the_ruleset_is_created(production: Plan) -> None:
    assert [r.import_id for r in production.of_type(RULESET)] == [None, None]


def test_each_owned_zone_turns_the_version_key_cookie_into_the_version_key_header(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:tenants": [TENANTS[2]]})
    rulesets = transforms(plan)
    assert {r.value("zoneId") for r in rulesets} == {MAIN_ZONE, "cd" * 16}
    for ruleset in rulesets:
        assert ruleset.value("kind") == "zone"
        [rule] = ruleset.value("rules")
        # cloudflare-docs rules/transform/request-header-modification/create-api: a "rewrite" rule,
        # `headers.<name>` set from an expression (the version affinity page's cookie example).
        assert rule["action"] == "rewrite" and rule["enabled"] is True
        assert rule["expression"] == 'http.cookie contains "booking-version-key="'
        assert rule["actionParameters"] == {"headers": {"Cloudflare-Workers-Version-Key": {
            "operation": "set", "expression": 'http.request.cookies["booking-version-key"][0]'}}}


def test_a_zones_existing_transform_entry_point_is_imported_not_created_again(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:rateLimits": {
        "existingTransformRulesetIds": {MAIN_ZONE: EXISTING}}})
    assert [r.import_id for r in transforms(plan)] == [f"zones/{MAIN_ZONE}/{EXISTING}"]
    assert [r.import_id for r in ratelimits(plan)] == [None]


def test_the_worker_sets_the_cookie_the_transform_rule_reads() -> None:
    from booking_shared.edge import VERSION_KEY_COOKIE
    from tests.helpers import REPO
    assert f'const VERSION_KEY_COOKIE = "{VERSION_KEY_COOKIE}";' in (REPO / "worker/src/index.js").read_text()
