"""The API double's D1 database list and custom hostname quota, driven through the official SDK (strict)."""

from __future__ import annotations

import cloudflare
import pytest
from cloudflare import Cloudflare

from ops.targets import remote_database
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import CloudflareDouble

SAAS_ZONE = "cd" * 16


def test_the_d1_database_list_pages_through_every_database_once_and_ends(double: CloudflareDouble,
                                                                         client: Cloudflare) -> None:
    # The SDK asks for page n+1 until a page is empty: a list that ignored `page` never ended.
    # per_page is at least 10 (the OpenAPI document's cloudflare-d1-list-databases).
    names = sorted(f"salon-db-{i:02}" for i in range(25))
    for name in names:
        double.add_database(name)
    listed = [d.name for d in client.d1.database.list(account_id=ACCOUNT, per_page=10)]
    assert sorted(listed) == names, "every database once, over three pages of ten"


def test_the_name_search_answers_every_database_containing_it_and_remote_database_takes_the_exact_one(
        double: CloudflareDouble, client: Cloudflare) -> None:
    staging = double.add_database("appointmentbooking-db-staging")
    production = double.add_database("appointmentbooking-db")
    found = {d.name for d in client.d1.database.list(account_id=ACCOUNT, name="appointmentbooking-db")}
    assert found == {"appointmentbooking-db", "appointmentbooking-db-staging"}
    assert remote_database(ACCOUNT, "appointmentbooking-db", client).database_id == production.uuid
    assert remote_database(ACCOUNT, "appointmentbooking-db-staging", client).database_id == staging.uuid


def test_a_custom_hostname_past_the_zones_hard_cap_is_refused_and_not_created(double: CloudflareDouble,
                                                                              client: Cloudflare) -> None:
    zone = double.add_saas_zone(SAAS_ZONE)
    zone.quota_allocated, zone.quota_hard_cap = 1, 2
    ssl = {"method": "txt", "type": "dv"}
    for i in range(2):
        client.custom_hostnames.create(zone_id=SAAS_ZONE, hostname=f"www.salon-{i}.co.za", ssl=ssl)  # type: ignore[arg-type]
    with pytest.raises(cloudflare.BadRequestError):
        client.custom_hostnames.create(zone_id=SAAS_ZONE, hostname="www.salon-2.co.za", ssl=ssl)  # type: ignore[arg-type]
    assert sorted(h["hostname"] for h in zone.hostnames.values()) == ["www.salon-0.co.za", "www.salon-1.co.za"]
    quota = client.custom_hostnames.quota.get(zone_id=SAAS_ZONE)
    assert quota is not None and (quota.used, quota.exceeded) == (2, True)
