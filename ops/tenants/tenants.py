"""Salons as data on the Cloudflare for SaaS path: a row in D1's `tenants` table plus a custom hostname.

With `booking:saas` a salon on its own domain is no resource of the stack: `add` writes its tenant row
and creates a custom hostname on the SaaS zone, and the zone's `*/*` route (infra/saas.py) already
serves it. The salon then publishes a CNAME to the fallback hostname and the ownership and certificate
validation records Cloudflare asks for; `status` follows each hostname until it is active or says what
blocks it; `remove` takes the hostname away and suspends the row (its bookings and accounts stay).

The table and the custom hostnames must never disagree silently: `status` reports a SaaS row without a
custom hostname and a custom hostname without a row. Rows whose hostname the stack config serves (the
main domain, `booking:tenants` on the per-zone path) are not SaaS rows and are left out of that check.

Reads are retried by the SDK; writes (the D1 row, the custom hostname) go out through
`ops.targets.writer()`, never retried blindly: after a lost answer the state is read back, and the
write is sent again only when it did not land.

A SaaS salon's booking form is verified by one of the SaaS salons' Turnstile widgets
(infra/turnstile.py, `booking:turnstile.saasWidgets` of them, found by their names), whose domains
are data like the custom hostnames: `add` lists the salon's hostname on the first widget with room
(a widget takes 15 hostnames on the Free plan, 200 on Enterprise, the fallback hostname included)
before writing anything else, so a refusal (every widget full: the message names the key to raise)
leaves nothing half done, and records that widget on the tenant row (`turnstile_widget`), where the
Worker looks for the secret to verify the salon's tokens with. `remove` unlists it once the custom
hostname is gone, and `status` reports active tenants' hostnames their widget does not list. A
widget update is a PUT of the whole widget (read, then replaced), and the API offers no conditional
update: two `add`s at the same moment can each erase the other's hostname. `add` therefore reads the
widget back after its PUT and again once the row and custom hostname are written, placing the
hostname again (on the next widget when the race took the last slot) and recording where; only a
writer slower than that whole `add` can still erase it, which the next `status` reports and another
`add` repairs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import idna

from booking_shared.clock import today
from booking_shared.edge import saas_turnstile_widget_name, turnstile_covers, turnstile_domains
from booking_shared.errors import InputError, OperationFailed
from booking_shared.hostnames import hostname_problem, normalize, slug_problem
from booking_shared.limits import (
    ACTIVE_STATUSES,
    BLOCKED_SSL,
    BLOCKED_STATUSES,
    REFRESHABLE_STATUSES,
    TURNSTILE_WIDGETS_PER_ACCOUNT,
    TurnstilePlan,
    turnstile_hostname_limit,
)
from booking_shared.turnstile import nth_widget_name
from ops.targets import Database, LocalDatabase, UncertainWriteError, require_tables, writer

if TYPE_CHECKING:
    from cloudflare import Cloudflare
    from cloudflare.types.custom_hostnames.custom_hostname_create_response import CustomHostnameCreateResponse
    from cloudflare.types.custom_hostnames.custom_hostname_edit_response import CustomHostnameEditResponse
    from cloudflare.types.custom_hostnames.custom_hostname_list_response import CustomHostnameListResponse
    from cloudflare.types.turnstile.widget import Widget
    from cloudflare.types.turnstile.widget_list_response import WidgetListResponse

    from stackconfig.model import StackConfig

    CustomHostname = CustomHostnameCreateResponse | CustomHostnameListResponse | CustomHostnameEditResponse

# The API's largest page of custom hostnames: 1,000 salons are 20 reads.
PAGE_SIZE = 50
# How often `tenants add` places a salon's hostname on a SaaS widget again after another writer's
# PUT took it off (each PUT replaces the widget's whole domain list).
PLACEMENT_ATTEMPTS = 5
# The table and Cloudflare disagree, or two tenant rows hold one hostname in two spellings (written by
# another writer): the Worker serves that hostname as one of them only.
DRIFT_STATES = ("missing-hostname", "no-tenant-row", "hostname-clash")
# A `starts_at` that begins with a date (`YYYY-MM-DD`). 43 bytes: D1 takes GLOB patterns of up to 50
# (cloudflare-docs src/content/docs/d1/platform/limits.mdx, "Maximum characters (bytes) in a LIKE or
# GLOB pattern").
DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"
# Bookings that still need the salon's site: today's (judged as of BOOKING_TODAY) and later.
OPEN_APPOINTMENTS = ("booked", "confirmed")


class TenantInputError(InputError):
    """A slug or hostname that cannot be onboarded, or no such tenant (exit 2)."""


class TenantError(OperationFailed):
    """The operation was refused or failed (exit 1): future bookings, a write Cloudflare refused."""


@dataclass(frozen=True)
class SaasZone:
    """The stack's `booking:saas`, as the operations need it."""

    zone_id: str
    fallback_hostname: str
    min_tls_version: str = "1.2"
    # The account and name of the SaaS salons' first Turnstile widget (booking_shared.turnstile.
    # saas_widget_name). None: the operations leave Turnstile alone.
    account_id: str | None = None
    turnstile_widget: str | None = None
    # How many SaaS widgets the program declares (booking:turnstile.saasWidgets), and the plan that
    # says how many hostnames each takes (booking:turnstile.plan).
    turnstile_widgets: int = 1
    turnstile_plan: TurnstilePlan = "free"

    @classmethod
    def of(cls, cfg: StackConfig) -> SaasZone:
        """The stack's `booking:saas` with its account and Turnstile widgets; a stack without one is refused."""
        if cfg.saas is None:
            raise TenantInputError(
                f"stack {cfg.stack} has no booking:saas, so salons cannot be added as custom hostnames; set "
                f"booking:saas (zoneId, fallbackHostname) in Pulumi.{cfg.stack}.yaml and run `pulumi up`, or "
                "give a salon whose zone is in this account a booking:tenants entry instead")
        return cls(cfg.saas.zone_id, cfg.saas.fallback_hostname, cfg.saas.min_tls_version,
                   account_id=cfg.account_id, turnstile_widget=saas_turnstile_widget_name(cfg.worker_name),
                   turnstile_widgets=cfg.turnstile.saas_widgets, turnstile_plan=cfg.turnstile.plan)

    def widget_name(self, index: int) -> str:
        """SaaS widget `index`'s name."""
        assert self.turnstile_widget is not None
        return nth_widget_name(self.turnstile_widget, index)


