"""`bookingctl diff` on Turnstile widgets: an update of a widget whose domains are data (a SaaS
salons' widget, known by its name), and site hostnames that a change moves to another widget."""

from __future__ import annotations

import copy
from typing import Any

from booking_shared.tokens import TURNSTILE
from booking_shared.turnstile import site_shards
from bookingctl.diff import compare
from bookingctl.diff_render import to_markdown
from tests.helpers import PlanFn

SAAS = {"zoneId": "ef" * 16, "fallbackHostname": "salons.instylebookings.co.za", "zonePlan": "business"}
DOMAIN = "www.instylehairboutique.co.za"


def test_renaming_the_worker_updates_the_saas_widget_and_the_diff_warns_of_salons_added_during_the_update(
        plan_with: PlanFn) -> None:
    base = plan_with("production", overrides={"booking:saas": SAAS}).to_dict()
    head = plan_with("production", overrides={"booking:saas": SAAS,
                                               "booking:workerName": "appointmentbooking-api-v2"}).to_dict()
    result = compare("production", "main", base, head)
    [saas] = [c for c in result.changes if c.name == "edge-turnstile-saas"]
    assert saas.action == "update" and [p for p, _, _ in saas.paths] == ["name"]
    assert saas.warning is not None
    assert "PUT of the whole widget with the domains the live widget lists" in saas.warning
    assert '(offline: ["salons.instylebookings.co.za"])' in saas.warning and "between that read and the PUT" in (
        saas.warning)
    assert "booking-saas-widget-0-relist" in saas.warning and "tenants status --stack production" in saas.warning
    assert f"**UPDATE**: {saas.warning}" in to_markdown(result)
    # Only the widget whose domains are data is at risk.
    assert [c.name for c in result.warnings if c.type == TURNSTILE] == ["edge-turnstile-saas"]


def test_a_saas_widget_update_without_its_hook_says_no_hook_lists_the_salons_again(plan_with: PlanFn) -> None:
    base = plan_with("production", overrides={"booking:saas": SAAS}).to_dict()
    head = copy.deepcopy(base)
    [widget] = [r for r in head["resources"] if r["name"] == "edge-turnstile-saas"]
    widget["inputs"]["mode"], widget["hooks"] = "invisible", {}
    [change] = compare("production", "main", base, head).warnings
    assert "no hook lists it again" in str(change.warning) and "tenants add" in str(change.warning)


def site_plan(hostnames: list[str]) -> dict[str, Any]:
    """Plan JSON holding the site widgets the program declares for `hostnames` (free plan)."""
    resources = []
    for index, shard in enumerate(site_shards(hostnames, "free")):
        name = "edge-turnstile" if index == 0 else f"edge-turnstile-{index}"
        resources.append({"urn": f"urn:pulumi:production::appointmentbooking::{TURNSTILE}::{name}", "type": TURNSTILE,
                          "name": name, "inputs": {"domains": sorted(shard)}})
    return {"resources": resources, "violations": []}


def test_removing_a_tenant_from_the_middle_warns_of_every_hostname_it_moves_to_another_widget() -> None:
    hosts = [DOMAIN, *(f"www.salon-{i:02d}.co.za" for i in range(20))]
    result = compare("production", "main", site_plan(hosts), site_plan([h for h in hosts if h != "www.salon-03.co.za"]))
    [moved] = result.warnings
    assert moved.name == "edge-turnstile" and "1 hostname(s) move to Turnstile widget edge-turnstile" in str(
        moved.warning)
    assert "www.salon-14.co.za (from edge-turnstile-1)" in str(moved.warning) and "another sitekey" in str(
        moved.warning)


def test_appending_a_tenant_moves_no_hostname_and_warns_of_nothing() -> None:
    hosts = [DOMAIN, *(f"www.salon-{i:02d}.co.za" for i in range(20))]
    result = compare("production", "main", site_plan(hosts), site_plan([*hosts, "book.newsalon.co.za"]))
    assert [c.name for c in result.changes] == ["edge-turnstile-1"] and result.warnings == []
