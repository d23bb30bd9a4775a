"""The operations' types build themselves from the typed config (`X.of(cfg)`), naming the stack."""

from __future__ import annotations

import json

import pytest
from cloudflare import Cloudflare

from ops.releases.release import Site
from ops.targets import RemoteDatabase
from ops.tenants.tenant_model import SaasZone, TenantInputError
from stackconfig.files import parse_config, read_stack_config
from tests.helpers import REPO
from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.stack_config import BASE, SECRETS


def test_a_site_is_the_stacks_worker_database_and_site_url() -> None:
    cfg = read_stack_config("staging", REPO)
    assert Site.of(cfg) == Site(cfg.account_id, cfg.worker_name, cfg.database_name, f"https://{cfg.domain}")


def test_a_stack_without_saas_has_no_saas_zone_and_the_refusal_names_the_stack() -> None:
    cfg = read_stack_config("production", REPO)
    assert cfg.saas is None
    with pytest.raises(TenantInputError, match=r"stack production has no booking:saas.*Pulumi\.production\.yaml"):
        SaasZone.of(cfg)


def test_a_saas_zone_carries_the_zone_the_account_and_the_salons_widgets() -> None:
    saas = {"zoneId": "c" * 32, "fallbackHostname": "salons.example.co.za", "minTlsVersion": "1.3",
            "zonePlan": "business"}
    flat = {**BASE, "booking:saas": json.dumps(saas), "booking:turnstile": json.dumps({"saasWidgets": 3})}
    cfg = parse_config(flat, set(SECRETS), stack="production", source="Pulumi.production.yaml", project_root=REPO)
    zone = SaasZone.of(cfg)
    assert (zone.zone_id, zone.fallback_hostname, zone.min_tls_version) == ("c" * 32, "salons.example.co.za", "1.3")
    assert (zone.account_id, zone.turnstile_widgets, zone.turnstile_plan) == (cfg.account_id, 3, "free")
    assert zone.turnstile_widget == f"{cfg.worker_name}-saas-salons"


def test_the_remote_database_is_found_by_the_configs_name_and_knows_its_stack(
        double: CloudflareDouble, client: Cloudflare) -> None:
    cfg = read_stack_config("staging", REPO)
    double.add_database(cfg.database_name)
    db = RemoteDatabase.of(cfg, client)
    assert (db.name, db.stack, db.fix_target) == (cfg.database_name, "staging", "--stack staging")
