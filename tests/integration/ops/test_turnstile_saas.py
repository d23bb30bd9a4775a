"""SaaS salons' Turnstile widgets at scale, against the API double: `tenants add` placing a salon on a
widget with room (or refusing, naming the key), the row recording it, `pulumi up`'s update of a
widget (a PUT of the whole widget with the domains the program read from the live widget) keeping
every salon on it, and the hook that lists a salon again when it was added after that read."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cloudflare
import pytest
from cloudflare import Cloudflare

from booking_shared.limits import turnstile_hostname_limit
from booking_shared.tokens import TURNSTILE
from booking_shared.turnstile import SaasWidgetContext, saas_widget_name
from bookingctl.planner import GET_TURNSTILE_WIDGETS, InvokeAnswer, PlannedResource
from infra.turnstile import saas_widget_resource
from ops.database.migration_check import check_local
from ops.database.migrations import apply, discover
from ops.releases.gate import own_queries
from ops.targets import LocalDatabase, RemoteDatabase, remote_database
from ops.tenants.tenant_model import SaasZone, TenantError
from ops.tenants.tenants import add_tenant, remove_tenant, status
from ops.tenants.turnstile_hooks import relist_saas_widget
from tests.helpers import ACCOUNT, REPO, PlanFn
from tests.helpers.cf_double import TOKEN, CloudflareDouble, D1State, Fault, take_violations
from tests.helpers.migrations import folder_with
from tests.helpers.saas_stack import DATABASE, FALLBACK, SAAS_ZONE, migrated_sqlite

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

WORKER = "appointmentbooking-api-staging"


def zone(widgets: int = 1) -> SaasZone:
    return SaasZone(SAAS_ZONE, FALLBACK, account_id=ACCOUNT, turnstile_widget=saas_widget_name(WORKER, 0),
                    turnstile_widgets=widgets, turnstile_plan="free")


@pytest.fixture
def d1(double: CloudflareDouble, tmp_path: Path) -> D1State:
    double.add_saas_zone(SAAS_ZONE).fallback_origin = {"origin": FALLBACK, "status": "active", "errors": []}
    return double.add_database(DATABASE, migrated_sqlite(tmp_path / "seed.sqlite"))


@pytest.fixture
def db(client: Cloudflare, d1: D1State) -> RemoteDatabase:
    return remote_database(ACCOUNT, DATABASE, client=client, stack="staging")


def sdk(double: CloudflareDouble) -> Callable[[], Cloudflare]:
    """A fresh strict client each time, as the hook opens (and closes) its own."""
    return lambda: Cloudflare(api_token=TOKEN, base_url=double.base_url, _strict_response_validation=True)


def declare_saas_widgets(double: CloudflareDouble, count: int) -> list[dict[str, object]]:
    """The SaaS widgets as `pulumi up` declares them: the fallback hostname alone."""
    return [double.add_turnstile_widget(saas_widget_name(WORKER, i), [FALLBACK]) for i in range(count)]


def onboard(db: RemoteDatabase, widgets: int, first: int, count: int) -> None:
    for i in range(first, first + count):
        add_tenant(db, db.client, zone(widgets), f"salon-{i:02d}", f"www.salon-{i:02d}.co.za")


def recorded(d1: D1State) -> dict[str, int | None]:
    conn = sqlite3.connect(d1.path)
    try:
        return dict(conn.execute("SELECT slug, turnstile_widget FROM tenants"))
    finally:
        conn.close()


def test_the_tenants_turnstile_widget_migration_is_an_expand_that_migrate_check_calls_safe(tmp_path: Path) -> None:
    target = tmp_path / "d1.sqlite"
    sqlite3.connect(target).close()
    with LocalDatabase(target) as local:
        apply(local, discover(folder_with(tmp_path)))  # the schema as it is before this change: 0001 only
    report = check_local(target, discover(REPO / "migrations"), own_queries())
    assert report.verdict == "safe"
    assert [(m.name, m.cls, m.findings) for m in report.migrations] == [
        ("0002_tenants_turnstile_widget.sql", "expand", [])]


def test_fourteen_salons_fill_the_free_widget_beside_the_fallback_and_the_fifteenth_is_refused_naming_the_key(
        double: CloudflareDouble, db: RemoteDatabase, d1: D1State) -> None:
    [widget] = declare_saas_widgets(double, 1)
    onboard(db, 1, 0, 14)
    assert len(double.turnstile_widgets[str(widget["sitekey"])]["domains"]) == 15  # the fallback + 14
    requests = len(double.requests)
    with pytest.raises(TenantError) as refused:
        add_tenant(db, db.client, zone(1), "salon-14", "www.salon-14.co.za")
    message = str(refused.value)
    assert "booking:turnstile.saasWidgets" in message and "15 hostnames" in message and "pulumi up" in message
    assert "Nothing was written" in message
    assert not [p for m, p in double.requests[requests:] if m == "PUT"], "a full widget is not even asked"
    assert "salon-14" not in recorded(d1) and len(double.saas_zones[SAAS_ZONE].hostnames) == 14


def test_with_two_saas_widgets_the_fifteenth_salon_goes_on_the_second_and_its_row_says_so(
        double: CloudflareDouble, db: RemoteDatabase, d1: D1State) -> None:
    first, second = declare_saas_widgets(double, 2)
    onboard(db, 2, 0, 16)
    assert len(double.turnstile_widgets[str(first["sitekey"])]["domains"]) == 15
    assert double.turnstile_widgets[str(second["sitekey"])]["domains"] == [
        FALLBACK, "www.salon-14.co.za", "www.salon-15.co.za"]
    rows = recorded(d1)
    assert {rows[f"salon-{i:02d}"] for i in range(14)} == {0}
    assert (rows["salon-14"], rows["salon-15"]) == (1, 1)
    assert status(db, db.client, zone(2)).not_on_widget == ()


def test_a_salon_removed_from_a_full_widget_frees_its_slot_for_the_next_one(
        double: CloudflareDouble, db: RemoteDatabase, d1: D1State) -> None:
    first, second = declare_saas_widgets(double, 2)
    onboard(db, 2, 0, 15)
    remove_tenant(db, db.client, zone(2), "salon-03")
    assert "www.salon-03.co.za" not in double.turnstile_widgets[str(first["sitekey"])]["domains"]
    add_tenant(db, db.client, zone(2), "late", "www.late.co.za")
    assert recorded(d1)["late"] == 0, "the first widget with room"
    remove_tenant(db, db.client, zone(2), "salon-14")
    assert double.turnstile_widgets[str(second["sitekey"])]["domains"] == [FALLBACK]


def test_status_reports_a_salon_missing_from_the_widget_its_row_names(
        double: CloudflareDouble, db: RemoteDatabase, d1: D1State) -> None:
    first, second = declare_saas_widgets(double, 2)
    onboard(db, 2, 0, 15)
    double.turnstile_widgets[str(second["sitekey"])]["domains"] = [FALLBACK]
    # Listed on the first widget instead: the Worker would still verify with the second's secret.
    double.turnstile_widgets[str(first["sitekey"])]["domains"].append("www.salon-14.co.za")
    assert status(db, db.client, zone(2)).not_on_widget == ("www.salon-14.co.za",)


def read_through(double: CloudflareDouble, before_answer: Callable[[], None] = lambda: None
                 ) -> dict[str, InvokeAnswer]:
    """The program's getTurnstileWidgets invoke answered by the double, as the provider reads it: the
    list endpoint with the invoke's filter, every page (list_data_source.go pages until maxItems).
    `before_answer` runs after the read, before the program gets its answer (a race)."""

    def answer(args: Mapping[str, Any]) -> dict[str, Any]:
        with sdk(double)() as client:
            found = [{"name": w.name, "domains": list(w.domains), "sitekey": w.sitekey, "id": w.sitekey,
                      "mode": w.mode}
                     for w in client.turnstile.widgets.list(account_id=str(args["accountId"]),
                                                            filter=str(args["filter"]))]
        before_answer()
        return {"results": found[:int(args["maxItems"])]}

    return {GET_TURNSTILE_WIDGETS: answer}


def saas_stack(worker: str, widgets: int) -> dict[str, Any]:
    """Overrides that make the committed staging stack a SaaS one on the double's zone (saas_stack)."""
    return {"booking:saas": {"zoneId": SAAS_ZONE, "fallbackHostname": FALLBACK, "minTlsVersion": "1.2",
                             "zonePlan": "business"},
            "booking:turnstile": {"saasWidgets": widgets}, "booking:workerName": worker}


