"""`bookingctl doctor`: read-only checks of what the stack and the commands assume about the account.

A wrong assumption about the Cloudflare account (a token without a permission, a zone plan that
cannot hold the rate-limiting rules, an entry point someone made in the dashboard, a full Turnstile
widget, a GraphQL field that does not exist, a missing database) otherwise shows up halfway through
a real `pulumi up`, or in a canary that never sees traffic. Each check here is a small function
that reads the account and returns one `Check` per thing it judged: passed, failed (with the fix),
or `ok=None` when it could not be checked, saying why; a check that cannot tell never passes.

Nothing here writes: every call is a GET, or the GraphQL introspection query (a read). The
expectations come from published sources named next to each one; the limits themselves live in
`booking_shared/limits.py`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from booking_shared.edge import (
    RATELIMIT_PHASE,
    ratelimit_ruleset_name,
)
from booking_shared.errors import InputError
from booking_shared.limits import (
    HEALTH_CHECKS_BY_PLAN,
    PLAN_LABELS,
    ZONE_PLANS,
    RateLimitRule,
    TurnstilePlan,
    ZonePlan,
    rate_limit_problems,
    turnstile_hostname_limit,
)
from booking_shared.turnstile import saas_widget_name, site_shards, site_widget_name

if TYPE_CHECKING:
    from cloudflare import Cloudflare

    from stackconfig.model import StackConfig


class DoctorInputError(InputError):
    """The checks cannot run at all: no valid token, or Cloudflare cannot be reached (exit 2)."""


Status = Literal["pass", "fail", "unchecked"]


@dataclass(frozen=True)
class Check:
    """One judged assumption: `ok` True (holds), False (does not: `fix` says what to do) or None
    (could not be checked: `detail` says why and what was seen)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""
    source: str = ""  # the published source of the expectation

    @property
    def status(self) -> Status:
        return "pass" if self.ok else "unchecked" if self.ok is None else "fail"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "ok": self.ok, "detail": self.detail, "fix": self.fix,
                "source": self.source}


@dataclass
class Report:
    stack: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    @property
    def ok(self) -> bool:
        """No check failed (an unchecked one is reported, but is no failure)."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        counts = {s: sum(1 for c in self.checks if c.status == s) for s in ("pass", "fail", "unchecked")}
        return {"stack": self.stack, "ok": self.ok, "counts": counts, "checks": [c.to_dict() for c in self.checks]}


# --- what the stack declares, as the checks need it -------------------------------------------------

@dataclass(frozen=True)
class ZoneTarget:
    """A zone the stack serves and what it puts there."""

    zone_id: str
    label: str  # main, tenant-<slug> or saas: the names infra/ gives the zone's resources
    rules: tuple[RateLimitRule, ...] = ()  # empty: this stack does not declare the zone's entry point
    health_check: bool = False
    saas: bool = False
    stated_plan: ZonePlan = "free"  # what the stack file says the zone is on (stackconfig/model.py plan_of)
    plan_key: str = "zonePlan"  # the booking key that states it
    # booking:rateLimits.existingRulesetIds: the entry point the program imports instead of creating.
    imports_ruleset: str | None = None


@dataclass(frozen=True)
class WidgetTarget:
    """A Turnstile widget the stack declares, found by its whole name."""

    name: str
    domains: tuple[str, ...]  # what the stack lists (the SaaS widget: only the fallback hostname)
    plan: TurnstilePlan = "free"
    # The SaaS widget's real domains are data `bookingctl tenants` adds: judge what the account holds.
    grows: bool = False


@dataclass(frozen=True)
class Target:
    """Everything the checks read from the stack's config, as plain values."""

    stack: str
    environment: str
    account_id: str
    database_name: str
    bucket_name: str
    worker_name: str
    zones: tuple[ZoneTarget, ...]
    widgets: tuple[WidgetTarget, ...]
    ruleset_name: str  # the name infra/edge.py gives every entry point it declares
    notification_policy: bool = False
    saas_zone_id: str | None = None

    def zone(self, zone_id: str) -> ZoneTarget:
        return next(z for z in self.zones if z.zone_id == zone_id)