@dataclass(frozen=True)
class PublishRecord:
    """One record the salon publishes at its own DNS provider (or, for `HTTP`, a file it serves)."""

    type: str  # CNAME | TXT | HTTP
    name: str
    value: str
    purpose: str  # traffic | ownership | certificate


@dataclass(frozen=True)
class HostnameState:
    """One salon hostname: its tenant row, its custom hostname, and what (if anything) is in the way."""

    hostname: str
    slug: str | None  # None: a custom hostname no tenant row names
    custom_hostname_id: str | None  # None: a tenant row with no custom hostname
    status: str | None
    ssl_status: str | None
    state: str  # active | pending | blocked | missing-hostname | no-tenant-row | hostname-clash
    blockers: tuple[str, ...] = ()
    records: tuple[PublishRecord, ...] = ()

    @property
    def drift(self) -> bool:
        return self.state in DRIFT_STATES

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "blockers": list(self.blockers), "records": [asdict(r) for r in self.records]}


@dataclass(frozen=True)
class StatusReport:
    zone_id: str
    fallback_origin: dict[str, Any]  # origin, status, errors as the API reports them
    hostnames: tuple[HostnameState, ...]
    waited_seconds: float = 0.0
    polls: int = 1
    # The SaaS salons' Turnstile widget's name (None: not checked) and the active tenants'
    # hostnames it does not list: bookings there fail the bot check (403).
    turnstile_widget: str | None = None
    not_on_widget: tuple[str, ...] = ()

    def of_state(self, *states: str) -> list[HostnameState]:
        return [h for h in self.hostnames if h.state in states]

    @property
    def fallback_active(self) -> bool:
        return self.fallback_origin.get("status") == "active"

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for h in self.hostnames:
            counts[h.state] = counts.get(h.state, 0) + 1
        return {"zoneId": self.zone_id, "fallbackOrigin": self.fallback_origin, "counts": counts,
                "polls": self.polls, "waitedSeconds": round(self.waited_seconds, 1),
                "turnstile": {"widget": self.turnstile_widget, "missing": list(self.not_on_widget)},
                "hostnames": [h.to_dict() for h in self.hostnames]}


@dataclass(frozen=True)
class Onboarding:
    slug: str
    hostname: str
    row_created: bool
    hostname_created: bool
    state: HostnameState
    # Kept even once active: the CNAME must stay published for the salon's traffic to reach us.
    publish: tuple[PublishRecord, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"slug": self.slug, "hostname": self.hostname, "rowCreated": self.row_created,
                "hostnameCreated": self.hostname_created, "state": self.state.to_dict(),
                "publish": [asdict(r) for r in self.publish]}


@dataclass(frozen=True)
class Removal:
    slug: str
    hostname: str | None
    hostname_deleted: bool
    future_appointments: int
    forced: bool
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"slug": self.slug, "hostname": self.hostname, "hostnameDeleted": self.hostname_deleted,
                "futureAppointments": self.future_appointments, "forced": self.forced, "reason": self.reason}


# --- the tenant table --------------------------------------------------------------------------

def tenant_rows(db: Database) -> list[dict[str, Any]]:
    """Every tenant row (slug order), with `turnstile_widget` once migration 0002 added it."""
    require_tables(db, ["tenants"])
    return db.query("SELECT * FROM tenants ORDER BY slug")


