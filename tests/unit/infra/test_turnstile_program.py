"""Turnstile widgets as the program declares them at salon scale: site hostnames sharded over widgets
of the plan's size, SaaS widgets whose domains are data, the Worker's bindings and the hooks."""

from __future__ import annotations

import asyncio
import json
import threading

import pulumi
import pytest

from booking_shared.tokens import TURNSTILE, VERSION
from booking_shared.turnstile import SaasWidgetContext
from bookingctl.planner import Plan, PlannedResource
from tests.helpers import PlanFn

DOMAIN = "www.instylehairboutique.co.za"
FALLBACK = "salons.instylebookings.co.za"
SAAS = {"zoneId": "ef" * 16, "fallbackHostname": FALLBACK, "zonePlan": "business"}
SITEKEY = "0x4AAAAAAAplannedSiteKey"


def tenants(count: int) -> list[dict[str, str]]:
    return [{"slug": f"salon-{i}", "hostname": f"www.salon-{i}.co.za", "zoneId": f"{i + 1:032x}",
             "zonePlan": "business"}
            for i in range(count)]


def widgets(plan: Plan) -> dict[str, PlannedResource]:
    return {r.name: r for r in plan.of_type(TURNSTILE)}


def bindings(plan: Plan) -> dict[str, dict[str, object]]:
    return {b["name"]: b for b in plan.one(VERSION).value("bindings")}


def test_the_fifteenth_per_zone_tenant_goes_on_a_second_widget_on_the_free_plan(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:tenants": tenants(15)})
    found = widgets(plan)
    assert set(found) == {"edge-turnstile", "edge-turnstile-1"}
    first, second = found["edge-turnstile"].value("domains"), found["edge-turnstile-1"].value("domains")
    assert len(first) == 15 and DOMAIN in first and "www.salon-13.co.za" in first
    assert second == ["www.salon-14.co.za"]
    # Widget 0 keeps its resource name and display name: an existing stack's widget (and the sitekey
    # its pages render) is updated in place, never replaced.
    assert found["edge-turnstile"].value("name") == "appointmentbooking production booking form"
    assert found["edge-turnstile-1"].value("name") == "appointmentbooking production booking form 1"


def test_fourteen_tenants_and_the_domain_fill_exactly_one_free_widget(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:tenants": tenants(14)})
    [widget] = plan.of_type(TURNSTILE)
    assert len(widget.value("domains")) == 15


def test_on_turnstile_enterprise_sixteen_hostnames_share_one_widget(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:tenants": tenants(15), "booking:turnstile": {
        "plan": "enterprise"}})
    [widget] = plan.of_type(TURNSTILE)
    assert len(widget.value("domains")) == 16


def test_the_worker_gets_each_site_widgets_secret_and_hostnames_and_every_sitekey(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:tenants": tenants(15)})
    found = bindings(plan)
    for name in ("TURNSTILE_SECRET_KEY", "TURNSTILE_SECRET_KEY_1"):
        assert found[name]["type"] == "secret_text"
    assert json.loads(str(found["SITE_HOSTNAMES_1"]["text"])) == ["www.salon-14.co.za"]
    assert DOMAIN in json.loads(str(found["SITE_HOSTNAMES"]["text"]))
    assert "SITE_HOSTNAMES_2" not in found and "TURNSTILE_SECRET_KEY_2" not in found
    assert found["TURNSTILE_SITEKEYS"]["type"] == "plain_text"
    assert json.loads(str(found["TURNSTILE_SITEKEYS"]["text"])) == {"site": [SITEKEY, SITEKEY], "saas": []}
    assert plan.outputs["turnstileSitekeys"] == [SITEKEY, SITEKEY]


def test_saas_widgets_are_declared_as_booking_turnstile_saas_widgets_says_each_with_its_secret(
        plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:saas": SAAS, "booking:turnstile": {"saasWidgets": 3}})
    found = widgets(plan)
    saas = {n: found[n] for n in ("edge-turnstile-saas", "edge-turnstile-saas-1", "edge-turnstile-saas-2")}
    assert [w.value("name") for w in saas.values()] == [
        "appointmentbooking-api-saas-salons", "appointmentbooking-api-saas-salons-1",
        "appointmentbooking-api-saas-salons-2"]
    for widget in saas.values():
        assert widget.value("domains") == [FALLBACK] and widget.ignore_changes == ("domains",)
    names = bindings(plan)
    assert [names[n]["type"] for n in ("TURNSTILE_SAAS_SECRET_KEY", "TURNSTILE_SAAS_SECRET_KEY_1",
                                       "TURNSTILE_SAAS_SECRET_KEY_2")] == ["secret_text"] * 3
    assert json.loads(str(names["TURNSTILE_SITEKEYS"]["text"]))["saas"] == [SITEKEY] * 3
    assert plan.outputs["turnstileSaasSitekeys"] == [SITEKEY] * 3


def test_every_saas_widget_relists_its_salons_after_an_update_or_a_replacement(plan_with: PlanFn) -> None:
    """Any update of a SaaS widget is a PUT of the state's domains (the fallback alone): the hook
    bound after it lists the salons back. Site widgets declare their domains and need none."""
    plan = plan_with("production", overrides={"booking:saas": SAAS, "booking:turnstile": {"saasWidgets": 2}})
    found = widgets(plan)
    assert found["edge-turnstile-saas"].hooks == {"after_create": ["booking-saas-widget-0-relist"],
                                                  "after_update": ["booking-saas-widget-0-relist"]}
    assert found["edge-turnstile-saas-1"].hooks["after_update"] == ["booking-saas-widget-1-relist"]
    assert found["edge-turnstile"].hooks == {}


def test_the_relist_hook_runs_the_operation_off_the_event_loop_for_its_widget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine serves hook callbacks on the program's event loop: the operation (HTTP calls) runs
    on a worker thread, told its widget, its sitekey and whether the widget was just created."""
    import ops.turnstile_hooks
    from infra.turnstile import relist_callback

    seen: list[tuple[object, ...]] = []

    def fake(ctx: SaasWidgetContext, index: int, sitekey: str, *, created: bool, log: object) -> list[str]:
        seen.append((threading.current_thread(), index, sitekey, created))
        return []

    monkeypatch.setattr(ops.turnstile_hooks, "relist_saas_widget", fake)
    ctx = SaasWidgetContext(stack="production", account_id="a" * 32, database_name="appointmentbooking-db",
                            worker_name="appointmentbooking-api", fallback_hostname=FALLBACK, plan="free")
    relist = relist_callback(ctx, 1)
    update = pulumi.ResourceHookArgs(urn="urn", id="0x4key", name="edge-turnstile-saas-1", type=TURNSTILE,
                                     new_outputs={"sitekey": "0x4key"}, old_outputs={"sitekey": "0x4key"})
    create = pulumi.ResourceHookArgs(urn="urn", id="0x4new", name="edge-turnstile-saas-1", type=TURNSTILE,
                                     new_outputs={"sitekey": "0x4new"})

    async def run() -> threading.Thread:
        await relist(update)
        await relist(create)
        return threading.current_thread()

    loop = asyncio.run(run())
    assert [(i, key, created) for _, i, key, created in seen] == [(1, "0x4key", False), (1, "0x4new", True)]
    assert all(thread is not loop for thread, *_ in seen)