def target_of(cfg: StackConfig, stack: str) -> Target:
    """The stack's config as the checks read it: the same zones, rules and widgets infra/ declares."""
    targets = []
    for zone in cfg.zones:
        rules = cfg.rate_limit_rules(zone) if cfg.owns_zone_rulesets else ()
        targets.append(ZoneTarget(zone.zone_id, zone.label, rules,
                                  health_check=cfg.health_check and zone.zone_id == cfg.zone_id,
                                  saas=zone.label == "saas", stated_plan=zone.plan, plan_key=zone.plan_key,
                                  imports_ruleset=cfg.rate_limits.existing_ruleset_ids.get(zone.zone_id)))
    plan = cfg.turnstile.plan
    shards = site_shards([cfg.domain, *(t.hostname for t in cfg.tenants)], plan)
    widgets = [WidgetTarget(site_widget_name(cfg.environment, i), shard, plan) for i, shard in enumerate(shards)]
    if cfg.saas is not None:
        widgets += [WidgetTarget(saas_widget_name(cfg.worker_name, i), (cfg.saas.fallback_hostname,), plan, grows=True)
                    for i in range(cfg.turnstile.saas_widgets)]
    return Target(stack=stack, environment=cfg.environment, account_id=cfg.account_id,
                  database_name=cfg.database_name, bucket_name=cfg.backup_bucket_name, worker_name=cfg.worker_name,
                  zones=tuple(targets), widgets=tuple(widgets), ruleset_name=ratelimit_ruleset_name(cfg.environment),
                  notification_policy=cfg.health_check and cfg.is_production and cfg.alert_email is not None,
                  saas_zone_id=cfg.saas.zone_id if cfg.saas is not None else None)


# --- calling the API --------------------------------------------------------------------------------

def _status(exc: Exception) -> int | None:
    return getattr(exc, "status_code", None)