def has_widget_column(db: Database) -> bool:
    """Whether the tenants table records each salon's SaaS widget (migrations/0002)."""
    rows = db.query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tenants'")
    return bool(rows) and "turnstile_widget" in str(rows[0].get("sql") or "")


# What widget_of answers for a row naming no valid widget (text, a fraction, a negative number):
# no widget's index, so the salon is on none (`status` reports it, the relist hook skips it).
NO_WIDGET = -1


def widget_of(row: Mapping[str, Any]) -> int:
    """The SaaS widget a tenant row names; a row from before there were several widgets: the first;
    a value that is no widget index (someone's hand edit): NO_WIDGET."""
    value = row.get("turnstile_widget")
    if value is None or str(value).strip() == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return NO_WIDGET
    try:
        number = float(value)
    except ValueError:
        return NO_WIDGET
    return int(number) if number.is_integer() and number >= 0 else NO_WIDGET


def stored_hostname(value: object) -> str:
    """A tenant row's hostname in the one form `add` stores: lowercase, no trailing dot, labels in their
    `xn--` form (as browsers send the Host header).

    Other writers (the Worker, a migration, a restore, a query run by hand) may store `WWW.Salon.co.za.`
    or the Unicode form; DNS takes them as one name, so every comparison of hostnames goes through here.
    Text that is no valid internationalised name is compared as it is, lowercased.
    """
    text = normalize(str(value))
    if not text.isascii() or "xn--" in text:
        with contextlib.suppress(UnicodeError):  # idna.IDNAError is one
            text = idna.encode(text, uts46=True).decode("ascii")
    return text


def list_tenants(db: Database, served: Mapping[str, str] | None) -> list[dict[str, Any]]:
    """Tenant rows with the path each is served by: the stack config's (main, per-zone), SaaS, or none.

    `served` None: no stack config to say (a local file), so a row with a hostname is `unknown`, never
    guessed to be SaaS.
    """
    out = []
    for row in tenant_rows(db):
        hostname = stored_hostname(row["hostname"]) if row.get("hostname") else None
        if hostname is None:
            path = "none"
        elif served is None:
            path = "unknown"
        elif hostname in served:
            path = f"config ({served[hostname]})"
        else:
            path = "saas"
        out.append({**row, "path": path})
    return out


def _write(db: Database, sql: str, params: Sequence[object], landed: Callable[[], bool], what: str) -> None:
    """One write, sent once; after a lost answer `landed()` decides whether it must be sent again."""
    if isinstance(db, LocalDatabase):
        with db.transaction() as conn:
            conn.execute(sql, tuple(params))
        return
    import cloudflare

    def send() -> None:
        for result in writer(db.client).d1.database.query(db.database_id, account_id=db.account_id, sql=sql,
                                                          params=[str(p) for p in params]):
            if result.success is False:
                raise TenantError(f"{db.label}: {what} failed")

    try:
        send()
    except (cloudflare.APIConnectionError, cloudflare.InternalServerError) as lost:
        if landed():
            return
        try:
            send()
        except (cloudflare.APIConnectionError, cloudflare.InternalServerError) as again:
            raise UncertainWriteError(f"{what} got no clear answer twice ({lost}; {again}): it may or may not have "
                                      f"been applied to {db.label}; run the same command again, which reads the "
                                      "table first") from again


def _row(db: Database, slug: str) -> dict[str, Any] | None:
    rows = db.query("SELECT * FROM tenants WHERE slug = ?", [slug])
    return rows[0] if rows else None


# --- custom hostnames --------------------------------------------------------------------------

def custom_hostnames(client: Cloudflare, zone: SaasZone) -> list[CustomHostnameListResponse]:
    """Every custom hostname on the SaaS zone, page by page (retried reads)."""
    return list(client.custom_hostnames.list(zone_id=zone.zone_id, per_page=PAGE_SIZE))


def find_custom_hostname(client: Cloudflare, zone: SaasZone, hostname: str) -> CustomHostnameListResponse | None:
    for found in client.custom_hostnames.list(zone_id=zone.zone_id, hostname={"exact": hostname},
                                              per_page=PAGE_SIZE):
        if normalize(found.hostname) == hostname:
            return found
    return None


def fallback_origin(client: Cloudflare, zone: SaasZone) -> dict[str, Any]:
    """The zone's fallback origin as the API reports it; `status: missing` when none is set."""
    import cloudflare

    try:
        origin = client.custom_hostnames.fallback_origin.get(zone_id=zone.zone_id)
    except cloudflare.NotFoundError:
        origin = None
    if origin is None:
        return {"origin": None, "status": "missing", "errors": []}
    return {"origin": origin.origin, "status": origin.status, "errors": list(origin.errors or [])}


