"""`bookingctl drift` on a stack with booking:saas (issue #27): salons' custom hostnames against the tenants
table, both ways: a custom hostname removed by hand is `missing` (with the `tenants add` that recreates it),
one made by hand that no tenant row names is `unmanaged`. Set up with `bookingctl tenants add` as an operator
would, against the API double."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudflare import Cloudflare

from ops.observation.drift import Context, saas_differences
from ops.targets import remote_database
from ops.tenants.tenant_model import SaasZone
from ops.tenants.tenants import status
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, CloudflareDouble, D1State
from tests.helpers.saas_stack import DATABASE, FALLBACK, SAAS_ZONE, STACK
from tests.integration.bookingctl.test_tenants_cli import d1, project, run  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def _drift(double: CloudflareDouble) -> Context:
    with Cloudflare(api_token=TOKEN, base_url=double.base_url, max_retries=0) as client:
        ctx = Context(client, ACCOUNT, STACK, frozenset())
        db = remote_database(ACCOUNT, DATABASE, client=client, stack=STACK)
        zone = SaasZone(SAAS_ZONE, FALLBACK)
        saas_differences(ctx, status(db, client, zone, served={}))
        return ctx


def test_custom_hostnames_removed_or_added_by_hand_are_found(project: Path, d1: D1State,
                                                             double: CloudflareDouble) -> None:
    for slug, host in (("glamour", "www.glamoursalon.co.za"), ("curls", "www.curls.co.za")):
        code, _, err = run(project, "add", slug, host, "--stack", STACK, "--name", slug.title())
        assert code == 0, err
    assert _drift(double).differences == []
    hostnames = double.saas_zones[SAAS_ZONE].hostnames
    removed = next(k for k, v in hostnames.items() if v["hostname"] == "www.curls.co.za")
    del hostnames[removed]  # deleted in the dashboard
    with Cloudflare(api_token=TOKEN, base_url=double.base_url, max_retries=0) as client:
        client.custom_hostnames.create(zone_id=SAAS_ZONE, hostname="shop.someone-else.co.za",
                                       ssl={"method": "http", "type": "dv"})
    found = {(d.kind, d.resource): d for d in _drift(double).differences}
    assert set(found) == {("missing", "custom hostname www.curls.co.za"),
                          ("unmanaged", "custom hostname shop.someone-else.co.za")}
    assert "bookingctl tenants add curls www.curls.co.za" in found[("missing", "custom hostname www.curls.co.za")].fix
    assert "no tenant row" in found[("unmanaged", "custom hostname shop.someone-else.co.za")].detail
