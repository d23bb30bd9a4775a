"""Workers (the resource API behind pulumi-cloudflare 6.x's `Worker` and `WorkerVersion`).

`POST /accounts/{account}/workers/workers` creates a Worker, `GET` on the same path lists them (what
`bookingctl preview up` reads to find a Worker a lost create left), `DELETE .../workers/{worker_id}` deletes it,
`POST .../workers/{worker_id}/versions` uploads a version: what the provider's worker and worker_version
resources call (terraform-provider-cloudflare internal/services/worker/resource.go and
worker_version/resource.go, a2efdc578: `Workers.Beta.Workers.New/Delete`, `...Versions.New`; the
version resource has no Delete: versions go with their Worker). `GET .../workers/{worker_id}` and
`GET .../workers/{worker_id}/versions/{version_id}` read them back (what `bookingctl drift` reads:
cloudflare 5.9.0 resources/workers/beta/workers/workers.py and versions.py `get`, where `worker_id`
"can be ID or name"). The operations are newer than the OpenAPI document the double checks against,
so their answers are checked against the installed SDK's models (tests/helpers/cf_sdk_models.py:
`Worker`, `Version`).

A Worker and the script of the same name are one thing (the scripts API's versions and deployments,
workers.py, list what is uploaded here): deleting the Worker deletes its versions and deployments.
What is not published, and so is the double's own choice, named where it is made: the refusal codes
(10000) and the status of a duplicate name (409).
"""

from __future__ import annotations

import re
import typing
import uuid
from typing import Any

import typing_extensions
from cloudflare.types.workers.beta.worker_create_params import Observability, Subdomain

from tests.helpers.cf_double.envelope import Refusal, Response, error, ok
from tests.helpers.cf_double.routes import Request, Route
from tests.helpers.cf_double.workers import ScriptState, Workers

# "Alphanumeric characters (a,b,c, etc.) and dashes (-) only. Do not use underscores (_)" (wrangler's
# configuration reference, `name`); lowercase, as a subdomain label of workers.dev, up to 63.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# The settings a Worker keeps, as the SDK's create params describe them (cloudflare 5.9.0
# types/workers/beta/worker_create_params.py): a key they do not define is one the code wrongly
# believes it sets, and is refused, as cf_openapi refuses a body field the document does not define.
_SETTINGS: dict[str, type] = {"observability": Observability, "subdomain": Subdomain}


