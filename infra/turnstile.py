"""The Turnstile widgets of a stack, sharded to the account's plan, and the Worker bindings that go with them.

Cloudflare caps a widget's hostnames (15 on Free, 200 on Enterprise; booking_shared.limits), so:

- the site hostnames (the main domain, then every `booking:tenants` hostname in config order) fill
  site widget 0, 1, ... (`booking_shared.turnstile.site_shards`); appending a tenant moves no other
  hostname, so no salon's page changes sitekey because another salon joined;
- with `booking:saas`, `booking:turnstile.saasWidgets` widgets for the salons' custom hostnames:
  `bookingctl tenants add` lists a salon on one with room and records which on its row.

A SaaS widget's domains are data, and its update is a PUT of the whole widget (the provider's
`Update` -> `Turnstile.Widgets.Update`; `name`, `mode`, `clearance_level`, ... update in place). So
`pulumi up` must send the salons the widget lists *now*: its `domains` input is the live widget's,
read at deployment through the provider's `getTurnstileWidgets` invoke (the fallback hostname always
among them, sorted so an unchanged list is no diff), or the fallback hostname alone before the
widget exists. Any update (its name, which follows `workerName`; its mode; a default a provider
release adds) then keeps every salon on it. `ignore_changes` on the domains would not: the engine
would send the domains in Pulumi's state, the fallback alone, taking every salon off.

The live widget is the one of the same name; after a rename of the Worker, none has the new name
yet, so it is the SaaS widget of the same index (`<old>-saas-salons[-n]`) listing this stack's
fallback hostname (stacks of two environments never share one: booking_shared/project.py refuses
it). Two candidates stop the program, naming their sitekeys, rather than guess whose salons to keep.

One race remains: a salon `tenants add` lists between that read and the PUT. Each SaaS widget's
after-update (and after-create) hook therefore lists its salons again from the tenants table
(ops/tenants/turnstile_hooks.py), and sends nothing when the widget lists them all. (The other half: a
hostname `tenants remove` takes off in that window is put back; its custom hostname is gone, so it
serves nothing, but it holds one of the widget's hostnames.) Offline (bookingctl/planner.py) the
read finds no widget: a plan declares each SaaS widget with the fallback hostname alone.

The Worker gets, per site widget, its secret (`TURNSTILE_SECRET_KEY[_n]`) and its hostnames
(`SITE_HOSTNAMES[_n]`, JSON); per SaaS widget its secret (`TURNSTILE_SAAS_SECRET_KEY[_n]`); and
`TURNSTILE_SITEKEYS`, every sitekey by widget, so it tells a booking page which sitekey to render
(`GET /api/turnstile/sitekey`) and verifies a token with the secret of the same widget.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pulumi
import pulumi_cloudflare as cloudflare

from booking_shared.edge import SAAS_WIDGET_MARK
from booking_shared.errors import OperationFailed
from booking_shared.hostnames import normalize
from booking_shared.limits import TurnstilePlan
from booking_shared.turnstile import (
    SITEKEYS_BINDING,
    SaasWidgetContext,
    hostnames_text,
    saas_secret_binding,
    saas_widget_index,
    saas_widget_name,
    site_hostnames_binding,
    site_secret_binding,
    site_shards,
    site_widget_name,
)

# Managed: Cloudflare shows a checkbox only when it doubts the visitor.
MODE = "managed"
# How many widgets the read of the SaaS widgets may return: the provider pages through the account's
# widgets until it has this many (terraform-provider-cloudflare internal/services/turnstile_widget/
# list_data_source.go, whose default is also 1000). An account holds 20 unless Enterprise raises it
# (booking_shared.limits), so the read sees every widget whose name the filter matches.
WIDGETS_READ = 1000


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
        # One read for all of them. The name filter is a case-insensitive substring match (the
        # invoke's docstring), so it finds every SaaS widget in the account, of any Worker (a
        # renamed one's too) and of any index; live_saas_domains picks this stack's. The direct
        # form, not get_turnstile_widgets_output: its arguments are plain config, and a widget it
        # cannot tell apart stops the program here, before any SaaS widget is registered, rather
        # than inside an apply (which leaves the run's other outputs failed and unawaited).
        live = cloudflare.get_turnstile_widgets(
            account_id=args.account_id, filter=f"name:{SAAS_WIDGET_MARK}", max_items=WIDGETS_READ,
            opts=pulumi.InvokeOptions(parent=parent)).results or ()  # no `results`: none found
        for index in range(args.saas_widgets):
            widget_name = saas_widget_name(args.worker_name, index)
            widget = cloudflare.TurnstileWidget(
                saas_widget_resource(name, index),
                account_id=args.account_id,
                # Deterministic: `bookingctl tenants` finds the widget by this name.
                name=widget_name,
                # What the live widget lists now (`bookingctl tenants add/remove` keep them): the
                # update's PUT keeps every salon. See the module docstring.
                domains=live_saas_domains(live, widget_name, index, args.saas_fallback_hostname),
                mode=MODE,
                # The hook covers the race between the read and the PUT (a salon added meanwhile).
                opts=pulumi.ResourceOptions(
                    parent=parent,
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


class LiveWidget(Protocol):
    """What the SaaS widgets' read gives of a widget (pulumi_cloudflare GetTurnstileWidgetsResultResult)."""

    @property
    def name(self) -> str: ...

    @property
    def domains(self) -> Sequence[str]: ...

    @property
    def sitekey(self) -> str: ...


