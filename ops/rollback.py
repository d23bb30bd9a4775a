"""Roll the API Worker back to an earlier version with a new deployment. Never touches the database.

Any of a Worker's last 100 versions can take traffic again: a rollback is a new deployment that
sends 100 % to that version (the guide's note that a specific version needs the dashboard is
outdated). Cloudflare refuses with error 10220 when secrets changed since that version; then the
deployment is repeated with `force`, and the result says so. Rolling a booking database back would
lose bookings, so a rollback is code only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudflare import Cloudflare
    from cloudflare.types.workers.scripts.deployment import Deployment

SECRETS_CHANGED = 10220


class RollbackError(Exception):
    """No rollback target, or Cloudflare refused the deployment; the message says which."""


@dataclass(frozen=True)
class RollbackResult:
    script: str
    from_version: str | None
    to_version: str
    deployment_id: str
    forced: bool


def deployments(client: Cloudflare, account_id: str, script: str) -> list[Deployment]:
    """The script's deployments, newest first.

    Read from the raw response and validated with the SDK's own model: the SDK types this list as
    `{"result": {"items": ...}}` pagination, but the API answers `{"result": {"deployments": ...}}`,
    so iterating the page would silently yield nothing.
    """
    from cloudflare.types.workers.scripts.deployment_list_response import DeploymentListResponse

    raw = client.workers.scripts.deployments.with_raw_response.list(script, account_id=account_id)
    body = raw.http_response.json()
    listed = DeploymentListResponse.model_validate(body.get("result") or {"deployments": []})
    return sorted(listed.deployments, key=lambda d: d.created_on, reverse=True)


def recent_versions(client: Cloudflare, account_id: str, script: str) -> list[str]:
    """Ids of the script's recent versions (Cloudflare keeps the last 100), newest first."""
    return [v.id for v in client.workers.scripts.versions.list(script, account_id=account_id) if v.id]


def _sole_version(deployment: Deployment) -> str | None:
    full = [v.version_id for v in deployment.versions if v.percentage >= 100]
    return full[0] if full else None


def choose_target(client: Cloudflare, account_id: str, script: str, to: str | None) -> tuple[str | None, str]:
    """(version serving now, version to roll back to)."""
    history = deployments(client, account_id, script)
    current = _sole_version(history[0]) if history else None
    if to is not None:
        known = recent_versions(client, account_id, script)
        if to not in known:
            shown = ", ".join(known[:5]) or "none"
            raise RollbackError(f"{script} has no version {to} among its last {len(known)} (newest: {shown})")
        return current, to
    for deployment in history[1:]:
        version = _sole_version(deployment)
        if version is not None and version != current:
            return current, version
    raise RollbackError(f"{script} has no earlier fully deployed version to roll back to; "
                        "pass --to VERSION_ID (bookingctl lists recent versions in this message when it is unknown)")


def rollback(client: Cloudflare, account_id: str, script: str, to: str | None = None,
             reason: str = "rollback") -> RollbackResult:
    """Deploy `to` (default: the previous 100 % version) at 100 %; force when secrets changed."""
    # Imported here: the Pulumi program imports this module (for its hooks) on every plan, and the
    # SDK costs 0.3 s to import; only an actual rollback needs it.
    import cloudflare

    current, target = choose_target(client, account_id, script, to)
    if target == current:
        raise RollbackError(f"{script} already serves version {target}")
    message = f"bookingctl rollback from {current} to {target}: {reason}"[:1000]

    def deploy(force: bool) -> Deployment:
        return client.workers.scripts.deployments.create(
            script, account_id=account_id, strategy="percentage",
            versions=[{"version_id": target, "percentage": 100}], force=force,
            annotations={"workers_message": message})

    forced = False
    try:
        created = deploy(False)
    except cloudflare.BadRequestError as exc:
        if SECRETS_CHANGED not in _error_codes(exc):
            raise RollbackError(f"Cloudflare refused the rollback of {script} to {target}: {exc}") from exc
        # The secrets changed since that version; the old code runs with today's secrets.
        created = deploy(True)
        forced = True
    except cloudflare.APIError as exc:
        raise RollbackError(f"Cloudflare refused the rollback of {script} to {target}: {exc}") from exc
    return RollbackResult(script, current, target, created.id, forced)


def _error_codes(exc: Any) -> set[int]:
    body = exc.body if isinstance(exc.body, dict) else {}
    return {int(e.get("code", 0)) for e in body.get("errors") or [] if isinstance(e, dict)}
