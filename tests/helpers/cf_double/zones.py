"""Zones: the zone itself (its plan) and its rulesets (phase entry points, http_ratelimit's rules).

`GET /zones/{zone}` (the SDK's `Zone`, with `plan`), `GET /zones/{zone}/rulesets` (list, cursor
pagination as the SDK's `SyncCursorPagination` reads it), `GET .../rulesets/{id}`, `GET
.../rulesets/phases/{phase}/entrypoint` and `POST .../rulesets` (create). Sources:
- One entry point per phase: cloudflare-docs ruleset-engine/about/rulesets.mdx ("Each phase has
  at most one entry point ruleset at the account level and at the zone level"). A second create
  answers 400 with code 20217, "'zone' is not a valid value for kind because exceeded maximum
  number of zone rulesets for phase http_ratelimit" and `source.pointer` "/kind", as real API
  output shows it (terraform-provider-cloudflare issues 3444 and 6273).
- No entry point yet: code 10003, "could not find entrypoint ruleset in the <phase> phase" (a
  real response quoted in ibm-mas/ansible-devops pull 2403); 404, the status the provider's
  Read treats as "gone" (internal/services/ruleset/resource.go).
- What a zone's plan holds in http_ratelimit: booking_shared/limits.py (the availability table).
  A refused rule answers 400 with one error per problem, each with the JSON pointer of the field
  and the API's wording for a refused value ("'<value>' is not a valid value for <field>
  because <reason>", as quoted in cloudflare-docs issue 23641 for a field a rule may not use).
  The code of those refusals is not published: 20217, the one published for this wording, is
  reused, so callers should rely on the status, the pointer and the wording, not the code.
- Zone plan ids: the zone's `plan.legacy_id` ("free", "pro", "business", "enterprise") and
  `plan.name` ("Free Website", ...), as terraform-provider-cloudflare v4 reads them
  (internal/sdkv2provider/resource_cloudflare_zone.go, 7e32ab38).
Only `kind: zone` rulesets (phase entry points) are modelled: another kind is refused (400).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar, get_args

from cloudflare.types.rulesets.phase import Phase

from booking_shared.edge import RATELIMIT_PHASE
from booking_shared.limits import RateLimitRule, ZonePlan, rate_limit_problems
from tests.helpers.cf_double.base import Service
from tests.helpers.cf_double.envelope import Refusal, Response, envelope, error, ok, problem
from tests.helpers.cf_double.routes import Bytes, Reply, Request, Route

RULESET_REFUSED = 20217  # the code published for "'<value>' is not a valid value for <field>" (above)


def no_zone(path: str) -> Refusal:
    return Refusal(404, error(7003, f"Could not route to {path}, perhaps your object identifier is invalid?"))


@dataclass
class ZoneState:
    """A zone's plan and its rulesets: what `doctor` reads."""

    zone_id: str
    plan: ZonePlan = "free"
    name: str = "example.co.za"
    rulesets: list[dict[str, Any]] = field(default_factory=list)  # as the API returns them, rules included
    created_on: str = ""

    def entry_point(self, phase: str) -> dict[str, Any] | None:
        return next((r for r in self.rulesets if r["kind"] == "zone" and r["phase"] == phase), None)


