"""hostile26b: `down`'s new sweep (held = []) runs after `destroy`, so it deletes whatever carries the
victim's names at that moment, including what the victim's own job has just created and its state holds.

Who destroys a preview while its own job runs: another pull request's `preview up` (enforce_cap, in the
workflow's concurrency group preview-environment-<ITS number>, not the victim's) and the cleanup workflow's
prune (group preview-cleanup). A new pull request's stack exists from its first `pulumi preview`
(PulumiEngine.check: create_or_select_stack) and has never been updated, so enforce_cap sorts it FIRST
(_updated: last_update None -> datetime.min): the preview being created right now is the favourite victim.
Before the sweep that cost the victim its stack (its `up` recreates it: create_or_select_stack). Now the
destroyer's sweep, run right after its `destroy` returns (ops/previews/lifecycle.py preview_down l.~469,
`sweep(client, cfg, stack, [], ...)`), lists D1 and R2 last, by which time the victim's `pulumi up` has
created them (they depend on nothing): deleted while the victim's state holds them. The victim then fails
in its migrations (its D1 is gone) or, worse, comes up with a Worker bound to a deleted database.

The engine double runs one thing at a time, so the interleaving is forced: the victim's `up` runs when the
destroyer's `destroy` of it returns (the window is the sweep's dozen list calls, seconds)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from booking_shared.project import find_project
from ops.previews.stackfile import write_stack
from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.preview_engine import DoubleEngine, StackState
from tests.integration.previews.test_preview_lifecycle import run

pytestmark = pytest.mark.slow


def test_the_cap_never_deletes_what_the_victims_state_holds(
        project: Path, api: CloudflareDouble, engine: DoubleEngine, staging_seeded: Any) -> None:
    staging = project / "Pulumi.staging.yaml"
    staging.write_text(staging.read_text() + "  booking:previewCap: 1\n")
    code, out = run(project, api, "up", "--pr", "2")
    assert code == 0, out[-800:]
    # Pull request 1 was just opened: its job wrote its stack file and ran `pulumi preview`, which created
    # the stack (no update yet). Its `pulumi up` is about to start.
    write_stack(find_project(project), 1, today=dt.date(2026, 12, 5))
    engine.states["pr-1"] = StackState()
    code, out = run(project, api, "up", "--pr", "2")  # a push to pull request 2: the cap would destroy pr-1
    assert code == 0, out[-800:]
    # Fixed: a stack never updated is being created by its own job; the cap does not pick it (it holds
    # nothing yet, and a destroy now would race that job's up). pr-1's up then holds what it made.
    assert "destroying pr-1" not in out, out[-800:]
    engine.up("pr-1", lambda _: None)
    held = engine.held("pr-1")
    assert held, "pr-1's up created nothing"
    live = (set(api.databases) | set(api.buckets) | set(api.worker_ids)
            | set(api.dns_records) | set(api.worker_routes))
    kinds = ("D1Database", "R2Bucket", "Worker", "DnsRecord", "WorkersRoute")
    gone = [f"{h.type.rsplit(':', 1)[-1]} {h.name}" for h in held if h.type.endswith(kinds) and h.id not in live]
    assert not gone, f"deleted while pr-1's state holds them: {gone}"
    # Once pr-1 has been updated it counts: the next push of pull request 2 brings the live ones back to the cap.
    code, out = run(project, api, "up", "--pr", "2")
    assert code == 0 and "destroying pr-1" in out, out[-800:]
