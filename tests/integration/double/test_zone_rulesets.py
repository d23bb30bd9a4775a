"""The API double's zone rulesets and zone plan, driven through the official SDK with strict validation."""

from __future__ import annotations

from typing import Any

import cloudflare
import pytest
from cloudflare import Cloudflare

from booking_shared.edge import PUBLIC_WRITE_ENDPOINTS, rule_expression
from tests.helpers.cf_double import CloudflareDouble, take_violations

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

ZONE = "1a2b3c4d5e6f708192a3b4c5d6e7f809"


def rules(count: int, *, hosts: list[str] | None = None, period: int = 60, timeout: int = 600,
          action: str = "block") -> list[dict[str, Any]]:
    """The program's rules for the first `count` public write endpoints."""
    return [{"ref": f"booking_{e.key}_rate_limit", "expression": rule_expression(hosts, e), "action": action,
             "enabled": True, "ratelimit": {"characteristics": ["cf.colo.id", "ip.src"], "period": period,
                                            "requests_per_period": 5, "mitigation_timeout": timeout}}
            for e in PUBLIC_WRITE_ENDPOINTS[:count]]


def create(client: Cloudflare, rule_list: list[dict[str, Any]]) -> dict[str, Any]:
    """POST the entry point. The SDK types the answer `Ruleset | object` (a dry run answers null) and so
    hands it back as the plain dict, as it would from the real API."""
    created = client.rulesets.create(zone_id=ZONE, kind="zone", phase="http_ratelimit", name="booking rate limits",
                                     rules=rule_list)  # type: ignore[arg-type]
    assert isinstance(created, dict)
    return created


def errors_of(info: pytest.ExceptionInfo[cloudflare.APIStatusError]) -> list[dict[str, Any]]:
    body = info.value.body
    assert isinstance(body, dict)
    return list(body["errors"])


