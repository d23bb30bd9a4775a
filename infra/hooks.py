"""Binds the deployment hooks (`ops/releases/hooks.py`) to the Worker deployment.

Only this Pulumi-facing half is imported when the program is planned or previewed: the callbacks
import `ops.releases.hooks` when a hook actually fires, so a plan never pays for the operations layer
(the Cloudflare SDK, httpx, the dumper), and `infra` never imports `ops` at module level.

The hooks do blocking work (HTTP calls, polling, retries with sleeps); they run on a worker
thread, so the program's event loop, which also serves the engine's other callbacks, stays free.
Hooks never run in preview or under mocks (`on_dry_run` is not set). An exception in an after
hook fails `pulumi up` from CLI 3.238.0; `ignore_errors` is left unset on purpose, so a failed
verification always fails the update. The error hook (`on_error`) runs when the provider's create
fails with any error only from CLI 3.244.0 (pulumi/pulumi#23347; before, only a partial failure
reached it), which is why `Pulumi.yaml` requires 3.244.0. Error hooks have no `on_dry_run` setting,
so that callback checks for a preview itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pulumi

from booking_shared.deploy import AFTER_TRAFFIC_HOOK, BEFORE_TRAFFIC_HOOK, DEPLOYMENT_FAILED_HOOK
from stackconfig.deploy import DeployContext


def deployed_version(outputs: Mapping[str, Any] | None) -> str | None:
    """The version a WorkersDeployment's outputs send 100 % of traffic to (None if not one version)."""
    versions = (outputs or {}).get("versions") or []
    full = [v for v in versions if isinstance(v, Mapping) and float(v.get("percentage") or 0) >= 100]
    if len(full) != 1:
        return None
    version = full[0].get("versionId") or full[0].get("version_id")
    return str(version) if isinstance(version, str) and version else None


HookCallback = Callable[[pulumi.ResourceHookArgs], Awaitable[None]]


def callbacks(ctx: DeployContext) -> tuple[HookCallback, HookCallback]:
    """(before, after): what the engine awaits around the deployment. Each runs the operation on a
    worker thread and imports it only then."""

    async def before(args: pulumi.ResourceHookArgs) -> None:
        from ops.releases.hooks import before_traffic

        # The new version's id: the version resource is created before the deployment that names it.
        await asyncio.to_thread(before_traffic, ctx, log=pulumi.log.info, version_id=deployed_version(args.new_inputs))

    async def after(args: pulumi.ResourceHookArgs) -> None:
        from ops.releases.hooks import after_traffic

        await asyncio.to_thread(after_traffic, ctx, deployment_id=args.id or None,
                                version_id=deployed_version(args.new_outputs), log=pulumi.log.info)

    return before, after


ErrorCallback = Callable[[pulumi.ErrorHookArgs], Awaitable[bool]]


def error_callback(ctx: DeployContext, log: Callable[[str], None] = pulumi.log.warn) -> ErrorCallback:
    """What the engine awaits when an operation on the deployment fails; True would ask it to retry."""

    async def failed(args: pulumi.ErrorHookArgs) -> bool:
        if pulumi.runtime.is_dry_run():
            return False  # a preview's create changes nothing, and neither may its error hook
        from ops.releases.hooks import deployment_failed

        return await asyncio.to_thread(deployment_failed, ctx, operation=args.failed_operation, errors=args.errors,
                                       version_id=deployed_version(args.new_inputs), log=log)

    return failed


def deployment_hooks(ctx: DeployContext) -> pulumi.ResourceHookBinding:
    """The hook binding for the Worker deployment: before and after it is created or updated, and on failure."""
    before, after = callbacks(ctx)
    before_hook = pulumi.ResourceHook(BEFORE_TRAFFIC_HOOK, before)
    after_hook = pulumi.ResourceHook(AFTER_TRAFFIC_HOOK, after)
    failed_hook = pulumi.ErrorHook(DEPLOYMENT_FAILED_HOOK, error_callback(ctx))
    # Every input of a WorkersDeployment forces a replacement, and a replacement runs the create
    # hooks; the update hooks are bound too so a provider that ever updates in place is covered.
    return pulumi.ResourceHookBinding(before_create=[before_hook], before_update=[before_hook],
                                      after_create=[after_hook], after_update=[after_hook], on_error=[failed_hook])