def _ssl(zone: SaasZone) -> Any:
    """The certificate settings of every salon hostname (create and edit take the same shape).

    TXT validation: the salon can publish the certificate's record before its CNAME moves
    (pre-validation), so a salon that already has a site never goes dark while switching.
    """
    return {"method": "txt", "type": "dv", "settings": {"min_tls_version": zone.min_tls_version}}


def _create(client: Cloudflare, zone: SaasZone, hostname: str) -> CustomHostname:
    """Create the custom hostname once; after a lost answer, read back before sending again."""
    import cloudflare

    def send() -> CustomHostname | None:
        return writer(client).custom_hostnames.create(zone_id=zone.zone_id, hostname=hostname, ssl=_ssl(zone))

    try:
        created = send()
    except (cloudflare.APIConnectionError, cloudflare.InternalServerError) as lost:
        existing = find_custom_hostname(client, zone, hostname)
        if existing is not None:
            return existing
        try:
            created = send()
        except (cloudflare.APIConnectionError, cloudflare.InternalServerError) as again:
            raise UncertainWriteError(f"creating custom hostname {hostname} got no clear answer twice ({lost}; "
                                      f"{again}); run the same `tenants add` again: it looks before it creates"
                                      ) from again
    if created is None:
        raise TenantError(f"Cloudflare answered the creation of custom hostname {hostname} with no hostname")
    return created


def _revalidate(client: Cloudflare, zone: SaasZone, found: CustomHostname) -> CustomHostname:
    """Restart a timed-out certificate validation (a PATCH of the same settings, which Cloudflare takes
    as "try again"). Sending the same PATCH twice asks for the same thing, so a lost answer is simply
    read back."""
    import cloudflare

    try:
        edited = writer(client).custom_hostnames.edit(found.id, zone_id=zone.zone_id, ssl=_ssl(zone))
    except (cloudflare.APIConnectionError, cloudflare.InternalServerError):
        edited = None
    again = find_custom_hostname(client, zone, normalize(found.hostname)) if edited is None else None
    return edited or again or found


def _delete(client: Cloudflare, zone: SaasZone, hostname_id: str, hostname: str) -> None:
    import cloudflare

    def send() -> None:
        writer(client).custom_hostnames.delete(hostname_id, zone_id=zone.zone_id)

    try:
        send()
    except (cloudflare.APIConnectionError, cloudflare.InternalServerError) as lost:
        if find_custom_hostname(client, zone, hostname) is None:
            return
        try:
            send()
        except (cloudflare.APIConnectionError, cloudflare.InternalServerError) as again:
            raise UncertainWriteError(f"deleting custom hostname {hostname} got no clear answer twice ({lost}; "
                                      f"{again}); run `tenants remove` again") from again
    except cloudflare.NotFoundError:
        return  # already gone: what we wanted


def publish_records(found: CustomHostname | None, hostname: str, zone: SaasZone) -> tuple[PublishRecord, ...]:
    """What the salon publishes: the CNAME always, then what Cloudflare still waits for."""
    records = [PublishRecord("CNAME", hostname, zone.fallback_hostname, "traffic")]
    if found is None:
        return tuple(records)
    ownership = found.ownership_verification
    if found.status != "active" and ownership is not None and ownership.name and ownership.value:
        records.append(PublishRecord("TXT", ownership.name, ownership.value, "ownership"))
    ssl = found.ssl
    if ssl is not None and ssl.status != "active":
        for record in ssl.validation_records or []:
            if record.txt_name and record.txt_value:
                records.append(PublishRecord("TXT", record.txt_name, record.txt_value, "certificate"))
            elif record.cname and record.cname_target:
                records.append(PublishRecord("CNAME", record.cname, record.cname_target, "certificate"))
            elif record.http_url and record.http_body:
                records.append(PublishRecord("HTTP", record.http_url, record.http_body, "certificate"))
    return tuple(records)