def provider_put(client: Cloudflare, sitekey: str, planned: PlannedResource) -> None:
    """The provider's update of a widget: a PUT of the whole widget with the inputs the program
    declared (terraform-provider-cloudflare turnstile_widget resource.go `Update`)."""
    client.turnstile.widgets.update(sitekey, account_id=ACCOUNT, name=planned.value("name"),
                                    domains=planned.value("domains"), mode=planned.value("mode"))


def off_their_widgets(double: CloudflareDouble, widgets: list[dict[str, object]], d1: D1State) -> list[str]:
    """Every salon whose row names a widget that does not list its hostname."""
    conn = sqlite3.connect(d1.path)
    try:
        rows = list(conn.execute("SELECT hostname, turnstile_widget FROM tenants"))
    finally:
        conn.close()
    listed = [double.turnstile_widgets[str(w["sitekey"])]["domains"] for w in widgets]
    return [host for host, index in rows if host not in listed[index]]


def test_pulumi_up_renaming_the_worker_puts_the_live_salons_and_no_salon_is_ever_off_its_widget(
        double: CloudflareDouble, db: RemoteDatabase, d1: D1State, client: Cloudflare, plan_with: PlanFn) -> None:
    """What `pulumi up` does to the SaaS widgets once the Worker is renamed (their names follow it):
    the program reads the live widgets through the provider's invoke (here answered by the double),
    and the provider PUTs each whole widget with the declared inputs; the double, like Cloudflare,
    replaces the whole widget. The domains sent are the live ones, so every salon stays on."""
    widgets = declare_saas_widgets(double, 2)
    onboard(db, 2, 0, 16)
    renamed = "renamed-api"
    plan = plan_with("staging", overrides=saas_stack(renamed, 2), invokes=read_through(double))
    planned = {r.name: r for r in plan.of_type(TURNSTILE)}
    puts = len([1 for m, _p in double.requests if m == "PUT"])
    for index, widget in enumerate(widgets):
        provider_put(client, str(widget["sitekey"]), planned[saas_widget_resource("edge", index)])
        assert off_their_widgets(double, widgets, d1) == [], f"after the PUT of SaaS widget {index}"
    assert len([1 for m, _p in double.requests if m == "PUT"]) == puts + 2
    first, second = (double.turnstile_widgets[str(w["sitekey"])] for w in widgets)
    assert sorted(first["domains"]) == sorted([FALLBACK, *(f"www.salon-{i:02d}.co.za" for i in range(14))])
    assert sorted(second["domains"]) == [FALLBACK, "www.salon-14.co.za", "www.salon-15.co.za"]
    assert (first["name"], first["mode"]) == ("renamed-api-saas-salons", "managed"), "the update itself stays"
    after = SaasZone(SAAS_ZONE, FALLBACK, account_id=ACCOUNT, turnstile_widget=saas_widget_name(renamed, 0),
                     turnstile_widgets=2)
    assert status(db, db.client, after).not_on_widget == ()
    # Nothing left for the hook: it sends no PUT.
    ctx = SaasWidgetContext(stack="staging", account_id=ACCOUNT, database_name=DATABASE, worker_name=renamed,
                            fallback_hostname=FALLBACK, plan="free", client_factory=sdk(double))
    lines: list[str] = []
    for index, widget in enumerate(widgets):
        assert relist_saas_widget(ctx, index, str(widget["sitekey"]), log=lines.append) == []
    assert len([1 for m, _p in double.requests if m == "PUT"]) == puts + 2, lines


