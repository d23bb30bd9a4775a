"""Turnstile widgets, account-scoped.

`/accounts/{account}/challenges/widgets`: list (filter `name:`, "case-insensitive substring
matching", or `sitekey:`, "exact matching": cloudflare 5.9.0 types/turnstile/widget_list_params.py,
generated from the current spec; the API reference's prose once said substring for both, and the
double takes the stricter reading);
page >= 1, per_page 5-1000, paginated), `/{sitekey}`: get and PUT (the whole widget replaced). Objects
carry every field the SDK's `Widget` / `WidgetListResponse` require (the list leaves out the
secret, as the API does). What Cloudflare refuses is refused with 400; the real errors' codes
and wording are not documented, so only their kind (a 4xx the SDK raises as BadRequestError)
is what callers may rely on. From cloudflare-docs turnstile/additional-configuration/
hostname-management/index.mdx (30e10106): "every widget requires at least one hostname"; "No
wildcards are supported"; no schemes, ports or paths ("Invalid formats"); "Free users are
entitled to a maximum of 15 hostnames per widget. Enterprise customers can have up to 200"
(`turnstile_hostname_limit`). From turnstile/plans.mdx (41f410ed): "Free users are limited to
20 widgets per account" (add_turnstile_widget, standing for the API's create).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from booking_shared.limits import (
    TURNSTILE_MIN_HOSTNAMES_PER_WIDGET,
    TURNSTILE_WIDGETS_PER_ACCOUNT,
    turnstile_hostname_limit,
)
from tests.helpers.cf_double.base import Service
from tests.helpers.cf_double.envelope import Refusal, Response, error, ok, page_info
from tests.helpers.cf_double.routes import Request, Route

# A hostname as the widget's domains take it: labels of letters, digits and hyphens (an IP address
# fits too), nothing else; see the module's docstring. At least two labels: "The hostname must be
# fully qualified domain names (FQDNs): example.com or subdomain.example.com" (the same page), so a
# bare `localhost` is refused.
_WIDGET_HOSTNAME = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                              r"[A-Za-z0-9])?")


class Turnstile(Service):
    turnstile_widgets: dict[str, dict[str, Any]]  # by sitekey
    turnstile_hostname_limit: int

    WIDGET_MODES = ("non-interactive", "invisible", "managed")

    def _init_turnstile(self) -> None:
        self.turnstile_widgets = {}
        # How many hostnames a widget may list: the Free plan's 15 (booking_shared.limits); tests of
        # Enterprise set 200.
        self.turnstile_hostname_limit = turnstile_hostname_limit("free")

    def add_turnstile_widget(self, name: str, domains: list[str], *, mode: str = "managed",
                             clearance_level: str = "no_clearance") -> dict[str, Any]:
        """A widget as `pulumi up` creates it; returned as stored (sitekey, secret, domains)."""
        with self.lock:
            # "Free users are limited to 20 widgets per account" (turnstile/plans.mdx, 41f410ed).
            if len(self.turnstile_widgets) >= TURNSTILE_WIDGETS_PER_ACCOUNT:
                raise ValueError(f"an account may have at most {TURNSTILE_WIDGETS_PER_ACCOUNT} widgets")
            sitekey = f"0x4AAAAAAA{self.next_seq():06d}{uuid.uuid4().hex[:6]}"
            created = self.clock.stamp()
            widget = {"sitekey": sitekey, "secret": f"0x4AAAAAAA-secret-{uuid.uuid4().hex}", "name": name,
                      "domains": list(domains), "mode": mode, "clearance_level": clearance_level,
                      "bot_fight_mode": False, "ephemeral_id": False, "offlabel": False, "region": "world",
                      "created_on": created, "modified_on": created, "deployed_via": "api",
                      "last_modified_via": "api"}
            self.turnstile_widgets[sitekey] = widget
            return widget

    def _widget(self, req: Request) -> dict[str, Any]:
        widget = self.turnstile_widgets.get(req.params["sitekey"])
        if widget is None:
            raise Refusal(404, error(10404, "Widget not found"))
        return widget

    # --- routes ---------------------------------------------------------------------------------

    def list_widgets(self, req: Request) -> Response:
        page, per_page = int(float(req.arg("page", "1"))), int(float(req.arg("per_page", "25")))
        if page < 1 or not 5 <= per_page <= 1000:
            return 400, error(10400, "page must be at least 1 and per_page between 5 and 1000")
        wanted = req.arg("filter", "")
        field_name, colon, value = wanted.partition(":")
        if wanted and (field_name not in ("name", "sitekey") or not colon):
            return 400, error(10400, f"invalid filter {wanted!r}: expected name:<value> or sitekey:<value>")
        matching = [w for _key, w in sorted(self.turnstile_widgets.items())
                    if not value or (field_name == "name" and value.lower() in w["name"].lower())
                    or (field_name == "sitekey" and value == w["sitekey"])]
        items = [{k: v for k, v in w.items() if k != "secret"} for w in matching[(page - 1) * per_page:
                                                                                 page * per_page]]
        return 200, ok(items, page_info(items, page, per_page, len(matching)))

    def get_widget(self, req: Request) -> Response:
        return 200, ok(self._widget(req))

    def _refused(self, body: dict[str, Any]) -> Response | None:
        """What the API refuses in a widget's body (create or update), or None."""
        domains, mode, name = body.get("domains"), body.get("mode"), body.get("name")
        # "every widget requires at least one hostname" (hostname-management/index.mdx, 30e10106).
        if not isinstance(domains, list) or len(domains) < TURNSTILE_MIN_HOSTNAMES_PER_WIDGET or not all(
                isinstance(d, str) and d for d in domains):
            return 400, error(10400, "domains: at least one hostname is required")
        # "No wildcards are supported"; schemes, ports and paths are "Invalid formats" (the same page).
        if any(not _WIDGET_HOSTNAME.fullmatch(d) for d in domains):
            return 400, error(10400, "domains: fully qualified hostnames only (no wildcards, schemes, ports or "
                                     "paths)")
        # The API reference's Update a Turnstile Widget (developers.cloudflare.com/api/resources/
        # turnstile/subresources/widgets/methods/update): name "maxLength254 minLength1".
        if mode not in self.WIDGET_MODES or not isinstance(name, str) or not 1 <= len(name) <= 254:
            return 400, error(10400, "mode (non-interactive, invisible or managed) and a name of 1-254 characters "
                                     "are required")
        # "Free users are entitled to a maximum of 15 hostnames per widget. Enterprise customers can
        # have up to 200" (the same page; booking_shared.limits).
        limit = self.turnstile_hostname_limit
        if len(set(domains)) > limit:
            return 400, error(10400, f"a widget may have at most {limit} hostnames on this plan")
        return None

    def create_widget(self, req: Request) -> Response:
        body = req.json() or {}
        refused = self._refused(body)
        if refused:
            return refused
        try:
            widget = self.add_turnstile_widget(body["name"], list(dict.fromkeys(body["domains"])), mode=body["mode"],
                                               clearance_level=body.get("clearance_level", "no_clearance"))
        except ValueError as exc:  # the account's widget limit
            return 400, error(10400, str(exc))
        return 200, ok(widget)

    def delete_widget(self, req: Request) -> Response:
        with self.lock:
            widget = self._widget(req)
            del self.turnstile_widgets[widget["sitekey"]]
        return 200, ok(widget)

    def update_widget(self, req: Request) -> Response:
        widget, body = self._widget(req), req.json()
        refused = self._refused(body)
        if refused:
            return refused
        if body.get("region", widget["region"]) != widget["region"]:
            return 400, error(10400, "region cannot be changed after creation")
        domains, mode, name = body["domains"], body["mode"], body["name"]
        # A PUT replaces the widget: a setting left out goes back to its default.
        widget.update({"domains": list(dict.fromkeys(domains)), "mode": mode, "name": name,
                       "bot_fight_mode": bool(body.get("bot_fight_mode", False)),
                       "clearance_level": body.get("clearance_level", "no_clearance"),
                       "ephemeral_id": bool(body.get("ephemeral_id", False)),
                       "offlabel": bool(body.get("offlabel", False)),
                       "modified_on": self.clock.stamp(), "last_modified_via": "api"})
        return 200, ok(widget)


ROUTES = (
    Route("GET", "/accounts/{account}/challenges/widgets", Turnstile.list_widgets),
    Route("POST", "/accounts/{account}/challenges/widgets", Turnstile.create_widget),
    Route("DELETE", "/accounts/{account}/challenges/widgets/{sitekey}", Turnstile.delete_widget),
    Route("GET", "/accounts/{account}/challenges/widgets/{sitekey}", Turnstile.get_widget),
    Route("PUT", "/accounts/{account}/challenges/widgets/{sitekey}", Turnstile.update_widget),
)
