"""Edge protection: rate-limiting rules for the public write endpoints, and the Turnstile widget.

Abuse of a salon platform lands on four endpoints (booking_shared/edge.py): login (credential
stuffing), booking creation (bots take real slots), message sending (real WhatsApp messages) and
payment initialisation. Three layers meet it, declared here and in the Worker:

- **Rate-limiting rules** in each served zone's `http_ratelimit` entry-point ruleset, one rule per
  endpoint, counted per client IP (and Cloudflare location, which every plan's counting includes),
  thresholds from `booking:rateLimits`. They stop a flood before the Worker runs. A zone has one
  entry-point ruleset per phase, so only one stack may declare it (`RateLimits.zone_ruleset`; the
  committed stacks share a zone and production owns it). The method field in rate-limiting rules
  needs the Business plan or above (Free matches the path only, Pro adds the host), and Free and
  Pro allow fewer rules than the four declared here.
- **The Worker's rate-limit binding**, for per-tenant limits the zone rules cannot express (keyed by
  tenant hostname, endpoint and client IP in the Worker), with a namespace per environment.
- **A Turnstile widget** whose domains cover the main domain and every tenant hostname; the booking
  UI renders it and the Worker verifies its token on booking creation (Siteverify) with the
  widget's secret, bound as a `secret_text` binding (the provider marks the `secret` output secret).
- **With `booking:saas`, a second Turnstile widget for the SaaS salons.** Their custom hostnames
  are data (`bookingctl tenants` adds each to this widget's domains), so the program declares the
  widget with the fallback hostname alone (a widget needs one) and ignores changes to its domains.
  Its secret is the `TURNSTILE_SAAS_SECRET_KEY` binding, and `SITE_HOSTNAMES` (the main widget's
  hostnames, as JSON) tells the Worker which secret a request's hostname needs.

Paystack's webhook is deliberately outside all three: it is called by Paystack's servers and
proves itself with its HMAC signature; a challenge or a rate limit would drop payment confirmations
(policy `payment-webhook-not-challenged`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from booking_shared.edge import (
    PUBLIC_WRITE_ENDPOINTS,
    RATE_LIMIT_ACTION,
    RATE_LIMIT_BINDING,
    RATE_LIMIT_CHARACTERISTICS,
    RATELIMIT_PHASE,
    SITE_HOSTNAMES_BINDING,
    TURNSTILE_SAAS_SECRET_BINDING,
    TURNSTILE_SECRET_BINDING,
    rule_expression,
    saas_turnstile_widget_name,
)
from infra.config import RateLimits

# Rate-limit namespaces are account-wide, and production and staging share an account.
DEFAULT_NAMESPACE = {"production": 1001, "staging": 1002}
# Every plan counts per client IP and Cloudflare location; other characteristics need Enterprise.
CHARACTERISTICS = list(RATE_LIMIT_CHARACTERISTICS)


@dataclass(frozen=True)
class EdgeZone:
    """A zone this stack serves hostnames in: `label` names its ruleset (main, or a tenant's slug)."""

    label: str
    zone_id: str
    # The hostnames the rules are limited to. None: every hostname of the zone (a SaaS zone's custom
    # hostnames are data, so its rules cannot name them).
    hostnames: Sequence[str] | None
    # The id of the zone's existing http_ratelimit entry point (booking:rateLimits.existingRulesetIds):
    # imported, since the provider's create is a plain POST that a second entry point fails.
    existing_ruleset_id: str | None = None


@dataclass(frozen=True)
class EdgeProtectionArgs:
    account_id: str
    environment: str
    zones: Sequence[EdgeZone]
    # Every hostname the booking form is served on: the Turnstile widget's domains.
    hostnames: Sequence[str]
    rate_limits: RateLimits
    # Whether this stack declares the zones' http_ratelimit entry points (RateLimits.zone_ruleset).
    zone_rulesets: bool
    # The Worker's name: the SaaS salons' widget is named after it (saas_turnstile_widget_name).
    worker_name: str
    # booking:saas.fallbackHostname; set: the SaaS salons' widget and its bindings are declared.
    saas_fallback_hostname: str | None = None


class EdgeProtection(pulumi.ComponentResource):
    """Rate-limiting rulesets per zone, the Turnstile widget, and the Worker bindings that go with them."""

    worker_bindings: list[cloudflare.WorkerVersionBindingArgsDict]
    turnstile_sitekey: pulumi.Output[str]
    # The SaaS salons' widget's site key (None without booking:saas).
    turnstile_saas_sitekey: pulumi.Output[str] | None

    def __init__(self, name: str, args: EdgeProtectionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("booking:edge:EdgeProtection", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        if args.zone_rulesets:
            for zone in args.zones:
                rules: list[cloudflare.RulesetRuleArgsDict] = []
                for endpoint in PUBLIC_WRITE_ENDPOINTS:
                    limit = args.rate_limits.for_endpoint(endpoint.key)
                    rules.append({
                        # A stable ref keeps the rule's identity (and its counters) across edits.
                        "ref": f"booking_{endpoint.key}_rate_limit",
                        "description": f"booking: {endpoint.what}, {limit.requests_per_period} per {limit.period} s "
                                       "per client IP",
                        "expression": rule_expression(zone.hostnames, endpoint),
                        # API clients cannot solve a challenge page; past the limit the request is refused.
                        "action": RATE_LIMIT_ACTION,
                        "enabled": True,
                        "ratelimit": {
                            "characteristics": CHARACTERISTICS,
                            "period": limit.period,
                            "requests_per_period": limit.requests_per_period,
                            "mitigation_timeout": limit.mitigation_timeout,
                        },
                    })
                cloudflare.Ruleset(
                    f"{name}-ratelimit-{zone.label}",
                    zone_id=zone.zone_id,
                    kind="zone",
                    phase=RATELIMIT_PHASE,
                    name=f"appointmentbooking {args.environment} rate limits",
                    description="Public write endpoints of the booking API (managed by pulumi, appointmentbooking)",
                    rules=rules,
                    opts=child if zone.existing_ruleset_id is None else pulumi.ResourceOptions(
                        parent=self,
                        # A zone has one entry point per phase, and one a dashboard rule ever made stays
                        # (even emptied): adopt it, in the id format of pulumi_cloudflare.Ruleset's
                        # docstring, `<{accounts|zones}/{account_id|zone_id}>/<ruleset_id>`.
                        import_=f"zones/{zone.zone_id}/{zone.existing_ruleset_id}"),
                )

        widget = cloudflare.TurnstileWidget(
            f"{name}-turnstile",
            account_id=args.account_id,
            name=f"appointmentbooking {args.environment} booking form",
            domains=sorted(set(args.hostnames)),
            # Managed: Cloudflare shows a checkbox only when it doubts the visitor.
            mode="managed",
            opts=child,
        )
        worker = args.rate_limits.worker
        self.worker_bindings = [
            # The provider marks `secret` an additional secret output; Output.secret states it here too.
            {"type": "secret_text", "name": TURNSTILE_SECRET_BINDING, "text": pulumi.Output.secret(widget.secret)},
            {"type": "ratelimit", "name": RATE_LIMIT_BINDING,
             "namespace_id": str(worker.namespace_id or DEFAULT_NAMESPACE[args.environment]),
             "simple": {"limit": float(worker.limit), "period": worker.period}},
        ]
        self.turnstile_sitekey = widget.sitekey
        self.turnstile_saas_sitekey = None
        if args.saas_fallback_hostname is not None:
            saas_widget = cloudflare.TurnstileWidget(
                f"{name}-turnstile-saas",
                account_id=args.account_id,
                # Deterministic: `bookingctl tenants` finds the widget by this name.
                name=saas_turnstile_widget_name(args.worker_name),
                # A widget needs at least one hostname; the salons' own are added as data.
                domains=[args.saas_fallback_hostname],
                mode="managed",
                # `bookingctl tenants add/remove` manage this widget's domains (the salons' custom
                # hostnames are rows, not stack config): without ignore_changes every `pulumi up`
                # would set them back to the fallback hostname alone and fail every SaaS booking.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["domains"]),
            )
            self.worker_bindings += [
                {"type": "secret_text", "name": TURNSTILE_SAAS_SECRET_BINDING,
                 "text": pulumi.Output.secret(saas_widget.secret)},
                # The hostnames the main widget covers: any other hostname is a SaaS salon's.
                {"type": "plain_text", "name": SITE_HOSTNAMES_BINDING,
                 "text": json.dumps(sorted(set(args.hostnames)))},
            ]
            self.turnstile_saas_sitekey = saas_widget.sitekey
        self.register_outputs({"turnstileSitekey": self.turnstile_sitekey,
                               "turnstileSaasSitekey": self.turnstile_saas_sitekey})
