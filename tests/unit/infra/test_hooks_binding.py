"""The hooks' callbacks: the operations run on a worker thread, off the program's event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pulumi
import pytest

from infra.hooks import callbacks, deployed_version
from stackconfig.deploy import DeployContext


def context(tmp_path: Path) -> DeployContext:
    return DeployContext(stack="staging", account_id="a" * 32, database_name="db-staging", worker_name="w",
                         base_url="https://example.invalid", migrations_dir=tmp_path, backup_dir=tmp_path)


def test_the_operations_run_off_the_event_loop_with_the_new_version(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's callbacks are served on the program's event loop; an operation that polls and
    sleeps for minutes must not block it (issue: hooks were synchronous on the loop)."""
    import ops.releases.hooks

    seen: dict[str, object] = {}

    def fake_before(ctx: DeployContext, log: object, *, version_id: str | None) -> None:
        seen["before"] = (threading.current_thread(), version_id)

    def fake_after(ctx: DeployContext, *, deployment_id: str | None, version_id: str | None, log: object) -> None:
        seen["after"] = (threading.current_thread(), deployment_id, version_id)

    monkeypatch.setattr(ops.releases.hooks, "before_traffic", fake_before)
    monkeypatch.setattr(ops.releases.hooks, "after_traffic", fake_after)
    before, after = callbacks(context(tmp_path))
    # Before the deployment exists only its inputs are known; they name the version it will serve.
    args = pulumi.ResourceHookArgs(urn="urn", id="dep-2", name="api-deployment", type="t",
                                   new_inputs={"versions": [{"percentage": 100.0, "versionId": "v-new"}]},
                                   new_outputs={"versions": [{"percentage": 100.0, "versionId": "v-new"}]})

    async def run() -> threading.Thread:
        await before(args)
        await after(args)
        return threading.current_thread()

    loop_thread = asyncio.run(run())
    before_thread, before_version = seen["before"]  # type: ignore[misc]
    assert before_thread is not loop_thread and before_version == "v-new"
    thread, deployment, version = seen["after"]  # type: ignore[misc]
    assert thread is not loop_thread and (deployment, version) == ("dep-2", "v-new")


@pytest.mark.parametrize(("outputs", "version"), [
    ({"versions": [{"percentage": 100.0, "versionId": "v1"}]}, "v1"),
    ({"versions": [{"percentage": 50.0, "versionId": "v1"}, {"percentage": 50.0, "versionId": "v2"}]}, None),
    ({}, None), (None, None),
])
def test_the_version_under_verification_is_the_one_taking_all_traffic(outputs: dict[str, object] | None,
                                                                     version: str | None) -> None:
    assert deployed_version(outputs) == version


def test_the_hooks_context_carries_the_stacks_corpus_and_approvals() -> None:
    import json

    from stackconfig.files import parse_config
    from tests.helpers import REPO
    from tests.helpers.stack_config import BASE, SECRETS

    flat = {**BASE, "booking:servingQueries": json.dumps(["migrations/0001_initial_schema.sql"]),
            "booking:approvedUnsafeMigrations": json.dumps([{"name": "0007_drop_notes.sql", "sha256": "ab" * 32,
                                                             "reason": "the app stopped reading notes in 41"}])}
    cfg = parse_config(flat, set(SECRETS), stack="production", source="Pulumi.production.yaml", project_root=REPO)
    ctx = DeployContext.of(cfg, REPO)
    assert (ctx.stack, ctx.base_url) == ("production", cfg.site_url)
    assert ctx.serving_queries == (REPO / "migrations" / "0001_initial_schema.sql",)
    assert ctx.approved_unsafe_migrations == (("0007_drop_notes.sql", "the app stopped reading notes in 41",
                                               "ab" * 32),)


def test_the_error_hook_hands_the_failure_and_the_new_version_to_the_operation_off_the_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ops.releases.hooks
    from infra.hooks import error_callback

    seen: dict[str, object] = {}

    def fake_failed(ctx: DeployContext, *, operation: str, errors: list[str], version_id: str | None,
                    log: object) -> bool:
        seen.update(thread=threading.current_thread(), operation=operation, errors=errors, version=version_id)
        return False

    monkeypatch.setattr(ops.releases.hooks, "deployment_failed", fake_failed)
    args = pulumi.ErrorHookArgs(urn="urn", id="", name="api-deployment", type="t", failed_operation="create",
                                errors=["500 Internal Server Error"],
                                new_inputs={"versions": [{"percentage": 100.0, "versionId": "v-new"}]})

    async def run() -> tuple[bool, threading.Thread]:
        return await error_callback(context(tmp_path))(args), threading.current_thread()

    retry, loop_thread = asyncio.run(run())
    assert retry is False and seen["thread"] is not loop_thread
    assert (seen["operation"], seen["errors"], seen["version"]) == ("create", ["500 Internal Server Error"], "v-new")


def test_the_error_hook_changes_nothing_in_a_preview(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Error hooks have no on_dry_run setting: the engine would call this one for a failed preview create."""
    import ops.releases.hooks
    from infra.hooks import error_callback

    monkeypatch.setattr(pulumi.runtime.settings.SETTINGS, "dry_run", True)
    monkeypatch.setattr(ops.releases.hooks, "deployment_failed", lambda *a, **k: pytest.fail("ran in a preview"))
    args = pulumi.ErrorHookArgs(urn="urn", id="", name="api-deployment", type="t", failed_operation="create",
                                errors=["invalid"])
    assert asyncio.run(error_callback(context(tmp_path))(args)) is False
