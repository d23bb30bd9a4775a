"""Edge protection: public write endpoints rate-limited, Turnstile on every hostname (widgets within their
plan's limits), Paystack's webhook left alone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from booking_shared.edge import (
    PAYSTACK_WEBHOOK,
    PUBLIC_WRITE_ENDPOINTS,
    RATELIMIT_PHASE,
    STOPPING_ACTIONS,
    TURNSTILE_SAAS_SECRET_BINDING,
    Endpoint,
    hosts_named,
    may_match_method,
    may_reach,
    owns_zone_rulesets,
    turnstile_covers,
    turnstile_domains,
)
from booking_shared.hostnames import normalize
from booking_shared.limits import (
    PLAN_LABELS,
    TURNSTILE_HOSTNAMES_PER_WIDGET,
    TURNSTILE_MIN_HOSTNAMES_PER_WIDGET,
    ZONE_PLANS,
    RateLimitRule,
    TurnstilePlan,
    ZonePlan,
    allowed_periods,
    one_of,
    rate_limit_problems,
)
from booking_shared.tokens import BOT_MANAGEMENT, ROUTE, RULESET, TURNSTILE, VERSION
from booking_shared.turnstile import saas_secret_binding, saas_widget_name, site_secret_binding, site_shards
from policies.common import (
    Report,
    config_value,
    get,
    make_resource_policy,
    make_stack_policy,
    message,
    of_type,
    stack_environment,
)
from policies.routing import allowed_hostnames

RATE_LIMITED = "public-write-endpoints-rate-limited"
TURNSTILE_COVERS = "turnstile-covers-all-hostnames"
TURNSTILE_LIMITS = "turnstile-widgets-within-plan-limits"
WEBHOOK = "payment-webhook-not-challenged"
FITS_PLAN = "rate-limit-rules-fit-zone-plan"


def parsed_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def served_zones() -> dict[str, str]:
    """Hostname -> the zone id serving it, from booking:domain/zoneId and booking:tenants."""
    zones: dict[str, str] = {}
    domain, zone = config_value("domain"), config_value("zoneId")
    if isinstance(domain, str) and isinstance(zone, str):
        zones[normalize(domain)] = zone
    tenants = parsed_json(config_value("tenants"))
    for tenant in tenants if isinstance(tenants, list) else []:
        if isinstance(tenant, Mapping) and isinstance(tenant.get("hostname"), str):
            zones[normalize(tenant["hostname"])] = str(tenant.get("zoneId"))
    return zones


def _rules(resources: list[PolicyResource], phase: str | None = None) -> list[tuple[PolicyResource, Mapping[str, Any]]]:
    """(ruleset, rule) for every enabled rule, of one phase or of all."""
    found = []
    for ruleset in of_type(resources, RULESET):
        if phase is not None and get(ruleset.props, "phase") != phase:
            continue
        for rule in get(ruleset.props, "rules") or []:
            # The pack hands nested values over as read-only mappings, not dicts.
            if isinstance(rule, Mapping) and rule.get("enabled") is not False:
                found.append((ruleset, rule))
    return found


def check_rate_limited(args: StackValidationArgs, report: Report) -> None:
    """Each public write endpoint, on each hostname the stack serves, meets a rate-limiting rule of its zone."""
    if not any(True for _ in of_type(args.resources, ROUTE)):
        args.not_applicable("the stack routes no hostname to the Worker, so it exposes no API")
        return
    env = stack_environment()
    limits = parsed_json(config_value("rateLimits"))
    configured = limits.get("zoneRuleset") if isinstance(limits, dict) else None
    owns = owns_zone_rulesets(configured if isinstance(configured, bool) else None, env)
    if not owns and env != "production":
        args.not_applicable("booking:rateLimits.zoneRuleset is off: another stack owns the zone's http_ratelimit "
                            "entry point (the Worker's rate-limit binding still applies)")
        return
    zones = served_zones()
    # A zone's rules see only that zone's traffic: grouping them by zone keeps this linear in the
    # number of tenants (every host against every tenant zone's rules took 23 s at 1,000 tenants).
    by_zone: dict[Any, list[tuple[PolicyResource, Mapping[str, Any]]]] = {}
    for ruleset, rule in _rules(args.resources, RATELIMIT_PHASE):
        by_zone.setdefault(get(ruleset.props, "zoneId"), []).append((ruleset, rule))
    everywhere = by_zone.get(None, [])
    all_rules = [pair for pairs in by_zone.values() for pair in pairs]
    hosts = sorted(allowed_hostnames())
    for endpoint in PUBLIC_WRITE_ENDPOINTS:
        uncovered = []
        for host in hosts:
            zone = zones.get(host)
            candidates = all_rules if zone is None else by_zone.get(zone, []) + everywhere
            if not any(_limits(ruleset, rule, endpoint, host, zone) for ruleset, rule in candidates):
                uncovered.append(host)
        if uncovered:
            report(message(f"{endpoint.method} {endpoint.path} ({endpoint.what}) has no rate-limiting rule on "
                           f"{', '.join(uncovered)}.",
                           "without an edge limit one client can flood it: "
                           + ("credential stuffing" if endpoint.key == "login" else
                              "bot bookings hold real slots and send real messages" if endpoint.key != "payments"
                              else "payment initialisations pile up at Paystack"),
                           "keep the EdgeProtection component (infra/edge.py) in the stack and, in production, "
                           "booking:rateLimits.zoneRuleset true; each zone needs its http_ratelimit ruleset"))


def _limits(ruleset: PolicyResource, rule: Mapping[str, Any], endpoint: Endpoint, host: str,
            zone: str | None) -> bool:
    ratelimit = rule.get("ratelimit")
    if not isinstance(ratelimit, Mapping) or not ratelimit.get("requestsPerPeriod"):
        return False
    if rule.get("action") not in STOPPING_ACTIONS:
        return False
    if zone is not None and get(ruleset.props, "zoneId") not in (zone, None):
        return False  # a zone's rules see only that zone's traffic
    expression = str(rule.get("expression") or "")
    hosts = hosts_named(expression)
    # may_reach, not merely naming the path: `ne "/api/bookings"` names it only to leave it out.
    return (may_reach(expression, endpoint.path) and may_match_method(expression, endpoint.method)
            and (hosts is None or host in hosts))


def check_turnstile(args: StackValidationArgs, report: Report) -> None:
    """A Turnstile widget allows every hostname the stack serves, and the Worker can verify its tokens."""
    if not any(True for _ in of_type(args.resources, ROUTE)):
        args.not_applicable("the stack routes no hostname to the Worker, so it serves no booking form")
        return
    widgets = list(of_type(args.resources, TURNSTILE))
    if not widgets:
        report(message("The stack declares no Turnstile widget.",
                       "booking creation then has no bot check: bots book real slots and trigger real messages",
                       "declare the EdgeProtection component (infra/edge.py), which creates the widget"))
        return
    domains = [str(d) for w in widgets for d in get(w.props, "domains") or []]
    listed = turnstile_domains(domains)
    # The SaaS fallback hostname serves no booking form (salons' custom hostnames CNAME to it; they
    # are data, on the SaaS salons' widget, checked below for its presence only).
    served = {h for h, key in allowed_hostnames().items() if not key.endswith("saas.fallbackHostname")}
    for host in sorted(served):
        if not turnstile_covers(listed, host):
            report(message(f"No Turnstile widget allows {host} (widget domains: {', '.join(sorted(domains))}).",
                           "the widget does not render there, so no booking on that hostname can pass the Worker's "
                           "Siteverify check",
                           "derive the widget's domains from booking:domain and booking:tenants"), widgets[0].urn)
    # With booking:saas the salons' custom hostnames are on their own widgets, named after the Worker
    # (their domains are data `bookingctl tenants` keeps, so only their presence can be checked here).
    saas = parsed_json(config_value("saas"))
    worker_name = config_value("workerName")
    # Each site widget's secret: as many widgets as the config's site hostnames fill on its plan.
    shards = site_shards(list(served_zones()) or [""], _turnstile_plan())
    required = [site_secret_binding(i) for i in range(len(shards))]
    if isinstance(saas, Mapping) and saas:
        count = _saas_widgets()
        required += [saas_secret_binding(i) for i in range(count)]
        declared = {get(w.props, "name") for w in widgets}
        names = [saas_widget_name(str(worker_name), i) for i in range(count)]
        for saas_name in [n for n in names if n not in declared]:
            report(message(f"booking:saas is set but the stack declares no Turnstile widget named {saas_name} for "
                           f"the SaaS salons (booking:turnstile.saasWidgets: {count}).",
                           "the salons `bookingctl tenants add` placed on it are on no widget, so every booking "
                           "there fails the Worker's Siteverify check (403), and `tenants add` has no widget to "
                           "list them on",
                           "keep EdgeProtection's SaaS widgets (infra/turnstile.py, declared with booking:saas)"),
                   widgets[0].urn)
    for version in of_type(args.resources, VERSION):
        kinds = {get(b, "name"): get(b, "type") for b in get(version.props, "bindings") or []}
        for binding in required:
            if kinds.get(binding) != "secret_text":
                found = kinds.get(binding)
                report(message(f"The Worker has {'no' if found is None else repr(found)} {binding} "
                               "binding, not a secret_text one.",
                               "the Worker verifies Turnstile tokens with the widget's secret"
                               + (" (the SaaS salons' widget's, on their hostnames)"
                                  if binding.startswith(TURNSTILE_SAAS_SECRET_BINDING) else "")
                               + "; without it every booking there fails, and a plain binding exposes the secret",
                               "bind the widget's `secret` output as secret_text (EdgeProtection.worker_bindings)"),
                       version.urn)


def _turnstile_plan() -> TurnstilePlan:
    """booking:turnstile.plan, the strictest (free) when unset or unreadable."""
    value = parsed_json(config_value("turnstile"))
    plan = value.get("plan") if isinstance(value, Mapping) else None
    return "enterprise" if plan == "enterprise" else "free"


def _saas_widgets() -> int:
    """booking:turnstile.saasWidgets (1 when unset)."""
    value = parsed_json(config_value("turnstile"))
    count = value.get("saasWidgets") if isinstance(value, Mapping) else None
    return count if isinstance(count, int) and count >= 1 else 1


def check_turnstile_limits(args: ResourceValidationArgs, report: Report) -> None:
    """A Turnstile widget lists at least one hostname, no wildcard, and no more than its plan allows."""
    if args.resource_type != TURNSTILE:
        args.not_applicable("not a Turnstile widget")
        return
    name = args.props.get("name") or args.name
    domains = [str(d) for d in args.props.get("domains") or []]
    plan = _turnstile_plan()
    limit = TURNSTILE_HOSTNAMES_PER_WIDGET[plan]
    # cloudflare-docs turnstile/additional-configuration/hostname-management/index.mdx (30e10106),
    # the limits' source (booking_shared/limits.py).
    if len(domains) > limit:
        report(message(f"Turnstile widget {name!r} ({args.name}) lists {len(domains)} hostnames; a widget on the "
                       f"Turnstile {plan} plan (booking:turnstile.plan) takes at most {limit}.",
                       "Cloudflare refuses the widget's create or update, so `pulumi up` fails and the hostnames "
                       "past the limit get no bot check",
                       "let the program spread the hostnames over widgets (infra/turnstile.py shards them at the "
                       "plan's limit); with Turnstile Enterprise set booking:turnstile.plan to enterprise (200)"))
    if len(domains) < TURNSTILE_MIN_HOSTNAMES_PER_WIDGET:
        report(message(f"Turnstile widget {name!r} ({args.name}) lists no hostname.",
                       "Cloudflare requires at least one hostname per widget and refuses the widget",
                       "list the hostnames its booking form is served on (a SaaS widget: the fallback hostname)"))
    wild = [d for d in domains if "*" in d]
    if wild:
        report(message(f"Turnstile widget {name!r} ({args.name}) lists a wildcard hostname: {', '.join(wild)}.",
                       "Turnstile supports no wildcards, so Cloudflare refuses the widget; a listed hostname "
                       "already covers its subdomains",
                       "list each hostname itself, or the parent domain whose subdomains should all be covered"))


def check_webhook(args: StackValidationArgs, report: Report) -> None:
    """No rule that blocks, challenges or rate-limits may reach Paystack's webhook; Bot Fight Mode stays off."""
    rules = [(rs, rule) for rs, rule in _rules(args.resources)
             if rule.get("action") in STOPPING_ACTIONS or get(rs.props, "phase") == RATELIMIT_PHASE]
    fight = [b for b in of_type(args.resources, BOT_MANAGEMENT) if get(b.props, "fightMode") is True]
    if not rules and not fight and not any(True for _ in of_type(args.resources, RULESET)):
        args.not_applicable("the stack declares no rulesets or bot management")
        return
    path = PAYSTACK_WEBHOOK.path
    for ruleset, rule in rules:
        expression = str(rule.get("expression") or "")
        if may_reach(expression, path):
            name = rule.get("ref") or rule.get("description") or expression
            what = "rate-limits" if get(ruleset.props, "phase") == RATELIMIT_PHASE else f"'{rule.get('action')}'s"
            report(message(f"Rule {name!r} of ruleset {get(ruleset.props, 'name')!r} {what} requests that may be "
                           f"Paystack's webhook ({PAYSTACK_WEBHOOK.method} {path}).",
                           "Paystack's servers cannot solve a challenge and retry only a few times: payment "
                           "confirmations would be lost; the webhook is protected by its x-paystack-signature HMAC",
                           f"limit the rule to exact paths, or exclude the webhook "
                           f'(and http.request.uri.path ne "{path}")'), ruleset.urn)
    for bots in fight:
        report(message("Bot Fight Mode is on.",
                       "it challenges automated clients on every path and cannot be skipped for one, so it would "
                       "challenge Paystack's webhook",
                       "turn fightMode off; Turnstile and the rate-limiting rules protect the public endpoints"),
               bots.urn)


