"""Issue #26: a create whose answer was lost (Cloudflare created it, the engine never heard so) is in no
stack's state, so every later `up` failed on its name. `preview up` now deletes what carries the preview's
own `-pr-N` names and its state does not hold, before the engine's `up` (ops/previews/sweep.py): these
tests lose the answer to each kind's create, and check that nothing the state holds, nothing of staging's
and nothing of another preview (pr-12, whose names share pr-1's prefix) is ever deleted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cloudflare import Cloudflare

from booking_shared.project import find_project
from bookingctl.cli import app
from ops.previews.stackfile import write_stack
from ops.previews.sweep import PreviewRefused, sweep
from tests.helpers.cf_double import TOKEN, CloudflareDouble
from tests.helpers.cf_double.faults import Fault
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.conftest import STAGING_BUCKET, STAGING_DB
from tests.integration.previews.test_preview_lifecycle import run, runner


def env_of(api: CloudflareDouble) -> dict[str, str]:
    """The environment test_preview_lifecycle.run sets, for a run whose stdout and stderr are read apart."""
    return {"BOOKING_TODAY": "2026-12-05", "CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_BASE_URL": api.base_url,
            "BOOKING_SCRUB_SALT": "a-test-salt-that-is-long-enough"}

pytestmark = pytest.mark.slow


def ids(api: CloudflareDouble) -> set[tuple[str, str]]:
    """Every resource of the kinds a preview creates, by kind and the id the API gave it."""
    return ({("d1", u) for u in api.databases} | {("r2", b) for b in api.buckets}
            | {("worker", w) for w in api.worker_ids} | {("pages", p["id"]) for p in api.pages_projects.values()}
            | {("dns", r) for r in api.dns_records} | {("route", r) for r in api.worker_routes}
            | {("domain", f"{p}/{d}") for p, ds in api.pages_domains.items() for d in ds})


LOST = {  # the create whose answer is lost -> the kind `up` then reports deleting, and the name
    "d1": (r"/d1/database$", "D1Database appointmentbooking-db-staging-pr-1"),
    "worker": (r"/workers/workers$", "Worker appointmentbooking-api-staging-pr-1"),
    "pages": (r"/pages/projects$", "PagesProject appointmentbooking-staging-pr-1"),
    "pages-domain": (r"/pages/projects/[^/]+/domains$", "PagesDomain staging-pr-1.instylehairboutique.co.za"),
    "dns": (r"/dns_records$", "DnsRecord staging-pr-1.instylehairboutique.co.za"),
    "route": (r"/workers/routes$", "WorkersRoute staging-pr-1.instylehairboutique.co.za/"),
}


@pytest.mark.parametrize("kind", sorted(LOST))
def test_a_lost_answer_to_a_create_is_deleted_by_the_next_up_and_nothing_else_is(
        kind: str, project: Path, api: CloudflareDouble, engine: DoubleEngine, staging_seeded: Any) -> None:
    code, out = run(project, api, "up", "--pr", "12")
    assert code == 0, out[-800:]
    others = ids(api)  # staging's and pr-12's
    path, deleted = LOST[kind]
    api.inject(Fault("POST", path, 500, applied=True))
    code, first = run(project, api, "up", "--pr", "1")
    assert code != 0
    assert "bookingctl preview up --pr 1" in first.strip().splitlines()[-1], first[-600:]
    retry = runner.invoke(app, ["preview", "up", "--pr", "1", "--project-dir", str(project)], env=env_of(api))
    assert retry.exit_code == 0, (retry.stdout + retry.stderr)[-800:]
    # Said on stderr, with why; only the leftover: what the first up's state held is kept.
    assert f"deleted {deleted}" in retry.stderr and "answer was lost" in retry.stderr, retry.stderr[-1500:]
    assert retry.stderr.count("deleted ") == 1 and "deleted " not in retry.stdout
    assert others <= ids(api)  # nothing of staging's or of pr-12 was deleted
    assert any(d.name == STAGING_DB for d in api.databases.values()) and STAGING_BUCKET in api.buckets


def test_up_of_a_live_preview_deletes_nothing_its_state_holds(
        project: Path, api: CloudflareDouble, engine: DoubleEngine, staging_seeded: Any) -> None:
    code, out = run(project, api, "up", "--pr", "1")
    assert code == 0, out[-800:]
    before = ids(api)
    cfg = write_stack(find_project(project), 1, today=dt.date(2026, 12, 5))
    with Cloudflare(api_token=TOKEN, base_url=api.base_url, max_retries=0) as client:
        # Every resource of pr-1 carries its names, and the state holds each: none is swept.
        assert sweep(client, cfg, "pr-1", engine.held("pr-1"), print) == []
        assert ids(api) == before
        # The refusal comes before any lookup: another stack's names are never swept as this one's.
        with pytest.raises(PreviewRefused, match="not a preview's name"):
            sweep(client, cfg, "pr-2", [], print)
    assert ids(api) == before
    code, out = run(project, api, "up", "--pr", "1")  # a push
    assert code == 0 and "deleted " not in out, out[-800:]
    assert ids(api) == before


def test_a_lost_answer_to_the_widget_create_is_found_by_the_previews_own_hostname(
        project: Path, api: CloudflareDouble, engine: DoubleEngine, staging_seeded: Any) -> None:
    # A widget is named per environment (staging's name), so it is found by what it serves: the
    # preview's own hostname alone. Staging's widget of the same name is never touched.
    cfg = write_stack(find_project(project), 1, today=dt.date(2026, 12, 5))
    with Cloudflare(api_token=TOKEN, base_url=api.base_url, max_retries=0) as client:
        client.turnstile.widgets.create(account_id=cfg.account_id, name="appointmentbooking staging booking form",
                                        domains=["staging.instylehairboutique.co.za"], mode="managed")
    staging_widgets = set(api.turnstile_widgets)
    assert staging_widgets
    api.inject(Fault("POST", r"/challenges/widgets$", 500, applied=True))
    code, _ = run(project, api, "up", "--pr", "1")
    assert code != 0
    [lost] = [k for k, w in api.turnstile_widgets.items() if k not in staging_widgets]
    assert api.turnstile_widgets[lost]["domains"] == ["staging-pr-1.instylehairboutique.co.za"]
    retry = runner.invoke(app, ["preview", "up", "--pr", "1", "--project-dir", str(project)], env=env_of(api))
    assert retry.exit_code == 0, (retry.stdout + retry.stderr)[-800:]
    assert f"deleted TurnstileWidget {lost}" in retry.stderr, retry.stderr[-1500:]
    assert lost not in api.turnstile_widgets and staging_widgets <= set(api.turnstile_widgets)
    # The widget the retried up created is the state's: a further up deletes nothing.
    again = runner.invoke(app, ["preview", "up", "--pr", "1", "--project-dir", str(project)], env=env_of(api))
    assert again.exit_code == 0 and "deleted " not in again.stderr, again.stderr[-800:]
    code, _ = run(project, api, "down", "--pr", "1")
    assert code == 0 and set(api.turnstile_widgets) == staging_widgets
