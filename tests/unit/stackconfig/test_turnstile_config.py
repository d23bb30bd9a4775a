"""Turnstile at salon scale, before anything is planned: how site hostnames fill widgets, and
`booking:turnstile` (the plan, the number of SaaS widgets, the account's widget limit)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from booking_shared.limits import WORKER_ENV_VAR_BYTES
from booking_shared.turnstile import hostnames_text, site_shards
from stackconfig.files import parse_config
from stackconfig.model import StackConfig
from stackconfig.problems import ConfigError
from tests.helpers import REPO
from tests.helpers.stack_config import BASE, SECRETS

DOMAIN = "www.instylehairboutique.co.za"


def tenants(count: int, start: int = 0) -> list[dict[str, str]]:
    return [{"slug": f"salon-{i}", "hostname": f"www.salon-{i}.co.za", "zoneId": f"{i + 1:032x}",
             "zonePlan": "business"}
            for i in range(start, start + count)]


def parse(**changes: Any) -> StackConfig:
    flat = dict(BASE)
    flat.update({f"booking:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in changes.items()})
    return parse_config(flat, set(SECRETS), stack="production", source="Pulumi.production.yaml", project_root=REPO)


def problems(**changes: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as info:
        parse(**changes)
    return [(p.key, p.found, p.allowed) for p in info.value.problems]


def test_the_main_domain_and_fourteen_tenants_fill_one_free_widget_and_the_fifteenth_tenant_starts_a_second() -> None:
    hosts = [DOMAIN, *(t["hostname"] for t in tenants(15))]
    shards = site_shards(hosts, "free")
    assert [len(s) for s in shards] == [15, 1]
    assert shards[0][0] == DOMAIN and shards[1] == ("www.salon-14.co.za",)


def test_adding_a_tenant_moves_no_other_hostname_to_another_widget() -> None:
    hosts = [DOMAIN, *(t["hostname"] for t in tenants(40))]
    before = {h: i for i, shard in enumerate(site_shards(hosts, "free")) for h in shard}
    after = {h: i for i, shard in enumerate(site_shards([*hosts, "book.newsalon.co.za"], "free")) for h in shard}
    assert {h: after[h] for h in before} == before
    assert after["book.newsalon.co.za"] == 2  # 41 hostnames fill two widgets and start a third


def test_an_enterprise_widget_takes_up_to_200_hostnames_but_stops_before_its_worker_binding_passes_5_kb() -> None:
    short = [f"s{i}.co.za" for i in range(450)]
    assert [len(s) for s in site_shards(short, "enterprise")] == [200, 200, 50]
    long = [f"www.a-rather-long-salon-name-{i:04d}.co.za" for i in range(200)]
    shards = site_shards(long, "enterprise")
    assert len(shards) > 1 and sum(len(s) for s in shards) == 200
    assert all(len(hostnames_text(s).encode()) <= WORKER_ENV_VAR_BYTES for s in shards)


def test_the_turnstile_plan_defaults_to_free_with_one_saas_widget() -> None:
    cfg = parse()
    assert (cfg.turnstile.plan, cfg.turnstile.saas_widgets) == ("free", 1)
    saas = {"zoneId": "ef" * 16, "fallbackHostname": "salons.instylebookings.co.za", "zonePlan": "business"}
    assert parse(turnstile={"plan": "enterprise", "saasWidgets": 3}, saas=saas).turnstile.saas_widgets == 3


def test_an_unknown_turnstile_plan_names_the_key_and_the_plans() -> None:
    [(key, found, allowed)] = problems(turnstile={"plan": "business"})
    assert key == "turnstile.plan" and "business" in found and "'free'" in allowed and "'enterprise'" in allowed


def test_saas_widgets_without_booking_saas_is_refused() -> None:
    [(key, _found, allowed)] = problems(turnstile={"saasWidgets": 2})
    assert key == "turnstile.saasWidgets" and "booking:saas" in allowed


def test_a_thousand_tenants_on_the_free_plan_are_refused_naming_the_widget_limits() -> None:
    [(key, found, allowed)] = problems(tenants=tenants(1000))
    assert key == "tenants" and "1000 tenants" in found
    assert "1001 site hostnames" in allowed and "67 Turnstile widgets" in allowed and "at most 15" in allowed
    assert "at most 20 widgets" in allowed and "booking:turnstile.plan to enterprise" in allowed


def test_a_thousand_tenants_on_turnstile_enterprise_fit_the_account() -> None:
    cfg = parse(tenants=tenants(1000), turnstile={"plan": "enterprise"})
    assert len(cfg.tenants) == 1000


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_saas_widget_count_is_refused_not_read_as_one_or_zero(value: bool) -> None:
    saas = {"zoneId": "cd" * 16, "fallbackHostname": "salons.instylebookings.co.za", "zonePlan": "business"}
    found = problems(saas=saas, turnstile={"saasWidgets": value})
    assert [k for k, _found, _allowed in found] == ["turnstile.saasWidgets"]
