"""A salon's custom hostname on the SaaS zone: listing, creating, revalidating, deleting; what it publishes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from booking_shared.hostnames import normalize
from booking_shared.limits import (
    ACTIVE_STATUSES,
    BLOCKED_SSL,
    BLOCKED_STATUSES,
    REFRESHABLE_STATUSES,
)
from ops.targets import UncertainWriteError, writer
from ops.tenants.tenant_model import PAGE_SIZE, HostnameState, PublishRecord, SaasZone, TenantError

if TYPE_CHECKING:
    from cloudflare import Cloudflare
    from cloudflare.types.custom_hostnames.custom_hostname_create_response import CustomHostnameCreateResponse
    from cloudflare.types.custom_hostnames.custom_hostname_edit_response import CustomHostnameEditResponse
    from cloudflare.types.custom_hostnames.custom_hostname_list_response import CustomHostnameListResponse


    CustomHostname = CustomHostnameCreateResponse | CustomHostnameListResponse | CustomHostnameEditResponse

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


def create_hostname(client: Cloudflare, zone: SaasZone, hostname: str) -> CustomHostname:
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


def revalidate_hostname(client: Cloudflare, zone: SaasZone, found: CustomHostname) -> CustomHostname:
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


def delete_hostname(client: Cloudflare, zone: SaasZone, hostname_id: str, hostname: str) -> None:
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