def test_a_salon_added_between_the_programs_read_and_the_put_is_listed_again_by_the_hook(
        double: CloudflareDouble, db: RemoteDatabase, d1: D1State, client: Cloudflare, plan_with: PlanFn) -> None:
    """The race the live read leaves: `tenants add` lists a salon after the invoke read the widget and
    before the provider's PUT, which takes that salon (and only it) off; the after-update hook lists
    it again from the tenants table."""
    [widget] = declare_saas_widgets(double, 1)
    onboard(db, 1, 0, 3)
    sitekey = str(widget["sitekey"])
    plan = plan_with("staging", overrides=saas_stack("renamed-api", 1),
                     invokes=read_through(double, lambda: onboard(db, 1, 3, 1)))
    provider_put(client, sitekey, {r.name: r for r in plan.of_type(TURNSTILE)}["edge-turnstile-saas"])
    assert off_their_widgets(double, [widget], d1) == ["www.salon-03.co.za"]
    ctx = SaasWidgetContext(stack="staging", account_id=ACCOUNT, database_name=DATABASE, worker_name="renamed-api",
                            fallback_hostname=FALLBACK, plan="free", client_factory=sdk(double))
    assert relist_saas_widget(ctx, 0, sitekey, log=lambda _: None) == ["www.salon-03.co.za"]
    assert off_their_widgets(double, [widget], d1) == []


