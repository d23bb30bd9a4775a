"""Health checks (zone) and notification policies (account): what a stack's monitoring declares.

The operations the provider's healthcheck and notification_policy resources call
(terraform-provider-cloudflare internal/services/{healthcheck,notification_policy}/resource.go,
a2efdc578: `Healthchecks.New/Update/Get/Delete`, `Alerting.Policies.New/Update/Get/Delete`), checked
against the OpenAPI document; a health check's fields are the document's healthchecks_healthchecks
(`suspended`: "If suspended, no health checks are sent to the origin"). What the document does not
say, the double does not guess: it stores the fields it is given and answers them back. Refusal codes
are the double's own (10000): the API's are not published.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.helpers.cf_double.envelope import Response, error, ok
from tests.helpers.cf_double.routes import Request, Route
from tests.helpers.cf_double.zones import Zones

_CHECK_FIELDS = ("name", "address", "description", "check_regions", "consecutive_fails", "consecutive_successes",
                 "interval", "retries", "timeout", "type", "http_config", "tcp_config", "suspended")
_POLICY_FIELDS = ("name", "alert_type", "enabled", "mechanisms", "description", "filters", "alert_interval")


class Monitoring(Zones):
    healthchecks: dict[str, dict[str, Any]]  # id -> the check as answered
    healthcheck_zone: dict[str, str]  # id -> zone id
    notification_policies: dict[str, dict[str, Any]]  # id -> the policy as stored

    def _init_monitoring(self) -> None:
        self.healthchecks, self.healthcheck_zone, self.notification_policies = {}, {}, {}

    def create_healthcheck(self, req: Request) -> Response:
        zone = self._zone(req)
        body = req.json() or {}
        stamp = self.clock.stamp()
        check = {k: body[k] for k in _CHECK_FIELDS if k in body}
        check.update({"id": uuid.uuid4().hex, "created_on": stamp, "modified_on": stamp, "failure_reason": "",
                      "status": "suspended" if body.get("suspended") else "unknown",
                      "suspended": bool(body.get("suspended", False))})
        with self.lock:
            self.healthchecks[check["id"]] = check
            self.healthcheck_zone[check["id"]] = zone.zone_id
        return 200, ok(check)

    def list_healthchecks(self, req: Request) -> Response:
        zone = self._zone(req)
        found = [c for key, c in self.healthchecks.items() if self.healthcheck_zone[key] == zone.zone_id]
        page, per_page = int(req.arg("page", "1")), int(req.arg("per_page", "25"))
        items = found[(page - 1) * per_page: page * per_page]
        return 200, ok(items, {"page": page, "per_page": per_page, "count": len(items), "total_count": len(found)})

    def _check(self, req: Request) -> dict[str, Any] | None:
        zone = self._zone(req)
        check = self.healthchecks.get(req.params["check"])
        return check if check and self.healthcheck_zone[check["id"]] == zone.zone_id else None

    def edit_healthcheck(self, req: Request) -> Response:
        with self.lock:
            check = self._check(req)
            if check is None:
                return 404, error(10000, "health check not found")
            body = req.json() or {}
            check.update({k: body[k] for k in _CHECK_FIELDS if k in body})
            check["status"] = "suspended" if check.get("suspended") else "unknown"
            check["modified_on"] = self.clock.stamp()
        return 200, ok(check)

    def delete_healthcheck(self, req: Request) -> Response:
        with self.lock:
            check = self._check(req)
            if check is None:
                return 404, error(10000, "health check not found")
            del self.healthchecks[check["id"]], self.healthcheck_zone[check["id"]]
        return 200, ok({"id": check["id"]})

    def create_policy(self, req: Request) -> Response:
        body = req.json() or {}
        policy = {k: body[k] for k in _POLICY_FIELDS if k in body}
        policy["id"] = uuid.uuid4().hex
        with self.lock:
            self.notification_policies[policy["id"]] = policy
        return 200, ok({"id": policy["id"]})

    def list_policies(self, req: Request) -> Response:
        return 200, ok(list(self.notification_policies.values()))

    def delete_policy(self, req: Request) -> Response:
        with self.lock:
            if self.notification_policies.pop(req.params["policy"], None) is None:
                return 404, error(10000, "policy not found")
        return 200, ok(None)


ROUTES = (
    Route("GET", "/zones/{zone}/healthchecks", Monitoring.list_healthchecks),
    Route("POST", "/zones/{zone}/healthchecks", Monitoring.create_healthcheck),
    Route("PATCH", "/zones/{zone}/healthchecks/{check}", Monitoring.edit_healthcheck),
    Route("DELETE", "/zones/{zone}/healthchecks/{check}", Monitoring.delete_healthcheck),
    Route("GET", "/accounts/{account}/alerting/v3/policies", Monitoring.list_policies),
    Route("POST", "/accounts/{account}/alerting/v3/policies", Monitoring.create_policy),
    Route("DELETE", "/accounts/{account}/alerting/v3/policies/{policy}", Monitoring.delete_policy),
)