def hostname_state(found: CustomHostname, slug: str | None, zone: SaasZone) -> HostnameState:
    """Where one custom hostname is, and what blocks it, in words a salon's admin can act on."""
    hostname = normalize(found.hostname)
    ssl_status = found.ssl.status if found.ssl is not None else None
    records = publish_records(found, hostname, zone)
    blockers = [f"hostname: {e}" for e in found.verification_errors or []]
    blockers += [f"certificate: {e.message}" for e in (found.ssl.validation_errors or [] if found.ssl else [])
                 if e.message]
    if slug is None:
        return HostnameState(hostname, None, found.id, found.status, ssl_status, "no-tenant-row",
                             (f"no tenant row has hostname {hostname}: traffic reaches the Worker for a salon it "
                              "does not know; `tenants add SLUG HOSTNAME` writes the row, or delete the hostname",),
                             ())
    if found.status in ACTIVE_STATUSES and ssl_status == "active":
        return HostnameState(hostname, slug, found.id, found.status, ssl_status, "active")
    if found.status in REFRESHABLE_STATUSES:
        blockers.insert(0, f"Cloudflare reports the hostname {found.status}: it was not validated within Cloudflare's "
                           "validation schedule, or no longer points at the fallback hostname. Publish the CNAME "
                           "below, then refresh its validation (dashboard: SSL/TLS > Custom Hostnames > Refresh), "
                           "which sets it back to pending")
        return HostnameState(hostname, slug, found.id, found.status, ssl_status, "blocked", tuple(blockers), records)
    if found.status in BLOCKED_STATUSES:
        blockers.insert(0, f"Cloudflare reports the hostname {found.status}: publishing records does not change "
                           "that; see the errors, and ask Cloudflare support if it is blocked")
        return HostnameState(hostname, slug, found.id, found.status, ssl_status, "blocked", tuple(blockers), records)
    if ssl_status in BLOCKED_SSL:
        blockers.insert(0, f"certificate {ssl_status}: publish the records below, then run `tenants add` again to "
                           "restart validation")
        return HostnameState(hostname, slug, found.id, found.status, ssl_status, "blocked", tuple(blockers), records)
    waiting = "waiting for the records below" if len(records) > 1 else "waiting for the CNAME below"
    return HostnameState(hostname, slug, found.id, found.status, ssl_status, "pending",
                         (waiting, *blockers), records)


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


def _list_on_widget(client: Cloudflare, zone: SaasZone, hostname: str) -> int:
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


def _unlist_from_widgets(client: Cloudflare, zone: SaasZone, hostname: str) -> None:
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


# --- the operations ----------------------------------------------------------------------------

