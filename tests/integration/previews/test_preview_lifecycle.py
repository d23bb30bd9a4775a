"""`bookingctl preview up|down` against the API double (issue #26, point 4): two pull requests' previews
created with staging's backup scrubbed into their databases, a push that updates one, the cap, and `down`
for both leaving nothing of theirs behind. The engine is tests/helpers/preview_engine.py (the real program
and pack, the provider's calls through the SDK); everything else is the command's own code."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import bookingctl.commands.preview as preview_command
from booking_shared import columns
from bookingctl.cli import app
from ops.previews.data import MARKER
from tests.helpers import REPO
from tests.helpers.cf_double import TOKEN, CloudflareDouble
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.conftest import NOW, STAGING_BUCKET, STAGING_DB

pytestmark = pytest.mark.slow

runner = CliRunner()


def run(project: Path, api: CloudflareDouble, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["preview", *args, "--project-dir", str(project)], env={
        "BOOKING_TODAY": "2026-12-05", "CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_BASE_URL": api.base_url,
        "BOOKING_SCRUB_SALT": "a-test-salt-that-is-long-enough"})
    return result.exit_code, result.stdout + result.stderr


def rows_of(api: CloudflareDouble, name: str) -> dict[str, list[dict[str, Any]]]:
    """The data of a preview's D1: every table but the migrations' record and the completed load's."""
    [db] = [d for d in api.databases.values() if d.name == name]
    conn = sqlite3.connect(db.path)
    conn.row_factory = sqlite3.Row
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                         "'sqlite_%' AND name NOT IN ('d1_migrations', ?)", (MARKER,))]
    return {t: [dict(r) for r in conn.execute(f'SELECT * FROM "{t}"')] for t in tables}


def owned(api: CloudflareDouble, pr: int) -> dict[str, list[str]]:
    """Everything in the double whose name or hostname is pull request `pr`'s preview's."""
    mark = re.compile(rf"pr-{pr}\b")
    return {kind: sorted(n for n in names if mark.search(n)) for kind, names in {
        "databases": [d.name for d in api.databases.values()], "buckets": list(api.buckets),
        "workers": list(api.scripts), "routes": [r["pattern"] for r in api.worker_routes.values()],
        "dns": [r["name"] for r in api.dns_records.values()], "pages": list(api.pages_projects),
        "widgets": [w["name"] + " " + " ".join(w["domains"]) for w in api.turnstile_widgets.values()],
        "lifecycles": list(api.lifecycles)}.items()}


def test_two_previews_come_up_with_scrubbed_data_a_push_updates_one_and_down_leaves_nothing(
        project: Path, api: CloudflareDouble, engine: DoubleEngine,
        staging_seeded: dict[str, list[dict[str, Any]]]) -> None:
    for pr in (1, 2):
        code, out = run(project, api, "up", "--pr", str(pr))
        assert code == 0, out
        assert f"preview pr-{pr}: https://staging-pr-{pr}.instylehairboutique.co.za" in out
        assert all(owned(api, pr)[kind] for kind in ("databases", "buckets", "workers", "routes", "dns", "pages"))
    # Staging's own resources were never touched.
    assert [d.name for d in api.databases.values()].count(STAGING_DB) == 1 and STAGING_BUCKET in api.buckets

    # Each preview holds every row of staging's backup, with keys and joins kept and no personal value left.
    classification = columns.load(REPO / "migrations")
    for pr in (1, 2):
        loaded = rows_of(api, f"{STAGING_DB}-pr-{pr}")
        assert {t: len(r) for t, r in loaded.items()} == {t: len(r) for t, r in staging_seeded.items()}
        for table, original in staging_seeded.items():
            for before, after in zip(sorted(original, key=repr), sorted(loaded[table], key=repr), strict=False):
                assert before.keys() == after.keys()
        # Every value of every column migrations/columns.yaml calls personal, compared with the same column after.
        compared = 0
        for (table, column), kind in classification.items():
            if kind not in columns.REPLACED:
                continue
            before = {v for r in staging_seeded.get(table, []) for k, v in r.items() if k.lower() == column and v}
            after = {v for r in loaded.get(table, []) for k, v in r.items() if k.lower() == column}
            assert not before & after, (table, column, sorted(map(str, before & after))[:5])
            compared += len(before)
        assert compared > 100

    # A push to pull request 1: a new Worker bundle. The preview is updated (a new version serves), its data kept.
    worker_name = next(n for n in api.scripts if n.endswith("-pr-1"))
    serving_before = api.scripts[worker_name].shares()
    bundle = project / "worker" / "src" / "index.js"
    bundle.write_text(bundle.read_text() + "\n// changed by the pull request\n")
    code, out = run(project, api, "up", "--pr", "1")
    assert code == 0, out
    assert "holds the load of backup" in out and "kept as it is" in out
    assert api.scripts[worker_name].shares() != serving_before
    assert engine.ups == ["pr-1", "pr-2", "pr-1"]

    # A backup the preview's own hook wrote: R2 refuses to delete a bucket with objects, so down empties it.
    api.buckets[f"{STAGING_BUCKET}-pr-2"]["2026-12-05T0600Z.sql"] = b"x"
    for pr in (1, 2):
        code, out = run(project, api, "down", "--pr", str(pr))
        assert code == 0, out
        assert owned(api, pr) == {k: [] for k in owned(api, pr)}
        assert not (project / f"Pulumi.pr-{pr}.yaml").exists()
    assert not api.scripts and not api.worker_routes and not api.dns_records and not api.pages_projects
    assert not api.turnstile_widgets and [d.name for d in api.databases.values()] == [STAGING_DB]
    assert list(api.buckets) == [STAGING_BUCKET] and engine.states == {}