def _zone_plans() -> dict[str, tuple[ZonePlan, str]]:
    """Zone id -> (plan, the booking key stating it), as stackconfig/model.py reads them: the first of
    booking:zonePlan, tenants[].zonePlan and saas.zonePlan that states a zone's plan, else free under
    the key that names the zone (the strictest reading, as the program's)."""
    keys: list[tuple[Any, Any, str]] = [(config_value("zoneId"), config_value("zonePlan"), "zonePlan")]
    tenants = parsed_json(config_value("tenants"))
    for index, tenant in enumerate(tenants if isinstance(tenants, list) else []):
        if isinstance(tenant, Mapping):
            keys.append((tenant.get("zoneId"), tenant.get("zonePlan"), f"tenants[{index}].zonePlan"))
    saas = parsed_json(config_value("saas"))
    if isinstance(saas, Mapping):
        keys.append((saas.get("zoneId"), saas.get("zonePlan"), "saas.zonePlan"))
    plans: dict[str, tuple[ZonePlan, str]] = {}
    for zone, plan, key in keys:
        if isinstance(zone, str) and plan in ZONE_PLANS:
            plans.setdefault(zone, (plan, key))
    for zone, _plan, key in keys:
        if isinstance(zone, str):
            plans.setdefault(zone, ("free", key))
    return plans