def test_the_programs_read_of_the_widgets_picks_its_own_among_the_doubles_prefixed_names(
        double: CloudflareDouble, plan_with: PlanFn) -> None:
    """The double's name filter matches substrings, as Cloudflare's does: one read returns the
    stack's two widgets and another stack's; each planned widget takes its own widget's domains."""
    first, second = declare_saas_widgets(double, 2)
    double.turnstile_widgets[str(first["sitekey"])]["domains"] = [FALLBACK, "www.first.co.za"]
    double.turnstile_widgets[str(second["sitekey"])]["domains"] = [FALLBACK, "www.second.co.za"]
    double.add_turnstile_widget(saas_widget_name("appointmentbooking-api", 0), ["salons.instylebookings.co.za",
                                                                                "www.production.co.za"])
    plan = plan_with("staging", overrides=saas_stack(WORKER, 2), invokes=read_through(double))
    planned = {r.name: r.value("domains") for r in plan.of_type(TURNSTILE)}
    assert planned["edge-turnstile-saas"] == [FALLBACK, "www.first.co.za"]
    assert planned["edge-turnstile-saas-1"] == [FALLBACK, "www.second.co.za"]


def test_the_hook_sends_nothing_when_the_widget_still_lists_its_salons(
        double: CloudflareDouble, db: RemoteDatabase, client: Cloudflare) -> None:
    [widget] = declare_saas_widgets(double, 1)
    onboard(db, 1, 0, 3)
    puts = len([1 for m, p in double.requests if m == "PUT"])
    ctx = SaasWidgetContext(stack="staging", account_id=ACCOUNT, database_name=DATABASE, worker_name=WORKER,
                            fallback_hostname=FALLBACK, plan="free", client_factory=sdk(double))
    relist_saas_widget(ctx, 0, str(widget["sitekey"]), log=lambda _: None)
    assert len([1 for m, p in double.requests if m == "PUT"]) == puts


