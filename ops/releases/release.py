"""Rolling a release back and checking what serves afterwards: one composition for the CLI and the hooks.

`bookingctl rollback`, the post-deploy watch and the `booking-after-traffic` hook all do the same
thing when a version is bad: deploy an earlier version at 100 %, then verify the site with that
version answering. `bookingctl release abort` and the `booking-deployment-failed` hook both end a
split the same way (`split_of`, `abort_split`). The database is never touched: rolling bookings
back would lose them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from booking_shared.deploy import deployment_urn, is_pulumi_message
from ops.observation.verify import VerifyResult, verify
from ops.releases import quarantine
from ops.releases.canary import in_progress, last_verdict, stable_of_split
from ops.releases.rollback import RollbackResult, deploy_versions, deployments, rollback, shares, sole_version
from ops.targets import Bucket, WorkerScript, remote_database

if TYPE_CHECKING:
    from cloudflare import Cloudflare
    from cloudflare.types.workers.scripts.deployment import Deployment

    from stackconfig.model import StackConfig


@dataclass(frozen=True)
class Site:
    """Where a stack's Worker serves and what it reads: enough to roll back and verify."""

    account_id: str
    worker_name: str
    database_name: str
    url: str

    @classmethod
    def of(cls, cfg: StackConfig) -> Site:
        """The stack's Worker, database and site URL."""
        return cls(cfg.account_id, cfg.worker_name, cfg.database_name, cfg.site_url)


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
    result = rollback(WorkerScript(client, site.account_id, site.worker_name), to=to, reason=reason, force=force)
    log(f"rolled {site.worker_name} back from {result.from_version} to {result.to_version} "
        f"(deployment {result.deployment_id})")
    report = RollbackReport(result)
    if db is not None:
        report.verification = verify(site.url, db, deadline=verify_deadline, expected_version=result.to_version,
                                     log=log)
    return report


@dataclass(frozen=True)
class Split:
    """A deployment that splits traffic between versions (a canary in progress, or one left behind)."""

    deployment_id: str
    serving: dict[str, float]  # version -> percentage
    stable: str  # the version that served all traffic before the split began: what an abort goes back to


def split_of(history: list[Deployment]) -> Split | None:
    """The newest deployment (of a newest-first `history`) when it splits traffic; None when one version or
    nothing serves."""
    serving = shares(history[0]) if history else {}
    if len(serving) < 2:
        return None
    return Split(history[0].id, serving, stable_of_split(history))


def abort_split(worker: WorkerScript, split: Split, message: str) -> str:
    """Send 100 % back to the split's stable version (`bookingctl release abort`); the new deployment's id."""
    return deploy_versions(worker, [(split.stable, 100.0)], message, newest=split.deployment_id)


@dataclass
class ReleaseStatus:
    """What serves a stack's Worker now, set against what the stack's Pulumi state declares."""

    stack: str
    script: str
    serving: dict[str, float]  # version -> percentage, newest deployment
    deployment_id: str | None
    canary_in_progress: bool
    declared_version: str | None  # the version the state's deployment sends 100 % to
    declared_from: str  # where that came from: "--declared-version" or the deployment list
    last_verdict: str | None
    quarantine: list[dict[str, Any]]
    converge: str | None = None  # the command that makes state and reality agree, when they do not
    # The split being judged now, as its deployment names it ("canary of V at 10 %, in progress"):
    # a split without a canary's annotation (made by hand) is in progress with no name.
    canary: str | None = None

    @property
    def converged(self) -> bool | None:
        """True when the declared version serves all traffic; None when the declared version is unknown."""
        if self.declared_version is None:
            return None
        return self.serving == {self.declared_version: 100.0}

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "script": self.script,
                "serving": [{"versionId": v, "percentage": p} for v, p in self.serving.items()],
                "deploymentId": self.deployment_id, "canaryInProgress": self.canary_in_progress,
                "declaredVersion": self.declared_version, "declaredFrom": self.declared_from,
                "converged": self.converged, "converge": self.converge, "lastVerdict": self.last_verdict,
                "canary": self.canary, "quarantine": self.quarantine}


def release_status(client: Cloudflare, site: Site, *, stack: str, project: str, bucket: str | None,
                   declared_version: str | None = None) -> ReleaseStatus:
    """Versions serving now, a canary in progress, the last verdict, the quarantine list, and drift.

    The declared version is the one the deployment Pulumi created sends traffic to (its annotation
    says "deployed by pulumi up"), unless the caller knows it better (`pulumi stack output
    workerVersionId`). Drift is what `pulumi refresh` cannot see: the provider reads the state's
    deployment by id, and a rollback leaves that deployment in place.
    """
    history = deployments(WorkerScript(client, site.account_id, site.worker_name))
    serving = shares(history[0]) if history else {}
    messages = [(d, (d.annotations.workers_message if d.annotations else None) or "") for d in history]
    declared_from = "--declared-version"
    if declared_version is None:
        declared_from = "the deployment list (no deployment by pulumi up among the latest 10)"
        for deployment, message in messages:
            if is_pulumi_message(message):
                declared_version = sole_version(deployment)
                declared_from = f"deployment {deployment.id} (created by pulumi up)"
                break
    verdict = last_verdict([(sole_version(d), m) for d, m in messages])
    records = quarantine.records(Bucket(client, site.account_id, bucket)) if bucket else []
    status = ReleaseStatus(stack, site.worker_name, serving, history[0].id if history else None,
                           canary_in_progress=len(serving) > 1, declared_version=declared_version,
                           declared_from=declared_from, last_verdict=verdict,
                           quarantine=[r.to_dict() for r in records],
                           canary=in_progress(messages[0][1]) if messages and len(serving) > 1 else None)
    if status.converged is False and status.canary_in_progress:
        status.converge = (f"a canary is in progress: wait for its verdict, or send everything back to the stable "
                           f"version with `bookingctl release abort --stack {stack}`")
    elif status.converged is False:
        failed = {r.version_id for r in records if r.active}
        urn = deployment_urn(project, stack)
        if declared_version in failed:
            status.converge = (f"the state declares version {declared_version}, which failed and is quarantined: "
                               f"fix the code (or revert it to what serves) and run `pulumi up --stack {stack}`; the "
                               "new version goes through the canary. (`pulumi up --replace` would only send the "
                               "quarantined version again, which the hook refuses.)")
        else:
            status.converge = (f"pulumi up --stack {stack} --replace '{urn}' (sends the state's version "
                               f"{declared_version} again, through the canary)")
    return status
