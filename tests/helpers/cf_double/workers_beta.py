"""Workers (the resource API behind pulumi-cloudflare 6.x's `Worker` and `WorkerVersion`).

`POST /accounts/{account}/workers/workers` creates a Worker, `GET` on the same path lists them (what
`bookingctl preview up` reads to find a Worker a lost create left), `DELETE .../workers/{worker_id}` deletes it,
`POST .../workers/{worker_id}/versions` uploads a version: what the provider's worker and worker_version
resources call (terraform-provider-cloudflare internal/services/worker/resource.go and
worker_version/resource.go, a2efdc578: `Workers.Beta.Workers.New/Delete`, `...Versions.New`; the
version resource has no Delete: versions go with their Worker). The operations are newer than the
OpenAPI document the double checks against, so their answers are checked against the installed SDK's
models (tests/helpers/cf_sdk_models.py: `Worker`, `Version`).

A Worker and the script of the same name are one thing (the scripts API's versions and deployments,
workers.py, list what is uploaded here): deleting the Worker deletes its versions and deployments.
What is not published, and so is the double's own choice, named where it is made: the refusal codes
(10000) and the status of a duplicate name (409).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.helpers.cf_double.envelope import Refusal, Response, error, ok
from tests.helpers.cf_double.routes import Request, Route
from tests.helpers.cf_double.workers import ScriptState, Workers

# "Alphanumeric characters (a,b,c, etc.) and dashes (-) only. Do not use underscores (_)" (wrangler's
# configuration reference, `name`); lowercase, as a subdomain label of workers.dev, up to 63.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class WorkersBeta(Workers):
    worker_ids: dict[str, str]  # Worker id -> name (the script of that name in Workers.scripts)
    worker_created: dict[str, str]  # Worker id -> when

    def _init_workers_beta(self) -> None:
        self.worker_ids = {}
        self.worker_created = {}

    def _worker_object(self, worker_id: str) -> dict[str, Any]:
        created = self.worker_created[worker_id]
        return {"id": worker_id, "name": self.worker_ids[worker_id], "created_on": created, "updated_on": created,
                "logpush": False, "observability": {"enabled": False}, "subdomain": {"enabled": False},
                "tags": [], "tail_consumers": [],
                "references": {"dispatch_namespace_outbounds": [], "domains": [], "durable_objects": [],
                               "queues": [], "workers": []}}

    def _worker(self, req: Request) -> str:
        worker_id = req.params["worker"]
        if worker_id not in self.worker_ids:
            raise Refusal(404, error(10007, "worker not found"))
        return worker_id

    def create_worker(self, req: Request) -> Response:
        name = (req.json() or {}).get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            return 400, error(10000, "a Worker's name is lowercase letters, digits and dashes, up to 63")
        with self.lock:
            if name in self.scripts:
                return 409, error(10000, f"a Worker named {name} already exists")
            worker_id = uuid.uuid4().hex
            self.worker_ids[worker_id] = name
            self.worker_created[worker_id] = self.clock.stamp()
            self.scripts[name] = ScriptState()
        return 200, ok(self._worker_object(worker_id))

    def list_workers(self, req: Request) -> Response:
        page, per_page = int(req.arg("page", "1")), int(req.arg("per_page", "50"))
        with self.lock:
            everything = [self._worker_object(w) for w in sorted(self.worker_ids, key=self.worker_ids.__getitem__)]
        items = everything[(page - 1) * per_page: page * per_page]
        return 200, ok(items, {"page": page, "per_page": per_page, "count": len(items),
                               "total_count": len(everything)})

    def delete_worker(self, req: Request) -> Response:
        with self.lock:
            worker_id = self._worker(req)
            name = self.worker_ids.pop(worker_id)
            del self.worker_created[worker_id]
            self.scripts.pop(name, None)
        # WorkerDeleteResponse is the envelope itself (errors, messages, success): no result.
        return 200, ok(None)

    def create_version(self, req: Request) -> Response:
        body = req.json() or {}
        with self.lock:
            worker_id = self._worker(req)
            name = self.worker_ids[worker_id]
            script = self.scripts[name]
            bindings = body.get("bindings") or []
            # Modules without `main_module` ("The name of the main module in the `modules` array", the
            # provider's WorkerVersion docstring) leave no entry point: refused when the version has
            # bindings, the failure pulumi-cloudflare 6.x users report for ES-module Workers.
            modules = body.get("modules") or []
            if bindings and modules and not body.get("main_module"):
                return 400, error(10000, "main_module is required for an ES module Worker")
            version_id = self._new_version(script)
            version = next(v for v in script.versions if v["id"] == version_id)
            if req.arg("deploy", "false") == "true":
                # The `deploy` query: the version serves 100 % at once (what the program must not ask for).
                script.deployments.append(self._deployment([(version_id, 100.0)], "api"))
                script.share_history.append((self.clock.now(), {version_id: 100.0}))
        return 200, ok({"id": version_id, "number": version["number"], "created_on": version["metadata"]["created_on"],
                        "urls": [], "main_module": body.get("main_module"),
                        "compatibility_date": body.get("compatibility_date")})


ROUTES = (
    Route("POST", "/accounts/{account}/workers/workers", WorkersBeta.create_worker),
    Route("GET", "/accounts/{account}/workers/workers", WorkersBeta.list_workers),
    Route("DELETE", "/accounts/{account}/workers/workers/{worker}", WorkersBeta.delete_worker),
    Route("POST", "/accounts/{account}/workers/workers/{worker}/versions", WorkersBeta.create_version),
)
