"""`bookingctl doctor`, checks 2-7: what the account holds against what the stack puts there.

Each zone's plan, existing http_ratelimit entry points, Turnstile capacity per widget, the canary's
GraphQL query against the API's schema, the SaaS zone's custom hostname quota, the D1 database and
the R2 bucket.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
from graphql import build_client_schema, get_introspection_query, parse, validate

from booking_shared.edge import (
    RATELIMIT_PHASE,
)
from booking_shared.limits import (
    HEALTH_CHECKS_BY_PLAN,
    PLAN_LABELS,
    ZONE_PLANS,
    ZonePlan,
    rate_limit_problems,
    turnstile_hostname_limit,
)

if TYPE_CHECKING:
    from cloudflare import Cloudflare



from ops.observation.analytics import GRAPHQL_QUERY
from ops.observation.doctor_model import Check, Target, ZoneTarget, api_text, read, status_of
from ops.observation.doctor_token import PERMISSIONS_SOURCE

# --- 2. each zone's plan against what the stack puts there -----------------------------------------

_RATE_SOURCE = ("cloudflare-docs src/content/partials/waf/rate-limiting-availability-by-plan.mdx "
                "(booking_shared/limits.py)")
_HEALTH_SOURCE = "cloudflare-docs src/content/plans/index.json traffic.health_checks (booking_shared/limits.py)"


_PLANS: dict[str, ZonePlan] = {p: p for p in ZONE_PLANS}


def zone_plan(zone: Any) -> ZonePlan | None:
    """The zone's plan as booking_shared.limits names it, from the zone's `plan.legacy_id` (or name)."""
    plan = getattr(zone, "plan", None)
    for value in (getattr(plan, "legacy_id", None), getattr(plan, "name", None)):
        if isinstance(value, str):
            word = value.lower().split()[0] if value.strip() else ""
            if word in ZONE_PLANS:
                return _PLANS[word]
    return None


def plan_problems(plan: ZonePlan, zone: ZoneTarget) -> list[str]:
    """What the stack puts in `zone` that a zone on `plan` cannot hold (booking_shared/limits.py)."""
    problems = [f"{p.rule + ' ' if p.rule else ''}{p.field} {p.found}, allowed {p.allowed}"
                for p in rate_limit_problems(plan, zone.rules)] if zone.rules else []
    if zone.health_check and HEALTH_CHECKS_BY_PLAN[plan] == 0:
        problems.append(f"a Health Check, which needs Pro or above ({PLAN_LABELS[plan]} holds 0)")
    return problems


def check_zone_plans(client: Cloudflare, target: Target) -> list[Check]:
    """Each zone's plan (GET /zones/{id}) is the one the stack file states, and holds what the stack
    declares there (its rate limiting rules, a Health Check)."""
    checks = []
    for zone in target.zones:
        name = f"zone plan {zone.label} ({zone.zone_id})"
        found, error = read(partial(client.zones.get, zone_id=zone.zone_id), f"GET /zones/{zone.zone_id}")
        if found is None:
            checks.append(_refused(name, error, "Zone Read on the zone", "booking:zoneId (or the tenant's zoneId)"))
            continue
        plan = zone_plan(found)
        if plan is None:
            checks.append(Check(name, None, f"the zone's plan ({getattr(found.plan, 'legacy_id', None)!r}) is none "
                                            f"of {', '.join(ZONE_PLANS)}; what it holds was not checked",
                                source=_RATE_SOURCE))
            continue
        problems = plan_problems(plan, zone)
        declared = f"{len(zone.rules)} rate limiting rule(s)" + (", a Health Check" if zone.health_check else "")
        if problems:
            fix = ("upgrade the zone to Business (it holds the four rules as declared), or set "
                   "booking:rateLimits.zoneRuleset false and rely on the Worker's rate-limit binding"
                   if zone.rules else "")
            if zone.health_check and HEALTH_CHECKS_BY_PLAN[plan] == 0:
                fix = (fix + "; " if fix else "") + 'set booking:healthCheck "false" on a Free zone'
            checks.append(Check(name, False, f"{found.name} is on the {plan} plan, which cannot hold: "
                                + "; ".join(problems), fix, f"{_RATE_SOURCE}; {_HEALTH_SOURCE}"))
        elif plan != zone.stated_plan:
            checks.append(Check(name, False, f"{found.name} is on the {plan} plan, but booking:{zone.plan_key} says "
                                             f"{zone.stated_plan}: `bookingctl plan` judges by the wrong plan",
                                f"set booking:{zone.plan_key} to {plan}", _RATE_SOURCE))
        else:
            checks.append(Check(name, True, f"{found.name} is on the {plan} plan, as booking:{zone.plan_key} says; it "
                                            f"holds {declared}", source=f"{_RATE_SOURCE}; {_HEALTH_SOURCE}"))
    return checks


def _refused(name: str, error: Exception | None, permission: str, key: str) -> Check:
    status = status_of(error) if error else None
    if status in (401, 403):
        return Check(name, False, f"Cloudflare refused the read ({status}: {api_text(error) if error else ''})",
                     f"give the token {permission}", PERMISSIONS_SOURCE)
    return Check(name, False, f"Cloudflare has no such resource ({status}: {api_text(error) if error else ''})",
                 f"check {key} in Pulumi.<stack>.yaml")


# --- 3. existing http_ratelimit entry points ---------------------------------------------------------

_ENTRY_SOURCE = ("cloudflare-docs src/content/docs/ruleset-engine/about/rulesets.mdx (one entry point per phase; "
                 "booking_shared/limits.py); import id zones/<zone_id>/<ruleset_id>: pulumi-cloudflare Ruleset docs")


def check_entry_points(client: Cloudflare, target: Target) -> list[Check]:
    """In each zone whose entry point this stack declares, none exists that the stack does not manage.

    A zone has at most one http_ratelimit entry point, and the provider creates one with a plain POST,
    so an existing one (even an empty one the dashboard left) makes `pulumi up` fail: it has to be
    imported first. One named as this stack names its own is taken as the stack's (doctor does not
    read Pulumi's state).
    """
    checks = []
    for zone in target.zones:
        if not zone.rules:
            continue
        name = f"rate limiting entry point {zone.label} ({zone.zone_id})"
        found, error = read(partial(client.rulesets.phases.get, "http_ratelimit", zone_id=zone.zone_id),
                             f"GET /zones/{zone.zone_id}/rulesets/phases/{RATELIMIT_PHASE}/entrypoint")
        if found is None and error is not None and status_of(error) == 404:
            checks.append(Check(name, True, "none yet: `pulumi up` creates it", source=_ENTRY_SOURCE))
        elif found is None:
            checks.append(_refused(name, error, "Zone WAF Read (or Write) on the zone", "the zone id"))
        elif found.id == zone.imports_ruleset:
            checks.append(Check(name, True, f"ruleset {found.id} ({found.name!r}) exists and the stack imports it "
                                            "(booking:rateLimits.existingRulesetIds)", source=_ENTRY_SOURCE))
        elif found.name == target.ruleset_name:
            checks.append(Check(name, True, f"ruleset {found.id} is this stack's ({found.name!r})",
                                source=_ENTRY_SOURCE))
        else:
            checks.append(Check(
                name, False,
                f"zone {zone.zone_id} already has an {RATELIMIT_PHASE} entry point, ruleset {found.id} "
                f"({found.name!r}, {len(found.rules or [])} rule(s)), which this stack does not manage: creating "
                "another one fails",
                f"import it: set booking:rateLimits.existingRulesetIds: {{\"{zone.zone_id}\": \"{found.id}\"}} in "
                f"Pulumi.{target.stack}.yaml (the program then adopts it, import id zones/{zone.zone_id}/{found.id}, "
                "and "
                "replaces its rules with the stack's: copy any rule you keep into booking:rateLimits first); or set "
                "booking:rateLimits.zoneRuleset false and leave the zone's rules to whoever owns them",
                _ENTRY_SOURCE))
    return checks


# --- 4. Turnstile capacity per widget -----------------------------------------------------------------

_TURNSTILE_SOURCE = ("cloudflare-docs src/content/docs/turnstile/additional-configuration/hostname-management/"
                     "index.mdx (booking_shared/limits.py)")


def _widgets_named(client: Cloudflare, account_id: str, name: str) -> list[Any]:
    # The name filter is a substring match: only the whole name is the widget.
    return [w for w in client.turnstile.widgets.list(account_id=account_id, filter=f"name:{name}", per_page=25)
            if w.name == name]


def check_widgets(client: Cloudflare, target: Target) -> list[Check]:
    """Each widget's hostnames fit its plan's limit, counting what the account holds for a widget
    whose domains grow as data (the SaaS salons')."""
    checks = []
    for widget in target.widgets:
        limit = turnstile_hostname_limit(widget.plan)
        name = f"Turnstile widget {widget.name!r}"
        declared = len(set(widget.domains))
        found, error = read(partial(_widgets_named, client, target.account_id, widget.name),
            f"GET /accounts/{target.account_id}/challenges/widgets")
        if found is None:
            checks.append(_refused(name, error, "Turnstile Sites Read (or Write) on the account", "booking:accountId"))
            continue
        if widget.grows and len(found) > 1:
            # `bookingctl tenants add` refuses to choose between them (ops/tenants/widgets.py saas_widgets).
            checks.append(Check(name, False, f"{len(found)} widgets have this name ("
                                + ", ".join(str(w.sitekey) for w in found) + "): `bookingctl tenants add` and "
                                "`remove` refuse to choose one",
                                "keep the one the stack declares (`pulumi stack output turnstileSaasSitekeys`) and "
                                "delete the others", _TURNSTILE_SOURCE))
            continue
        held = len(set(found[0].domains)) if found else 0
        count = max(declared, held) if widget.grows else declared
        seen = f"{count} hostname(s) of {limit} ({widget.plan} plan)" + (
            f"; the account's widget lists {held}" if found else "; not created yet")
        if count > limit:
            checks.append(Check(name, False, f"{seen}: over the limit", (
                "move salons to booking:saas (one widget for all SaaS salons)" if not widget.grows else
                "remove salons from the widget (`bookingctl tenants remove`)") + " or set the Enterprise Turnstile "
                "plan if the account has it", _TURNSTILE_SOURCE))
        elif widget.grows and count == limit:
            checks.append(Check(name, False, f"{seen}: full, the next `bookingctl tenants add` fails",
                                "remove a salon, or move the account to Turnstile Enterprise (200 per widget)",
                                _TURNSTILE_SOURCE))
        else:
            checks.append(Check(name, True, seen, source=_TURNSTILE_SOURCE))
    return checks


# --- 5. the canary's GraphQL query against the schema -----------------------------------------------

# The standard introspection query (graphql-core's get_introspection_query, the one GraphQL clients
# send); Cloudflare's GraphQL API answers introspection (analytics/graphql-api/getting-started/
# explore-graphql-schema.mdx: "GraphQL clients ... introspect the schema").
_GRAPHQL_SOURCE = "the API's own introspection result, validated with graphql-core (build_client_schema + validate)"


def check_canary_query(client: Cloudflare, target: Target) -> list[Check]:
    """ops/observation/analytics.py GRAPHQL_QUERY is valid against the schema the API reports by introspection."""
    name = "canary GraphQL query"
    response, error = read(lambda: client.post("/graphql", cast_to=httpx.Response,
                                                body={"query": get_introspection_query()}), "POST /graphql")
    if response is None:
        return [_refused(name, error, "Account Analytics Read on the account", "booking:accountId")]
    try:
        body = response.json()
        schema = build_client_schema(body["data"])
    except (ValueError, KeyError, TypeError) as exc:
        errors = body.get("errors") if isinstance(locals().get("body"), dict) else None
        return [Check(name, None, f"the API gave no usable introspection result ({errors or exc}); the query's "
                                  "fields could not be checked", "run again; if it persists, check the query by hand "
                                  "in Cloudflare's GraphQL explorer", _GRAPHQL_SOURCE)]
    problems = validate(schema, parse(GRAPHQL_QUERY))
    if problems:
        return [Check(name, False, "ops/observation/analytics.py GRAPHQL_QUERY is not valid against the API's schema: "
                      + "; ".join(p.message for p in problems),
                      "fix the field names in ops/observation/analytics.py GRAPHQL_QUERY (the canary reads no "
                      "traffic while it is invalid)", _GRAPHQL_SOURCE)]
    return [Check(name, True, "every field of ops/observation/analytics.py GRAPHQL_QUERY exists in the API's schema",
                  source=_GRAPHQL_SOURCE)]


# --- 6. custom hostname quota on the SaaS zone --------------------------------------------------------

# GET /zones/{zone_id}/custom_hostnames/quota (the SDK's custom_hostnames.quota.get): "Returns custom
# hostname quota usage for a zone. The allocated quota is a soft limit; creating custom hostnames
# after usage exceeds this limit can still succeed until the hard cap is reached."
_QUOTA_SOURCE = "cloudflare SDK 5.9.0 custom_hostnames.quota.get (GET /zones/{zone_id}/custom_hostnames/quota)"


def check_custom_hostname_quota(client: Cloudflare, target: Target) -> list[Check]:
    """The SaaS zone can take more custom hostnames (below the hard cap); when the quota cannot be
    read, the hostnames are counted and the line says the limit was not checked."""
    zone_id = target.saas_zone_id
    if zone_id is None:
        return []
    name = f"custom hostname quota ({zone_id})"
    quota, error = read(lambda: client.custom_hostnames.quota.get(zone_id=zone_id),
                         f"GET /zones/{zone_id}/custom_hostnames/quota")
    if quota is not None:
        seen = f"{quota.used} custom hostname(s) in use, {quota.allocated} allocated, hard cap {quota.hard_cap}"
        if quota.used >= quota.hard_cap:
            return [Check(name, False, f"{seen}: Cloudflare rejects every new custom hostname",
                          "remove unused salons (`bookingctl tenants remove`) or ask Cloudflare for more",
                          _QUOTA_SOURCE)]
        note = ": above the allocated quota (a soft limit: creation still succeeds until the hard cap)" \
            if quota.exceeded else ""
        return [Check(name, True, seen + note, source=_QUOTA_SOURCE)]
    counted, second = read(lambda: sum(1 for _ in client.custom_hostnames.list(zone_id=zone_id, per_page=50)),
                            f"GET /zones/{zone_id}/custom_hostnames")
    why = f"{status_of(error)}: {api_text(error)}" if error else "no answer"
    if counted is None:
        return [_refused(name, second, "SSL and Certificates Read on the SaaS zone", "booking:saas.zoneId")]
    return [Check(name, None, f"the quota could not be read ({why}); the zone holds {counted} custom hostname(s), "
                              "the limit was not checked",
                  "give the token SSL and Certificates Read on the SaaS zone, or check the quota in the dashboard",
                  _QUOTA_SOURCE)]


# --- 7. the D1 database and the R2 bucket -------------------------------------------------------------

def check_database(client: Cloudflare, target: Target) -> list[Check]:
    """The stack's D1 database exists (by name) and answers a read."""
    name = f"D1 database {target.database_name}"
    # The first match ends the listing (the name filter is a search: look-alikes may follow).
    found, error = read(lambda: [next((d for d in client.d1.database.list(account_id=target.account_id,
                                                                            name=target.database_name)
                                        if d.name == target.database_name), None)],
                         f"GET /accounts/{target.account_id}/d1/database")
    if found is None:
        return [_refused(name, error, "D1 Read (or Write) on the account", "booking:accountId")]
    if found[0] is None:
        return [Check(name, False, f"account {target.account_id} has no D1 database named {target.database_name!r}",
                      "run `pulumi up` for the stack first (it creates the database), or fix booking:databaseName")]
    database_id = str(found[0].uuid)
    answer, error = read(lambda: client.d1.database.query(database_id, account_id=target.account_id, sql="SELECT 1"),
                          f"POST /accounts/{target.account_id}/d1/database/{database_id}/query")
    if answer is None:
        return [Check(name, False, f"{database_id} exists but refused `SELECT 1` ({api_text(error) if error else ''})",
                      "give the token D1 Write on the account")]
    return [Check(name, True, f"{database_id} exists and answers `SELECT 1`")]


def check_bucket(client: Cloudflare, target: Target) -> list[Check]:
    """The stack's R2 backup bucket exists and can be read."""
    name = f"R2 bucket {target.bucket_name}"
    found, error = read(lambda: client.r2.buckets.get(target.bucket_name, account_id=target.account_id),
                         f"GET /accounts/{target.account_id}/r2/buckets/{target.bucket_name}")
    if found is None and error is not None and status_of(error) == 404:
        return [Check(name, False, f"account {target.account_id} has no R2 bucket named {target.bucket_name!r}",
                      "run `pulumi up` for the stack first (it creates the bucket), or fix booking:backupBucketName")]
    if found is None:
        return [_refused(name, error, "Workers R2 Storage Read (or Write) on the account", "booking:accountId")]
    return [Check(name, True, f"exists ({found.location or 'no location hint'}, {found.storage_class or 'Standard'})")]


