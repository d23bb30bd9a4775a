"""The SaaS salons' Turnstile widgets: reading them, and listing or unlisting a salon's hostname on one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from booking_shared.edge import turnstile_covers
from booking_shared.hostnames import normalize
from booking_shared.limits import (
    TURNSTILE_WIDGETS_PER_ACCOUNT,
    turnstile_hostname_limit,
)
from ops.tenants.tenant_model import PAGE_SIZE, PLACEMENT_ATTEMPTS, SaasZone, TenantError

if TYPE_CHECKING:
    from cloudflare import Cloudflare
    from cloudflare.types.custom_hostnames.custom_hostname_create_response import CustomHostnameCreateResponse
    from cloudflare.types.custom_hostnames.custom_hostname_edit_response import CustomHostnameEditResponse
    from cloudflare.types.custom_hostnames.custom_hostname_list_response import CustomHostnameListResponse
    from cloudflare.types.turnstile.widget import Widget
    from cloudflare.types.turnstile.widget_list_response import WidgetListResponse


    CustomHostname = CustomHostnameCreateResponse | CustomHostnameListResponse | CustomHostnameEditResponse

# --- the SaaS salons' Turnstile widgets ---------------------------------------------------------

def saas_widgets(client: Cloudflare, zone: SaasZone) -> list[WidgetListResponse]:
    """The SaaS salons' widgets by index, each found by its whole name (the API's filter matches
    substrings, so one look-up with the first widget's name finds them all)."""
    assert zone.account_id is not None and zone.turnstile_widget is not None
    names = {zone.widget_name(i): i for i in range(zone.turnstile_widgets)}
    found: dict[int, list[WidgetListResponse]] = {}
    for widget in client.turnstile.widgets.list(account_id=zone.account_id, filter=f"name:{zone.turnstile_widget}",
                                                per_page=PAGE_SIZE):
        if widget.name in names:
            found.setdefault(names[widget.name], []).append(widget)
    missing = [name for name, i in names.items() if i not in found]
    if missing:
        raise TenantError(f"no Turnstile widget named {', '.join(missing)} in account {zone.account_id}: `pulumi "
                          "up` declares the SaaS widgets (booking:saas, booking:turnstile.saasWidgets; "
                          "infra/turnstile.py); without them no SaaS salon's booking passes the bot check")
    for index, widgets in sorted(found.items()):
        if len(widgets) > 1:
            raise TenantError(f"{len(widgets)} Turnstile widgets are named {zone.widget_name(index)} "
                              f"({', '.join(w.sitekey for w in widgets)}): keep the one the stack declares (`pulumi "
                              "stack output turnstileSaasSitekeys`) and delete the others")
    return [found[i][0] for i in range(zone.turnstile_widgets)]


def put_widget_domains(client: Cloudflare, account_id: str, widget: Widget | WidgetListResponse,
                       domains: list[str]) -> None:
    """Replace the widget's domains, keeping its other settings (a PUT sets every field).

    A PUT of the whole widget asks for the same end state however often it is sent, so the SDK's
    normal client, which retries a lost answer, is fine here (unlike the creations above).
    """
    client.turnstile.widgets.update(widget.sitekey, account_id=account_id, domains=domains, mode=widget.mode,
                                    name=widget.name, bot_fight_mode=widget.bot_fight_mode,
                                    clearance_level=widget.clearance_level, ephemeral_id=widget.ephemeral_id,
                                    offlabel=widget.offlabel, region=widget.region)