def test_a_zone_reports_its_plan_as_the_sdk_zone_model_has_it(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_zone(ZONE, plan="pro", name="instylehairboutique.co.za")
    zone = client.zones.get(zone_id=ZONE)
    assert zone is not None and zone.plan.legacy_id == "pro" and zone.plan.name == "Pro Website"
    assert zone.name == "instylehairboutique.co.za"


def test_a_zone_without_the_phase_entry_point_answers_not_found(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_zone(ZONE, plan="business")
    with pytest.raises(cloudflare.NotFoundError) as info:
        client.rulesets.phases.get("http_ratelimit", zone_id=ZONE)
    assert errors_of(info)[0]["code"] == 10003


def test_a_created_entry_point_is_listed_and_read_back_by_phase(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_zone(ZONE, plan="business")
    created = create(client, rules(4, hosts=["www.instylehairboutique.co.za"]))
    entry = client.rulesets.phases.get("http_ratelimit", zone_id=ZONE)
    assert entry.id == created["id"] and [r.ref for r in entry.rules] == [
        "booking_login_rate_limit", "booking_bookings_rate_limit", "booking_messages_rate_limit",
        "booking_payments_rate_limit"]
    listed = list(client.rulesets.list(zone_id=ZONE))
    assert [(r.id, r.phase, r.kind) for r in listed] == [(created["id"], "http_ratelimit", "zone")]
    assert client.rulesets.get(created["id"], zone_id=ZONE).name == "booking rate limits"


def test_the_list_pages_with_a_cursor(double: CloudflareDouble, client: Cloudflare) -> None:
    zone = double.add_zone(ZONE, plan="business")
    zone.rulesets += [double.ruleset(phase) for phase in ("http_ratelimit", "http_request_firewall_custom",
                                                          "http_request_cache_settings")]
    assert len(list(client.rulesets.list(zone_id=ZONE, per_page=2))) == 3


def test_the_double_refuses_a_second_entry_point_of_the_same_phase(
        double: CloudflareDouble, client: Cloudflare) -> None:
    # What the dashboard leaves behind once a rate limiting rule was ever made there (even emptied).
    double.add_zone(ZONE, plan="business", rulesets=[double.ruleset("http_ratelimit", [])])
    with pytest.raises(cloudflare.BadRequestError) as info:
        create(client, rules(1))
    [error] = errors_of(info)
    assert error["code"] == 20217 and error["source"] == {"pointer": "/kind"}
    assert "exceeded maximum number of zone rulesets for phase http_ratelimit" in error["message"]
    assert len(double.zones[ZONE].rulesets) == 1


def test_a_pro_zone_refuses_four_rules_and_the_method_field(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_zone(ZONE, plan="pro")
    with pytest.raises(cloudflare.BadRequestError) as info:
        create(client, rules(4))
    pointers = [e["source"]["pointer"] for e in errors_of(info)]
    assert pointers == ["/rules", "/rules/0/expression", "/rules/1/expression", "/rules/2/expression",
                        "/rules/3/expression"]
    assert "at most 2 on Pro" in errors_of(info)[0]["message"]
    assert "http.request.method" in errors_of(info)[1]["message"]
    assert double.zones[ZONE].rulesets == []


def test_throttling_with_block_below_enterprise_is_refused(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_zone(ZONE, plan="business")
    with pytest.raises(cloudflare.BadRequestError) as info:
        create(client, rules(1, timeout=0))
    [error] = errors_of(info)
    assert error["source"]["pointer"] == "/rules/0/ratelimit/mitigation_timeout"
    assert "Enterprise only" in error["message"]


def test_an_enterprise_zone_may_throttle_with_block(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_zone(ZONE, plan="enterprise")
    create(client, rules(4, timeout=0))
    entry = client.rulesets.phases.get("http_ratelimit", zone_id=ZONE)
    assert [r.ratelimit.mitigation_timeout for r in entry.rules if r.ratelimit] == [0, 0, 0, 0]


def test_a_free_zone_holds_one_path_only_rule_of_ten_seconds(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_zone(ZONE, plan="free")
    path_only = [{"expression": 'http.request.uri.path eq "/api/auth/login"', "action": "block",
                  "ratelimit": {"characteristics": ["cf.colo.id", "ip.src"], "period": 10,
                                "requests_per_period": 5, "mitigation_timeout": 10}}]
    assert create(client, path_only)["rules"][0]["expression"] == 'http.request.uri.path eq "/api/auth/login"'


def test_an_unknown_zone_is_not_found(client: Cloudflare) -> None:
    with pytest.raises(cloudflare.NotFoundError):
        client.zones.get(zone_id=ZONE)


@pytest.mark.parametrize("ratelimit", [
    {"characteristics": ["cf.colo.id", "ip.src"], "period": "60", "requests_per_period": 5, "mitigation_timeout": 600},
    {"characteristics": ["cf.colo.id", "ip.src"], "period": 60.5, "requests_per_period": 5, "mitigation_timeout": 600},
    {"characteristics": ["cf.colo.id", "ip.src"], "period": 60, "requests_per_period": 5, "mitigation_timeout": "600"},
    {"characteristics": ["cf.colo.id", "ip.src"], "period": True, "requests_per_period": 5},
    {"characteristics": "cf.colo.id ip.src", "period": 60, "requests_per_period": 5, "mitigation_timeout": 600},
])
def test_a_period_or_timeout_that_is_no_integer_or_characteristics_that_are_no_list_are_refused(
        double: CloudflareDouble, client: Cloudflare, ratelimit: dict[str, Any]) -> None:
    """The schema's ratelimit object (the SDK's BlockRuleRatelimit, cloudflare 5.9.0): characteristics
    Required[Sequence[str]], period Required[int], mitigation_timeout int."""
    double.add_zone(ZONE, plan="business")
    [rule] = rules(1, hosts=["www.instylehairboutique.co.za"])
    with pytest.raises(cloudflare.BadRequestError):
        create(client, [{**rule, "ratelimit": ratelimit}])
    assert double.zones[ZONE].entry_point("http_ratelimit") is None
    # The OpenAPI document's types refuse it before the double's own checks (and this test meant to send it).
    [violation] = take_violations()
    assert "ratelimit" in violation and "createZoneRuleset" in violation