class WorkersBeta(Workers):
    worker_ids: dict[str, str]  # Worker id -> name (the script of that name in Workers.scripts)
    worker_created: dict[str, str]  # Worker id -> when
    # Worker id -> its `observability` and `subdomain` as created (the dashboard's changes are tests'
    # changes to this dict): what GET answers.
    worker_settings: dict[str, dict[str, Any]]
    # Version id -> what GET answers of it beyond the scripts API's list (its bindings, as uploaded).
    version_details: dict[str, dict[str, Any]]

    def _init_workers_beta(self) -> None:
        self.worker_ids = {}
        self.worker_created = {}
        self.worker_settings = {}
        self.version_details = {}

    def _worker_object(self, worker_id: str) -> dict[str, Any]:
        created = self.worker_created[worker_id]
        # Not given at create: the workers.dev URL and previews on ("If neither setting is configured: both
        # the workers.dev route and the preview URL will default to enabled", Cloudflare changelog
        # 2025-10-31; "All Workers are assigned a workers.dev route when they are created",
        # workers/configuration/routing/workers-dev); observability off (the double's choice: no default
        # is documented).
        settings = {"observability": {"enabled": False}, "subdomain": {"enabled": True, "previews_enabled": True},
                    **self.worker_settings.get(worker_id, {})}
        return {"id": worker_id, "name": self.worker_ids[worker_id], "created_on": created, "updated_on": created,
                "logpush": False, **settings, "tags": [], "tail_consumers": [],
                "references": {"dispatch_namespace_outbounds": [], "domains": [], "durable_objects": [],
                               "queues": [], "workers": []}}

    def _worker(self, req: Request) -> str:
        worker_id = req.params["worker"]
        # "Identifier for the Worker, which can be ID or name" (cloudflare 5.9.0 types/workers/beta/workers/
        # version_get_params.py, and the `get` of resources/workers/beta/workers/workers.py).
        by_name = next((i for i, name in self.worker_ids.items() if name == worker_id), None)
        if worker_id not in self.worker_ids and by_name is None and worker_id in self.scripts:
            # A script uploaded through the scripts API (`add_script`: what `wrangler deploy` makes) is a
            # Worker too: it gets its id when first asked for by name.
            by_name = uuid.uuid4().hex
            self.worker_ids[by_name] = worker_id
            self.worker_created[by_name] = self.clock.stamp()
        if worker_id not in self.worker_ids and by_name is None:
            raise Refusal(404, error(10007, "worker not found"))
        return worker_id if worker_id in self.worker_ids else str(by_name)

    def get_worker(self, req: Request) -> Response:
        return 200, ok(self._worker_object(self._worker(req)))

    def create_worker(self, req: Request) -> Response:
        body = req.json() or {}
        name = body.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            return 400, error(10000, "a Worker's name is lowercase letters, digits and dashes, up to 63")
        for key, described in _SETTINGS.items():
            unknown = _undefined(body.get(key), described, key)
            if unknown:
                return 400, error(10000, f"{', '.join(unknown)} is not a field of the Worker's {key}")
        with self.lock:
            if name in self.scripts:
                return 409, error(10000, f"a Worker named {name} already exists")
            worker_id = uuid.uuid4().hex
            self.worker_ids[worker_id] = name
            self.worker_created[worker_id] = self.clock.stamp()
            # As given (cloudflare 5.9.0 types/workers/beta/worker_create_params.py `observability`,
            # `subdomain`): answered back by GET as the SDK's Worker model has them.
            self.worker_settings[worker_id] = {k: body[k] for k in ("observability", "subdomain")
                                               if isinstance(body.get(k), dict)}
            self.scripts[name] = ScriptState()
        return 200, ok(self._worker_object(worker_id))

    def list_workers(self, req: Request) -> Response:
        # `page` and `per_page` are ints (cloudflare 5.9.0 types/workers/beta/worker_list_params.py); no
        # bound is published for this endpoint: below 1 is refused (the double's 10000, as R2's listing),
        # where a slice would answer an empty page the SDK's pager takes for the end.
        try:
            page, per_page = int(req.arg("page", "1")), int(req.arg("per_page", "50"))
        except ValueError:
            return 400, error(10000, "page and per_page are integers")
        if page < 1 or per_page < 1:
            return 400, error(10000, f"page {page} and per_page {per_page} must be 1 or more")
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
            self.worker_settings.pop(worker_id, None)
            script = self.scripts.pop(name, None)
            for version in script.versions if script else []:
                self.version_details.pop(version["id"], None)
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
            # Annotations as given ("workers/message": "Human-readable message about the version. Truncated
            # to 1000 bytes if longer", cloudflare 5.9.0 types/workers/beta/workers/version_create_params.py).
            given = body.get("annotations") if isinstance(body.get("annotations"), dict) else {}
            message = given.get("workers/message")
            self.version_details[version_id] = {"main_module": body.get("main_module"),
                                                "compatibility_date": body.get("compatibility_date"),
                                                "bindings": [_answered(b) for b in bindings],
                                                "annotations": ({"workers/message": str(message).encode()[:1000]
                                                                 .decode(errors="ignore")} if message else None)}
            if req.arg("deploy", "false") == "true":
                # The `deploy` query: the version serves 100 % at once (what the program must not ask for).
                script.deployments.append(self._deployment([(version_id, 100.0)], "api"))
                script.share_history.append((self.clock.now(), {version_id: 100.0}))
        return 200, ok({"id": version_id, "number": version["number"], "created_on": version["metadata"]["created_on"],
                        "urls": [], "main_module": body.get("main_module"),
                        "compatibility_date": body.get("compatibility_date")})

    def get_version(self, req: Request) -> Response:
        with self.lock:
            script = self.scripts[self.worker_ids[self._worker(req)]]
            wanted = req.params["version"]
            newest = max(script.versions, key=lambda v: v["number"], default=None)
            # "a UUID, a UUID prefix (minimum length 8), or the literal "latest"" (cloudflare 5.9.0
            # resources/workers/beta/workers/versions.py `get`).
            found = [v for v in script.versions
                     if v["id"] == wanted or (len(wanted) >= 8 and v["id"].startswith(wanted))]
            version = newest if wanted == "latest" else found[0] if len(found) == 1 else None
            if version is None:
                return 404, error(10007, "version not found")
            details = self.version_details.get(version["id"], {})
        return 200, ok({"id": version["id"], "number": version["number"],
                        "created_on": version["metadata"]["created_on"], "urls": [],
                        **{k: v for k, v in details.items() if v is not None}})


def _undefined(value: Any, described: type, where: str) -> list[str]:
    """The keys of `value` (and of its nested objects) that the TypedDict `described` does not define."""
    if not isinstance(value, dict):
        return []
    hints = typing.get_type_hints(described)
    unknown = []
    for key, inner in value.items():
        if key not in hints:
            unknown.append(f"{where}.{key}")
            continue
        # typing_extensions': the SDK's TypedDicts are typing_extensions' (typing.is_typeddict says no).
        nested = [h for h in (hints[key], *typing.get_args(hints[key])) if typing_extensions.is_typeddict(h)]
        if nested:
            unknown += _undefined(inner, nested[0], f"{where}.{key}")
    return unknown


def _answered(binding: dict[str, Any]) -> dict[str, Any]:
    """A binding as GET answers it (cloudflare 5.9.0 types/workers/beta/workers/version.py `Binding`): a
    secret's text is never answered (BindingWorkersBindingKindSecretText has no `text`), and a D1
    binding names its database as `database_id` (required there; `id` sent says the same: "Identifier
    of the D1 database to bind to", version_create_params.py)."""
    answered = dict(binding)
    if answered.get("type") == "secret_text":
        answered.pop("text", None)
    if answered.get("type") == "d1" and "database_id" not in answered:
        answered["database_id"] = answered.get("id")
    return answered


ROUTES = (
    Route("POST", "/accounts/{account}/workers/workers", WorkersBeta.create_worker),
    Route("GET", "/accounts/{account}/workers/workers", WorkersBeta.list_workers),
    Route("GET", "/accounts/{account}/workers/workers/{worker}", WorkersBeta.get_worker),
    Route("DELETE", "/accounts/{account}/workers/workers/{worker}", WorkersBeta.delete_worker),
    Route("POST", "/accounts/{account}/workers/workers/{worker}/versions", WorkersBeta.create_version),
    Route("GET", "/accounts/{account}/workers/workers/{worker}/versions/{version}", WorkersBeta.get_version),
)
