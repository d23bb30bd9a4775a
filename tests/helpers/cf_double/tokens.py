"""API tokens: their policies, what they permit, and the token routes (verify, read one's own details).

Sources: a token's policies (effect, permission_groups {id, name}, resources) and how they are
evaluated ("1. Explicit DENY Policies; 2. Explicit ALLOW Policies; 3. Implicit DENY ALL"), and the
resource keys (`com.cloudflare.api.account.<id>`, `...account.zone.<id>`, all zones of an account as
`{"com.cloudflare.api.account.<id>": {"com.cloudflare.api.account.zone.*": "*"}}`, the user as
`com.cloudflare.api.user.<tag>`): cloudflare-docs fundamentals/api/how-to/create-via-api.mdx
(12de1227). Group names as the API spells them, and which resource type each is scoped to (the
table it is listed in): fundamentals/api/reference/permissions.mdx and its partials
account-permissions-table.mdx (04047ca5), zone-permissions-table.mdx (077e0a3f),
user-permissions-table.mdx. Group ids are made up here (uuid5 of the name): the API's ids are not
published per group. Verify answers carry {id, status, expires_on, not_before} (the SDK's
TokenVerifyResponse); token details are the SDK's shared `Token`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tests.helpers.cf_double.base import Service
from tests.helpers.cf_double.envelope import Response, error, ok
from tests.helpers.cf_double.routes import Request, Route

ACCOUNT_GROUPS = ("Account Analytics Read", "Account Settings Read", "Account Settings Write", "D1 Read", "D1 Write",
                  "Notifications Read", "Notifications Write", "Pages Read", "Pages Write", "Turnstile Sites Read",
                  "Turnstile Sites Write", "Workers R2 Storage Read", "Workers R2 Storage Write",
                  "Workers Scripts Read", "Workers Scripts Write", "Account API Tokens Read")
ZONE_GROUPS = ("Zone Read", "DNS Read", "DNS Write", "Workers Routes Read", "Workers Routes Write", "Zone WAF Read",
               "Zone WAF Write", "Health Checks Read", "Health Checks Write", "SSL and Certificates Read",
               "SSL and Certificates Write")
USER_GROUPS = ("API Tokens Read",)


def group(name: str) -> dict[str, Any]:
    return {"id": uuid.uuid5(uuid.NAMESPACE_URL, f"cf-permission-group:{name}").hex, "name": name}


def policy(names: Iterable[str], resources: dict[str, Any], effect: str = "allow") -> dict[str, Any]:
    """A token policy as the API returns it."""
    return {"id": uuid.uuid4().hex, "effect": effect, "permission_groups": [group(n) for n in names],
            "resources": resources}


@dataclass
class TokenState:
    """An API token: a user token or an account owned one, its status and its policies."""

    token_id: str
    kind: str  # "user" | "account"
    policies: list[dict[str, Any]]
    status: str = "active"
    expires_on: str | None = None
    issued_on: str = ""  # set from the double's clock when the double first answers about it

    @classmethod
    def full(cls, account_id: str, *, kind: str = "user", leave_out: Iterable[str] = (),
             read_self: bool = True) -> TokenState:
        """A token with every group the project uses on the account and all its zones, less `leave_out`;
        `read_self`: it may read its own policies (API Tokens Read / Account API Tokens Read)."""
        gone = set(leave_out) | (set() if read_self else {"API Tokens Read", "Account API Tokens Read"})
        account = f"com.cloudflare.api.account.{account_id}"
        policies = [policy([g for g in ACCOUNT_GROUPS if g not in gone], {account: "*"}),
                    policy([g for g in ZONE_GROUPS if g not in gone],
                           {account: {"com.cloudflare.api.account.zone.*": "*"}})]
        if kind == "user" and read_self:
            user = "com.cloudflare.api.user.9a7806061c88ada191ed06f989cc3dac"
            policies.append(policy(USER_GROUPS, {user: "*"}))
        return cls(uuid.uuid4().hex, kind, policies)

    def granted(self, scope: str, account_id: str) -> set[str]:
        """Group names granted on `scope` ("account", "user" or a zone id): allowed minus denied."""
        account_keys = (f"com.cloudflare.api.account.{account_id}", "com.cloudflare.api.account.*")
        zone_keys = (f"com.cloudflare.api.account.zone.{scope}", "com.cloudflare.api.account.zone.*")
        allowed: set[str] = set()
        denied: set[str] = set()
        for p in self.policies:
            resources = p["resources"]
            if scope == "user":
                covered = any(k.startswith("com.cloudflare.api.user.") and v == "*" for k, v in resources.items())
                kinds: tuple[str, ...] = USER_GROUPS
            elif scope == "account":
                covered = any(resources.get(k) == "*" for k in account_keys)
                kinds = ACCOUNT_GROUPS
            else:
                covered = any(resources.get(k) == "*" for k in zone_keys) or any(
                    isinstance(resources.get(k), dict) and any(resources[k].get(z) == "*" for z in zone_keys)
                    for k in account_keys)
                kinds = ZONE_GROUPS
            # "a permission group in a policy will only apply to the resource type it is scoped for"
            names = {g["name"] for g in p["permission_groups"] if g["name"] in kinds}
            if covered:
                (denied if p["effect"] == "deny" else allowed).update(names)
        return allowed - denied


# Reads the double checks a token's permissions for: (method, path pattern, whether group 1 is a zone
# id, the groups any one of which the API accepts). Sources: the API reference's "Accepted
# Permissions (at least one required)" (List D1 Databases; List Turnstile Widgets; List Health
# Checks) and pulumi-cloudflare 6.23.1's per-resource lists (get_zone.py, custom_hostname.py,
# workers_deployment.py, r2_bucket.py). The http_ratelimit entry point's read: "Zone WAF" is the
# zone permission for the WAF, whose phase http_ratelimit is (waf/reference/phases.mdx). Routes not
# listed here are not permission-checked: add a row, with its source, when a test needs one.
ZONE_READ = ("Zone Read", "DNS Read", "DNS Write", "Workers Routes Read", "Workers Routes Write",
             "SSL and Certificates Read", "SSL and Certificates Write", "Zone WAF Read", "Zone WAF Write")
READ_PERMISSIONS: tuple[tuple[str, str, bool, tuple[str, ...]], ...] = (
    ("GET", r"/accounts/[^/]+/d1/database", False, ("D1 Read", "D1 Write")),
    ("GET", r"/accounts/[^/]+/r2/buckets/[^/]+", False, ("Workers R2 Storage Read", "Workers R2 Storage Write")),
    ("GET", r"/accounts/[^/]+/challenges/widgets(?:/[^/]+)?", False,
     ("Turnstile Sites Read", "Turnstile Sites Write", "Account Settings Read", "Account Settings Write")),
    ("GET", r"/accounts/[^/]+/workers/scripts/[^/]+/(?:deployments|versions)", False,
     ("Workers Scripts Read", "Workers Scripts Write")),
    ("GET", r"/zones/([^/]+)", True, ZONE_READ),
    ("GET", r"/zones/([^/]+)/rulesets/phases/http_ratelimit/entrypoint", True, ("Zone WAF Read", "Zone WAF Write")),
    ("GET", r"/zones/([^/]+)/custom_hostnames(?:/quota)?", True,
     ("SSL and Certificates Read", "SSL and Certificates Write")),
)


class Tokens(Service):
    tokens: dict[str, TokenState]  # by value

    def _init_tokens(self, default: str) -> None:
        # `default` is a user token granted every permission group the project uses, on the
        # account and all its zones.
        self.tokens = {default: TokenState.full(self.account_id)}

    def add_token(self, value: str, token: TokenState) -> TokenState:
        self.tokens[value] = token
        return token

    def token_of(self, authorization: str | None) -> TokenState | None:
        """The token a request carries; None for an unknown one (401/403 on every route)."""
        value = (authorization or "").removeprefix("Bearer ")
        return self.tokens.get(value) if authorization and authorization.startswith("Bearer ") else None

    def permitted(self, token: TokenState, method: str, path: str) -> bool:
        """Whether `token` may make this request (`path` below /client/v4): token routes need an active
        token only for verify; the reads of READ_PERMISSIONS need one of their groups on their account or zone."""
        if path in ("/user/tokens/verify", f"/accounts/{self.account_id}/tokens/verify"):
            return True  # verify answers for any token, with its status
        if token.status != "active":
            return False
        for wanted, pattern, zoned, accepted in READ_PERMISSIONS:
            match = re.fullmatch(pattern, path)
            if match and method == wanted:
                scope = match.group(1) if zoned else "account"
                return bool(set(accepted) & token.granted(scope, self.account_id))
        return True

    # --- routes ---------------------------------------------------------------------------------
    #
    # A token asks about itself only. Verify answers a token of the other kind as an invalid token
    # (the API's exact answer to an account owned token on /user/tokens/verify is not documented:
    # callers must try the other endpoint, not read the code). Reading a token's details needs API
    # Tokens Read (user) or Account API Tokens Read (account) in its own policies.

    def _caller(self, req: Request, user: bool) -> TokenState | Response:
        token = self.token_of(req.authorization)
        assert token is not None  # the server refused unknown tokens before routing
        if (token.kind == "user") != user:
            return 401, error(1000, "Invalid API Token")
        return token

    def _verify(self, req: Request, user: bool) -> Response:
        token = self._caller(req, user)
        if isinstance(token, tuple):
            return token
        return 200, ok({"id": token.token_id, "status": token.status,
                        **({"expires_on": token.expires_on} if token.expires_on else {})})

    def _details(self, req: Request, user: bool) -> Response:
        token = self._caller(req, user)
        if isinstance(token, tuple):
            return token
        if req.params["token"] != token.token_id:
            return 404, error(7003, "Could not route to this token")
        token.issued_on = token.issued_on or self.clock.stamp()
        needed = (("API Tokens Read", "API Tokens Write") if user else ("Account API Tokens Read",))
        if not set(needed) & token.granted("user" if user else "account", self.account_id):
            return 403, error(9109, "Unauthorized to access requested resource")
        return 200, ok({"id": token.token_id, "name": "deploy", "status": token.status,
                        "issued_on": token.issued_on, "modified_on": token.issued_on, "policies": token.policies})

    def verify_user_token(self, req: Request) -> Response:
        return self._verify(req, user=True)

    def verify_account_token(self, req: Request) -> Response:
        return self._verify(req, user=False)

    def user_token(self, req: Request) -> Response:
        return self._details(req, user=True)

    def account_token(self, req: Request) -> Response:
        return self._details(req, user=False)


# Token answers were never checked against the OpenAPI subset (checked=False keeps that).
ROUTES = (
    Route("GET", "/user/tokens/verify", Tokens.verify_user_token, checked=False),
    Route("GET", "/user/tokens/{token}", Tokens.user_token, checked=False),
    Route("GET", "/accounts/{account}/tokens/verify", Tokens.verify_account_token, checked=False),
    Route("GET", "/accounts/{account}/tokens/{token}", Tokens.account_token, checked=False),
)
