"""Salons on the SaaS path as data: the SaaS zone, what a salon publishes, each hostname's state, reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from booking_shared.edge import saas_turnstile_widget_name
from booking_shared.errors import InputError, OperationFailed
from booking_shared.limits import (
    TurnstilePlan,
)
from booking_shared.turnstile import nth_widget_name

if TYPE_CHECKING:
    from cloudflare.types.custom_hostnames.custom_hostname_create_response import CustomHostnameCreateResponse
    from cloudflare.types.custom_hostnames.custom_hostname_edit_response import CustomHostnameEditResponse
    from cloudflare.types.custom_hostnames.custom_hostname_list_response import CustomHostnameListResponse

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


