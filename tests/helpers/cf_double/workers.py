"""Workers: a script's versions (paginated) and deployments (the latest 10, newest first; created by POST)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from booking_shared.naming import requests_dataset
from tests.helpers.cf_double.base import Service
from tests.helpers.cf_double.envelope import Refusal, Response, error, ok
from tests.helpers.cf_double.routes import Request, Route
from tests.helpers.worker_traffic import Traffic


@dataclass
class ScriptState:
    versions: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    # Versions uploaded before the last secret change: deploying them needs force (error 10220).
    stale_secret_versions: set[str] = field(default_factory=set)
    # The Worker's requests per minute over all versions, split by the deployment serving at the time.
    requests_per_minute: float = 100.0
    traffic: dict[str, Traffic] = field(default_factory=dict)
    # (from when, version -> percentage): every change of the serving split, oldest first.
    share_history: list[tuple[dt.datetime, dict[str, float]]] = field(default_factory=list)

    def shares(self) -> dict[str, float]:
        """Version -> percentage of the newest deployment (what serves now)."""
        if not self.deployments:
            return {}
        newest = max(self.deployments, key=lambda d: d["created_on"])
        return {v["version_id"]: float(v["percentage"]) for v in newest["versions"]}


class Workers(Service):
    scripts: dict[str, ScriptState]
    secrets_changed_status: int
    # Workers Analytics Engine (tests/helpers/analytics_engine.py): dataset -> the script whose Worker
    # writes it (add_script binds each script's requests dataset, as infra/worker.py does).
    analytics_engine_datasets: dict[str, str]

    def _init_workers(self) -> None:
        self.scripts = {}
        # The HTTP status of error 10220 is not documented (wrangler's tests use 400); tests vary it.
        self.secrets_changed_status = 400
        self.analytics_engine_datasets = {}

    def _new_version(self, script: ScriptState) -> str:
        number = max((v["number"] for v in script.versions), default=0) + 1
        version_id = str(uuid.uuid4())
        script.versions.append({"id": version_id, "number": number,
                                "metadata": {"created_on": self.clock.stamp(), "source": "terraform",
                                             "author_email": "ci@example.co.za"}})
        return version_id

    def add_version(self, name: str) -> str:
        """Upload one more version of script `name` (what `pulumi up` does before deploying); its id."""
        return self._new_version(self.scripts[name])

    def add_script(self, name: str, versions: int, *, stale_secrets_before: int | None = None) -> ScriptState:
        script = ScriptState()
        for number in range(1, versions + 1):
            version_id = self._new_version(script)
            if stale_secrets_before is not None and number < stale_secrets_before:
                script.stale_secret_versions.add(version_id)
            script.deployments.append(self._deployment([(version_id, 100.0)], "terraform"))
            script.share_history.append((self.clock.now(), {version_id: 100.0}))
        self.scripts[name] = script
        self.analytics_engine_datasets[requests_dataset(name)] = name
        return script

    def _deployment(self, versions: list[tuple[str, float]], source: str) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "created_on": self.clock.stamp(), "source": source,
                "strategy": "percentage", "versions": [{"version_id": v, "percentage": p} for v, p in versions],
                "annotations": {"workers/message": "deployed"}}

    def _script(self, req: Request) -> ScriptState:
        script = self.scripts.get(req.params["script"])
        if script is None:
            raise Refusal(404, error(10007, "script not found"))
        return script

    def list_versions(self, req: Request) -> Response:
        script = self._script(req)
        # Paginated like the API: the SDK asks for the next page until one is empty.
        everything = sorted(script.versions, key=lambda v: -v["number"])
        page, per_page = int(req.arg("page", "1")), int(req.arg("per_page", "20"))
        items = everything[(page - 1) * per_page: page * per_page]
        # No `result_info`: the document's worker-versions-list-versions answer has none.
        return 200, ok({"items": items})

    def list_deployments(self, req: Request) -> Response:
        script = self._script(req)
        # The API lists the latest deployments, newest (the one serving) first.
        newest_first = sorted(script.deployments, key=lambda d: d["created_on"], reverse=True)
        return 200, ok({"deployments": newest_first[:10]})

    def create_deployment(self, req: Request) -> Response:
        script = self._script(req)
        return self._deploy(script, req.json(), req.arg("force", "false") == "true")

    def _deploy(self, script: ScriptState, body: dict[str, Any], force: bool) -> Response:
        versions = body.get("versions") or []
        known = {v["id"] for v in script.versions}
        if not versions or sum(float(v.get("percentage", 0)) for v in versions) != 100:
            return 400, error(10021, "percentages must add up to 100")
        for v in versions:
            if v.get("version_id") not in known:
                return 404, error(10007, f"version {v.get('version_id')} not found")
            if v["version_id"] in script.stale_secret_versions and not force:
                return self.secrets_changed_status, error(
                    10220, "A secret has changed since this version was active. If you are sure this is ok, add a "
                           "?force=true query parameter to allow the rollback. The following secrets have changed: "
                           "PAYSTACK_SECRET_KEY")
        if len(versions) > 2:
            return 400, error(10021, "a deployment can consist of one or two versions")
        deployment = self._deployment([(v["version_id"], float(v["percentage"])) for v in versions], "api")
        message = (body.get("annotations") or {}).get("workers/message")
        if isinstance(message, str):  # "Truncated to 1000 bytes if longer" (see cf_openapi.AMENDMENTS)
            deployment["annotations"] = {"workers/message": message.encode()[:1000].decode(errors="ignore")}
        script.deployments.append(deployment)
        script.share_history.append((self.clock.now(), {v["version_id"]: float(v["percentage"]) for v in versions}))
        return 200, ok(deployment)


ROUTES = (
    Route("GET", "/accounts/{account}/workers/scripts/{script}/versions", Workers.list_versions),
    Route("GET", "/accounts/{account}/workers/scripts/{script}/deployments", Workers.list_deployments),
    Route("POST", "/accounts/{account}/workers/scripts/{script}/deployments", Workers.create_deployment),
)
