"""Turnstile widgets as the program declares them at salon scale: site hostnames sharded over widgets
of the plan's size, SaaS widgets whose domains are the live widget's (read through the provider's
invoke, answered here as an account would), the Worker's bindings and the hooks."""

from __future__ import annotations

import asyncio
import json
import threading

import pulumi
import pytest

from booking_shared.tokens import TURNSTILE, VERSION
from booking_shared.turnstile import SaasWidgetContext
from bookingctl.planner import GET_TURNSTILE_WIDGETS, InvokeAnswer, Plan, PlannedResource
from infra.turnstile import SaasWidgetAmbiguousError
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
        # Offline nothing is live: each as on its first create, with the fallback hostname alone.
        assert widget.value("domains") == [FALLBACK] and widget.ignore_changes == ()
    names = bindings(plan)
    assert [names[n]["type"] for n in ("TURNSTILE_SAAS_SECRET_KEY", "TURNSTILE_SAAS_SECRET_KEY_1",
                                       "TURNSTILE_SAAS_SECRET_KEY_2")] == ["secret_text"] * 3
    assert json.loads(str(names["TURNSTILE_SITEKEYS"]["text"]))["saas"] == [SITEKEY] * 3
    assert plan.outputs["turnstileSaasSitekeys"] == [SITEKEY] * 3


def test_every_saas_widget_relists_its_salons_after_an_update_or_a_replacement(plan_with: PlanFn) -> None:
    """A SaaS widget's update PUTs the domains read at deployment: the hook bound after it lists a
    salon added after that read. Site widgets declare their domains and need none."""
    plan = plan_with("production", overrides={"booking:saas": SAAS, "booking:turnstile": {"saasWidgets": 2}})
    found = widgets(plan)
    assert found["edge-turnstile-saas"].hooks == {"after_create": ["booking-saas-widget-0-relist"],
                                                  "after_update": ["booking-saas-widget-0-relist"]}
    assert found["edge-turnstile-saas-1"].hooks["after_update"] == ["booking-saas-widget-1-relist"]
    assert found["edge-turnstile"].hooks == {}


def test_the_relist_hook_runs_the_operation_off_the_event_loop_for_its_widget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine serves hook callbacks on the program's event loop: the operation (HTTP calls) runs
    on a worker thread, told its widget, its sitekey and whether the widget was just created."""
    import ops.tenants.turnstile_hooks
    from infra.turnstile import relist_callback

    seen: list[tuple[object, ...]] = []

    def fake(ctx: SaasWidgetContext, index: int, sitekey: str, *, created: bool, log: object) -> list[str]:
        seen.append((threading.current_thread(), index, sitekey, created))
        return []

    monkeypatch.setattr(ops.tenants.turnstile_hooks, "relist_saas_widget", fake)
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


# --- a SaaS widget's domains are the live widget's ------------------------------------------------

WORKER = "appointmentbooking-api"
SALONS = ["www.salon-b.co.za", "www.salon-a.co.za"]


def live(name: str, domains: list[str], sitekey: str = "0x4AAAAAAAliveSiteKey") -> dict[str, object]:
    """A widget as the provider's getTurnstileWidgets answers it (the fields the program reads)."""
    return {"name": name, "domains": domains, "sitekey": sitekey, "id": sitekey, "mode": "managed"}


def account(*widgets: dict[str, object], calls: list[dict[str, object]] | None = None) -> dict[str, InvokeAnswer]:
    """The invoke answered as Cloudflare would for an account holding `widgets`: the `name:` filter
    matches case-insensitive substrings (the invoke's docstring), so prefixed names come back too."""

    def answer(args: object) -> dict[str, object]:
        assert isinstance(args, dict)
        if calls is not None:
            calls.append(dict(args))
        field, _, value = str(args["filter"]).partition(":")
        assert field == "name"
        return {"results": [w for w in widgets if value.lower() in str(w["name"]).lower()]}

    return {GET_TURNSTILE_WIDGETS: answer}


def saas_widgets(plan: Plan) -> dict[str, PlannedResource]:
    return {name: w for name, w in widgets(plan).items() if name.startswith("edge-turnstile-saas")}


def test_each_saas_widget_declares_its_live_salons_and_the_fallback_sorted_and_ignores_no_change(
        plan_with: PlanFn) -> None:
    calls: list[dict[str, object]] = []
    plan = plan_with("production", overrides={"booking:saas": SAAS, "booking:turnstile": {"saasWidgets": 2}},
                     invokes=account(live(f"{WORKER}-saas-salons", [FALLBACK, *SALONS], "0x4first"),
                                     live(f"{WORKER}-saas-salons-1", [FALLBACK, "www.salon-c.co.za"], "0x4second"),
                                     calls=calls))
    found = saas_widgets(plan)
    assert found["edge-turnstile-saas"].value("domains") == [FALLBACK, "www.salon-a.co.za", "www.salon-b.co.za"]
    assert found["edge-turnstile-saas-1"].value("domains") == [FALLBACK, "www.salon-c.co.za"]
    # ignore_changes would make the engine send the state's domains on an update (every salon off).
    assert all(w.ignore_changes == () and "ignoreChanges" not in w.to_dict() for w in found.values())
    # One read for every SaaS widget, of every widget the account holds (20 at most; the provider
    # pages until it has maxItems).
    assert calls == [{"accountId": widgets(plan)["edge-turnstile"].value("accountId"),
                      "filter": "name:saas-salons", "maxItems": 1000}]