def _check_new(slug: str, hostname: str, zone: SaasZone, served: Mapping[str, str],
               taken: Mapping[str, str]) -> str:
    hostname = normalize(hostname)  # DNS names compare case-insensitively: store them one way
    try:
        # As browsers send it (UTS #46, IDNA 2008): the Host header the Worker matches the row against,
        # and the name the salon publishes. Also refuses `xn--` labels that decode to nothing valid.
        if not hostname.isascii() or "xn--" in hostname:
            hostname = idna.encode(hostname, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise TenantInputError(f"hostname {hostname!r}: not a valid internationalised domain name ({exc}); give it "
                               "as the salon writes it (bücher.co.za) or as its valid xn-- form") from None
    checks = ((slug_problem(slug), f"slug {slug!r}"), (hostname_problem(hostname), f"hostname {hostname!r}"))
    for problem, what in checks:
        if problem is not None:
            raise TenantInputError(f"{what}: expected {problem}")
    if hostname in served:
        raise TenantInputError(f"hostname {hostname} is served by the stack config ({served[hostname]}), not by a "
                               "custom hostname; choose the salon's own hostname")
    if hostname in taken:
        # Another stack routes it (its domain, a per-zone tenant, its SaaS fallback): as a custom
        # hostname here too, this stack's D1 and Worker would claim another stack's site.
        raise TenantInputError(f"hostname {hostname} is served by another stack ({taken[hostname]}); a salon's own "
                               "hostname is no hostname of the platform's stacks")
    if hostname == normalize(zone.fallback_hostname) or hostname.endswith("." + normalize(zone.fallback_hostname)):
        raise TenantInputError(f"hostname {hostname} is the SaaS fallback hostname (or under it); the salon's own "
                               "hostname CNAMEs to it")
    return hostname


def add_tenant(db: Database, client: Cloudflare, zone: SaasZone, slug: str, hostname: str, *,
               name: str | None = None, served: Mapping[str, str] | None = None,
               taken: Mapping[str, str] | None = None) -> Onboarding:
    """List the hostname on the SaaS Turnstile widget, write the tenant row (unless it is there) and
    create its custom hostname (unless it exists).

    Running it again after any failure completes what is missing; it never creates a second row or
    hostname. Returns what the salon must publish. `taken`: hostnames other stacks serve -> where.
    Refuses (TenantInputError) the SaaS zone's own name, read from the zone, and its fallback hostname.
    """
    served = served or {}
    hostname = _check_new(slug, hostname, zone, served, taken or {})
    details = client.zones.get(zone_id=zone.zone_id)
    if details is None:
        raise TenantError(f"Cloudflare answered no details for the SaaS zone {zone.zone_id} (booking:saas.zoneId); "
                          "check the zone id and that the token has Zone Read on it")
    if hostname == normalize(details.name):
        # cloudflare-docs src/content/partials/cloudflare-for-platforms/same-name-as-zone.mdx: "Do not
        # configure a custom hostname which matches the zone name."
        raise TenantInputError(f"hostname {hostname} matches the SaaS zone's name (zone {zone.zone_id}), which "
                               "Cloudflare says never to configure as a custom hostname; a salon's own hostname is in "
                               "the salon's domain")
    require_tables(db, ["tenants"])
    row = _row(db, slug)
    # Compared as DNS does, not as stored text: another writer may have stored `WWW.Salon.co.za.` or the
    # Unicode form. Every row is read (a few thousand salons are one small answer).
    for other in db.query("SELECT slug, hostname FROM tenants WHERE hostname IS NOT NULL AND slug <> ?", [slug]):
        if stored_hostname(other["hostname"]) == hostname:
            raise TenantInputError(f"hostname {hostname} already belongs to tenant {other['slug']} (stored as "
                                   f"{str(other['hostname'])!r}); a hostname serves one salon")
    if row is not None and row.get("hostname") and stored_hostname(row["hostname"]) != hostname:
        raise TenantInputError(f"tenant {slug} already has hostname {str(row['hostname'])!r}; `tenants remove {slug}` "
                               "first (a salon has one hostname on the SaaS path)")

    # First: a refusal here (every widget full) must leave no row and no custom hostname.
    widget: int | None = None
    if zone.turnstile_widget is not None:
        if not has_widget_column(db):
            raise TenantError(f"{db.label}: the tenants table has no turnstile_widget column yet (migrations/0002): "
                              "run `pulumi up` (its deploy hook applies migrations) or `bookingctl migrate apply "
                              "--stack S` first; nothing was written")
        widget = _list_on_widget(client, zone, hostname)
    # The widget goes on the row with the hostname: the Worker verifies the salon's tokens with its secret.
    on_widget, with_widget = ("", []) if widget is None else (", turnstile_widget = ?", [widget])

    row_created = False
    if row is None:
        def inserted() -> bool:
            again = _row(db, slug)
            return again is not None and again.get("hostname") == hostname

        _write(db, "INSERT INTO tenants (id, slug, name, hostname, status" + (", turnstile_widget" if with_widget
                                                                              else "")
               + ") VALUES (?, ?, ?, ?, 'active'" + (", ?" if with_widget else "") + ")",
               [str(uuid.uuid4()), slug, name or slug, hostname, *with_widget], inserted, f"writing tenant {slug}")
        row_created = True
    elif not row.get("hostname") or row.get("status") != "active" or (
            widget is not None and row.get("turnstile_widget") != widget):
        # A removed (suspended) salon coming back: the same row, its bookings and accounts kept; or a
        # rerun whose widget is not recorded yet.
        def reactivated() -> bool:
            again = _row(db, slug)
            return (again is not None and again.get("hostname") == hostname and again.get("status") == "active"
                    and (widget is None or again.get("turnstile_widget") == widget))

        _write(db, f"UPDATE tenants SET hostname = ?, status = 'active'{on_widget} WHERE slug = ?",
               [hostname, *with_widget, slug], reactivated, f"reactivating tenant {slug}")

    existing = find_custom_hostname(client, zone, hostname)
    found: CustomHostname = existing if existing is not None else _create(client, zone, hostname)
    if existing is not None and existing.ssl is not None and existing.ssl.status in BLOCKED_SSL:
        found = _revalidate(client, zone, existing)
    if widget is not None:
        # Once more, seconds after the PUT: another `add` that read the widget before it and wrote
        # after its read-back has taken this hostname off; place it again and record where it is.
        again = _list_on_widget(client, zone, hostname)
        if again != widget:
            _write(db, "UPDATE tenants SET turnstile_widget = ? WHERE slug = ?", [again, slug],
                   lambda: False, f"recording tenant {slug}'s Turnstile widget")
    state = hostname_state(found, slug, zone)
    return Onboarding(slug, hostname, row_created, existing is None, state, publish_records(found, hostname, zone))


def status(db: Database, client: Cloudflare, zone: SaasZone, *, slug: str | None = None,
           served: Mapping[str, str] | None = None, wait: float = 0.0, interval: float = 15.0,
           sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
           log: Callable[[str], None] = lambda _: None) -> StatusReport:
    """Every SaaS tenant's hostname (or one tenant's), its state and blockers, drift both ways.

    `wait` > 0 follows pending hostnames, reading again every `interval` seconds, until none is
    pending or `wait` seconds have passed.
    """
    served = served or {}
    started = clock()
    polls = 0
    while True:
        polls += 1
        report = _look(db, client, zone, slug, served)
        waiting = bool(report.of_state("pending")) or report.fallback_origin.get("status") in (
            "initializing", "pending_deployment")
        elapsed = clock() - started
        if not waiting or elapsed + interval > wait:
            return StatusReport(report.zone_id, report.fallback_origin, report.hostnames, elapsed, polls,
                                report.turnstile_widget, report.not_on_widget)
        log(f"{len(report.of_state('pending'))} hostname(s) pending, {len(report.of_state('active'))} active; "
            f"reading again in {interval:g} s")
        sleep(interval)


def _look(db: Database, client: Cloudflare, zone: SaasZone, slug: str | None,
          served: Mapping[str, str]) -> StatusReport:
    rows = tenant_rows(db)
    if slug is not None and not any(r["slug"] == slug for r in rows):
        raise TenantInputError(f"no tenant {slug!r} in the tenants table")
    # Keyed by the hostname as DNS reads it: two rows storing one name in two spellings both claim it
    # (judged over every row, so one tenant's status shows another holding its hostname).
    claims: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("hostname") and r.get("status") == "active" and stored_hostname(r["hostname"]) not in served:
            claims.setdefault(stored_hostname(r["hostname"]), []).append(r)
    if slug is not None:
        claims = {h: claimed for h, claimed in claims.items() if any(r["slug"] == slug for r in claimed)}
    saas_rows = {hostname: str(claimed[0]["slug"]) for hostname, claimed in claims.items()}
    listed = {normalize(h.hostname): h for h in custom_hostnames(client, zone)}
    states: list[HostnameState] = []
    for hostname, row_slug in sorted(saas_rows.items()):
        found = listed.get(hostname)
        if len(claims[hostname]) > 1:
            states.extend(_clash(hostname, claims[hostname], found))
        elif found is None:
            states.append(HostnameState(
                hostname, row_slug, None, None, None, "missing-hostname",
                (f"tenant {row_slug} has hostname {hostname} in the tenants table but no custom hostname on zone "
                 f"{zone.zone_id}: its salon's site is not served; run `bookingctl tenants add {row_slug} "
                 f"{hostname}` to create it",),
                (PublishRecord("CNAME", hostname, zone.fallback_hostname, "traffic"),)))
        else:
            states.append(hostname_state(found, row_slug, zone))
    if slug is None:
        known = {stored_hostname(r["hostname"]) for r in rows if r.get("hostname")}
        for hostname, found in sorted(listed.items()):
            if hostname not in known:
                states.append(hostname_state(found, None, zone))
    missing: tuple[str, ...] = ()
    if zone.turnstile_widget is not None and saas_rows:
        # Each salon must be on the widget its row names: the Worker verifies with that one's secret.
        listed_on = [turnstile_domains(w.domains) for w in saas_widgets(client, zone)]
        widget_by_host = {hostname: widget_of(claimed[0]) for hostname, claimed in claims.items()}
        missing = tuple(h for h in sorted(saas_rows) if not 0 <= widget_by_host[h] < len(listed_on)
                        or not turnstile_covers(listed_on[widget_by_host[h]], h))
    return StatusReport(zone.zone_id, fallback_origin(client, zone), tuple(states),
                        turnstile_widget=zone.turnstile_widget, not_on_widget=missing)


def _clash(hostname: str, claimed: Sequence[Mapping[str, Any]], found: CustomHostname | None) -> list[HostnameState]:
    """One state per tenant row holding `hostname` (in whatever spelling): all of them are drift."""
    spelled = ", ".join(f"{r['slug']} ({str(r['hostname'])!r})" for r in claimed)
    why = (f"tenants {spelled} all hold hostname {hostname}: the Worker serves it as one of them only. Decide whose "
           "it is and clear the others' hostname in the tenants table (UPDATE tenants SET hostname = NULL, status = "
           "'suspended' WHERE slug = ...); not `tenants remove`, which would delete the custom hostname the salon "
           "keeping it needs")
    ssl_status = found.ssl.status if found is not None and found.ssl is not None else None
    return [HostnameState(hostname, str(r["slug"]), found.id if found is not None else None,
                          found.status if found is not None else None, ssl_status, "hostname-clash", (why,))
            for r in claimed]


def future_appointments(db: Database, tenant_id: str) -> tuple[int, str | None]:
    """(open appointments from today on, the first one's start quoted), today as `BOOKING_TODAY` says.

    `starts_at` is text as the booking wrote it: a wall-clock time (the salon's own) counts from
    today's date on; an instant with `Z` or an offset counts from the first midnight of today on
    Earth (UTC+14), so `2026-11-27T23:00:00Z`, already the 28th in Johannesburg, is not missed by
    a date compare on the 28th. A start that sorts before today without beginning with a date (a Unix
    time as text, a leading space, `04/12/2026`) is read in full: a time from today on counts, and text
    that is no time counts too, named in `first` (it may be a booking next week). That errs towards
    refusing, which `--force` overrides.
    """
    day = today()
    since = f"{day.isoformat()} 00:00:00"
    status_in = ", ".join("?" for _ in OPEN_APPOINTMENTS)
    rows = db.query("SELECT COUNT(*) AS n, MIN(starts_at) AS first FROM appointments WHERE tenant_id = ? "
                    f"AND starts_at >= ? AND status IN ({status_in})", [tenant_id, since, *OPEN_APPOINTMENTS])
    count = int(rows[0]["n"] or 0) if rows else 0
    first = str(rows[0]["first"]) if count else None
    # Only an instant written with yesterday's date can still be today somewhere.
    eve = db.query(f"SELECT starts_at FROM appointments WHERE tenant_id = ? AND starts_at >= ? AND starts_at < ? "
                   f"AND status IN ({status_in}) ORDER BY starts_at",
                   [tenant_id, (day - dt.timedelta(days=1)).isoformat(), since, *OPEN_APPOINTMENTS])
    earliest_midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone(dt.timedelta(hours=14)))
    late = [str(r["starts_at"]) for r in eve if (at := _instant(str(r["starts_at"]))) and at >= earliest_midnight]
    # Text sorting before today that starts with no date: the compares above cannot place it.
    odd = db.query(f"SELECT starts_at FROM appointments WHERE tenant_id = ? AND starts_at < ? AND NOT starts_at GLOB ? "
                   f"AND status IN ({status_in}) ORDER BY starts_at", [tenant_id, since, DATE_GLOB, *OPEN_APPOINTMENTS])
    unreadable = []
    for r in odd:
        text = str(r["starts_at"])
        try:
            parsed = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            unreadable.append(text)
            continue
        if parsed >= earliest_midnight if parsed.tzinfo is not None else parsed.date() >= day:
            late.append(text)
    if unreadable:
        shown = ", ".join(repr(t) for t in unreadable[:5]) + (f" and {len(unreadable) - 5} more" if len(unreadable) > 5
                                                             else "")
        return count + len(late) + len(unreadable), f"{shown}, no time it can read, so counted as open"
    # As Python spells it: quotes show a leading space, and no text from the table drives the terminal.
    return count + len(late), (repr(late[0]) if late else repr(first) if first is not None else None)


