"""The policy pack: its policies and the configuration the engine starts them with.

Importing this module is safe (tests do); only `serve()` starts the Analyzer gRPC server, which
blocks forever.

The pack refuses a policy config that disables a locked policy or makes it advisory (the catalog's
`locked`: mandatory and non-suppressible, e.g. data-protection). Refused, not silently kept
mandatory: under `pulumi preview/up --policy-pack-config` the pack is the only place that can
enforce this, and the engine shows a failed `Configure` to the user ("configuring policy pack
...") and stops, whereas a level the pack quietly ignored would be visible nowhere; and a config
file that says "disabled" while the policy still blocks would mislead whoever reads it. The
offline gate runs the pack as the engine does, so it refuses the same configs (exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
import pulumi_policy.policy
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel, PolicyPack

# The servicer `PolicyPack` builds internally (pulumi-policy 1.x, pinned <2 in pyproject.toml).
# Subclassing it is the one way to see the engine's `Configure` request; the integration tests
# start the real pack and prove the refusal, so an incompatible release fails them, not silently.
from pulumi_policy.policy import _PolicyAnalyzerServicer

from booking_shared.retention import RETENTION_DAYS
from policies.affinity import canary_version_affinity
from policies.checklist import pre_deploy_checklist
from policies.columns import text_columns_classified
from policies.common import Catalog, PackPolicy, stack_environment
from policies.completeness import production_completeness
from policies.credentials import secret_bindings
from policies.edge import (
    payment_webhook_not_challenged,
    public_write_endpoints_rate_limited,
    rate_limit_rules_fit_zone_plan,
    turnstile_covers_all_hostnames,
    turnstile_widgets_within_plan_limits,
)
from policies.isolation import environment_isolation, hostname_isolation
from policies.migrations import migrations_rollback_safe
from policies.preview import preview_isolated, preview_lifetime
from policies.protection import data_protection
from policies.rehearsal import migrations_rehearsed
from policies.retention import backup_retention
from policies.routing import dns_proxied, worker_routes
from policies.suppression_review import review_policies
from policies.worker_hygiene import compatibility_date, observability, request_analytics

PACK_NAME = "appointmentbooking-policies"

_AREA_POLICIES: list[PackPolicy] = [
    environment_isolation,
    hostname_isolation,
    data_protection,
    backup_retention,
    secret_bindings,
    worker_routes,
    dns_proxied,
    compatibility_date,
    observability,
    # The canary's per-version HTTP numbers (ops/observation/analytics.py) exist only if the Worker writes them.
    request_analytics,
    production_completeness,
    pre_deploy_checklist,
    # Rollback-safe migrations (issue 15): `migrate check` evidence, as the checklist's is passed.
    migrations_rollback_safe,
    # The same migrations rehearsed on a backup's rows (issue 25): `migrate rehearse` evidence.
    migrations_rehearsed,
    # A preview's scrubbed data (issue 26): every text column classified.
    text_columns_classified,
    preview_lifetime,
    preview_isolated,
    # Edge protection (policies/edge.py).
    public_write_endpoints_rate_limited,
    turnstile_covers_all_hostnames,
    turnstile_widgets_within_plan_limits,
    payment_webhook_not_challenged,
    rate_limit_rules_fit_zone_plan,
    # One booking flow, one Worker version during a canary (policies/affinity.py).
    canary_version_affinity,
]
# Every policy of the pack, in the order reports list them; the one list that says which exist.
POLICIES: list[PackPolicy] = [*_AREA_POLICIES, *review_policies(_AREA_POLICIES)]
CATALOG = Catalog.of(POLICIES)


def initial_config(environment: str) -> dict[str, Any]:
    """Config the engine merges under any --policy-pack-config the user passes.

    Every entry states its enforcement level: the engine reads an entry without one as the proto
    default, ADVISORY, and that would silently downgrade the policy it configures.
    """
    return {
        # The guide's retention, as policy config: a change is a reviewed config change (or a
        # --policy-pack-config override), not an edit of the policy.
        "backup-retention": {"enforcementLevel": EnforcementLevel.MANDATORY, "retentionDays": dict(RETENTION_DAYS)},
        # The checklist blocks production deploys; on staging it only warns.
        "pre-deploy-checklist": (EnforcementLevel.MANDATORY if environment == "production"
                                 else EnforcementLevel.ADVISORY),
        # Unsafe migrations block production deploys; on staging they only warn (the deploy hook
        # still refuses them there unless the stack file approves them).
        "migrations-rollback-safe": (EnforcementLevel.MANDATORY if environment == "production"
                                     else EnforcementLevel.ADVISORY),
        "migrations-rehearsed": (EnforcementLevel.MANDATORY if environment == "production"
                                 else EnforcementLevel.ADVISORY),
        # Abuse of production's endpoints costs real slots and messages; staging only warns.
        "public-write-endpoints-rate-limited": (EnforcementLevel.MANDATORY if environment == "production"
                                                else EnforcementLevel.ADVISORY),
    }


_LOWER: dict[int, str] = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.DISABLED: "disabled"}


# Locked in production only: advisory on staging by the initial config, but in production the stack
# file's reviewed approval is the one way past an unsafe migration (docs/releases.md: "Rollback-safe
# migrations"), so a policy config may not disable the check or make it advisory there.
LOCKED_IN_PRODUCTION = frozenset({migrations_rollback_safe.name, migrations_rehearsed.name})


def lowered_locked(levels: Mapping[str, int], environment: str | None = None) -> list[tuple[str, str]]:
    """(policy, level) for each locked policy a reconciled config (policy -> proto level) lowers."""
    production = (environment or stack_environment()) == "production"
    locked = CATALOG.locked | (LOCKED_IN_PRODUCTION if production else frozenset())
    return sorted((name, _LOWER[level]) for name, level in levels.items() if name in locked and level in _LOWER)


def refusal(lowered: list[tuple[str, str]]) -> str:
    listed = ", ".join(f"{name} to {level}" for name, level in lowered)
    return (f"the policy config sets {listed}; {', '.join(name for name, _ in lowered)} cannot be disabled or made "
            "advisory (they guard production data, credentials, environment isolation, the review of "
            "suppressions and, in production, rollback-safe and rehearsed migrations, whose one way past is the "
            "stack file's approval). Remove those entries, or name them \"mandatory\" after an \"all\" level that "
            "would include them")


class _LockedLevelsServicer(_PolicyAnalyzerServicer):
    """The pack's Analyzer service, refusing a `Configure` that lowers a locked policy."""

    def Configure(self, request: Any, context: Any) -> Any:
        lowered = lowered_locked({name: request.policyConfig[name].enforcementLevel for name in request.policyConfig})
        if lowered:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, refusal(lowered))
        return super().Configure(request, context)  # type: ignore[no-untyped-call]


def serve() -> None:
    """Build the pack for the stack under analysis and serve the Analyzer protocol (never returns).

    `PolicyPack(...)` itself builds and serves it (its argument checks, gRPC options and port
    handshake stay pulumi-policy's); it instantiates the module's servicer class by name, which
    is swapped for the one that refuses to lower a locked policy.
    """
    pulumi_policy.policy._PolicyAnalyzerServicer = _LockedLevelsServicer  # type: ignore[misc]
    PolicyPack(
        name=PACK_NAME,
        policies=[p.policy for p in POLICIES],
        enforcement_level=EnforcementLevel.MANDATORY,
        initial_config=initial_config(stack_environment()),
        description="The appointment-booking admin guide's pre-deploy checklist and platform rules.",
    )
