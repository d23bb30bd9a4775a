"""`bookingctl drift`'s readers of the Worker and its database (ops/observation/drift.py runs them).

A name is not an identity: a Worker or a D1 database deleted and created again under its name is found
by name all the same, empty. So the Worker must serve a deployment (a Worker made anew has none), and
the database found by name must be the one the serving version's D1 binding names (a database made
anew has another id). Neither needs the Pulumi state: the account itself says what serves with what.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cloudflare import NotFoundError

from ops.observation.drift_model import Context, Declared, provider_inputs, report_missing, short
from ops.targets import WorkerScript

D1 = "cloudflare:index/d1Database:D1Database"
WORKER = "cloudflare:index/worker:Worker"
VERSION = "cloudflare:index/workerVersion:WorkerVersion"

# (the declared input's path, the live Worker's field path, why a difference matters): the settings
# infra/worker.py declares. Live, as the SDK's Worker model spells them (cloudflare 5.9.0
# types/workers/beta/worker.py: `subdomain.enabled`, "Whether the *.workers.dev subdomain is enabled
# for the Worker"; `observability.logs.enabled`).
_SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("subdomain.enabled", "subdomain.enabled",
     "a workers.dev URL is a second way in, past the zone's WAF and rate limits"),
    ("subdomain.previewsEnabled", "subdomain.previews_enabled",
     "preview URLs serve versions that were never deployed, past the zone's WAF and rate limits"),
    ("observability.enabled", "observability.enabled", "no logs are kept: a failure leaves no trace"),
    ("observability.logs.enabled", "observability.logs.enabled", "no logs are kept: a failure leaves no trace"),
    ("observability.logs.invocationLogs", "observability.logs.invocation_logs", "requests are no longer logged"),
    ("observability.headSamplingRate", "observability.head_sampling_rate",
     "a share of requests is no longer observed (0: none)"),
    ("observability.logs.headSamplingRate", "observability.logs.head_sampling_rate",
     "a share of requests is no longer logged (0: none, logs on in name only)"),
)


def d1(ctx: Context, d: Declared) -> None:
    name = str(d.inputs["name"])
    found = [db for db in ctx.client.d1.database.list(account_id=ctx.account_id, name=name) if db.name == name]
    if not found:
        report_missing(ctx, d, f"D1 database {name}", f"find where {name} went (deleted, or replaced in the "
                       f"dashboard) before anything else: `{ctx.up()}` would create a new, empty {name}; then "
                       "restore its data from the newest backup (`bookingctl backup restore`, docs/backups.md)")
        return
    ctx.snapshot.live[d.name] = {"name": name, "uuid": found[0].uuid}


def worker(ctx: Context, d: Declared) -> None:
    name = str(d.inputs["name"])
    try:
        # By name: the Worker's id "can be ID or name" (cloudflare 5.9.0 resources/workers/beta/workers/
        # workers.py `get`), and drift reads no state to know the id.
        live = ctx.client.workers.beta.workers.get(name, account_id=ctx.account_id)
        deployments = WorkerScript(ctx.client, ctx.account_id, name).deployments()
    except NotFoundError:
        report_missing(ctx, d, f"Worker {name}")
        return
    # The newest deployment is the one serving: every version it names, those at 0 % too (a canary's
    # smoke test deploys the version being released at 0 % beside the serving one), and why, in its
    # own words (a rollback, a canary's verdict, pulumi up).
    newest = deployments[0] if deployments else None
    deployed = [(v.version_id, v.percentage) for v in (newest.versions if newest else [])]
    serving = [version for version, percentage in deployed if percentage > 0]
    note = newest.annotations.workers_message if newest and newest.annotations else None
    settings = {"observability": _dumped(getattr(live, "observability", None)),
                "subdomain": _dumped(getattr(live, "subdomain", None))}
    ctx.snapshot.live[d.name] = {"name": name, "serving": serving, "deployed": [v for v, _ in deployed],
                                 "message": note, **settings}
    if not serving:
        ctx.add("missing", short(d), f"Worker {name} serves no version (it has no deployment): deleted and created "
                "again by hand, with none of the stack's versions under it (or an update stopped before deploying)",
                f"delete the Worker made by hand "
                f"(`wrangler delete --name {name}`, or in the dashboard), then `{ctx.up()}`: the refresh drops the "
                "deleted Worker from the state, the update creates it, its version and its deployment again",
                field="deployment")
    for declared_path, live_path, why in _SETTINGS:
        want, have = _path(d.inputs, declared_path), _attribute(live, live_path)
        if want is not None and want != have:
            ctx.add("changed", short(d), f"{live_path} is {have!r} live, {want!r} declared ({why})", ctx.up(),
                    field=live_path, declared=want, live=have)


def served_versions(ctx: Context, resources: Iterable[Declared]) -> None:
    """For each declared Worker version: the Worker's serving versions must include it (by its bundle's
    annotation, `bundle sha256:...`, infra/worker.py), and the database found by name must be the one
    they bind. A Worker deployed again by hand (wrangler, the dashboard), or deleted and made again
    with its database, serves code and data that are not the stack's whatever their names. After the
    readers: it needs what `d1` and `worker` read."""
    resources = list(resources)
    databases = {d.id: d for d in resources if d.type == D1 and d.id}
    workers = {d.id: d for d in resources if d.type == WORKER and d.id}
    for version in (d for d in resources if d.type == VERSION):
        owner = workers.get(str(version.inputs.get("workerId")))
        seen = (ctx.snapshot.live.get(owner.name) or {}) if owner else {}
        if owner is None or not seen.get("serving"):
            continue  # a Worker missing or serving nothing is reported by `worker`
        name = str(owner.inputs["name"])
        live = _versions(ctx, owner, name, seen["deployed"])
        bundle = (version.inputs.get("annotations") or {}).get("workersMessage")
        messages = {v: (v_live.annotations.workers_message if v_live.annotations else None)
                    for v, v_live in live.items()}
        if bundle and live and bundle not in messages.values():
            shown = "; ".join(f"{v} ({m or 'no message'})" for v, m in messages.items())
            why = str(seen.get("message") or "")
            # What the newest deployment says it is, in its own words (a rollback's or a canary's annotation).
            how = ("rolled back" if "rollback" in why.lower() or "rolled back" in why.lower() else
                   "a canary's deployment" if "canary" in why.lower() else
                   "deployed by hand or from another checkout, or the declared one not deployed yet")
            ctx.add("changed", short(owner), f"Worker {name} serves {shown}, none of them the declared {bundle}: "
                    f"{how} (the newest deployment says: {why or 'nothing'})",
                    f"`bookingctl release status --stack {ctx.stack}` shows what serves, since when and why (a "
                    "rollback made on purpose says so: then fix the code and deploy, do not undo it); otherwise "
                    f"`{ctx.up()}` deploys the stack's version again (through its canary; if one is being baked now, "
                    "let it end and run drift again)", field="version", declared=bundle, live=sorted(messages))
        wanted = {str(b.get("name")): databases[str(b.get("id"))] for b in version.inputs.get("bindings") or []
                  if b.get("type") == "d1" and str(b.get("id")) in databases}
        for version_id, v_live in live.items():
            bound = {b.name: b for b in v_live.bindings or [] if b.type == "d1"}
            for binding, database in sorted(wanted.items()):
                _compare_binding(ctx, database, name, version_id, binding, bound.get(binding))


def _versions(ctx: Context, owner: Declared, name: str, serving: list[str]) -> dict[str, Any]:
    """The serving versions as the API answers them; one its deployment names but the API does not find
    is reported (a version deleted under a deployment: not the stack file's fault)."""
    found: dict[str, Any] = {}
    for version_id in serving:
        try:
            found[version_id] = ctx.client.workers.beta.workers.versions.get(version_id, account_id=ctx.account_id,
                                                                             worker_id=name)
        except NotFoundError:
            ctx.add("changed", short(owner), f"Worker {name}'s deployment serves version {version_id}, which the API "
                    "does not find", f"`bookingctl release status --stack {ctx.stack}`, then `{ctx.up()}`",
                    field="version", live=version_id)
    return found


def _compare_binding(ctx: Context, database: Declared, worker_name: str, version_id: str, binding: str,
                     live_binding: Any) -> None:
    found = ctx.snapshot.live.get(database.name)
    if found is None:
        return  # not in the account: `d1` reported it missing
    db_name, uuid = found["name"], str(found["uuid"])
    # `database_id` ("Identifier of the D1 database to bind to", the SDK's version binding; `id` says the same).
    bound = getattr(live_binding, "database_id", None) or getattr(live_binding, "id", None)
    if bound == uuid:
        return
    ctx.add("changed", short(database), f"Worker {worker_name}'s serving version {version_id} binds {binding} to "
            f"database {bound or 'none'}, but {db_name} is now {uuid}: a database deleted and created again "
            "(empty), or replaced", f"find database {bound or '(the one the Worker used)'} before anything else: "
            f"{db_name} ({uuid}) is not the database the stack's data is in. If it is gone, restore the newest "
            f"backup into {db_name} (`bookingctl backup restore`, docs/backups.md) before any `pulumi up`: "
            f"an update run blindly binds the Worker to whatever {db_name} holds, or creates another, empty one",
            field="uuid", declared=bound, live=uuid)


def _path(values: Mapping[str, Any] | None, path: str) -> Any:
    for part in path.split("."):
        values = values.get(part) if isinstance(values, Mapping) else None
    return values


def _attribute(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj


def _dumped(model: Any) -> Any:
    """A live setting as the provider's inputs spell it (for the pack over reality)."""
    dump = getattr(model, "model_dump", None)
    return provider_inputs(dump(mode="json", exclude_none=True)) if dump else None
