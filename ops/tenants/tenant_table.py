"""The tenants table in D1: rows, the widget column, writes that are never sent twice blindly."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import idna

from booking_shared.hostnames import normalize
from ops.targets import Database, LocalDatabase, UncertainWriteError, require_tables, writer
from ops.tenants.tenant_model import TenantError

if TYPE_CHECKING:
    from cloudflare.types.custom_hostnames.custom_hostname_create_response import CustomHostnameCreateResponse
    from cloudflare.types.custom_hostnames.custom_hostname_edit_response import CustomHostnameEditResponse
    from cloudflare.types.custom_hostnames.custom_hostname_list_response import CustomHostnameListResponse


    CustomHostname = CustomHostnameCreateResponse | CustomHostnameListResponse | CustomHostnameEditResponse

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


def write_tenants(db: Database, sql: str, params: Sequence[object], landed: Callable[[], bool], what: str) -> None:
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


def tenant_row(db: Database, slug: str) -> dict[str, Any] | None:
    rows = db.query("SELECT * FROM tenants WHERE slug = ?", [slug])
    return rows[0] if rows else None


