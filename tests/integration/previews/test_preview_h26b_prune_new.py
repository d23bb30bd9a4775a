"""hostile26b: the hourly prune (preview-cleanup.yml, cron "17 * * * *", its own concurrency group) destroys
the preview of an OPEN pull request whose first `preview up` is under way, then sweeps its names.

A new preview's stack exists from its first `pulumi preview` (PulumiEngine.check: create_or_select_stack)
and has no completed update, so `LiveStack.last_update` is None; ops/previews/lifecycle.py prune computes
`idle = (now - _updated(live)).days` with `_updated` answering datetime.min for None (l.441-443): about
739,000 days, over MAX_LIFETIME_DAYS, so "not updated for 739... days": preview_down. Before the lock of the
`up` is taken that destroy succeeds, and since 99bfd94 the down's sweep (held = []) deletes whatever the
`up` creates meanwhile (see test_preview_h26b_cap_race.py); once the `up` holds the lock, the destroy
fails and prune stops there, leaving every later preview in the list unpruned."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cloudflare import Cloudflare

from booking_shared.project import find_project
from ops.previews.lifecycle import prune
from ops.previews.stackfile import write_stack
from tests.helpers.cf_double import TOKEN, CloudflareDouble
from tests.helpers.preview_engine import DoubleEngine, StackState
from tests.integration.previews.conftest import NOW

pytestmark = pytest.mark.slow


def test_prune_keeps_the_preview_an_open_pull_request_is_creating(
        project: Path, api: CloudflareDouble, engine: DoubleEngine, staging_seeded: Any) -> None:
    write_stack(find_project(project), 5, today=dt.date(2026, 12, 5))
    engine.states["pr-5"] = StackState()  # its job ran `pulumi preview`; its `pulumi up` is starting
    with Cloudflare(api_token=TOKEN, base_url=api.base_url, max_retries=0) as client:
        gone = prune(find_project(project), engine=engine, client=client, open_prs={5}, today=dt.date(2026, 12, 5),
                     now=NOW, log=lambda _: None)
    assert gone == [], f"prune destroyed the open pull request 5's preview being created: {gone}"