def check_rate_limits_fit_plans(args: StackValidationArgs, report: Report) -> None:
    """Each zone's http_ratelimit entry point holds only what the zone's plan allows."""
    rulesets = [r for r in of_type(args.resources, RULESET) if get(r.props, "phase") == RATELIMIT_PHASE]
    if not rulesets:
        args.not_applicable("the stack declares no http_ratelimit entry point")
        return
    plans = _zone_plans()
    for ruleset in rulesets:
        zone = get(ruleset.props, "zoneId")
        plan, key = plans.get(zone, ("free", "zonePlan")) if isinstance(zone, str) else ("free", "zonePlan")
        rules = [r for r in get(ruleset.props, "rules") or [] if isinstance(r, Mapping)]
        where = f"zone {zone} (booking:{key} {plan})"
        upgrade = f"upgrade the zone's plan and set booking:{key} to it"
        # The API's schema types period and mitigation_timeout as integers: "60", 60.5 or true is
        # refused whatever the plan (reported here once, never rounded into a value that passes).
        # The pack receives every number as a float (protobuf Struct), so a whole float is an integer.
        untyped: set[tuple[int, str]] = set()
        specs = []
        for index, r in enumerate(rules):
            ref = str(r.get("ref") or index)
            numbers: dict[str, int] = {}
            for field, prop in (("period", "period"), ("mitigation_timeout", "mitigationTimeout")):
                value = get(r, "ratelimit", prop)
                if value is None or type(value) is int or (type(value) is float and value.is_integer()):
                    numbers[field] = int(value or 0)
                    continue
                untyped.add((index, field))
                numbers[field] = 0
                report(message(f"Rule {ref!r} in {where} has {field} {value!r}, which is no whole number of seconds.",
                               "Cloudflare refuses the ruleset (its rules are written together), so `pulumi up` "
                               "fails at this zone and none of its rate limits apply",
                               f"set booking:rateLimits.{ref.removeprefix('booking_').removesuffix('_rate_limit')}."
                               f"{prop} to one of {', '.join(str(v) for v in allowed_periods(plan))}"
                               if field == "period" else "write it as a whole number of seconds"), ruleset.urn)
            specs.append(RateLimitRule(ref, str(r.get("expression") or ""), str(r.get("action")), numbers["period"],
                                       numbers["mitigation_timeout"],
                                       tuple(str(c) for c in get(r, "ratelimit", "characteristics") or ())))
        for problem in rate_limit_problems(plan, specs):
            if (problem.index, problem.field) in untyped:
                continue
            if problem.rule is None:
                what = f"The http_ratelimit entry point of {where} has {problem.found}; {problem.allowed}."
                fix = (f"if booking:{key} understates the zone's plan, correct it; else {upgrade}, or declare "
                       "fewer rules there")
            else:
                endpoint = problem.rule.removeprefix("booking_").removesuffix("_rate_limit")
                field = "mitigationTimeout" if problem.field == "mitigation_timeout" else problem.field
                has = "uses" if problem.field == "expression" else f"has {problem.field}"
                what = f"Rule {problem.rule!r} in {where} {has} {problem.found}; the plan allows {problem.allowed}."
                fix = (f"set booking:rateLimits.{endpoint}.{field} to {one_of(problem.choices)}, or {upgrade}"
                       if problem.choices else f"write the rule with what {PLAN_LABELS[plan]} allows, or {upgrade}")
            report(message(what, "Cloudflare refuses the ruleset (its rules are written together), so `pulumi up` "
                                 "fails at this zone and none of its rate limits apply", fix), ruleset.urn)