class Zones(Service):
    zones: dict[str, ZoneState]

    ZONE_PLAN_NAMES: ClassVar[dict[str, str]] = {"free": "Free Website", "pro": "Pro Website",
                                                 "business": "Business Website", "enterprise": "Enterprise Website"}

    def _init_zones(self) -> None:
        self.zones = {}

    def add_zone(self, zone_id: str, plan: ZonePlan = "free", *, name: str = "example.co.za",
                 rulesets: list[dict[str, Any]] | None = None) -> ZoneState:
        """A zone on `plan`; `rulesets` as `ruleset(...)` builds them (e.g. a dashboard-made entry point)."""
        state = ZoneState(zone_id, plan, name, list(rulesets or []), created_on=self.clock.stamp())
        self.zones[zone_id] = state
        return state

    def ruleset(self, phase: str, rules: list[dict[str, Any]] | None = None, *, name: str = "default",
                description: str = "") -> dict[str, Any]:
        """A zone entry point as the API stores it (ids, versions, timestamps filled in), not yet in a zone."""
        stamp = self.clock.stamp()
        stored = []
        for rule in rules or []:
            rule_id = uuid.uuid4().hex
            # "ref: The reference of the rule (the rule's ID by default)" (the SDK's BlockRule).
            stored.append({"enabled": True, "description": "", **rule, "id": rule_id, "ref": rule.get("ref") or rule_id,
                           "version": "1", "last_updated": stamp})
        return {"id": uuid.uuid4().hex, "kind": "zone", "phase": phase, "name": name, "description": description,
                "version": "1", "last_updated": stamp, "rules": stored}

    def _zone(self, req: Request) -> ZoneState:
        zone = self.zones.get(req.params["zone"])
        if zone is None:
            raise no_zone(req.path)
        return zone

    # --- routes ---------------------------------------------------------------------------------

    def get_zone(self, req: Request) -> Response:
        zone = self._zone(req)
        # Every field the SDK's `Zone` requires; the plan as terraform-provider-cloudflare v4 reads it.
        return 200, ok({
            "id": zone.zone_id, "name": zone.name, "status": "active", "paused": False, "type": "full",
            "account": {"id": self.account_id, "name": "salon account"},
            "created_on": zone.created_on, "modified_on": zone.created_on, "activated_on": zone.created_on,
            "development_mode": 0, "meta": {}, "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_dnshost": None, "original_name_servers": None, "original_registrar": None,
            "owner": {"type": "user"},  # id/name are non-nullable strings in the document (zones_zone): left out
            "plan": {"id": uuid.uuid5(uuid.NAMESPACE_URL, zone.plan).hex, "legacy_id": zone.plan,
                     "name": self.ZONE_PLAN_NAMES[zone.plan], "is_subscribed": zone.plan != "free",
                     "can_subscribe": False, "currency": "USD", "frequency": "", "price": 0,
                     "externally_managed": False, "legacy_discount": False}})

    def list_rulesets(self, req: Request) -> Response:
        zone = self._zone(req)
        # `cursor` and `per_page` are the list's query parameters (the SDK's rulesets.list); the
        # cursor is opaque to callers, here the offset of the next page.
        per_page, start = int(req.arg("per_page", "20")), int(req.arg("cursor", "0"))
        if per_page < 1:
            return 400, error(RULESET_REFUSED, f"'{per_page}' is not a valid value for per_page")
        # The list leaves the rules out (the SDK's RulesetListResponse has none).
        page = [{k: v for k, v in r.items() if k != "rules"} for r in zone.rulesets[start:start + per_page]]
        more = start + per_page < len(zone.rulesets)
        return 200, ok(page, {"count": len(page), "per_page": per_page,
                              **({"cursor": str(start + per_page)} if more else {})})

    def get_ruleset(self, req: Request) -> Response:
        zone = self._zone(req)
        found = next((r for r in zone.rulesets if r["id"] == req.params["ruleset"]), None)
        return (200, ok(found)) if found else (404, error(10003, "could not find ruleset"))

    def get_entry_point(self, req: Request) -> Response:
        zone = self._zone(req)
        phase = req.params["phase"]
        found = zone.entry_point(phase)
        if found is None:
            return 404, error(10003, f"could not find entrypoint ruleset in the {phase} phase")
        return 200, ok(found)

    def create_ruleset(self, req: Request) -> Response:
        zone = self._zone(req)
        body = req.json()
        kind, phase, name = body.get("kind"), str(body.get("phase")), body.get("name")
        rules = body.get("rules") or []
        if kind != "zone":
            return 400, error(RULESET_REFUSED, f"'{kind}' is not a valid value for kind because the double models "
                                               "zone entry points only", "/kind")
        if phase not in get_args(Phase):  # the SDK's Phase enum, from the OpenAPI schema
            return 400, error(RULESET_REFUSED, f"'{phase}' is not a valid value for phase", "/phase")
        if not isinstance(name, str) or not name:
            return 400, error(RULESET_REFUSED, "'' is not a valid value for name because it is required", "/name")
        if zone.entry_point(phase) is not None:
            return 400, error(RULESET_REFUSED, f"'zone' is not a valid value for kind because exceeded maximum number "
                                               f"of zone rulesets for phase {phase}", "/kind")
        if phase == RATELIMIT_PHASE:
            refused = ratelimit_refusals(zone, rules)
            if refused:
                return 400, envelope(errors=refused)
        created = self.ruleset(phase, rules, name=name, description=str(body.get("description") or ""))
        zone.rulesets.append(created)
        return 200, ok(created)

    def delete_ruleset(self, req: Request) -> Reply:
        """DELETE .../rulesets/{id}: the provider's ruleset Delete (204, no body: the SDK's `delete` returns None)."""
        zone = self._zone(req)
        found = next((r for r in zone.rulesets if r["id"] == req.params["ruleset"]), None)
        if found is None:
            return 404, error(10003, "could not find ruleset")
        zone.rulesets.remove(found)
        return Bytes(204, b"", "application/json")