def test_the_least_recently_updated_preview_goes_first_when_the_cap_is_reached(
        project: Path, api: CloudflareDouble, engine: DoubleEngine,
        staging_seeded: dict[str, list[dict[str, Any]]]) -> None:
    staging = project / "Pulumi.staging.yaml"
    staging.write_text(staging.read_text() + "  booking:previewCap: 2\n")
    for pr in (1, 2, 1, 3):  # pr-1 updated after pr-2: pr-2 is the least recently updated when pr-3 comes
        code, out = run(project, api, "up", "--pr", str(pr))
        assert code == 0, out
    assert "destroying pr-2" in out
    assert sorted(engine.states) == ["pr-1", "pr-3"]
    assert owned(api, 2) == {k: [] for k in owned(api, 2)}
    assert owned(api, 1)["databases"] and owned(api, 3)["databases"]


def test_a_missing_salt_refuses_before_anything_is_created(project: Path, api: CloudflareDouble,
                                                         engine: DoubleEngine) -> None:
    result = runner.invoke(app, ["preview", "up", "--pr", "5", "--project-dir", str(project)], env={
        "BOOKING_TODAY": "2026-12-05", "CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_BASE_URL": api.base_url,
        "BOOKING_SCRUB_SALT": "short"})
    assert result.exit_code != 0 and "BOOKING_SCRUB_SALT" in result.stdout + result.stderr
    assert engine.states == {} and not (project / "Pulumi.pr-5.yaml").exists() and not api.scripts


def test_the_real_engine_is_refused_without_every_test_mode_key_before_anything_happens(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREVIEW_PAYSTACK_SECRET_KEY", "sk_test_x")
    monkeypatch.delenv("PREVIEW_WHATSAPP_TOKEN", raising=False)
    with pytest.raises(preview_command.UsageError) as refused:
        preview_command.make_engine(project, None)
    message = str(refused.value)
    assert "PREVIEW_GOOGLE_CALENDAR_CREDENTIALS" in message and "PREVIEW_WHATSAPP_TOKEN" in message
    assert preview_command.secret_env("paystackSecretKey") == "PREVIEW_PAYSTACK_SECRET_KEY"


def test_prune_destroys_previews_of_closed_pull_requests_and_idle_ones(
        project: Path, api: CloudflareDouble, engine: DoubleEngine,
        staging_seeded: dict[str, list[dict[str, Any]]]) -> None:
    for pr in (1, 2, 3):
        assert run(project, api, "up", "--pr", str(pr))[0] == 0
    engine.states["pr-3"].last_update = NOW - dt.timedelta(days=40)  # nobody pushed for 40 days
    code, out = run(project, api, "prune", "--open", "2,3,7")
    assert code == 0, out
    assert "pr-1: its pull request is not open" in out and "pr-3: not updated for" in out
    assert sorted(engine.states) == ["pr-2"] and owned(api, 1) == {k: [] for k in owned(api, 1)}
    code, out = run(project, api, "prune", "--open", "two")
    assert code == 2 and "pull request numbers separated by commas" in out
    code, out = run(project, api, "down", "--pr", "9")  # a pull request that never had a preview
    assert code == 0 and "has no live preview" in out and not (project / "Pulumi.pr-9.yaml").exists()


def test_down_also_deletes_the_preview_bucket_and_database_no_state_knows(
        project: Path, api: CloudflareDouble, engine: DoubleEngine,
        staging_seeded: dict[str, list[dict[str, Any]]]) -> None:
    """A create whose answer was lost leaves its resource in the account and in no state; `down` deletes
    the preview's database and bucket by their names (each ends in -pr-N) after `pulumi destroy`."""
    assert run(project, api, "up", "--pr", "1")[0] == 0
    state = engine.states["pr-1"].resources
    for urn in [u for u, a in state.items() if a.type.endswith(("R2Bucket", "R2BucketLifecycle", "D1Database"))]:
        del state[urn]  # as if the engine never heard the answers to their creates
    code, out = run(project, api, "down", "--pr", "1")
    assert code == 0, out
    assert "deleted D1Database appointmentbooking-db-staging-pr-1" in out and "state does not hold it" in out
    assert owned(api, 1)["databases"] == [] and owned(api, 1)["buckets"] == []
    assert [d.name for d in api.databases.values()] == [STAGING_DB] and STAGING_BUCKET in api.buckets