def list_on_widget(client: Cloudflare, zone: SaasZone, hostname: str) -> int:
    """List the salon's hostname on the first SaaS widget with room; the widget's index.

    Nothing is sent when a widget lists it already (a rerun). Refused, naming the key to raise, when
    every widget is full or Cloudflare refuses the hostname on each.
    """
    import cloudflare

    assert zone.account_id is not None
    limit = turnstile_hostname_limit(zone.turnstile_plan)
    # A PUT replaces the widget's domains with what this run read: another `add` (or the dashboard)
    # writing between the read and the PUT loses one of the two hostnames. So each PUT is read back,
    # and a hostname another writer's PUT took off is placed again from a fresh read (on the next
    # widget with room when the race took the last slot).
    for _attempt in range(PLACEMENT_ATTEMPTS):
        widgets = saas_widgets(client, zone)
        for index, widget in enumerate(widgets):
            if turnstile_covers(list(widget.domains), hostname):
                return index
        refused: list[str] = []
        placed: tuple[int, str] | None = None  # (index, sitekey) of the widget the PUT went to
        for index, widget in enumerate(widgets):
            if len(widget.domains) >= limit:
                continue
            try:
                put_widget_domains(client, zone.account_id, widget, [*widget.domains, hostname])
            except (cloudflare.BadRequestError, cloudflare.UnprocessableEntityError) as exc:
                refused.append(f"{widget.name} ({len(widget.domains)} hostnames): {_api_message(exc)}")
                continue
            except cloudflare.NotFoundError as exc:
                raise TenantError(f"SaaS Turnstile widget {widget.name} ({widget.sitekey}) was deleted while "
                                  f"{hostname} was being listed on it ({_api_message(exc)}): run `pulumi up`, which "
                                  "declares it again, then this `tenants add` again. Nothing was written") from exc
            placed = index, widget.sitekey
            break
        if placed is None:
            break  # no widget took it: refused below
        if _lists(client, zone.account_id, placed[1], hostname):
            return placed[0]
    else:
        raise TenantError(f"{hostname} was taken off its SaaS Turnstile widget by another writer's update "
                          f"{PLACEMENT_ATTEMPTS} times in a row (concurrent `tenants add`s, or the dashboard): run "
                          "this `tenants add` again when they are done. Nothing was written (no tenant row, no custom "
                          "hostname)")
    more = (f"raise booking:turnstile.saasWidgets (now {zone.turnstile_widgets}) in the stack file and run `pulumi "
            "up`, which declares the new widget, then run this `tenants add` again"
            if zone.turnstile_widgets < TURNSTILE_WIDGETS_PER_ACCOUNT else
            f"the account holds no more than {TURNSTILE_WIDGETS_PER_ACCOUNT} widgets: with Turnstile Enterprise set "
            "booking:turnstile.plan to enterprise (200 hostnames a widget) and run `pulumi up`")
    why = (f"Cloudflare refused it on {'; '.join(refused)}" if refused else
           f"{len(widgets)} SaaS Turnstile widget(s) ({', '.join(w.name for w in widgets)}) list {limit} hostnames "
           f"each, the fallback hostname included: the most a widget takes on the Turnstile {zone.turnstile_plan} "
           "plan (booking:turnstile.plan)")
    raise TenantError(f"no SaaS Turnstile widget has room for {hostname}: {why}; {more}. Nothing was written (no "
                      "tenant row, no custom hostname)")


def _lists(client: Cloudflare, account_id: str, sitekey: str, hostname: str) -> bool:
    """Whether the widget with `sitekey` lists `hostname` now (read back after a PUT)."""
    widget = client.turnstile.widgets.get(sitekey, account_id=account_id)
    return widget is not None and turnstile_covers(list(widget.domains), hostname)


def unlist_from_widgets(client: Cloudflare, zone: SaasZone, hostname: str) -> None:
    """Take the salon's hostname off every SaaS widget listing it (never a widget's last domain: it needs one)."""
    assert zone.account_id is not None
    for widget in saas_widgets(client, zone):
        kept = [d for d in widget.domains if normalize(d) != hostname]
        if len(kept) != len(widget.domains) and kept:
            put_widget_domains(client, zone.account_id, widget, kept)


def _api_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("message"):
        return str(errors[0]["message"])
    return str(exc)


