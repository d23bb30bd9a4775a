"""Roll the API Worker back to an earlier version with a new deployment. Never touches the database.

Any of a Worker's last 100 versions can take traffic again: a rollback is a new deployment that
sends 100 % to that version (the guide's note that a specific version needs the dashboard is
outdated). Rolling a booking database back would lose bookings, so a rollback is code only.

Secrets: a version is an immutable snapshot of code *and* bindings, secret values included.
Cloudflare refuses (error 10220) to deploy a version whose secrets have changed since, because
deploying it brings back the values it was uploaded with: possibly a key that has since been
rotated or revoked. So a rollback never forces by itself; `force=True` (`bookingctl rollback
--force`) is the operator's explicit decision.

The deployment is created with the SDK's automatic retries off: a POST whose answer is lost may
have been applied, and a blind retry would deploy twice. After a transport error the deployment
list is read back to decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from booking_shared.errors import OperationFailed
from ops.targets import UncertainWriteError, WorkerScript, writer

if TYPE_CHECKING:
    from cloudflare.types.workers.scripts.deployment import Deployment

SECRETS_CHANGED = 10220
# What forcing past error 10220 really does, for every message that offers it.
FORCE_MEANS = ("forcing deploys that version with the secret values it was uploaded with, not today's, so a "
               "rotated or revoked key comes back")


class RollbackError(OperationFailed):
    """No rollback target, or Cloudflare refused the deployment; the message says which."""


class SecretsChangedError(RollbackError):
    """Cloudflare refused with 10220: the target version's secrets have changed since it was uploaded."""


@dataclass(frozen=True)
class RollbackResult:
    script: str
    from_version: str | None
    to_version: str
    deployment_id: str
    forced: bool


def deployments(worker: WorkerScript) -> list[Deployment]:
    """The script's latest deployments (Cloudflare lists the last 10), newest first (`WorkerScript.deployments`)."""
    return worker.deployments()


def recent_versions(worker: WorkerScript) -> list[str]:
    """Ids of the script's recent versions (Cloudflare keeps the last 100), newest first."""
    listed = worker.client.workers.scripts.versions.list(worker.name, account_id=worker.account_id)
    return [v.id for v in listed if v.id]


def sole_version(deployment: Deployment) -> str | None:
    """The version a deployment sends 100 % of traffic to, or None for a split."""
    full = [v.version_id for v in deployment.versions if v.percentage >= 100]
    return full[0] if full else None


def choose_target(worker: WorkerScript, to: str | None,
                  history: list[Deployment] | None = None) -> tuple[str | None, str]:
    """(version serving now, version to roll back to), from `history` (default: read now)."""
    history = deployments(worker) if history is None else history
    current = sole_version(history[0]) if history else None
    if to is not None:
        known = recent_versions(worker)
        if to not in known:
            shown = ", ".join(known[:5]) or "none"
            raise RollbackError(f"{worker.name} has no version {to} among its last {len(known)} (newest: {shown})")
        return current, to
    for deployment in history[1:]:
        version = sole_version(deployment)
        if version is not None and version != current:
            return current, version
    raise RollbackError(f"{worker.name} has no earlier fully deployed version among its latest deployments; "
                        "pass --to VERSION_ID (one of its last 100 versions)")


def served_before(history: list[Deployment], deployment_id: str | None = None) -> tuple[str | None, str | None]:
    """(version of `deployment_id`, or of the newest deployment; version the deployment before it served).

    What an automatic rollback may go back to: exactly the code that served before this deployment.
    When that is the same version (a migration-only change, a redeploy), there is nothing to go back
    to: an older version never ran against the new schema. None for a split deployment.
    """
    index = next((i for i, d in enumerate(history) if d.id == deployment_id), 0) if deployment_id else 0
    current = sole_version(history[index]) if index < len(history) else None
    before = sole_version(history[index + 1]) if index + 1 < len(history) else None
    return current, before


def rollback(worker: WorkerScript, to: str | None = None,
             reason: str = "rollback", force: bool = False) -> RollbackResult:
    """Deploy `to` (default: the previous 100 % version) at 100 %.

    Raises SecretsChangedError when the version's secrets changed since, unless `force`.
    """
    history = deployments(worker)
    current, target = choose_target(worker, to, history)
    if target == current:
        raise RollbackError(f"{worker.name} already serves version {target}")
    message = f"bookingctl rollback from {current} to {target}: {reason}"
    newest = history[0].id if history else None
    try:
        created = _deploy(worker, target, message, force=False, newest=newest)
        forced = False
    except SecretsChangedError:
        if not force:
            raise
        created = _deploy(worker, target, message, force=True, newest=newest)
        forced = True
    return RollbackResult(worker.name, current, target, created, forced)