def test_rows_onboarded_before_the_column_existed_count_as_the_first_widgets(
        double: CloudflareDouble, db: RemoteDatabase, d1: D1State, client: Cloudflare) -> None:
    [widget] = declare_saas_widgets(double, 1)
    onboard(db, 1, 0, 2)
    conn = sqlite3.connect(d1.path)
    conn.execute("UPDATE tenants SET turnstile_widget = NULL")
    # A row the stack config serves (booking:domain) is no SaaS salon, whatever the column says.
    conn.execute("INSERT INTO tenants (id, slug, name, hostname) VALUES ('m', 'main', 'Main', "
                 "'staging.instylehairboutique.co.za')")
    conn.commit()
    conn.close()
    sitekey = str(widget["sitekey"])
    double.turnstile_widgets[sitekey]["domains"] = [FALLBACK]
    ctx = SaasWidgetContext(stack="staging", account_id=ACCOUNT, database_name=DATABASE, worker_name=WORKER,
                            fallback_hostname=FALLBACK, plan="free",
                            served=frozenset({"staging.instylehairboutique.co.za"}), client_factory=sdk(double))
    relist_saas_widget(ctx, 0, sitekey, log=lambda _: None)
    assert double.turnstile_widgets[sitekey]["domains"] == [FALLBACK, "www.salon-00.co.za", "www.salon-01.co.za"]


def test_on_a_fresh_stack_the_hook_finds_no_salons_and_leaves_the_widget_alone(
        double: CloudflareDouble, client: Cloudflare) -> None:
    """After the widget's create on a new stack the database may have no schema yet."""
    double.add_database("appointmentbooking-db-fresh")
    [widget] = declare_saas_widgets(double, 1)
    ctx = SaasWidgetContext(stack="fresh", account_id=ACCOUNT, database_name="appointmentbooking-db-fresh",
                            worker_name=WORKER, fallback_hostname=FALLBACK, plan="free",
                            client_factory=sdk(double))
    relist_saas_widget(ctx, 0, str(widget["sitekey"]), log=lambda _: None)
    assert double.turnstile_widgets[str(widget["sitekey"])]["domains"] == [FALLBACK]


# --- the double refuses what Cloudflare refuses ---------------------------------------------------

def test_the_double_takes_fifteen_hostnames_a_widget_by_default_as_the_free_plan_does(
        double: CloudflareDouble, client: Cloudflare) -> None:
    assert double.turnstile_hostname_limit == turnstile_hostname_limit("free") == 15
    widget = double.add_turnstile_widget("form", ["www.a.co.za"])
    hosts = [f"www.s{i}.co.za" for i in range(16)]
    client.turnstile.widgets.update(str(widget["sitekey"]), account_id=ACCOUNT, domains=hosts[:15],
                                    mode="managed", name="form")
    with pytest.raises(cloudflare.BadRequestError):
        client.turnstile.widgets.update(str(widget["sitekey"]), account_id=ACCOUNT, domains=hosts, mode="managed",
                                        name="form")


@pytest.mark.parametrize("domains", [[], ["localhost"], ["*.salon.co.za"], ["https://www.salon.co.za"],
                                     ["www.salon.co.za:443"],
                                     ["www.salon.co.za/book"]])
def test_the_double_refuses_no_hostname_a_wildcard_or_a_scheme_port_or_path(
        double: CloudflareDouble, client: Cloudflare, domains: list[str]) -> None:
    widget = double.add_turnstile_widget("form", ["www.a.co.za"])
    with pytest.raises(cloudflare.BadRequestError):
        client.turnstile.widgets.update(str(widget["sitekey"]), account_id=ACCOUNT, domains=domains,
                                        mode="managed", name="form")
    assert double.turnstile_widgets[str(widget["sitekey"])]["domains"] == ["www.a.co.za"]