def _instant(value: str) -> dt.datetime | None:
    """`value` as an instant when it carries `Z` or an offset; None for a wall-clock time or other text."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def remove_tenant(db: Database, client: Cloudflare, zone: SaasZone, slug: str, *, force: bool = False,
                  reason: str | None = None, served: Mapping[str, str] | None = None) -> Removal:
    """Delete the tenant's custom hostname, take it off the SaaS Turnstile widget and suspend its row;
    refused while it has future bookings.

    `force` needs a `reason`, recorded in `audit_logs`. The row is kept (status `suspended`, no
    hostname): appointments, services and accounts point at it, and `tenants add` brings it back.
    """
    served = served or {}
    require_tables(db, ["tenants", "appointments", "audit_logs"])
    row = _row(db, slug)
    if row is None:
        raise TenantInputError(f"no tenant {slug!r} in the tenants table")
    if force and not (reason or "").strip():
        raise TenantInputError("--force needs --reason: say why bookings are being cut off (it is recorded)")
    hostname = normalize(str(row["hostname"])) if row.get("hostname") else None
    if hostname is not None and hostname in served:
        raise TenantInputError(f"tenant {slug}'s hostname {hostname} is served by the stack config "
                               f"({served[hostname]}); remove it there, not here")
    count, first = future_appointments(db, str(row["id"]))
    if count and not force:
        raise TenantError(f"tenant {slug} has {count} open appointment(s) from today on (the first at {first}); "
                          f"removing its hostname would leave those customers without the salon's site. Move or "
                          f"cancel them first, or run `bookingctl tenants remove {slug} --force --reason \"...\"`")

    deleted = False
    if hostname is not None:
        found = find_custom_hostname(client, zone, hostname)
        if found is not None:
            _delete(client, zone, found.id, hostname)
            deleted = True
        # Once the hostname serves nothing, and before the row forgets it (a rerun still knows it).
        if zone.turnstile_widget is not None:
            _unlist_from_widgets(client, zone, hostname)
        # Setting fixed values: sending it again after a lost answer changes nothing (landed() is False).
        _write(db, "UPDATE tenants SET status = 'suspended', hostname = NULL WHERE id = ?", [row["id"]],
               lambda: False, f"suspending tenant {slug}")
    elif row.get("status") != "suspended":
        _write(db, "UPDATE tenants SET status = 'suspended' WHERE id = ?", [row["id"]], lambda: False,
               f"suspending tenant {slug}")
    marker = f"bookingctl tenants remove {uuid.uuid4()}"
    action = "tenant.removed" + (f" (forced, {count} open appointments): {reason}" if force and count else
                                 f": {reason}" if reason else "")
    # The marker makes the audit row findable after a lost answer, so it is never written twice.
    _write(db, "INSERT INTO audit_logs (tenant_id, user_id, action, resource_type, resource_id, user_agent) "
               "VALUES (?, 'bookingctl', ?, 'tenant', ?, ?)",
           [row["id"], action[:1000], slug, marker],
           lambda: bool(db.query("SELECT 1 FROM audit_logs WHERE user_agent = ?", [marker])),
           f"recording the removal of tenant {slug}")
    return Removal(slug, hostname, deleted, count, bool(force and count), reason)