class SaasWidgetAmbiguousError(OperationFailed, pulumi.RunError):
    """Several live widgets could be SaaS widget n: the program stops before a PUT could take the
    salons of the right one off it (the account's state, not the stack's config, is at fault). A
    `RunError`: the engine prints the message alone."""


def live_saas_domains(found: Iterable[LiveWidget], name: str, index: int, fallback: str) -> list[str]:
    """SaaS widget `index`'s domains as `pulumi up` must send them: the live widget's, the fallback
    hostname among them, normalized and sorted; the fallback alone when the widget does not exist yet.

    The live widget is the one named `name` exactly (the read matches substrings: `...-saas-salons`
    also finds `...-saas-salons-1`), else, after a rename, the one of the same index listing
    `fallback`. Two candidates: SaasWidgetAmbiguousError, naming their sitekeys.
    """
    widgets = list(found)
    # The exact name first; else names compared as the read's filter compares them (case-insensitive)
    # and without surrounding spaces: a widget renamed so in the dashboard is still this one. Odd
    # answers (a null name or list, a non-text domain) are nothing listed, never a crash.
    mine = ([w for w in widgets if w.name == name]
            or [w for w in widgets if _name_key(w.name) == _name_key(name)])
    why = f"named {name}"
    if not mine:
        key = normalize(fallback)
        mine = [w for w in widgets
                if saas_widget_index(_name_key(w.name)) == index and key in _domains_of(w)]
        pattern = f"<worker>-{SAAS_WIDGET_MARK}" + (f"-{index}" if index else "")
        why = f"named as SaaS widget {index} of a Worker ({pattern}) and listing {fallback}"
    if len(mine) > 1:
        raise SaasWidgetAmbiguousError(
            f"{len(mine)} Turnstile widgets are {why} (sitekeys "
            f"{', '.join(w.sitekey if w.name == name else f'{w.sitekey} {w.name!r}' for w in mine)}), so "
            f"`pulumi up` cannot tell which one's salon hostnames to keep on {name}: keep the one the stack "
            "declares (`pulumi stack output turnstileSaasSitekeys`), delete the others, then run it again")
    listed = _domains_of(mine[0]) if mine else set()
    return sorted(listed | {normalize(fallback)})


def _name_key(name: object) -> str:
    return name.strip().casefold() if isinstance(name, str) else ""


def _domains_of(widget: LiveWidget) -> set[str]:
    return {normalize(d) for d in (widget.domains or ()) if isinstance(d, str) and d.strip()}


def relist_callback(ctx: SaasWidgetContext, index: int) -> Callable[[pulumi.ResourceHookArgs], Awaitable[None]]:
    """What the engine awaits after SaaS widget `index` was created or updated: list its salons again.

    It imports the operation only when it fires (a plan never loads the SDK for it) and runs it on a
    worker thread, so the program's event loop stays free for the engine's other callbacks.
    """

    async def relist(args: pulumi.ResourceHookArgs) -> None:
        from ops.tenants.turnstile_hooks import relist_saas_widget

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
