"""Cloudflare for SaaS, zone-scoped: custom hostnames, the fallback origin and the quota.

`/zones/{zone}/custom_hostnames[...]`: list (paginated), create, get, edit, delete; the fallback
origin; the quota. A custom hostname moves from pending to active after some reads, or to a
blocked state (`blocked_hostnames`). The quota is {allocated, exceeded, hard_cap, used}
(custom_hostnames.quota.get); allocated and hard cap are per zone in the API
(SaasZoneState.quota_*: test values, no published default).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from booking_shared.limits import ZonePlan
from tests.helpers.cf_double.envelope import Refusal, Response, error, ok, page_info
from tests.helpers.cf_double.routes import Reply, Request, Route
from tests.helpers.cf_double.zones import Zones, no_zone


@dataclass
class SaasZoneState:
    """A zone with Cloudflare for SaaS: its custom hostnames (by id) and its fallback origin."""

    zone_id: str  # the zone itself (its name and plan) is double.zones[zone_id]
    hostnames: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> the API's object
    polls: dict[str, int] = field(default_factory=dict)  # id -> reads so far (states move on reads)
    fallback_origin: dict[str, Any] | None = None
    fallback_polls: int = 0
    # GET custom_hostnames/quota: the API reports both per zone (test values; see the module's docstring).
    quota_allocated: int = 100
    quota_hard_cap: int = 5000


class CustomHostnames(Zones):
    """SaaS zones are zones: each is also in `zones` (its name, plan and rulesets)."""

    saas_zones: dict[str, SaasZoneState]
    custom_hostname_polls_needed: int
    blocked_hostnames: dict[str, str]

    def _init_custom_hostnames(self) -> None:
        # A custom hostname becomes active after this many reads, unless its hostname is in
        # `blocked_hostnames` (hostname -> "validation_timed_out", the salon never published the
        # records, or "blocked", Cloudflare refuses it).
        self.saas_zones = {}
        self.custom_hostname_polls_needed = 2
        self.blocked_hostnames = {}

    def add_saas_zone(self, zone_id: str, name: str = "saas.example.co.za", *,
                      plan: ZonePlan = "free") -> SaasZoneState:
        """A zone with Cloudflare for SaaS; it is also a zone (GET /zones/{id}, its rulesets) like any other."""
        state = SaasZoneState(zone_id)
        self.saas_zones[zone_id] = state
        if zone_id not in self.zones:
            self.add_zone(zone_id, plan, name=name)
        return state

    def dispatch_zone(self, method: str, rest: str, query: dict[str, list[str]],
                      body: dict[str, Any]) -> Reply:
        """A request to `/zones/{rest}` as if sent (tests make state through the API's own paths)."""
        return self.answer(Request(method, f"/zones/{rest}", query, json.dumps(body).encode()))

    def _saas(self, req: Request) -> SaasZoneState:
        zone = self.saas_zones.get(req.params["zone"])
        if zone is None:
            raise no_zone(req.path)
        return zone

    def _hostname(self, req: Request) -> tuple[SaasZoneState, str]:
        zone = self._saas(req)
        if req.params["hostname"] not in zone.hostnames:
            raise Refusal(404, error(1436, "The custom hostname was not found."))
        return zone, req.params["hostname"]

    # --- routes ---------------------------------------------------------------------------------

    def quota(self, req: Request) -> Response:
        zone = self._saas(req)
        used = len(zone.hostnames)
        return 200, ok({"allocated": zone.quota_allocated, "hard_cap": zone.quota_hard_cap, "used": used,
                        "exceeded": used > zone.quota_allocated})

    def list_hostnames(self, req: Request) -> Response:
        zone = self._saas(req)
        page, per_page = int(float(req.arg("page", "1"))), int(float(req.arg("per_page", "20")))
        if not 5 <= per_page <= 50:
            return 400, error(1004, "per_page must be between 5 and 50")
        exact, wanted = req.optional("hostname.exact"), req.optional("id")
        matching = [i for i, h in sorted(zone.hostnames.items(), key=lambda kv: kv[1]["hostname"])
                    if exact in (None, h["hostname"]) and wanted in (None, i)]
        items = [self._read(zone, i) for i in matching[(page - 1) * per_page: page * per_page]]
        return 200, ok(items, page_info(items, page, per_page, len(matching)))

    def create_hostname(self, req: Request) -> Response:
        zone = self._saas(req)
        body = req.json()
        hostname = str(body.get("hostname") or "")
        ssl = body.get("ssl") or {}
        if not hostname:
            return 400, error(1400, "hostname is required")
        if ssl.get("method") not in ("http", "txt", "email") or ssl.get("type") != "dv":
            return 400, error(1416, "ssl.method must be http, txt or email and ssl.type dv")
        if any(h["hostname"] == hostname for h in zone.hostnames.values()):
            return 409, error(1406, "Duplicate custom hostname found.")
        # The quota's hard_cap is "the maximum number of custom hostnames allowed before create
        # requests are rejected" (the SDK's QuotaGetResponse); the status and code of that refusal are
        # not published, so callers may rely only on a 4xx (400 here).
        if len(zone.hostnames) >= zone.quota_hard_cap:
            return 400, error(1400, f"custom hostname quota exceeded: the zone's hard cap is {zone.quota_hard_cap}")
        hostname_id = str(uuid.uuid4())
        zone.hostnames[hostname_id] = {
            "id": hostname_id, "hostname": hostname, "created_at": self.clock.stamp(), "status": "pending",
            "verification_errors": ["custom hostname does not CNAME to this zone."],
            "ownership_verification": {"type": "txt", "name": f"_cf-custom-hostname.{hostname}",
                                       "value": str(uuid.uuid4())},
            "ownership_verification_http": {
                "http_url": f"http://{hostname}/.well-known/cf-custom-hostname-challenge/{hostname_id}",
                "http_body": str(uuid.uuid4())},
            "ssl": {"id": str(uuid.uuid4()), "type": "dv", "method": ssl["method"], "status": "pending_validation",
                    "bundle_method": "ubiquitous", "certificate_authority": "google", "wildcard": False,
                    "settings": {"min_tls_version": (ssl.get("settings") or {}).get("min_tls_version", "1.0")},
                    "validation_records": [{"status": "pending", "txt_name": f"_acme-challenge.{hostname}",
                                            "txt_value": uuid.uuid4().hex}]},
        }
        zone.polls[hostname_id] = 0
        return 200, ok(zone.hostnames[hostname_id])

    def get_hostname(self, req: Request) -> Response:
        return 200, ok(self._read(*self._hostname(req)))

    def edit_hostname(self, req: Request) -> Response:
        """A PATCH with `ssl` restarts a certificate validation that timed out, with a new record."""
        zone, hostname_id = self._hostname(req)
        record = zone.hostnames[hostname_id]
        if req.json().get("ssl") and record["ssl"]["status"].endswith("_timed_out"):
            record["ssl"]["status"] = "pending_validation"
            record["ssl"].pop("validation_errors", None)
            record["ssl"]["validation_records"] = [{"status": "pending", "txt_name": f"_acme-challenge."
                                                    f"{record['hostname']}", "txt_value": uuid.uuid4().hex}]
            zone.polls[hostname_id] = 0
            self.blocked_hostnames.pop(record["hostname"], None)  # the salon has published the records now
        return 200, ok(record)

    def delete_hostname(self, req: Request) -> Response:
        zone, hostname_id = self._hostname(req)
        del zone.hostnames[hostname_id]
        # The SDK casts the whole body to CustomHostnameDeleteResponse: the API answers {id}, no envelope.
        return 200, {"id": hostname_id}

    def _read(self, zone: SaasZoneState, hostname_id: str) -> dict[str, Any]:
        """The hostname as a read sees it; each read is a poll that moves it along its states."""
        record = zone.hostnames[hostname_id]
        zone.polls[hostname_id] += 1
        if zone.polls[hostname_id] < self.custom_hostname_polls_needed or record["status"] != "pending":
            return record
        outcome = self.blocked_hostnames.get(record["hostname"])
        if outcome == "blocked":
            record["status"] = "blocked"
            record["verification_errors"] = ["The hostname is blocked: it matches a high-risk domain; contact "
                                              "support."]
        elif outcome == "validation_timed_out":
            record["ssl"]["status"] = "validation_timed_out"
            record["ssl"]["validation_errors"] = [{"message": "TXT record not found at _acme-challenge."
                                                              f"{record['hostname']}"}]
        else:
            record["status"] = "active"
            record.pop("verification_errors", None)
            record["ssl"]["status"] = "active"
            record["ssl"].pop("validation_records", None)
        return record

    def put_fallback_origin(self, req: Request) -> Response:
        zone = self._saas(req)
        origin = str(req.json().get("origin") or "")
        if not origin:
            return 400, error(1400, "origin is required")
        stamp = self.clock.stamp()
        zone.fallback_origin = {"origin": origin, "status": "pending_deployment", "errors": [],
                                "created_at": stamp, "updated_at": stamp}
        zone.fallback_polls = 0
        return 200, ok(zone.fallback_origin)

    def _fallback(self, req: Request) -> tuple[SaasZoneState, dict[str, Any]]:
        zone = self._saas(req)
        if zone.fallback_origin is None:
            raise Refusal(404, error(1551, "No fallback origin has been set for this zone."))
        return zone, zone.fallback_origin

    def get_fallback_origin(self, req: Request) -> Response:
        zone, origin = self._fallback(req)
        zone.fallback_polls += 1
        if zone.fallback_polls >= self.custom_hostname_polls_needed:
            origin["status"] = "active"
        return 200, ok(origin)

    def delete_fallback_origin(self, req: Request) -> Response:
        zone, origin = self._fallback(req)
        zone.fallback_origin = None
        return 200, ok({**origin, "status": "pending_deletion"})


# The fixed names (quota, fallback_origin) come before `{hostname}`: the first match wins.
ROUTES = (
    Route("GET", "/zones/{zone}/custom_hostnames/quota", CustomHostnames.quota),
    Route("GET", "/zones/{zone}/custom_hostnames/fallback_origin", CustomHostnames.get_fallback_origin),
    Route("PUT", "/zones/{zone}/custom_hostnames/fallback_origin", CustomHostnames.put_fallback_origin),
    Route("DELETE", "/zones/{zone}/custom_hostnames/fallback_origin", CustomHostnames.delete_fallback_origin),
    Route("GET", "/zones/{zone}/custom_hostnames", CustomHostnames.list_hostnames),
    Route("POST", "/zones/{zone}/custom_hostnames", CustomHostnames.create_hostname),
    Route("GET", "/zones/{zone}/custom_hostnames/{hostname}", CustomHostnames.get_hostname),
    Route("PATCH", "/zones/{zone}/custom_hostnames/{hostname}", CustomHostnames.edit_hostname),
    Route("DELETE", "/zones/{zone}/custom_hostnames/{hostname}", CustomHostnames.delete_hostname),
)
