"""Edge protection: rate-limiting rules for the public write endpoints, and the Turnstile widget.

Abuse of a salon platform lands on four endpoints (booking_shared/edge.py): login (credential
stuffing), booking creation (bots take real slots), message sending (real WhatsApp messages) and
payment initialisation. Three layers meet it, declared here and in the Worker:

- **Rate-limiting rules** in each served zone's `http_ratelimit` entry-point ruleset, one rule per
  endpoint, counted per client IP (and Cloudflare location, which every plan's counting includes),
  thresholds from `booking:rateLimits`. They stop a flood before the Worker runs. A zone has one
  entry-point ruleset per phase, so only one stack may declare it (`RateLimits.zone_ruleset`; the
  committed stacks share a zone and production owns it); an existing one is imported
  (`EdgeZone.existing_ruleset_id`). The four rules with their method and host terms need the
  Business plan: config refuses them on a zone whose plan cannot hold them (infra/config.py,
  booking_shared/limits.py), rather than drop the method or merge endpoints into a shared counter.
- **The Worker's rate-limit binding**, for per-tenant limits the zone rules cannot express (keyed by
  tenant hostname, endpoint and client IP in the Worker), with a namespace per environment.
- **Turnstile widgets** (infra/turnstile.py) whose domains cover the main domain and every tenant
  hostname, as many as the plan's per-widget hostname limit needs; the booking UI renders the one
  its hostname is on and the Worker verifies its token on booking creation (Siteverify) with that
  widget's secret, bound as a `secret_text` binding (the provider marks the `secret` output secret).
- **With `booking:saas`, widgets for the SaaS salons.** Their custom hostnames are data (`bookingctl
  tenants` lists each on a widget with room), so the program declares each with the fallback
  hostname alone (a widget needs one), ignores changes to its domains and lists the salons again
  after any update of it (a PUT of the whole widget).

Paystack's webhook is deliberately outside all three: it is called by Paystack's servers and
proves itself with its HMAC signature; a challenge or a rate limit would drop payment confirmations
(policy `payment-webhook-not-challenged`).
"""

from __future__ import annotations

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
    TRANSFORM_PHASE,
    VERSION_AFFINITY_EXPRESSION,
    VERSION_AFFINITY_REF,
    VERSION_KEY_HEADER,
    VERSION_KEY_VALUE,
    ratelimit_ruleset_name,
    rule_expression,
    transform_ruleset_name,
)
from booking_shared.limits import TurnstilePlan
from booking_shared.turnstile import SaasWidgetContext
from infra.turnstile import TurnstileArgs, declare_widgets
from stackconfig.sections import DEFAULT_RATE_LIMIT_NAMESPACE, RateLimits

# Rate-limit namespaces are account-wide, and production and staging share an account.
DEFAULT_NAMESPACE = DEFAULT_RATE_LIMIT_NAMESPACE
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
    # The id of its existing http_request_late_transform entry point (rateLimits.existingTransformRulesetIds).
    existing_transform_ruleset_id: str | None = None


@dataclass(frozen=True)
class EdgeProtectionArgs:
    account_id: str
    environment: str
    zones: Sequence[EdgeZone]
    # Every hostname the booking form is served on, the main domain first, then booking:tenants in
    # config order: the Turnstile widgets' domains, in the order they fill the widgets.
    hostnames: Sequence[str]
    rate_limits: RateLimits
    # Whether this stack declares the zones' http_ratelimit entry points (RateLimits.zone_ruleset).
    zone_rulesets: bool
    # The Worker's name: the SaaS salons' widget is named after it (saas_turnstile_widget_name).
    worker_name: str
    # booking:saas.fallbackHostname; set: the SaaS salons' widgets and their bindings are declared.
    saas_fallback_hostname: str | None = None
    # booking:turnstile: the plan (hostnames per widget) and how many SaaS widgets there are.
    turnstile_plan: TurnstilePlan = "free"
    saas_widgets: int = 1
    # What each SaaS widget's relist hook needs (infra/turnstile.py); None: no hook.
    saas_widget_context: SaasWidgetContext | None = None