def _api_text(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(f"{e.get('message')} ({e.get('code')})" for e in errors if isinstance(e, dict))
    return str(exc)


# The last read `_read` sent: what `run` names when an answer turns out not to have the shape
# the SDK's model describes (the SDK hands back whatever JSON came, unvalidated).
_last_read: contextvars.ContextVar[str] = contextvars.ContextVar("doctor_last_read", default="the Cloudflare API")


def _unreadable(what: str, exc: Exception) -> DoctorInputError:
    return DoctorInputError(f"Cloudflare's answer to {what} could not be read ({type(exc).__name__}: {exc}); no "
                            "check can be judged on it (a proxy error page, an incident): run `bookingctl doctor` "
                            "again later")


def _read(call: Callable[[], Any], what: str) -> tuple[Any, Exception | None]:
    """(result, None), or (None, the API's 4xx) for a refused read; an unreachable API raises.

    A timeout, a dropped connection, a 429 or a 5xx after the SDK's retries, or an answer that is
    not the JSON the SDK expects, means the account could not be read: no check can be judged on
    that, so the whole run stops with exit 2.
    """
    import cloudflare

    _last_read.set(what)
    try:
        return call(), None
    except (cloudflare.APIResponseValidationError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise _unreadable(what, exc) from exc
    except cloudflare.APIConnectionError as exc:  # includes timeouts
        raise DoctorInputError(f"cannot reach the Cloudflare API for {what}: {exc}; check the network (and "
                               "CLOUDFLARE_BASE_URL, if set) and run `bookingctl doctor` again") from exc
    except cloudflare.APIStatusError as exc:
        if exc.status_code == 429 or exc.status_code >= 500:
            raise DoctorInputError(f"Cloudflare answered {exc.status_code} for {what} after retries "
                                   f"({_api_text(exc)}); try again later") from exc
        return None, exc


# --- 1. the token and its permissions ---------------------------------------------------------------
#
# Sources: permission group names as the API spells them ("Write", not the dashboard's "Edit"):
# cloudflare-docs src/content/docs/fundamentals/api/reference/permissions.mdx (0309c8be) with its
# partials account-permissions-table.mdx (04047ca5) and zone-permissions-table.mdx (077e0a3f); the
# permissions each resource accepts: the "Accepted Permissions" of each resource in the installed
# pulumi-cloudflare 6.23.1 SDK (pulumi_cloudflare/<resource>.py), which the API reference repeats
# per operation (developers.cloudflare.com/api/..., "Accepted Permissions (at least one required)").
# Policies, resources and their evaluation ("1. Explicit DENY Policies; 2. Explicit ALLOW Policies;
# 3. Implicit DENY ALL"): src/content/docs/fundamentals/api/how-to/create-via-api.mdx (12de1227).

@dataclass(frozen=True)
class Need:
    """A permission the stack or a command needs: any one of `accepted`, on the account or one zone."""

    what: str
    scope: str  # "account", or a zone id
    accepted: tuple[str, ...]
    # The read-only call that shows the read half when the token cannot read its own policies.
    probe: str | None = None


# A zone's details (GET /zones/{zone_id}) accept any of these (pulumi_cloudflare/get_zone.py); the
# usual one is Zone Read.
_ZONE_READ = ("Zone Read", "Zone Write", "DNS Read", "DNS Write", "Workers Routes Read", "Workers Routes Write",
              "SSL and Certificates Read", "SSL and Certificates Write", "Zone Settings Read", "Zone Settings Write",
              "Analytics Read", "Firewall Services Read", "Firewall Services Write")


def needs(target: Target) -> list[Need]:
    """Every permission the stack's resources and the commands use, derived from the stack's config."""
    found = [
        Need("the D1 database, migrations, backups and restores (D1Database)", "account", ("D1 Write",), "d1"),
        Need("the API Worker, its versions and deployments, canary and rollback (Worker, WorkerVersion, "
             "WorkersDeployment)", "account", ("Workers Scripts Write",), "scripts"),
        Need("the backup bucket and its lifecycle, backup uploads (R2Bucket)", "account",
             ("Workers R2 Storage Write",), "r2"),
        Need("the Pages project and its domains (PagesProject, PagesDomain)", "account", ("Pages Write",)),
        Need("the Turnstile widgets (TurnstileWidget; `tenants add` lists salons on the SaaS one)", "account",
             ("Turnstile Sites Write", "Account Settings Write"), "turnstile"),
        # The canary's per-version traffic: GraphQL Analytics (ops/observation/analytics.py); the review of
        # 2026-12-04 checked the permission's name against analytics/graphql-api docs.
        Need("the canary's per-version traffic (GraphQL Analytics)", "account", ("Account Analytics Read",)),
    ]
    if any(w.grows for w in target.widgets):
        # The program reads the live SaaS widgets in every `pulumi preview` and `up` (infra/turnstile.py):
        # the pull-request preview's read-only token needs this too. Accepted: getTurnstileWidgets's
        # "Accepted Permissions" (pulumi_cloudflare 6.23.1 get_turnstile_widgets.py).
        found.append(Need("reading the live SaaS widgets' domains in every `pulumi preview` and `up` "
                          "(getTurnstileWidgets)", "account",
                          ("Turnstile Sites Read", "Turnstile Sites Write", "Account Settings Read",
                           "Account Settings Write"), "turnstile"))
    if target.notification_policy:
        found.append(Need("the health-check alert (NotificationPolicy)", "account",
                          ("Notifications Write", "Account Settings Write")))
    for zone in target.zones:
        where = f"zone {zone.zone_id} ({zone.label})"
        found.append(Need(f"reading {where}", zone.zone_id, _ZONE_READ, "zone"))
        found.append(Need(f"DNS records in {where} (DnsRecord)", zone.zone_id, ("DNS Write",)))
        found.append(Need(f"Worker routes in {where} (WorkersRoute)", zone.zone_id, ("Workers Routes Write",)))
        if zone.rules:
            # Rate limiting rules are the WAF's http_ratelimit phase (waf/reference/phases.mdx); the
            # zone permission for the Zone WAF is "Zone WAF Write" (zone-permissions-table.mdx).
            found.append(Need(f"the rate limiting rules of {where} (Ruleset, http_ratelimit)", zone.zone_id,
                              ("Zone WAF Write",), "waf"))
        if zone.health_check:
            found.append(Need(f"the health check in {where} (Healthcheck)", zone.zone_id, ("Health Checks Write",)))
        if zone.saas:
            found.append(Need(f"the fallback origin and salons' custom hostnames in {where} "
                              "(CustomHostnameFallbackOrigin, `bookingctl tenants`)", zone.zone_id,
                              ("SSL and Certificates Write",), "ssl"))
    return found


# Products the compatibility matrix lists as not supporting account owned tokens, among those this
# stack uses: src/content/partials/fundamentals/account-owned-tokens.mdx (0fd5d99b), "Turnstile ❌".
# When Cloudflare's matrix lists one as supported, remove it here.
ACCOUNT_TOKEN_UNSUPPORTED = ("Turnstile",)
_ACCOUNT_TOKENS_SOURCE = "cloudflare-docs src/content/partials/fundamentals/account-owned-tokens.mdx (0fd5d99b)"
_PERMISSIONS_SOURCE = ("cloudflare-docs fundamentals/api/reference/permissions.mdx (0309c8be); pulumi-cloudflare "
                       "6.23.1 \"Accepted Permissions\" per resource; fundamentals/api/how-to/create-via-api.mdx "
                       "(12de1227)")


@dataclass(frozen=True)
class TokenIdentity:
    kind: Literal["user", "account"]
    token_id: str
    status: str
    expires_on: str | None


def _account_keys(account_id: str) -> tuple[str, ...]:
    return f"com.cloudflare.api.account.{account_id}", "com.cloudflare.api.account.*"


def covers(resources: Mapping[str, Any], scope: str, account_id: str) -> bool:
    """Whether a policy's `resources` include the account (scope "account") or the zone `scope`.

    create-via-api.mdx: a single account `com.cloudflare.api.account.<id>: "*"`, all accounts
    `com.cloudflare.api.account.*`; a single zone `com.cloudflare.api.account.zone.<id>: "*"`, all
    zones of an account `com.cloudflare.api.account.<id>: {"com.cloudflare.api.account.zone.*": "*"}`,
    all zones of all accounts `com.cloudflare.api.account.zone.*: "*"`.
    """
    accounts = _account_keys(account_id)
    if scope == "account":
        return any(resources.get(k) == "*" for k in accounts)
    zones = (f"com.cloudflare.api.account.zone.{scope}", "com.cloudflare.api.account.zone.*")
    if any(resources.get(k) == "*" for k in zones):
        return True
    return any(isinstance(resources.get(k), Mapping) and any(resources[k].get(z) == "*" for z in zones)
               for k in accounts)


def granted(policies: Iterable[Any], scope: str, account_id: str) -> set[str]:
    """The permission group names the policies grant on `scope`: allowed minus denied."""
    allowed: set[str] = set()
    denied: set[str] = set()
    for policy in policies:
        if not covers(policy.resources, scope, account_id):
            continue
        names = {g.name for g in policy.permission_groups if g.name}
        (denied if policy.effect == "deny" else allowed).update(names)
    return allowed - denied


def _verify(client: Cloudflare, account_id: str) -> TokenIdentity:
    """Which token this is: a user token answers /user/tokens/verify, an account owned one
    /accounts/{id}/tokens/verify (the SDK's user.tokens.verify and accounts.tokens.verify)."""
    found, error = _read(lambda: client.user.tokens.verify(), "GET /user/tokens/verify")
    kind: Literal["user", "account"] = "user"
    if found is None:
        found, second = _read(lambda: client.accounts.tokens.verify(account_id=account_id),
                              f"GET /accounts/{account_id}/tokens/verify")
        kind = "account"
        if found is None:
            raise DoctorInputError(
                f"CLOUDFLARE_API_TOKEN is not a valid token for account {account_id}: /user/tokens/verify said "
                f"{_api_text(error) if error else 'nothing'}, /accounts/{account_id}/tokens/verify said "
                f"{_api_text(second) if second else 'nothing'}; export a current API token of this account "
                "(booking:accountId)")
    expires = found.expires_on.isoformat() if found.expires_on else None
    return TokenIdentity(kind, found.id, found.status, expires)


def _policies(client: Cloudflare, account_id: str, token: TokenIdentity) -> tuple[list[Any] | None, str]:
    """The token's own policies, or (None, why not): reading them needs API Tokens Read (a user
    token) or Account API Tokens Read (an account owned token), which a deploy token rarely has."""
    if token.kind == "user":
        found, error = _read(lambda: client.user.tokens.get(token.token_id), f"GET /user/tokens/{token.token_id}")
        needed = "API Tokens Read (User)"
    else:
        found, error = _read(lambda: client.accounts.tokens.get(token.token_id, account_id=account_id),
                             f"GET /accounts/{account_id}/tokens/{token.token_id}")
        needed = "Account API Tokens Read (Account)"
    if found is None or found.policies is None:
        why = _api_text(error) if error else "no policies in the answer"
        return None, f"{needed} is needed to read them ({why})"
    return list(found.policies), ""


def _probe(client: Cloudflare, target: Target, kind: str, scope: str) -> tuple[bool, str]:
    """A read that needs the read half of a permission: (refused?, what was called)."""
    account = target.account_id
    calls: dict[str, tuple[str, Callable[[], Any]]] = {
        "d1": (f"GET /accounts/{account}/d1/database",
               lambda: client.d1.database.list(account_id=account, name=target.database_name).result),
        "scripts": (f"GET /accounts/{account}/workers/scripts/{target.worker_name}/deployments",
                    lambda: client.workers.scripts.deployments.list(target.worker_name, account_id=account)),
        "r2": (f"GET /accounts/{account}/r2/buckets/{target.bucket_name}",
               lambda: client.r2.buckets.get(target.bucket_name, account_id=account)),
        "turnstile": (f"GET /accounts/{account}/challenges/widgets",
                      lambda: client.turnstile.widgets.list(account_id=account, per_page=5)),
        "zone": (f"GET /zones/{scope}", lambda: client.zones.get(zone_id=scope)),
        "waf": (f"GET /zones/{scope}/rulesets/phases/{RATELIMIT_PHASE}/entrypoint",
                lambda: client.rulesets.phases.get("http_ratelimit", zone_id=scope)),
        "ssl": (f"GET /zones/{scope}/custom_hostnames",
                lambda: client.custom_hostnames.list(zone_id=scope, per_page=5)),
    }
    what, call = calls[kind]
    _, error = _read(call, what)
    return error is not None and _status(error) in (401, 403), what


def _where(need: Need) -> str:
    return "the account" if need.scope == "account" else f"zone {need.scope}"


def check_token(client: Cloudflare, target: Target) -> list[Check]:
    """The token is active, and grants every permission in `needs` (or, when it cannot read its own
    policies, the read-only probes pass and the line says what could not be confirmed)."""
    token = _verify(client, target.account_id)
    checks = [Check("token", token.status == "active",
                    f"{token.kind} API token {token.token_id} is {token.status}"
                    + (f", expires {token.expires_on}" if token.expires_on else ""),
                    "" if token.status == "active" else "create a new token (docs/deploying.md: A real pulumi up, "
                    "step 3) and store it as CLOUDFLARE_API_TOKEN", "the SDK's TokenVerifyResponse.status")]
    wanted = needs(target)
    policies, why = _policies(client, target.account_id, token)
    if policies is None:
        refused: list[tuple[Need, str]] = []
        confirmed: list[tuple[Need, str]] = []
        unprobed: list[Need] = []
        for need in wanted:
            if need.probe is None:
                unprobed.append(need)
                continue
            denied, call = _probe(client, target, need.probe, need.scope)
            (refused if denied else confirmed).append((need, call))
        detail = (f"the token cannot read its own policies ({why}); fell back to read-only probes: "
                  f"{len(confirmed)} read(s) allowed"
                  + "".join(f"; {call} refused ({n.accepted[0].replace('Write', 'Read')} missing, needed for "
                            f"{n.what})" for n, call in refused)
                  + "; not confirmable this way: the Write half of every permission, and "
                  + ", ".join(sorted({f"{n.accepted[0]}" for n in unprobed})))
        fix = ("add the missing permissions to the token" if refused else
               "let the token read itself (add API Tokens Read, or Account API Tokens Read for an account owned "
               "token) so doctor can confirm every permission")
        checks.append(Check("token permissions", False if refused else None, detail, fix, _PERMISSIONS_SOURCE))
    else:
        missing = [n for n in wanted if not set(n.accepted) & granted(policies, n.scope, target.account_id)]
        if missing:
            checks.append(Check(
                "token permissions", False,
                f"{len(missing)} of {len(wanted)} needed permission(s) missing: "
                + "; ".join(f"{' or '.join(n.accepted[:2])} on {_where(n)}"
                            f" (for {n.what})" for n in missing),
                "edit the token (dashboard: My Profile > API Tokens, or Manage Account > Account API Tokens) and "
                "add: " + ", ".join(sorted({f"{n.accepted[0]} on {_where(n)}"
                                            for n in missing})), _PERMISSIONS_SOURCE))
        else:
            checks.append(Check("token permissions", True,
                                f"all {len(wanted)} permissions the stack and the commands need are granted",
                                source=_PERMISSIONS_SOURCE))
    if token.kind == "account" and target.widgets:
        checks.append(Check(
            "token type", False,
            "an account owned token, and Cloudflare's compatibility matrix lists "
            f"{', '.join(ACCOUNT_TOKEN_UNSUPPORTED)} "
            "as not supporting account owned tokens; the stack declares Turnstile widgets",
            "use a user API token for this stack (or, once the matrix lists Turnstile as supported, remove it from "
            "ops/observation/doctor.py ACCOUNT_TOKEN_UNSUPPORTED)", _ACCOUNT_TOKENS_SOURCE))
    return checks


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
        found, error = _read(partial(client.zones.get, zone_id=zone.zone_id), f"GET /zones/{zone.zone_id}")
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
    status = _status(error) if error else None
    if status in (401, 403):
        return Check(name, False, f"Cloudflare refused the read ({status}: {_api_text(error) if error else ''})",
                     f"give the token {permission}", _PERMISSIONS_SOURCE)
    return Check(name, False, f"Cloudflare has no such resource ({status}: {_api_text(error) if error else ''})",
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
        found, error = _read(partial(client.rulesets.phases.get, "http_ratelimit", zone_id=zone.zone_id),
                             f"GET /zones/{zone.zone_id}/rulesets/phases/{RATELIMIT_PHASE}/entrypoint")
        if found is None and error is not None and _status(error) == 404:
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
        found, error = _read(partial(_widgets_named, client, target.account_id, widget.name),
            f"GET /accounts/{target.account_id}/challenges/widgets")
        if found is None:
            checks.append(_refused(name, error, "Turnstile Sites Read (or Write) on the account", "booking:accountId"))
            continue
        if widget.grows and len(found) > 1:
            # `bookingctl tenants add` refuses to choose between them (ops/tenants/tenants.py saas_widgets).
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
    import httpx
    from graphql import build_client_schema, get_introspection_query, parse, validate

    from ops.observation.analytics import GRAPHQL_QUERY

    name = "canary GraphQL query"
    response, error = _read(lambda: client.post("/graphql", cast_to=httpx.Response,
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
    quota, error = _read(lambda: client.custom_hostnames.quota.get(zone_id=zone_id),
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
    counted, second = _read(lambda: sum(1 for _ in client.custom_hostnames.list(zone_id=zone_id, per_page=50)),
                            f"GET /zones/{zone_id}/custom_hostnames")
    why = f"{_status(error)}: {_api_text(error)}" if error else "no answer"
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
    found, error = _read(lambda: [next((d for d in client.d1.database.list(account_id=target.account_id,
                                                                            name=target.database_name)
                                        if d.name == target.database_name), None)],
                         f"GET /accounts/{target.account_id}/d1/database")
    if found is None:
        return [_refused(name, error, "D1 Read (or Write) on the account", "booking:accountId")]
    if found[0] is None:
        return [Check(name, False, f"account {target.account_id} has no D1 database named {target.database_name!r}",
                      "run `pulumi up` for the stack first (it creates the database), or fix booking:databaseName")]
    database_id = str(found[0].uuid)
    answer, error = _read(lambda: client.d1.database.query(database_id, account_id=target.account_id, sql="SELECT 1"),
                          f"POST /accounts/{target.account_id}/d1/database/{database_id}/query")
    if answer is None:
        return [Check(name, False, f"{database_id} exists but refused `SELECT 1` ({_api_text(error) if error else ''})",
                      "give the token D1 Write on the account")]
    return [Check(name, True, f"{database_id} exists and answers `SELECT 1`")]


def check_bucket(client: Cloudflare, target: Target) -> list[Check]:
    """The stack's R2 backup bucket exists and can be read."""
    name = f"R2 bucket {target.bucket_name}"
    found, error = _read(lambda: client.r2.buckets.get(target.bucket_name, account_id=target.account_id),
                         f"GET /accounts/{target.account_id}/r2/buckets/{target.bucket_name}")
    if found is None and error is not None and _status(error) == 404:
        return [Check(name, False, f"account {target.account_id} has no R2 bucket named {target.bucket_name!r}",
                      "run `pulumi up` for the stack first (it creates the bucket), or fix booking:backupBucketName")]
    if found is None:
        return [_refused(name, error, "Workers R2 Storage Read (or Write) on the account", "booking:accountId")]
    return [Check(name, True, f"exists ({found.location or 'no location hint'}, {found.storage_class or 'Standard'})")]


CHECKS: Sequence[Callable[[Cloudflare, Target], list[Check]]] = (
    check_token, check_zone_plans, check_entry_points, check_widgets, check_canary_query,
    check_custom_hostname_quota, check_database, check_bucket)


def run(client: Cloudflare, target: Target) -> Report:
    """Every check in order; raises DoctorInputError when the account cannot be read at all."""
    report = Report(target.stack)
    for check in CHECKS:
        try:
            report.checks.extend(check(client, target))
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            # An answer of the wrong shape (a string or a list where the SDK's model has an object):
            # unreadable, like a 5xx, never a check passed or failed on it.
            raise _unreadable(_last_read.get(), exc) from exc
    return report
