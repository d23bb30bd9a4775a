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

import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import idna

from booking_shared.clock import today
from booking_shared.edge import turnstile_covers, turnstile_domains
from booking_shared.hostnames import hostname_problem, normalize, slug_problem
from booking_shared.limits import (
    BLOCKED_SSL,
)
from ops.targets import Database, require_tables
from ops.tenants.custom_hostnames import (
    create_hostname,
    custom_hostnames,
    delete_hostname,
    fallback_origin,
    find_custom_hostname,
    hostname_state,
    publish_records,
    revalidate_hostname,
)
from ops.tenants.tenant_model import (
    DATE_GLOB,
    OPEN_APPOINTMENTS,
    HostnameState,
    Onboarding,
    PublishRecord,
    Removal,
    SaasZone,
    StatusReport,
    TenantError,
    TenantInputError,
)
from ops.tenants.tenant_table import (
    has_widget_column,
    stored_hostname,
    tenant_row,
    tenant_rows,
    widget_of,
    write_tenants,
)
from ops.tenants.widgets import list_on_widget, saas_widgets, unlist_from_widgets

if TYPE_CHECKING:
    from cloudflare import Cloudflare
    from cloudflare.types.custom_hostnames.custom_hostname_create_response import CustomHostnameCreateResponse
    from cloudflare.types.custom_hostnames.custom_hostname_edit_response import CustomHostnameEditResponse
    from cloudflare.types.custom_hostnames.custom_hostname_list_response import CustomHostnameListResponse


    CustomHostname = CustomHostnameCreateResponse | CustomHostnameListResponse | CustomHostnameEditResponse

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
    row = tenant_row(db, slug)
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
        widget = list_on_widget(client, zone, hostname)
    # The widget goes on the row with the hostname: the Worker verifies the salon's tokens with its secret.
    on_widget, with_widget = ("", []) if widget is None else (", turnstile_widget = ?", [widget])

    row_created = False
    if row is None:
        def inserted() -> bool:
            again = tenant_row(db, slug)
            return again is not None and again.get("hostname") == hostname

        write_tenants(db, "INSERT INTO tenants (id, slug, name, hostname, status" + (", turnstile_widget" if with_widget
                                                                              else "")
               + ") VALUES (?, ?, ?, ?, 'active'" + (", ?" if with_widget else "") + ")",
               [str(uuid.uuid4()), slug, name or slug, hostname, *with_widget], inserted, f"writing tenant {slug}")
        row_created = True
    elif not row.get("hostname") or row.get("status") != "active" or (
            widget is not None and row.get("turnstile_widget") != widget):
        # A removed (suspended) salon coming back: the same row, its bookings and accounts kept; or a
        # rerun whose widget is not recorded yet.
        def reactivated() -> bool:
            again = tenant_row(db, slug)
            return (again is not None and again.get("hostname") == hostname and again.get("status") == "active"
                    and (widget is None or again.get("turnstile_widget") == widget))

        write_tenants(db, f"UPDATE tenants SET hostname = ?, status = 'active'{on_widget} WHERE slug = ?",
               [hostname, *with_widget, slug], reactivated, f"reactivating tenant {slug}")

    existing = find_custom_hostname(client, zone, hostname)
    found: CustomHostname = existing if existing is not None else create_hostname(client, zone, hostname)
    if existing is not None and existing.ssl is not None and existing.ssl.status in BLOCKED_SSL:
        found = revalidate_hostname(client, zone, existing)
    if widget is not None:
        # Once more, seconds after the PUT: another `add` that read the widget before it and wrote
        # after its read-back has taken this hostname off; place it again and record where it is.
        again = list_on_widget(client, zone, hostname)
        if again != widget:
            write_tenants(db, "UPDATE tenants SET turnstile_widget = ? WHERE slug = ?", [again, slug],
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
    row = tenant_row(db, slug)
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
            delete_hostname(client, zone, found.id, hostname)
            deleted = True
        # Once the hostname serves nothing, and before the row forgets it (a rerun still knows it).
        if zone.turnstile_widget is not None:
            unlist_from_widgets(client, zone, hostname)
        # Setting fixed values: sending it again after a lost answer changes nothing (landed() is False).
        write_tenants(db, "UPDATE tenants SET status = 'suspended', hostname = NULL WHERE id = ?", [row["id"]],
               lambda: False, f"suspending tenant {slug}")
    elif row.get("status") != "suspended":
        write_tenants(db, "UPDATE tenants SET status = 'suspended' WHERE id = ?", [row["id"]], lambda: False,
               f"suspending tenant {slug}")
    marker = f"bookingctl tenants remove {uuid.uuid4()}"
    action = "tenant.removed" + (f" (forced, {count} open appointments): {reason}" if force and count else
                                 f": {reason}" if reason else "")
    # The marker makes the audit row findable after a lost answer, so it is never written twice.
    write_tenants(db, "INSERT INTO audit_logs (tenant_id, user_id, action, resource_type, resource_id, user_agent) "
               "VALUES (?, 'bookingctl', ?, 'tenant', ?, ?)",
           [row["id"], action[:1000], slug, marker],
           lambda: bool(db.query("SELECT 1 FROM audit_logs WHERE user_agent = ?", [marker])),
           f"recording the removal of tenant {slug}")
    return Removal(slug, hostname, deleted, count, bool(force and count), reason)