class EdgeProtection(pulumi.ComponentResource):
    """Rate-limiting rulesets per zone, the Turnstile widgets, and the Worker bindings that go with them."""

    worker_bindings: list[cloudflare.WorkerVersionBindingArgsDict]
    turnstile_sitekey: pulumi.Output[str]
    # Every site widget's sitekey, by widget; the SaaS widgets' (empty without booking:saas).
    turnstile_sitekeys: list[pulumi.Output[str]]
    turnstile_saas_sitekeys: list[pulumi.Output[str]]
    # The first SaaS widget's site key (None without booking:saas).
    turnstile_saas_sitekey: pulumi.Output[str] | None

    def __init__(self, name: str, args: EdgeProtectionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("booking:edge:EdgeProtection", name, None, opts)

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
                self._entry_point(f"{name}-ratelimit-{zone.label}", zone.zone_id, RATELIMIT_PHASE,
                                  ratelimit_ruleset_name(args.environment),
                                  "Public write endpoints of the booking API (managed by pulumi, appointmentbooking)",
                                  rules, zone.existing_ruleset_id)

                # Version affinity: the browser's key cookie becomes the version key header, so one
                # booking flow stays on one Worker version during a canary (booking_shared/edge.py).
                self._entry_point(
                    f"{name}-transform-{zone.label}", zone.zone_id, TRANSFORM_PHASE,
                    transform_ruleset_name(args.environment),
                    "Request header transforms of the booking API (managed by pulumi, appointmentbooking)",
                    [{
                        "ref": VERSION_AFFINITY_REF,
                        "description": "booking: one browser, one Worker version during a canary (version affinity)",
                        "expression": VERSION_AFFINITY_EXPRESSION,
                        "action": "rewrite",
                        "action_parameters": {"headers": {
                            VERSION_KEY_HEADER: {"operation": "set", "expression": VERSION_KEY_VALUE}}},
                        "enabled": True,
                    }], zone.existing_transform_ruleset_id)

        turnstile = declare_widgets(name, TurnstileArgs(
            account_id=args.account_id, environment=args.environment, site_hostnames=args.hostnames,
            plan=args.turnstile_plan, worker_name=args.worker_name,
            saas_fallback_hostname=args.saas_fallback_hostname, saas_widgets=args.saas_widgets,
            saas_context=args.saas_widget_context), parent=self)
        worker = args.rate_limits.worker
        self.worker_bindings = [
            *turnstile.worker_bindings,
            {"type": "ratelimit", "name": RATE_LIMIT_BINDING,
             "namespace_id": str(worker.namespace_id or DEFAULT_NAMESPACE[args.environment]),
             "simple": {"limit": float(worker.limit), "period": worker.period}},
        ]
        self.turnstile_sitekeys = turnstile.site_sitekeys
        self.turnstile_saas_sitekeys = turnstile.saas_sitekeys
        self.turnstile_sitekey = turnstile.site_sitekeys[0]
        self.turnstile_saas_sitekey = turnstile.saas_sitekeys[0] if turnstile.saas_sitekeys else None
        self.register_outputs({"turnstileSitekey": self.turnstile_sitekey,
                               "turnstileSaasSitekey": self.turnstile_saas_sitekey,
                               "turnstileSitekeys": self.turnstile_sitekeys,
                               "turnstileSaasSitekeys": self.turnstile_saas_sitekeys})

    def _entry_point(self, resource_name: str, zone_id: str, phase: str, ruleset_name: str, description: str,
                     rules: Sequence[cloudflare.RulesetRuleArgsDict], existing_id: str | None) -> cloudflare.Ruleset:
        """A zone's entry-point ruleset of one phase. A zone has one per phase, and one a dashboard rule
        ever made stays (even emptied): that one is adopted, in the id format of pulumi_cloudflare.Ruleset's
        docstring, `<{accounts|zones}/{account_id|zone_id}>/<ruleset_id>`."""
        opts = pulumi.ResourceOptions(parent=self, import_=None if existing_id is None else
                                      f"zones/{zone_id}/{existing_id}")
        return cloudflare.Ruleset(resource_name, zone_id=zone_id, kind="zone", phase=phase, name=ruleset_name,
                                  description=description, rules=list(rules), opts=opts)
