"""`bookingctl doctor`, check 1: the API token, and whether its policies grant what the stack needs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from booking_shared.edge import (
    RATELIMIT_PHASE,
)

if TYPE_CHECKING:
    from cloudflare import Cloudflare



from ops.observation.doctor_model import Check, DoctorInputError, Target, api_text, read, status_of

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
PERMISSIONS_SOURCE = ("cloudflare-docs fundamentals/api/reference/permissions.mdx (0309c8be); pulumi-cloudflare "
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
    found, error = read(lambda: client.user.tokens.verify(), "GET /user/tokens/verify")
    kind: Literal["user", "account"] = "user"
    if found is None:
        found, second = read(lambda: client.accounts.tokens.verify(account_id=account_id),
                              f"GET /accounts/{account_id}/tokens/verify")
        kind = "account"
        if found is None:
            raise DoctorInputError(
                f"CLOUDFLARE_API_TOKEN is not a valid token for account {account_id}: /user/tokens/verify said "
                f"{api_text(error) if error else 'nothing'}, /accounts/{account_id}/tokens/verify said "
                f"{api_text(second) if second else 'nothing'}; export a current API token of this account "
                "(booking:accountId)")
    expires = found.expires_on.isoformat() if found.expires_on else None
    return TokenIdentity(kind, found.id, found.status, expires)


def _policies(client: Cloudflare, account_id: str, token: TokenIdentity) -> tuple[list[Any] | None, str]:
    """The token's own policies, or (None, why not): reading them needs API Tokens Read (a user
    token) or Account API Tokens Read (an account owned token), which a deploy token rarely has."""
    if token.kind == "user":
        found, error = read(lambda: client.user.tokens.get(token.token_id), f"GET /user/tokens/{token.token_id}")
        needed = "API Tokens Read (User)"
    else:
        found, error = read(lambda: client.accounts.tokens.get(token.token_id, account_id=account_id),
                             f"GET /accounts/{account_id}/tokens/{token.token_id}")
        needed = "Account API Tokens Read (Account)"
    if found is None or found.policies is None:
        why = api_text(error) if error else "no policies in the answer"
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
    _, error = read(call, what)
    return error is not None and status_of(error) in (401, 403), what


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
        checks.append(Check("token permissions", False if refused else None, detail, fix, PERMISSIONS_SOURCE))
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
                                            for n in missing})), PERMISSIONS_SOURCE))
        else:
            checks.append(Check("token permissions", True,
                                f"all {len(wanted)} permissions the stack and the commands need are granted",
                                source=PERMISSIONS_SOURCE))
    if token.kind == "account" and target.widgets:
        checks.append(Check(
            "token type", False,
            "an account owned token, and Cloudflare's compatibility matrix lists "
            f"{', '.join(ACCOUNT_TOKEN_UNSUPPORTED)} "
            "as not supporting account owned tokens; the stack declares Turnstile widgets",
            "use a user API token for this stack (or, once the matrix lists Turnstile as supported, remove it from "
            "ops/observation/doctor_token.py ACCOUNT_TOKEN_UNSUPPORTED)", _ACCOUNT_TOKENS_SOURCE))
    return checks