def test_the_double_refuses_a_twenty_first_widget_in_an_account(double: CloudflareDouble) -> None:
    for i in range(20):
        double.add_turnstile_widget(f"form-{i}", [f"www.s{i}.co.za"])
    with pytest.raises(ValueError, match="20 widgets"):
        double.add_turnstile_widget("form-20", ["www.s20.co.za"])


def _racing(monkeypatch: pytest.MonkeyPatch, racers: int) -> None:
    """Make `racers` concurrent `tenants add`s all read the widgets before any of them writes (the
    worst interleaving of read-then-PUT), once each; later reads go through untouched."""
    import threading

    import ops.tenants.widgets

    real = ops.tenants.widgets.saas_widgets
    barrier = threading.Barrier(racers, timeout=30)
    first = threading.local()

    def read_together(client: Cloudflare, saas: SaasZone) -> list[object]:
        found = real(client, saas)
        if not getattr(first, "done", False):
            first.done = True
            barrier.wait()
        return found  # type: ignore[return-value]

    monkeypatch.setattr(ops.tenants.widgets, "saas_widgets", read_together)


def test_two_adds_racing_for_the_last_slot_never_leave_a_recorded_salon_off_its_widget(
        double: CloudflareDouble, db: RemoteDatabase, d1: D1State, monkeypatch: pytest.MonkeyPatch) -> None:
    import concurrent.futures

    [first, _second] = declare_saas_widgets(double, 2)
    onboard(db, 2, 1, turnstile_hostname_limit("free") - 2)  # widget 0: the fallback and 13 salons, one slot left
    _racing(monkeypatch, 2)

    def add(n: int) -> int | None:
        with sdk(double)() as client:
            own = remote_database(ACCOUNT, DATABASE, client=client, stack="staging")
            add_tenant(own, client, zone(2), f"racer-{n}", f"www.racer-{n}.co.za")
            return recorded(d1)[f"racer-{n}"]

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        placed = list(pool.map(add, (1, 2)))

    widgets = {w["sitekey"]: w for w in double.turnstile_widgets.values()}
    listed = [widgets[str(first["sitekey"])]["domains"], widgets[str(_second["sitekey"])]["domains"]]
    for n, index in zip((1, 2), placed, strict=True):
        assert index is not None and f"www.racer-{n}.co.za" in listed[index], (n, index, listed)
    assert sorted(placed) == [0, 1], "the loser of the last slot went on the second widget"


def test_a_widget_deleted_outside_our_control_mid_add_is_refused_naming_pulumi_up_and_writes_nothing(
        double: CloudflareDouble, db: RemoteDatabase, d1: D1State, monkeypatch: pytest.MonkeyPatch) -> None:
    import ops.tenants.widgets

    declare_saas_widgets(double, 1)
    real = ops.tenants.widgets.saas_widgets

    def then_deleted(client: Cloudflare, saas: SaasZone) -> list[object]:
        found = real(client, saas)
        double.turnstile_widgets.clear()  # someone deletes it in the dashboard right after our read
        return found  # type: ignore[return-value]

    monkeypatch.setattr(ops.tenants.widgets, "saas_widgets", then_deleted)
    with pytest.raises(TenantError, match=r"was deleted .* run `pulumi up`"):
        add_tenant(db, db.client, zone(1), "gone", "www.gone.co.za")
    assert "gone" not in recorded(d1)
    assert not double.saas_zones[SAAS_ZONE].hostnames


def test_the_double_refuses_a_widget_name_over_254_characters_as_the_api_does(
        double: CloudflareDouble, client: Cloudflare) -> None:
    widget = double.add_turnstile_widget("form", ["www.a.co.za"])
    client.turnstile.widgets.update(str(widget["sitekey"]), account_id=ACCOUNT, domains=["www.a.co.za"],
                                    mode="managed", name="n" * 254)
    with pytest.raises(cloudflare.BadRequestError):
        client.turnstile.widgets.update(str(widget["sitekey"]), account_id=ACCOUNT, domains=["www.a.co.za"],
                                        mode="managed", name="n" * 255)
    # The OpenAPI document's maxLength refuses it (and this test meant to send it).
    [violation] = take_violations()
    assert "name" in violation and "too long" in violation