# The API truncates `workers/message` to 1000 bytes (maxLength 1000; the Workers API reference,
# "Create Deployment", annotations): cut it ourselves, on a character boundary, so the verdict
# written is the verdict read back.
MESSAGE_BYTES = 1000


def fitted(message: str) -> str:
    """`message` cut to MESSAGE_BYTES of UTF-8, never inside a character."""
    return message.encode()[:MESSAGE_BYTES].decode(errors="ignore")


def _deploy(worker: WorkerScript, version: str, message: str, *, force: bool,
            newest: str | None) -> str:
    """Create a 100 % deployment of `version`; returns its id (see deploy_versions)."""
    return deploy_versions(worker, [(version, 100.0)], message, force=force, newest=newest)


def deploy_versions(worker: WorkerScript, versions: list[tuple[str, float]],
                    message: str, *, force: bool = False, newest: str | None = None) -> str:
    """Create a deployment sending each (version, percentage) its share; returns its id. Never sent twice blindly.

    `newest`: the id of the newest deployment before this one; after a lost answer, a newer one with
    exactly these versions and shares means the request was applied.
    """
    import cloudflare

    shown = " + ".join(f"{v} at {p:g} %" for v, p in versions)
    target = versions[0][0] if len(versions) == 1 else shown

    def send() -> str:
        return writer(worker.client).workers.scripts.deployments.create(
            worker.name, account_id=worker.account_id, strategy="percentage",
            versions=[{"version_id": v, "percentage": p} for v, p in versions], force=force,
            annotations={"workers_message": fitted(message)}).id

    try:
        try:
            return send()
        except (cloudflare.APIConnectionError, cloudflare.InternalServerError) as lost:  # timeouts included
            # The request may have been applied before its answer was lost (or before the 5xx): look
            # before sending again.
            try:
                landed = _landed(worker, versions, newest)
            except cloudflare.APIError as unread:
                raise UncertainWriteError(
                    f"deploying {worker.name} {shown} got no clear answer ({lost}), and reading its deployment "
                    f"list back failed too ({unread}): it may or may not have been applied. Check which version "
                    "serves (`curl https://<domain>/api/health` reports it, or the dashboard) before trying "
                    "again") from unread
            return landed if landed is not None else send()
    except cloudflare.APIStatusError as exc:
        if SECRETS_CHANGED in error_codes(exc):
            raise SecretsChangedError(
                f"Cloudflare refused to deploy {worker.name} {shown} (error {SECRETS_CHANGED}): a version's secrets "
                f"have changed since it was uploaded; {FORCE_MEANS}. If that is what you want, run "
                f"`bookingctl rollback --stack STACK --to {versions[0][0]} --force`") from exc
        refused = (f"Cloudflare refused the rollback of {worker.name} to {target}" if len(versions) == 1
                   else f"Cloudflare refused to deploy {worker.name} {target}")
        raise RollbackError(f"{refused}: {exc}") from exc
    except cloudflare.APIConnectionError as exc:
        raise RollbackError(f"deploying {worker.name} {shown} failed twice without an answer ({exc}); the "
                            "deployment list showed the first attempt was not applied") from exc


def _landed(worker: WorkerScript, versions: list[tuple[str, float]],
            before: str | None) -> str | None:
    """The id of a deployment with exactly `versions`, newer than deployment `before` and serving now, if any."""
    history = deployments(worker)
    if history and history[0].id != before and shares(history[0]) == {v: float(p) for v, p in versions}:
        return history[0].id
    return None


def shares(deployment: Deployment) -> dict[str, float]:
    """Version id -> percentage of traffic, for one deployment."""
    return {v.version_id: float(v.percentage) for v in deployment.versions}


def error_codes(exc: Any) -> set[int]:
    """The Cloudflare error codes in an SDK error's body (whatever its HTTP status)."""
    body = exc.body if isinstance(getattr(exc, "body", None), dict) else {}
    codes = set()
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            try:
                codes.add(int(error.get("code", 0)))
            except (TypeError, ValueError):
                continue
    return codes
