"""The Cloudflare API token permissions each command needs, for the error a missing token gives.

Names as the dashboard's token form spells them (docs/deploying.md "A real `pulumi preview` / `pulumi up`",
step 3, lists them for the whole stack; `bookingctl doctor` checks a token against that list with
the API's own spellings, "Write" for "Edit"). What each command calls: `ops/` (D1 through its
query and export API, Workers versions and deployments, R2 objects, GraphQL and Analytics Engine
SQL, custom hostnames, Turnstile widgets).
"""

from __future__ import annotations

D1 = "D1 Edit"
SCRIPTS = "Workers Scripts Edit"
R2 = "Workers R2 Storage Edit"
ANALYTICS = "Account Analytics Read"
SAAS = ("on the account: D1 Edit and Turnstile Sites Edit; on the SaaS zone: SSL and Certificates Edit and "
        "Zone Read")

# Command path (the words after `bookingctl`) -> the permissions it needs, as one phrase.
NEEDS: dict[tuple[str, ...], str] = {
    ("migrate", "rehearse"): f"{R2} (with --r2; on the backups in the folder no token is needed)",
    ("migrate",): D1,
    ("backup", "create"): f"{D1} (and {R2} with --upload)",
    ("backup", "list"): R2,
    ("backup", "restore"): D1,
    ("restore", "tenant"): D1,
    ("verify",): D1,
    ("rollback",): f"{SCRIPTS} and {D1} (the verification after it; not with --no-verify)",
    ("watch",): f"{SCRIPTS} and {D1}",
    ("release", "status"): f"{SCRIPTS} and {R2} (the quarantine records)",
    ("release", "canary"): f"{SCRIPTS}, {ANALYTICS} (the canary's per-version traffic) and {R2} (quarantine)",
    ("release", "abort"): SCRIPTS,
    ("release", "quarantine"): R2,
    ("monitor",): D1,
    ("report",): D1,
    ("audit",): D1,
    ("users",): D1,
    ("apikeys",): D1,
    ("db",): D1,
    ("tenants", "list"): D1,
    ("tenants",): SAAS,
    ("doctor",): ("the permissions docs/deploying.md \"A real `pulumi preview` / `pulumi up`\" step 3 lists "
                  "(and API Tokens Read, so that doctor can read the token's own policies)"),
}
EVERYTHING = "the permissions docs/deploying.md \"A real `pulumi preview` / `pulumi up`\" step 3 lists"


def needed(command: tuple[str, ...]) -> str:
    """What a token needs for `command` (its longest listed prefix), or the whole stack's list."""
    for length in range(len(command), 0, -1):
        if command[:length] in NEEDS:
            return NEEDS[command[:length]]
    return EVERYTHING
