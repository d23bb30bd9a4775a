"""Rolling a release back and checking what serves afterwards: one composition for the CLI and the hooks.

`bookingctl rollback`, the post-deploy watch and the `booking-after-traffic` hook all do the same
thing when a version is bad: deploy an earlier version at 100 %, then verify the site with that
version answering. The database is never touched: rolling bookings back would lose them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ops.rollback import RollbackResult, rollback
from ops.targets import remote_database
from ops.verify import VerifyResult, verify

if TYPE_CHECKING:
    from cloudflare import Cloudflare


@dataclass(frozen=True)
class Site:
    """Where a stack's Worker serves and what it reads: enough to roll back and verify."""

    account_id: str
    worker_name: str
    database_name: str
    url: str


@dataclass
class RollbackReport:
    rollback: RollbackResult
    verification: VerifyResult | None = None

    @property
    def ok(self) -> bool:
        return self.verification is None or self.verification.ok

    def to_dict(self) -> dict[str, Any]:
        r = self.rollback
        report: dict[str, Any] = {"script": r.script, "from": r.from_version, "to": r.to_version,
                                  "deploymentId": r.deployment_id, "forced": r.forced}
        if self.verification is not None:
            report["verification"] = self.verification.to_dict()
        return report


def roll_back_and_verify(client: Cloudflare, site: Site, *, to: str | None = None, reason: str = "rollback",
                         force: bool = False, verify_after: bool = True, verify_deadline: float = 120.0,
                         log: Callable[[str], None] = lambda _: None) -> RollbackReport:
    """Deploy `to` (default: the version that served before) at 100 %, then verify it answers healthy.

    The database is looked up first: whatever can fail before the Worker changes does.
    """
    db = remote_database(site.account_id, site.database_name, client=client) if verify_after else None
    result = rollback(client, site.account_id, site.worker_name, to=to, reason=reason, force=force)
    log(f"rolled {site.worker_name} back from {result.from_version} to {result.to_version} "
        f"(deployment {result.deployment_id})")
    report = RollbackReport(result)
    if db is not None:
        report.verification = verify(site.url, db, deadline=verify_deadline, expected_version=result.to_version,
                                     log=log)
    return report