public_write_endpoints_rate_limited = make_stack_policy(
    RATE_LIMITED,
    "Login, booking creation, message sending and payment initialisation are rate-limited at the edge on every "
    "hostname the stack serves.",
    check_rate_limited,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Keep the EdgeProtection component with booking:rateLimits; production owns its zones' "
                "http_ratelimit entry point.",
    # Its level is set per environment by the pack's initial config (mandatory in production only).
    locked=False,
)

turnstile_covers_all_hostnames = make_stack_policy(
    TURNSTILE_COVERS,
    "A Turnstile widget allows the main domain and every tenant hostname, and the Worker holds its secret as a "
    "secret_text binding; with booking:saas, also the SaaS salons' widget and its secret_text binding.",
    check_turnstile,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Derive the widget's domains from booking:domain and booking:tenants; bind its secret as "
                "secret_text; with booking:saas keep the SaaS salons' widget and bind its secret as secret_text.",
)

turnstile_widgets_within_plan_limits = make_resource_policy(
    TURNSTILE_LIMITS,
    "A Turnstile widget lists at least one hostname, no wildcard, and no more than its plan allows (15 on free, "
    "200 on enterprise: booking:turnstile.plan).",
    check_turnstile_limits,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Keep the widgets as infra/turnstile.py shards them; set booking:turnstile.plan to the account's "
                "Turnstile plan.",
)

payment_webhook_not_challenged = make_stack_policy(
    WEBHOOK,
    "Paystack's webhook never meets a block, challenge or rate limit at the edge (its signature protects it).",
    check_webhook,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Write rules for exact paths, or exclude /api/payments/webhook; keep Bot Fight Mode off.",
)

rate_limit_rules_fit_zone_plan = make_stack_policy(
    FITS_PLAN,
    "Each zone's http_ratelimit entry point holds only what the zone's plan allows (booking:zonePlan, "
    "tenants[].zonePlan, saas.zonePlan): rule count, expression fields, period, mitigation timeout, throttling.",
    check_rate_limits_fit_plans,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="State each zone's real plan; on a plan below Business, upgrade the zone or leave its entry point "
                "to the Worker's rate-limit binding.",
)