def test_a_saas_widget_is_picked_by_its_whole_name_among_names_the_filter_also_matches(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:saas": SAAS}, invokes=account(
        live(f"{WORKER}-saas-salons-1", [FALLBACK, "www.on-widget-1.co.za"]),
        live(f"{WORKER}-saas-salons-10", [FALLBACK, "www.on-widget-10.co.za"]),
        live(f"{WORKER}-staging-saas-salons", ["salons-staging.instylebookings.co.za", "www.staging.co.za"]),
        live(f"{WORKER.upper()}-SAAS-SALONS", [FALLBACK, "www.other-case.co.za"]),
        live(f"{WORKER}-saas-salons", [FALLBACK, "www.mine.co.za"])))
    assert saas_widgets(plan)["edge-turnstile-saas"].value("domains") == [FALLBACK, "www.mine.co.za"]


def test_the_fallback_hostname_stays_on_the_list_even_when_the_live_widget_lost_it(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:saas": SAAS},
                     invokes=account(live(f"{WORKER}-saas-salons", ["www.salon-a.co.za."])))
    assert saas_widgets(plan)["edge-turnstile-saas"].value("domains") == [FALLBACK, "www.salon-a.co.za"]


def test_renaming_the_worker_renames_each_saas_widget_and_keeps_its_salons_in_what_is_sent(
        plan_with: PlanFn) -> None:
    """No widget has the new name yet: the live one is the SaaS widget of the same index that lists
    this stack's fallback hostname (another stack's, with its own fallback, is left alone)."""
    plan = plan_with("production", overrides={
        "booking:saas": SAAS, "booking:turnstile": {"saasWidgets": 2}, "booking:workerName": "booking-v2"},
        invokes=account(live(f"{WORKER}-saas-salons", [FALLBACK, *SALONS]),
                        live(f"{WORKER}-saas-salons-1", [FALLBACK, "www.salon-c.co.za"]),
                        live(f"{WORKER}-staging-saas-salons", ["salons-staging.instylebookings.co.za",
                                                               "www.staging-salon.co.za"])))
    found = saas_widgets(plan)
    assert [found[n].value("name") for n in ("edge-turnstile-saas", "edge-turnstile-saas-1")] == [
        "booking-v2-saas-salons", "booking-v2-saas-salons-1"]
    assert found["edge-turnstile-saas"].value("domains") == [FALLBACK, "www.salon-a.co.za", "www.salon-b.co.za"]
    assert found["edge-turnstile-saas-1"].value("domains") == [FALLBACK, "www.salon-c.co.za"]


def test_a_widget_not_yet_created_is_declared_with_the_fallback_alone(plan_with: PlanFn) -> None:
    """Raising booking:turnstile.saasWidgets: the new widget takes no salon of the existing one."""
    plan = plan_with("production", overrides={"booking:saas": SAAS, "booking:turnstile": {"saasWidgets": 2}},
                     invokes=account(live(f"{WORKER}-saas-salons", [FALLBACK, *SALONS])))
    assert saas_widgets(plan)["edge-turnstile-saas-1"].value("domains") == [FALLBACK]


@pytest.mark.parametrize("worker", [WORKER, "booking-v2"])
def test_two_live_candidates_stop_the_program_naming_both_sitekeys_rather_than_guess(
        plan_with: PlanFn, worker: str) -> None:
    """Two widgets of the SaaS widget's name (or, after a rename, two of its index listing the fallback)."""
    with pytest.raises(SaasWidgetAmbiguousError) as stopped:
        plan_with("production", overrides={"booking:saas": SAAS, "booking:workerName": worker},
                  invokes=account(live(f"{WORKER}-saas-salons", [FALLBACK, SALONS[0]], "0x4one"),
                                  live(f"{WORKER}-saas-salons", [FALLBACK, SALONS[1]], "0x4two")))
    message = str(stopped.value)
    assert "0x4one" in message and "0x4two" in message and "turnstileSaasSitekeys" in message


def test_a_live_widget_whose_name_drifted_in_case_or_spacing_is_still_found() -> None:
    """Hostile review of #20 point 4 (D1): the read's filter matches names case-insensitively, so a
    widget renamed in the dashboard to upper case or with a trailing space comes back; the exact-name
    match missed it and the update sent the fallback alone, taking every salon off until the hook."""
    from types import SimpleNamespace

    from infra.turnstile import live_saas_domains

    name = f"{WORKER}-saas-salons"
    for drifted in (name.upper(), f"{name} ", f"  {name.title()}"):
        found = [SimpleNamespace(name=drifted, domains=[FALLBACK, *SALONS], sitekey="0x4drift")]
        assert live_saas_domains(found, name, 0, FALLBACK) == sorted([FALLBACK, *SALONS])
        renamed = [SimpleNamespace(name="OLD-WORKER-SAAS-SALONS ", domains=[FALLBACK, *SALONS], sitekey="0x4old")]
        assert live_saas_domains(renamed, name, 0, FALLBACK) == sorted([FALLBACK, *SALONS])


def test_odd_live_answers_are_read_as_nothing_listed_not_a_crash() -> None:
    """Hostile review of #20 point 4 (D2): a null name or domains list, or a null domain, raised raw errors."""
    from types import SimpleNamespace

    from infra.turnstile import live_saas_domains

    name = f"{WORKER}-saas-salons"
    odd = [SimpleNamespace(name=None, domains=None, sitekey="0x4a"),
           SimpleNamespace(name=name, domains=[None, FALLBACK, 7, SALONS[0]], sitekey="0x4b")]
    assert live_saas_domains(odd, name, 0, FALLBACK) == sorted([FALLBACK, SALONS[0]])
    nothing = [SimpleNamespace(name=name, domains=None, sitekey="0x4c")]
    assert live_saas_domains(nothing, name, 0, FALLBACK) == [FALLBACK]
