"""hostile26b: the sweep takes a resource as held only under the type token it expects (sweep.py:82-88,
`keys[h.type]`), but the engine matches a state entry to the program's resource through its aliases too.
pulumi_cloudflare 6.23 DnsRecord declares `aliases=[pulumi.Alias(type_="cloudflare:index/record:Record")]`
(pulumi_cloudflare/dns_record.py:728): a state that holds the preview's CNAME as a `Record` (a stack written
by the deprecated `cloudflare.Record`, or any future renamed token with an alias) is the same resource to the
engine, which migrates it on the next `up` without touching Cloudflare. The sweep, run BEFORE that `up`,
deletes it; the `up` then sees no diff (no refresh), so the preview's hostname has no DNS record while the
state says it has. Latent today (this program never used `Record`), hence LOW."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cloudflare import Cloudflare

from booking_shared.project import find_project
from ops.previews.engine import Held
from ops.previews.stackfile import write_stack
from ops.previews.sweep import sweep
from tests.helpers.cf_double import TOKEN, CloudflareDouble

pytestmark = pytest.mark.slow


def test_a_record_held_under_its_aliased_type_is_not_swept(project: Path, api: CloudflareDouble) -> None:
    cfg = write_stack(find_project(project), 1, today=dt.date(2026, 12, 5))
    with Cloudflare(api_token=TOKEN, base_url=api.base_url, max_retries=0) as client:
        record = client.dns.records.create(zone_id=cfg.zone_id, name=cfg.domain, type="CNAME", proxied=True, ttl=1,
                                           content=f"{cfg.pages_project_name}.pages.dev")
        held = [Held("cloudflare:index/record:Record", str(record.id), cfg.domain)]
        deleted = sweep(client, cfg, "pr-1", held, lambda _: None)
    assert deleted == [] and record.id in api.dns_records, deleted
