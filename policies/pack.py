"""The policy pack: its policies and the configuration the engine starts them with.

Importing this module is safe (tests do); only `serve()` constructs `PolicyPack`, which starts the
Analyzer gRPC server and blocks forever.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import EnforcementLevel, PolicyPack

from booking_shared.retention import RETENTION_DAYS
from policies.checklist import pre_deploy_checklist
from policies.common import Catalog, PackPolicy, stack_environment
from policies.completeness import production_completeness
from policies.credentials import secret_bindings
from policies.isolation import environment_isolation, hostname_isolation
from policies.protection import data_protection
from policies.retention import backup_retention
from policies.routing import dns_proxied, worker_routes
from policies.suppression_review import review_policies
from policies.worker_hygiene import compatibility_date, observability

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
    production_completeness,
    pre_deploy_checklist,
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
    }


def serve() -> None:
    """Build the pack for the stack under analysis and serve the Analyzer protocol (never returns)."""
    PolicyPack(
        name=PACK_NAME,
        policies=[p.policy for p in POLICIES],
        enforcement_level=EnforcementLevel.MANDATORY,
        initial_config=initial_config(stack_environment()),
        description="The appointment-booking admin guide's pre-deploy checklist and platform rules.",
    )