def ratelimit_refusals(zone: ZoneState, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One error per rule field the zone's plan cannot hold (booking_shared/limits.py)."""
    specs, errors = [], []
    for index, rule in enumerate(rules):
        ratelimit = rule.get("ratelimit")
        if not isinstance(ratelimit, dict) or "period" not in ratelimit or not rule.get("expression"):
            message = f"rule {index} is not a valid rate limiting rule because it needs an expression and a period"
            errors.append(problem(RULESET_REFUSED, message, f"/rules/{index}"))
            continue
        # The schema's types (the SDK's BlockRuleRatelimit, cloudflare 5.9.0, from the OpenAPI
        # document): period Required[int], mitigation_timeout int, characteristics
        # Required[Sequence[str]]; a "60", a 60.5 or a true is no integer there.
        typed = {"period": ratelimit.get("period"), "mitigation_timeout": ratelimit.get("mitigation_timeout", 0)}
        wrong = [f for f, v in typed.items() if type(v) is not int]
        characteristics = ratelimit.get("characteristics")
        if not isinstance(characteristics, list) or not all(isinstance(c, str) for c in characteristics):
            wrong.append("characteristics")
        if wrong:
            errors += [problem(RULESET_REFUSED, f"'{ratelimit.get(f)}' is not a valid value for {f}",
                               f"/rules/{index}/ratelimit/{f}") for f in wrong]
            continue
        specs.append(RateLimitRule(str(rule.get("ref") or index), str(rule["expression"]), str(rule.get("action")),
                                   int(ratelimit["period"]), int(ratelimit.get("mitigation_timeout", 0)),
                                   tuple(ratelimit.get("characteristics") or ())))
    for found in rate_limit_problems(zone.plan, specs):
        pointer = "/rules" if found.index is None else (
            f"/rules/{found.index}/" + (found.field if found.field in ("expression", "action")
                                        else f"ratelimit/{found.field}"))
        errors.append(problem(RULESET_REFUSED, f"'{found.found}' is not a valid value for "
                                               f"{pointer.rsplit('/', 1)[-1]} because the zone's plan allows "
                                               f"{found.allowed}", pointer))
    return errors


ROUTES = (
    Route("GET", "/zones/{zone}", Zones.get_zone),
    Route("GET", "/zones/{zone}/rulesets", Zones.list_rulesets),
    Route("POST", "/zones/{zone}/rulesets", Zones.create_ruleset),
    Route("GET", "/zones/{zone}/rulesets/phases/{phase}/entrypoint", Zones.get_entry_point),
    Route("GET", "/zones/{zone}/rulesets/{ruleset}", Zones.get_ruleset),
    Route("DELETE", "/zones/{zone}/rulesets/{ruleset}", Zones.delete_ruleset),
)
