"""The Turnstile widgets of a stack, sharded to the account's plan, and the Worker bindings that go with them.

Cloudflare caps a widget's hostnames (15 on Free, 200 on Enterprise; booking_shared.limits), so:

- the site hostnames (the main domain, then every `booking:tenants` hostname in config order) fill
  site widget 0, 1, ... (`booking_shared.turnstile.site_shards`); appending a tenant moves no other
  hostname, so no salon's page changes sitekey because another salon joined;
- with `booking:saas`, `booking:turnstile.saasWidgets` widgets for the salons' custom hostnames,
  each declared with the fallback hostname alone (a widget needs one) and `ignore_changes` on its
  domains: `bookingctl tenants add` lists a salon on one with room and records which on its row.

A SaaS widget's update is still dangerous: with `ignore_changes` the engine sends the domains
stored in its state (the fallback hostname alone), and the provider's update is a PUT of the whole
widget, so any other change (its name, its mode, a default a provider release adds) would take
every salon off it. Each SaaS widget therefore carries an after-update (and after-create) hook
that lists the widget's salons again from the tenants table (ops/turnstile_hooks.py): the salons'
bookings fail the bot check only between the provider's PUT and the hook's, seconds apart.

The Worker gets, per site widget, its secret (`TURNSTILE_SECRET_KEY[_n]`) and its hostnames
(`SITE_HOSTNAMES[_n]`, JSON); per SaaS widget its secret (`TURNSTILE_SAAS_SECRET_KEY[_n]`); and
`TURNSTILE_SITEKEYS`, every sitekey by widget, so it tells a booking page which sitekey to render
(`GET /api/turnstile/sitekey`) and verifies a token with the secret of the same widget.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_cloudflare as cloudflare

from booking_shared.limits import TurnstilePlan
from booking_shared.turnstile import (
    SITEKEYS_BINDING,
    SaasWidgetContext,
    hostnames_text,
    saas_secret_binding,
    saas_widget_name,
    site_hostnames_binding,
    site_secret_binding,
    site_shards,
    site_widget_name,
)

# Managed: Cloudflare shows a checkbox only when it doubts the visitor.
MODE = "managed"


@dataclass(frozen=True)
class TurnstileArgs:
    account_id: str
    environment: str
    # The main domain first, then the booking:tenants hostnames in config order (the shard order).
    site_hostnames: Sequence[str]
    plan: TurnstilePlan
    # The Worker's name: the SaaS widgets are named after it (saas_widget_name).
    worker_name: str
    # booking:saas.fallbackHostname; set: `saas_widgets` SaaS widgets are declared.
    saas_fallback_hostname: str | None = None
    saas_widgets: int = 1
    # What each SaaS widget's relist hook needs; None: no hook (tests of the shape alone).
    saas_context: SaasWidgetContext | None = None


@dataclass
class TurnstileWidgets:
    """What the declared widgets give the rest of the stack."""

    worker_bindings: list[cloudflare.WorkerVersionBindingArgsDict] = field(default_factory=list)
    site_sitekeys: list[pulumi.Output[str]] = field(default_factory=list)
    saas_sitekeys: list[pulumi.Output[str]] = field(default_factory=list)


def site_widget_resource(name: str, index: int) -> str:
    """Site widget `index`'s resource name (widget 0 keeps the name it always had)."""
    return f"{name}-turnstile" if index == 0 else f"{name}-turnstile-{index}"


def saas_widget_resource(name: str, index: int) -> str:
    return f"{name}-turnstile-saas" if index == 0 else f"{name}-turnstile-saas-{index}"


def declare_widgets(name: str, args: TurnstileArgs, parent: pulumi.Resource) -> TurnstileWidgets:
    """Declare the site and SaaS widgets as children of `parent`; return their bindings and sitekeys."""
    out = TurnstileWidgets()
    for index, hostnames in enumerate(site_shards(args.site_hostnames, args.plan)):
        widget = cloudflare.TurnstileWidget(
            site_widget_resource(name, index),
            account_id=args.account_id,
            name=site_widget_name(args.environment, index),
            domains=sorted(hostnames),
            mode=MODE,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        out.worker_bindings += [
            # The provider marks `secret` an additional secret output; Output.secret states it here too.
            {"type": "secret_text", "name": site_secret_binding(index), "text": pulumi.Output.secret(widget.secret)},
            {"type": "plain_text", "name": site_hostnames_binding(index), "text": hostnames_text(hostnames)},
        ]
        out.site_sitekeys.append(widget.sitekey)
    if args.saas_fallback_hostname is not None:
        for index in range(args.saas_widgets):
            widget = cloudflare.TurnstileWidget(
                saas_widget_resource(name, index),
                account_id=args.account_id,
                # Deterministic: `bookingctl tenants` finds the widget by this name.
                name=saas_widget_name(args.worker_name, index),
                # A widget needs at least one hostname; the salons' own are added as data.
                domains=[args.saas_fallback_hostname],
                mode=MODE,
                # `bookingctl tenants add/remove` manage the domains: without ignore_changes every
                # `pulumi up` would set them back to the fallback hostname. ignore_changes alone
                # is not enough (see the module docstring): the hook lists the salons again.
                opts=pulumi.ResourceOptions(
                    parent=parent, ignore_changes=["domains"],
                    hooks=saas_widget_hooks(args.saas_context, index) if args.saas_context else None),
            )
            out.worker_bindings.append({"type": "secret_text", "name": saas_secret_binding(index),
                                        "text": pulumi.Output.secret(widget.secret)})
            out.saas_sitekeys.append(widget.sitekey)
    # Sitekeys are public (every booking page embeds one); the Worker hands each page its widget's.
    sitekeys = pulumi.Output.all(pulumi.Output.all(*out.site_sitekeys), pulumi.Output.all(*out.saas_sitekeys))
    out.worker_bindings.append({"type": "plain_text", "name": SITEKEYS_BINDING, "text": sitekeys.apply(
        lambda keys: json.dumps({"site": list(keys[0]), "saas": list(keys[1])}, separators=(",", ":")))})
    return out


def relist_callback(ctx: SaasWidgetContext, index: int) -> Callable[[pulumi.ResourceHookArgs], Awaitable[None]]:
    """What the engine awaits after SaaS widget `index` was created or updated: list its salons again.

    It imports the operation only when it fires (a plan never loads the SDK for it) and runs it on a
    worker thread, so the program's event loop stays free for the engine's other callbacks.
    """

    async def relist(args: pulumi.ResourceHookArgs) -> None:
        from ops.turnstile_hooks import relist_saas_widget

        sitekey = str((args.new_outputs or {}).get("sitekey") or args.id)
        # A create has no old outputs: on a new stack the database may not exist yet.
        await asyncio.to_thread(relist_saas_widget, ctx, index, sitekey, created=not args.old_outputs,
                                log=pulumi.log.info)

    return relist


def saas_widget_hooks(ctx: SaasWidgetContext, index: int) -> pulumi.ResourceHookBinding:
    """The hook binding of SaaS widget `index`: after it is created (a replacement too) or updated.

    Hooks never run in preview or under mocks; the operation is tested directly.
    """
    hook = pulumi.ResourceHook(f"booking-saas-widget-{index}-relist", relist_callback(ctx, index))
    return pulumi.ResourceHookBinding(after_create=[hook], after_update=[hook])