def test_the_doubles_sitekey_filter_matches_the_whole_sitekey_only_as_the_sdk_documents(
        double: CloudflareDouble, client: Cloudflare) -> None:
    """widget_list_params.py: "`sitekey` uses exact matching" (the name filter matches substrings)."""
    widget = double.add_turnstile_widget("form", ["www.a.co.za"])
    sitekey = str(widget["sitekey"])
    found = list(client.turnstile.widgets.list(account_id=ACCOUNT, filter=f"sitekey:{sitekey}"))
    assert [w.sitekey for w in found] == [sitekey]
    for part in (sitekey[:8], sitekey.lower()):
        assert list(client.turnstile.widgets.list(account_id=ACCOUNT, filter=f"sitekey:{part}")) == []


def _hook_ctx(double: CloudflareDouble) -> SaasWidgetContext:
    return SaasWidgetContext(stack="staging", account_id=ACCOUNT, database_name=DATABASE, worker_name=WORKER,
                             fallback_hostname=FALLBACK, plan="free", client_factory=sdk(double))


def test_a_widget_read_answering_a_partial_list_never_leads_to_a_put_with_fewer_salons(
        double: CloudflareDouble, db: RemoteDatabase) -> None:
    [widget] = declare_saas_widgets(double, 1)
    onboard(db, 1, 0, 5)
    sitekey = str(widget["sitekey"])
    before = list(double.turnstile_widgets[sitekey]["domains"])
    partial = {**double.turnstile_widgets[sitekey], "domains": [FALLBACK, "www.salon-00.co.za"]}
    double.inject(Fault("GET", rf"/challenges/widgets/{sitekey}$", status=200,
                        body=json.dumps({"success": True, "errors": [], "messages": [], "result": partial}).encode()))
    relist_saas_widget(_hook_ctx(double), 0, sitekey, log=lambda _: None)
    assert set(before) <= set(double.turnstile_widgets[sitekey]["domains"])


@pytest.mark.parametrize("failing", [("POST", r"/d1/database/[^/]+/query$"), ("GET", r"/challenges/widgets/[^/]+$")])
def test_an_api_error_mid_hook_fails_naming_tenants_status_and_puts_nothing(
        double: CloudflareDouble, db: RemoteDatabase, failing: tuple[str, str]) -> None:
    from ops.tenants.turnstile_hooks import TurnstileHookError

    [widget] = declare_saas_widgets(double, 1)
    onboard(db, 1, 0, 3)
    sitekey = str(widget["sitekey"])
    double.turnstile_widgets[sitekey]["domains"] = [FALLBACK]  # the provider's PUT took them off
    puts = len([1 for m, _p in double.requests if m == "PUT"])
    double.inject(Fault(failing[0], failing[1], status=500, times=10))
    with pytest.raises(TurnstileHookError, match=r"tenants status --stack staging"):
        relist_saas_widget(_hook_ctx(double), 0, sitekey, log=lambda _: None)
    assert len([1 for m, _p in double.requests if m == "PUT"]) == puts


@pytest.mark.parametrize("value", ["-1", "'one'", "1.5"])
def test_a_row_naming_no_valid_widget_is_reported_off_its_widget_not_a_crash_or_another_widget(
        double: CloudflareDouble, db: RemoteDatabase, d1: D1State, value: str) -> None:
    declare_saas_widgets(double, 2)
    onboard(db, 2, 0, 2)
    conn = sqlite3.connect(d1.path)
    conn.execute(f"UPDATE tenants SET turnstile_widget = {value} WHERE slug = 'salon-01'")
    conn.commit()
    conn.close()
    assert status(db, db.client, zone(2)).not_on_widget == ("www.salon-01.co.za",)
