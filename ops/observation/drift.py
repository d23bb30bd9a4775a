"""`bookingctl drift`: what Cloudflare really holds for a stack, compared field by field with what it declares.

Read-only. The caller plans the stack (the program under mocks, as `bookingctl plan` does) and passes its
resources as `Declared`; each is looked up live by its natural key (a name, a pattern, a hostname, a
rule's `ref`) through the official SDK, and every difference is one `Difference`:

- `changed`: the live resource differs in a field the program sets (a rate-limit rule relaxed in the
  dashboard, a widget's mode, a route sent to another Worker, a health check paused, a lifecycle rule
  removed, the Worker's workers.dev URL turned on, the alert watching another check), or a database is
  not the one the Worker's serving version binds (recreated under its name, drift_workers.py);
  converging: `pulumi up --refresh --stack S` puts the declared value back (a plain `up` compares with
  the state, which still holds the declared value, and changes nothing), except a database, whose data
  must be found or restored first;
- `missing`: declared, not there (a Worker serving no deployment: recreated under its name); converging:
  `pulumi up --refresh` creates it again, except a database, where that would create an empty one, so
  the fix says to find it and restore its data;
- `unmanaged`: live, not declared, where the stack must know of it: another Worker route on one of the
  stack's hostnames, another rule in the stack's rate-limit entry point, a widget accepting its
  hostname, a custom hostname no tenant row names; converging: `pulumi import ...` or the dashboard,
  or a `bookingctl tenants` command.

Which fields are compared is data (the readers' field tables, `_RULE_FIELDS`, drift_workers.py's
`_SETTINGS`), each the input the program sets and the field the API answers it in; fields the program
leaves to Cloudflare's defaults are not compared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cloudflare import Cloudflare, NotFoundError

from booking_shared.turnstile import saas_widget_index
from ops.observation import drift_workers
from ops.observation.drift_model import (
    Context,
    Declared,
    Difference,
    Snapshot,
    compare,
    provider_inputs,
    report_missing,
    short,
)
from ops.tenants.tenant_model import StatusReport

READ_CONCURRENCY = 4
__all__ = ["READERS", "Context", "Declared", "Difference", "Snapshot", "drift", "provider_inputs", "saas_differences"]

# --- one reader per type: (client, declared) -> the live object as a dict, or None ----------------

def _bucket(ctx: Context, d: Declared) -> None:
    name = str(d.inputs["name"])
    try:
        ctx.client.r2.buckets.get(name, account_id=ctx.account_id)
    except NotFoundError:
        report_missing(ctx, d, f"R2 bucket {name}")
        return
    ctx.snapshot.live[d.name] = {"name": name}


def _lifecycle(ctx: Context, d: Declared) -> None:
    name = str(d.inputs["bucketName"])
    try:
        rules = ctx.client.r2.buckets.lifecycle.get(name, account_id=ctx.account_id).rules or []
    except NotFoundError:
        report_missing(ctx, d, f"R2 bucket {name} (and its lifecycle)")
        return
    # Each enabled rule whole (its prefix, its ages), as the API answers it and as declared.
    dumped = [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in rules]
    live_rules = sorted((_rule_key(r) for r in dumped if r.get("enabled")), key=str)
    declared_rules = sorted((_rule_key(r) for r in d.inputs.get("rules") or [] if r.get("enabled", True)), key=str)
    ctx.snapshot.live[d.name] = {"rules": dumped}  # as the provider's inputs spell them (camelCase aliases)
    if live_rules != declared_rules:
        ctx.add("changed", short(d), f"lifecycle rules of {name}: {live_rules or 'none'} live, {declared_rules} "
                "declared (backups past their retention are no longer deleted, or are deleted early)", ctx.up(),
                field="rules", declared=declared_rules, live=live_rules)


def _rule_key(rule: Mapping[str, Any]) -> tuple[str, str, str]:
    """(id, prefix, the delete transition's age) of a lifecycle rule, in camelCase or the API's keys."""
    conditions = rule.get("conditions") or {}
    delete = rule.get("deleteObjectsTransition") or rule.get("delete_objects_transition") or {}
    condition = delete.get("condition") or {}
    age = condition.get("maxAge", condition.get("max_age"))
    return str(rule.get("id")), str(conditions.get("prefix", "")), str(int(age) if age is not None else None)


def _zone_routes(ctx: Context, zone_id: str, cache: dict[str, list[Any]]) -> list[Any]:
    if zone_id not in cache:
        cache[zone_id] = list(ctx.client.workers.routes.list(zone_id=zone_id))
    return cache[zone_id]


def _route(ctx: Context, d: Declared, cache: dict[str, list[Any]]) -> None:
    pattern = str(d.inputs["pattern"])
    live = next((r for r in _zone_routes(ctx, str(d.inputs["zoneId"]), cache) if r.pattern == pattern), None)
    if live is None:
        report_missing(ctx, d, f"Worker route {pattern}")
        return
    compare(ctx, d, {"pattern": live.pattern, "script": live.script}, [("script", "script")])


def _dns(ctx: Context, d: Declared) -> None:
    name, kind = str(d.inputs["name"]), str(d.inputs["type"])
    # Filtered by type only, the name compared here: the name filter's spelling changed (`name` in the
    # 2024 OpenAPI document, `name.exact` in the SDK's newer one).
    found = [r for r in ctx.client.dns.records.list(zone_id=str(d.inputs["zoneId"]), type=kind)  # type: ignore[arg-type]
             if str(r.name).lower() == name.lower()]
    if not found:
        report_missing(ctx, d, f"DNS {kind} record {name}")
        return
    compare(ctx, d, {"content": found[0].content, "proxied": found[0].proxied},
            [("content", "content"), ("proxied", "proxied")])


def _pages(ctx: Context, d: Declared, cache: dict[str, list[Any]]) -> None:
    name = str(d.inputs.get("projectName") or d.inputs.get("name"))
    key = f"pages:{name}"  # apart from the other lists in the cache ("widgets", zone ids)
    if key not in cache:
        try:
            cache[key] = [ctx.client.pages.projects.get(name, account_id=ctx.account_id)]
        except NotFoundError:
            cache[key] = []
    if not cache[key]:
        report_missing(ctx, d, f"Pages project {name}")
        return
    project = cache[key][0]
    if "projectName" in d.inputs:  # a PagesDomain
        domain = str(d.inputs["name"])
        if domain not in (project.domains or []):
            report_missing(ctx, d, f"custom domain {domain} of Pages project {name}")
        return
    ctx.snapshot.live[d.name] = {"name": name}


def _widget(ctx: Context, d: Declared, cache: dict[str, list[Any]]) -> None:
    if "widgets" not in cache:
        cache["widgets"] = list(ctx.client.turnstile.widgets.list(account_id=ctx.account_id))
    name = str(d.inputs["name"])
    want_domains = sorted(str(x) for x in d.inputs.get("domains") or [])
    # Several widgets of the declared name: the one listing the declared hostnames is taken for the
    # stack's (the API's list order says nothing of which one the state holds).
    # Several widgets of the declared name: the oldest listing the declared hostnames is taken for the
    # stack's (a copy made by hand is newer; the API's list order says nothing of which one the state holds).
    saas_widget = saas_widget_index(name) is not None

    def unlike(w: Any) -> bool:
        # A SaaS salons' widget lists its salons' hostnames too: the declared ones are among them.
        return not set(want_domains) <= set(w.domains) if saas_widget else sorted(w.domains) != want_domains

    same = sorted((w for w in cache["widgets"] if w.name == name), key=lambda w: (unlike(w), str(w.created_on)))
    live = same[0] if same else None
    if live is None:
        report_missing(ctx, d, f"Turnstile widget {name}")
        return
    for extra in same[1:]:
        ctx.add("unmanaged", f"TurnstileWidget {name}", f"another widget named {name} ({extra.sitekey}, created "
                f"{extra.created_on}) besides the one compared here ({'the oldest ' if not unlike(live) else ''}"
                "listing the declared hostnames): not the stack's if its state does not name that sitekey",
                f"check the sitekey in the state (`pulumi stack export --stack {ctx.stack}`) first; if it is not "
                f"there, delete {extra.sitekey} in the dashboard", live=extra.sitekey)
    compare(ctx, d, {"mode": live.mode, "domains": sorted(live.domains)}, [("mode", "mode")])
    want = want_domains
    # The SaaS salons' widgets list each salon's hostname as `tenants add` puts it there (data, not
    # declared: the offline plan reads no live widget): only a declared hostname missing is drift.
    differs = (set(want) - set(live.domains)) if saas_widget else (sorted(live.domains) != want)
    if want and differs:
        ctx.add("changed", short(d), f"domains are {sorted(live.domains)} live, {want} declared", ctx.up(),
                field="domains", declared=want, live=sorted(live.domains))


def _healthcheck(ctx: Context, d: Declared) -> None:
    name = str(d.inputs["name"])
    same = [c for c in ctx.client.healthchecks.list(zone_id=str(d.inputs["zoneId"])) if c.name == name]
    if len(same) > 1:
        # Several checks of the declared name: the one an alert watches is taken for the stack's (its
        # alert is declared to watch it; the API's list order says nothing of which one the state holds).
        watched = {i for p in ctx.client.alerting.policies.list(account_id=ctx.account_id)
                   for i in ((p.filters.health_check_id or []) if p.filters else [])}
        same.sort(key=lambda c: (c.id not in watched, str(c.created_on)))
    live = same[0] if same else None
    if live is None:
        report_missing(ctx, d, f"health check {name}")
        return
    for extra in same[1:]:
        ctx.add("unmanaged", short(d), f"another health check named {name} ({extra.id}, "
                f"{'paused' if extra.suspended else 'active'}) is not the one an alert watches",
                f"check its id in the state (`pulumi stack export --stack {ctx.stack}`) first; if it is not there, "
                f"delete {extra.id} in the dashboard", live=extra.id)
    http = live.http_config
    values = {"id": live.id, "address": live.address, "suspended": bool(live.suspended), "interval": live.interval,
              "type": live.type, "path": http.path if http else None,
              "expected_body": http.expected_body if http else None,
              "expected_codes": sorted(http.expected_codes or []) if http else None}
    compare(ctx, d, values, [("address", "address"), ("interval", "interval"), ("type", "type")])
    probe = d.inputs.get("httpConfig") or {}
    for declared_key, live_key in (("path", "path"), ("expectedBody", "expected_body"),
                                   ("expectedCodes", "expected_codes")):
        want = probe.get(declared_key)
        want = sorted(map(str, want)) if isinstance(want, list) else want
        if want is not None and want != values[live_key]:
            ctx.add("changed", short(d), f"the probe's {live_key} is {values[live_key]!r} live, {want!r} declared",
                    ctx.up(), field=f"httpConfig.{live_key}", declared=want, live=values[live_key])
    if values["suspended"] and not d.inputs.get("suspended"):
        ctx.add("changed", short(d), f"health check {name} is paused (suspended) live: no alert fires while the "
                "API is down", ctx.up(), field="suspended", declared=False, live=True)


def _policy(ctx: Context, d: Declared) -> None:
    name = str(d.inputs["name"])
    live = next((p for p in ctx.client.alerting.policies.list(account_id=ctx.account_id) if p.name == name), None)
    if live is None:
        report_missing(ctx, d, f"notification policy {name}")
        return
    checks = sorted((live.filters.health_check_id or []) if live.filters else [])
    compare(ctx, d, {"enabled": live.enabled, "health_check_id": checks, "alert_type": live.alert_type},
            [("enabled", "enabled"), ("alertType", "alert_type")])
    emails = sorted(str(m.id) for m in ((live.mechanisms.email if live.mechanisms else None) or []))
    want_emails = sorted(str(m.get("id")) for m in (d.inputs.get("mechanisms") or {}).get("emails") or [])
    if want_emails and emails != want_emails:
        ctx.add("changed", short(d), f"the alert is sent to {emails} live, {want_emails} declared", ctx.up(),
                field="mechanisms.email", declared=want_emails, live=emails)
    statuses = sorted((live.filters.status or []) if live.filters else [])
    want_statuses = sorted(str(x) for x in (d.inputs.get("filters") or {}).get("statuses") or [])
    if want_statuses and statuses != want_statuses:
        ctx.add("changed", short(d), f"the alert fires on {statuses} live, {want_statuses} declared", ctx.up(),
                field="filters.status", declared=want_statuses, live=statuses)



def _alerted_checks(ctx: Context, resources: list[Declared]) -> None:
    """`changed` when an alert's filter names other health checks than those it declares. The plan names a
    check by its mock id, so each declared check's live id is the one `_healthcheck` found by name: after
    the readers."""
    checks = {d.id: d for d in resources if d.type == "cloudflare:index/healthcheck:Healthcheck" and d.id}
    for d in (d for d in resources if d.type == "cloudflare:index/notificationPolicy:NotificationPolicy"):
        declared = [checks.get(str(i)) for i in (d.inputs.get("filters") or {}).get("healthCheckIds") or []]
        found = [ctx.snapshot.live.get(c.name) if c else None for c in declared]
        live = ctx.snapshot.live.get(d.name)
        if live is None or not found or None in found:
            continue  # the policy or a check is missing (reported), or names no declared check
        want = sorted(str(f["id"]) for f in found if f)
        if live["health_check_id"] != want:
            ctx.add("changed", short(d), f"the alert watches health check(s) {live['health_check_id'] or 'none'} live, "
                    f"{want} declared ({', '.join(c.name for c in declared if c)}): the API's health is no longer "
                    "what it alerts on", ctx.up(), field="filters.health_check_id", declared=want,
                    live=live["health_check_id"])


_RULE_FIELDS = (("action", "action"), ("expression", "expression"), ("enabled", "enabled"))
_RATELIMIT_FIELDS = (("requestsPerPeriod", "requests_per_period"), ("period", "period"),
                     ("mitigationTimeout", "mitigation_timeout"), ("characteristics", "characteristics"))


def _ruleset(ctx: Context, d: Declared) -> None:
    phase, zone_id = str(d.inputs["phase"]), str(d.inputs["zoneId"])
    try:
        live = ctx.client.rulesets.phases.get(phase, zone_id=zone_id)  # type: ignore[arg-type]
    except NotFoundError:
        report_missing(ctx, d, f"the zone's {phase} entry point ruleset")
        return
    rules = {str(r.ref): r for r in live.rules or []}
    ctx.snapshot.live[d.name] = {"rules": [r.model_dump(mode="json") for r in live.rules or []]}
    declared_refs = set()
    for rule in d.inputs.get("rules") or []:
        ref = str(rule.get("ref"))
        declared_refs.add(ref)
        have = rules.get(ref)
        where = f"rule {ref} of the {phase} entry point"
        if have is None:
            ctx.add("missing", short(d), f"{where} is gone", ctx.up(), field=ref)
            continue
        for declared_key, live_key in _RULE_FIELDS:
            if rule.get(declared_key) is not None and rule.get(declared_key) != getattr(have, live_key, None):
                ctx.add("changed", short(d), f"{where}: {live_key} is {getattr(have, live_key, None)!r} live, "
                        f"{rule.get(declared_key)!r} declared", ctx.up(), field=f"{ref}.{live_key}",
                        declared=rule.get(declared_key), live=getattr(have, live_key, None))
        want_params = rule.get("actionParameters")
        if want_params is not None:
            got = getattr(have, "action_parameters", None)
            got_params = provider_inputs(got.model_dump(mode="json", exclude_none=True)) if got is not None else None
            if got_params != want_params:
                ctx.add("changed", short(d), f"{where}: action_parameters are {got_params!r} live, {want_params!r} "
                        "declared", ctx.up(), field=f"{ref}.action_parameters", declared=want_params, live=got_params)
        limit, live_limit = rule.get("ratelimit") or {}, getattr(have, "ratelimit", None)
        for declared_key, live_key in _RATELIMIT_FIELDS:
            want, got = limit.get(declared_key), getattr(live_limit, live_key, None)
            if declared_key == "mitigationTimeout" and want == 0 and got is None:
                continue  # the API leaves a zero timeout out of its answer
            if isinstance(want, list) and isinstance(got, list):
                want, got = sorted(map(str, want)), sorted(map(str, got))
            if want is not None and want != got:
                ctx.add("changed", short(d), f"{where}: ratelimit.{live_key} is {got!r} live, {want!r} declared "
                        "(relaxed in the dashboard?)", ctx.up(), field=f"{ref}.ratelimit.{live_key}", declared=want,
                        live=got)
    for ref, rule in rules.items():
        if ref not in declared_refs:
            ctx.add("unmanaged", short(d), f"rule {ref} ({rule.description or rule.expression}) is in the "
                    f"{phase} entry point but not declared: the program would remove it on the next up",
                    f"declare it in infra/edge.py, or delete it in the dashboard before `{ctx.up()}`")


READERS: dict[str, Callable[..., None]] = {
    drift_workers.D1: drift_workers.d1,
    "cloudflare:index/r2Bucket:R2Bucket": _bucket,
    "cloudflare:index/r2BucketLifecycle:R2BucketLifecycle": _lifecycle,
    drift_workers.WORKER: drift_workers.worker,
    "cloudflare:index/dnsRecord:DnsRecord": _dns,
    "cloudflare:index/healthcheck:Healthcheck": _healthcheck,
    "cloudflare:index/notificationPolicy:NotificationPolicy": _policy,
    "cloudflare:index/ruleset:Ruleset": _ruleset,
}
_CACHED: dict[str, Callable[..., None]] = {
    "cloudflare:index/workersRoute:WorkersRoute": _route,
    "cloudflare:index/pagesProject:PagesProject": _pages,
    "cloudflare:index/pagesDomain:PagesDomain": _pages,
    "cloudflare:index/turnstileWidget:TurnstileWidget": _widget,
}
# Declared only through another resource (a version, a deployment: what serves is `release status`'s).
NOT_READ = frozenset({"cloudflare:index/workerVersion:WorkerVersion",
                      "cloudflare:index/workersDeployment:WorkersDeployment"})


def drift(client: Cloudflare, account_id: str, stack: str, declared: Iterable[Declared],
          hostnames: Iterable[str]) -> Context:
    """Every difference between `declared` and the live account, and what was read (read-only)."""
    ctx = Context(client, account_id, stack, frozenset(h.lower() for h in hostnames))
    cache: dict[str, list[Any]] = {}
    resources = list(declared)

    def read(d: Declared) -> None:
        if d.type in READERS:
            READERS[d.type](ctx, d)
        elif d.type in _CACHED:
            _CACHED[d.type](ctx, d, cache)
        elif d.type not in NOT_READ:
            ctx.add("changed", short(d), f"{d.type} is not read by drift: compare it by hand",
                    "extend ops/observation/drift.py READERS")

    # A few reads at a time: an account of many zones is read in parallel, still far below the API's
    # 1,200 requests per 5 minutes (a stack declares tens of resources; the SDK waits out a 429's
    # retry-after). Two readers of one cached list may both fetch it: read twice, never wrong.
    with ThreadPoolExecutor(max_workers=READ_CONCURRENCY) as pool:
        list(pool.map(read, resources))
    drift_workers.served_versions(ctx, resources)
    _alerted_checks(ctx, resources)
    _unmanaged_routes(ctx, resources, cache)
    _unmanaged_widgets(ctx, resources, cache)
    ctx.differences.sort(key=lambda d: (d.resource, d.kind, d.detail))  # the same order every run
    return ctx


def _unmanaged_routes(ctx: Context, resources: list[Declared], cache: dict[str, list[Any]]) -> None:
    declared = {str(d.inputs.get("pattern")) for d in resources if d.type.endswith("WorkersRoute")}
    zones = {str(d.inputs["zoneId"]) for d in resources if d.type.endswith("WorkersRoute")}
    for zone_id in sorted(zones):
        for route in _zone_routes(ctx, zone_id, cache):
            raw = str(route.pattern).split("/", 1)[0].lower()
            host = raw.lstrip("*.")
            # A leading `*` matches any prefix (`*example.com/*` covers www.example.com too).
            covered = [h for h in ctx.hostnames if h == host or (raw.startswith("*") and h.endswith(host))]
            if route.pattern not in declared and covered:
                ctx.add("unmanaged", f"WorkersRoute {route.pattern}", f"route {route.pattern} -> "
                        f"{route.script or '(no Worker)'} on the stack's hostname {covered[0]} is not declared",
                        f"pulumi import cloudflare:index/workersRoute:WorkersRoute <name> '{zone_id}/{route.id}' "
                        "--stack " + ctx.stack + ", or delete it in the dashboard")


def _unmanaged_widgets(ctx: Context, resources: list[Declared], cache: dict[str, list[Any]]) -> None:
    names = {str(d.inputs.get("name")) for d in resources if d.type.endswith("TurnstileWidget")}
    for widget in cache.get("widgets", []):
        # "When you add a hostname, the widget will work on that exact hostname and all of its
        # subdomains" (developers.cloudflare.com/turnstile/additional-configuration/hostname-management/):
        # a widget listing a parent domain accepts the stack's hostnames too.
        listed = [d.lower() for d in widget.domains]
        shared = sorted(h for h in ctx.hostnames if any(h == d or h.endswith("." + d) for d in listed))
        if widget.name not in names and shared:
            ctx.add("unmanaged", f"TurnstileWidget {widget.name}", f"widget {widget.name} ({widget.sitekey}) accepts "
                    f"the stack's hostname(s) {', '.join(shared)} and is not declared",
                    f"pulumi import cloudflare:index/turnstileWidget:TurnstileWidget <name> "
                    f"'{ctx.account_id}/{widget.sitekey}' --stack {ctx.stack}, or delete it in the dashboard")


def saas_differences(ctx: Context, report: StatusReport) -> None:
    """Custom hostnames against the tenants table (`tenants status`'s drift, both ways)."""
    for state in report.hostnames:
        fix = ""
        if state.state == "missing-hostname":
            ctx.add("missing", f"custom hostname {state.hostname}", f"tenant {state.slug} has hostname "
                    f"{state.hostname} in the tenants table but no custom hostname on the SaaS zone",
                    fix or f"bookingctl tenants add {state.slug} {state.hostname} --stack {ctx.stack}")
        elif state.state == "no-tenant-row":
            ctx.add("unmanaged", f"custom hostname {state.hostname}", f"custom hostname {state.hostname} "
                    f"({state.custom_hostname_id}) is on the SaaS zone but no tenant row names it",
                    f"add its salon (`bookingctl tenants add SLUG {state.hostname} --stack {ctx.stack}`), or delete "
                    "the custom hostname in the dashboard")
        elif state.state == "hostname-clash":
            ctx.add("changed", f"custom hostname {state.hostname}", "; ".join(state.blockers) or
                    f"{state.hostname} is claimed twice", f"bookingctl tenants status --stack {ctx.stack}")
