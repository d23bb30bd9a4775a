"""An engine for `bookingctl preview up|down` that applies a stack's plan to the API double.

The Pulumi CLI and the provider plugin cannot be installed here, so this stands for both: `up` plans the
stack with the real program under Pulumi's mocks (bookingctl/planner.py, the same run `bookingctl plan`
makes), gates it with the real policy pack first (as `PulumiEngine` runs a preview with the pack before
`up`), then makes, for each resource, the REST call the provider's resource makes
(terraform-provider-cloudflare internal/services/<resource>/resource.go, a2efdc578) through the official
SDK against the double; `destroy` deletes in reverse order and forgets the stack. The state is this
object's, per stack: URN -> (type, id, inputs), as an engine's checkpoint holds them.

What it does not model, on purpose: diffs of an existing resource's inputs (a changed input replaces the
resource: delete, then create), hooks (they never run outside a real `up`; `preview up` applies the
migrations itself), and `protect`/`retain_on_delete` beyond refusing to destroy a protected resource,
as the engine does.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cloudflare import APIError, Cloudflare

from booking_shared.project import Project, load_stack
from bookingctl.gate import PackProcess, evaluate
from bookingctl.planner import PlannedResource, plan_stack, unwrap_secrets
from ops.previews.engine import EngineError, Held, LiveStack, held_name

Log = Callable[[str], None]
Create = Callable[[Cloudflare, dict[str, Any]], str]
Delete = Callable[[Cloudflare, dict[str, Any], str], None]


def _snake(value: Any) -> Any:
    """Pulumi's camelCase input keys as the SDK's keyword names (deleteObjectsTransition -> delete_objects_...);
    the keys of `headers` are header names and stay as they are."""
    if isinstance(value, dict):
        return {"".join("_" + c.lower() if c.isupper() else c for c in k):
                (v if k == "headers" else _snake(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return value


def _d1(c: Cloudflare, i: dict[str, Any]) -> str:
    return str(c.d1.database.create(account_id=i["accountId"], name=i["name"]).uuid)


def _bucket(c: Cloudflare, i: dict[str, Any]) -> str:
    return str(c.r2.buckets.create(account_id=i["accountId"], name=i["name"]).name)


def _lifecycle(c: Cloudflare, i: dict[str, Any]) -> str:
    c.r2.buckets.lifecycle.update(i["bucketName"], account_id=i["accountId"], rules=_snake(i.get("rules") or []))
    return str(i["bucketName"])


def _worker(c: Cloudflare, i: dict[str, Any]) -> str:
    # The settings the program declares travel with the Worker (the provider's worker model.go:
    # `json:"observability"`, `json:"subdomain"`; cloudflare 5.9.0 types/workers/beta/worker_create_params.py).
    settings = {k: _snake(i[k]) for k in ("observability", "subdomain") if k in i}
    return c.workers.beta.workers.create(account_id=i["accountId"], name=i["name"], **settings).id


def _version(c: Cloudflare, i: dict[str, Any]) -> str:
    # The program's bindings and modules are sent as declared; the module's content is the bundle file's.
    # Annotations as the provider sends them (`workers/message`: the bundle's, infra/worker.py).
    annotations = {"workers_message": i["annotations"]["workersMessage"]} if (i.get("annotations") or {}).get(
        "workersMessage") else None
    return c.workers.beta.workers.versions.create(
        i["workerId"], account_id=i["accountId"], main_module=i.get("mainModule"),
        compatibility_date=i.get("compatibilityDate"), bindings=_snake(i.get("bindings") or []),
        **({"annotations": annotations} if annotations else {})).id


def _deployment(c: Cloudflare, i: dict[str, Any]) -> str:
    return c.workers.scripts.deployments.create(
        i["scriptName"], account_id=i["accountId"], strategy=i.get("strategy", "percentage"),
        versions=[{"version_id": v["versionId"], "percentage": v["percentage"]} for v in i["versions"]]).id


def _route(c: Cloudflare, i: dict[str, Any]) -> str:
    return c.workers.routes.create(zone_id=i["zoneId"], pattern=i["pattern"], script=i.get("script")).id


def _dns(c: Cloudflare, i: dict[str, Any]) -> str:
    record = c.dns.records.create(zone_id=i["zoneId"], name=i["name"], type=i["type"], content=i["content"],
                                  proxied=i.get("proxied", False), ttl=i.get("ttl", 1), comment=i.get("comment", ""))
    return str(record.id)


def _pages(c: Cloudflare, i: dict[str, Any]) -> str:
    return str(c.pages.projects.create(account_id=i["accountId"], name=i["name"],
                                       production_branch=i.get("productionBranch", "main")).name)


def _pages_domain(c: Cloudflare, i: dict[str, Any]) -> str:
    c.pages.projects.domains.create(i["projectName"], account_id=i["accountId"], name=i["name"])
    return str(i["name"])


def _widget(c: Cloudflare, i: dict[str, Any]) -> str:
    return c.turnstile.widgets.create(account_id=i["accountId"], name=i["name"], domains=i["domains"],
                                      mode=i["mode"]).sitekey


def _healthcheck(c: Cloudflare, i: dict[str, Any]) -> str:
    body = {k: v for k, v in _snake(i).items() if k != "zone_id"}
    return str(c.healthchecks.create(zone_id=i["zoneId"], **body).id)


# The bridge pluralises list attributes in Pulumi's names; the provider sends the Terraform attribute
# (terraform-provider-cloudflare internal/services/notification_policy/model.go: `json:"health_check_id"`,
# `json:"status"`).
_POLICY_FILTERS = {"health_check_ids": "health_check_id", "statuses": "status"}
_POLICY_MECHANISMS = {"emails": "email"}


def _policy(c: Cloudflare, i: dict[str, Any]) -> str:
    body = {k: v for k, v in _snake(i).items() if k != "account_id"}
    body["filters"] = {_POLICY_FILTERS.get(k, k): v for k, v in (body.get("filters") or {}).items()}
    # Likewise `mechanisms.emails` is the Terraform attribute `email` (`json:"email"`, the same model.go).
    body["mechanisms"] = {_POLICY_MECHANISMS.get(k, k): v for k, v in (body.get("mechanisms") or {}).items()}
    return str(c.alerting.policies.create(account_id=i["accountId"], **body).id)


def _ruleset(c: Cloudflare, i: dict[str, Any]) -> str:
    body = {k: v for k, v in _snake(i).items() if k != "zone_id"}
    created: Any = c.rulesets.create(zone_id=i["zoneId"], **body)
    return str(created["id"] if isinstance(created, dict) else created.id)


def _gone(_c: Cloudflare, _i: dict[str, Any], _id: str) -> None:
    """Versions and deployments have no Delete in the provider: they go with their Worker."""


# type token -> (create, delete), each as the provider's resource calls the API.
PROVIDER: dict[str, tuple[Create, Delete]] = {
    "cloudflare:index/d1Database:D1Database": (
        _d1, lambda c, i, id_: c.d1.database.delete(id_, account_id=i["accountId"]) and None),
    "cloudflare:index/r2Bucket:R2Bucket": (
        _bucket, lambda c, i, id_: c.r2.buckets.delete(id_, account_id=i["accountId"]) and None),
    "cloudflare:index/r2BucketLifecycle:R2BucketLifecycle": (
        _lifecycle, lambda c, i, id_: c.r2.buckets.lifecycle.update(id_, account_id=i["accountId"], rules=[])
        and None),
    "cloudflare:index/worker:Worker": (
        _worker, lambda c, i, id_: c.workers.beta.workers.delete(id_, account_id=i["accountId"]) and None),
    "cloudflare:index/workerVersion:WorkerVersion": (_version, _gone),
    "cloudflare:index/workersDeployment:WorkersDeployment": (_deployment, _gone),
    "cloudflare:index/workersRoute:WorkersRoute": (
        _route, lambda c, i, id_: c.workers.routes.delete(id_, zone_id=i["zoneId"]) and None),
    "cloudflare:index/dnsRecord:DnsRecord": (
        _dns, lambda c, i, id_: c.dns.records.delete(id_, zone_id=i["zoneId"]) and None),
    "cloudflare:index/pagesProject:PagesProject": (
        _pages, lambda c, i, id_: c.pages.projects.delete(id_, account_id=i["accountId"]) and None),
    "cloudflare:index/pagesDomain:PagesDomain": (
        _pages_domain, lambda c, i, id_: c.pages.projects.domains.delete(
            id_, account_id=i["accountId"], project_name=i["projectName"]) and None),
    "cloudflare:index/healthcheck:Healthcheck": (
        _healthcheck, lambda c, i, id_: c.healthchecks.delete(id_, zone_id=i["zoneId"]) and None),
    "cloudflare:index/notificationPolicy:NotificationPolicy": (
        _policy, lambda c, i, id_: c.alerting.policies.delete(id_, account_id=i["accountId"]) and None),
    "cloudflare:index/ruleset:Ruleset": (
        _ruleset, lambda c, i, id_: c.rulesets.delete(id_, zone_id=i["zoneId"])),
    "cloudflare:index/turnstileWidget:TurnstileWidget": (
        _widget, lambda c, i, id_: c.turnstile.widgets.delete(id_, account_id=i["accountId"]) and None),
}


@dataclass
class Applied:
    type: str
    id: str
    inputs: dict[str, Any]
    planned_id: str  # the id the mocks gave it: other resources' inputs name it until it is replaced
    protect: bool


@dataclass
class StackState:
    resources: dict[str, Applied] = field(default_factory=dict)  # urn -> applied, in creation order
    last_update: dt.datetime | None = None
    outputs: dict[str, Any] = field(default_factory=dict)  # the stack's exports as the last up left them


class DoubleEngine:
    """The `ops.previews.engine.Engine` of the tests: plans with the real program and pack, applies to the double."""

    def __init__(self, project: Project, client: Cloudflare, now: Callable[[], dt.datetime], *,
                 gate: bool = True) -> None:
        # gate=False: apply without the pack (a test applying production, whose checklist needs evidence).
        self.project, self.client, self.now, self.gate = project, client, now, gate
        self.states: dict[str, StackState] = {}
        self.ups: list[str] = []

    def stacks(self) -> list[LiveStack]:
        return [LiveStack(name, s.last_update) for name, s in self.states.items()]

    def check(self, stack: str, log: Log) -> None:
        """The real engine's preview with the pack: the plan gated, nothing applied."""
        settings = load_stack(self.project, stack)
        with PackProcess(self.project.root / "policies", self.project.name, stack, settings.flat) as pack:
            gate = evaluate(plan_stack(self.project, settings), pack)
        if not gate.passed:
            raise EngineError(f"the policy pack refused {stack}: {', '.join(v.policy for v in gate.mandatory)}")

    def up(self, stack: str, log: Log) -> None:
        settings = load_stack(self.project, stack)
        if not self.gate:
            plan = plan_stack(self.project, settings)
        else:
            with PackProcess(self.project.root / "policies", self.project.name, stack, settings.flat) as pack:
                plan = plan_stack(self.project, settings)
                gate = evaluate(plan, pack)
        if self.gate and not gate.passed:
            raise EngineError(f"the policy pack refused {stack}: "
                              f"{', '.join(v.policy for v in gate.mandatory)}")
        state = self.states.setdefault(stack, StackState())
        wanted = [r for r in plan.resources if r.custom]
        unknown = sorted({r.type for r in wanted} - set(PROVIDER))
        if unknown:
            raise EngineError(f"the engine double has no provider call for {', '.join(unknown)}")
        ids = {a.planned_id: a.id for a in state.resources.values()}
        for urn in [u for u in reversed(list(state.resources)) if u not in {r.urn for r in wanted}]:
            self._delete(state, urn, log)
        for resource in _dependency_order(wanted):
            inputs = _ints(_swap(unwrap_secrets(resource.raw_inputs), ids))
            planned_id = str(resource.raw_outputs.get("id", ""))
            old = state.resources.get(resource.urn)
            if old is not None and _same(old.inputs, inputs):
                ids[planned_id] = old.id
                continue
            if old is not None:
                self._delete(state, resource.urn, log)
            try:
                created = PROVIDER[resource.type][0](self.client, inputs)
            except APIError as exc:
                # As the Automation API's CommandError reaches PulumiEngine: the update failed, what was
                # created before it stays in the state, the failed create is in none. A failed update is
                # an update all the same (the stack's last update time is its checkpoint's, written by
                # every update: pulumi/pulumi localStackSummary.LastUpdate = snap.Manifest.Time).
                state.last_update = self.now()
                raise EngineError(f"pulumi up --stack {stack} failed: {resource.type.rsplit(':', 1)[-1]} "
                                  f"{resource.name}: {exc}") from exc
            log(f"+ {resource.type.rsplit(':', 1)[-1]} {resource.name} ({created})")
            state.resources[resource.urn] = Applied(resource.type, created, inputs, planned_id, resource.protect)
            ids[planned_id] = created
        state.last_update = self.now()
        state.outputs = {k: v for k, v in plan.outputs.items() if isinstance(v, str | int | float | bool)}
        self.ups.append(stack)

    def outputs(self, stack: str) -> dict[str, Any]:
        return dict(self.states[stack].outputs)

    def held(self, stack: str) -> list[Held]:
        state = self.states.get(stack)
        return [] if state is None else [Held(a.type, a.id, held_name(a.inputs)) for a in state.resources.values()]

    def destroy(self, stack: str, log: Log) -> None:
        state = self.states.get(stack)
        if state is None:
            raise EngineError(f"no stack named {stack}")
        protected = [u for u, a in state.resources.items() if a.protect]
        if protected:
            raise EngineError(f"{stack}: protected resources {', '.join(protected)}")
        for urn in reversed(list(state.resources)):
            self._delete(state, urn, log)
        del self.states[stack]  # destroy(remove=True) removes the stack

    def _delete(self, state: StackState, urn: str, log: Log) -> None:
        applied = state.resources[urn]
        PROVIDER[applied.type][1](self.client, applied.inputs, applied.id)
        del state.resources[urn]  # only once deleted: a failed delete stays in the state, as the engine keeps it
        log(f"- {applied.type.rsplit(':', 1)[-1]} {urn.rsplit('::', 1)[-1]} ({applied.id})")


def _dependency_order(resources: list[PlannedResource]) -> list[PlannedResource]:
    """Each resource after those it depends on (the engine's order for creates)."""
    by_urn = {r.urn: r for r in resources}
    done: list[PlannedResource] = []
    seen: set[str] = set()

    def visit(r: PlannedResource) -> None:
        if r.urn in seen:
            return
        seen.add(r.urn)
        for dep in r.dependencies:
            if dep in by_urn:
                visit(by_urn[dep])
        done.append(r)

    for r in resources:
        visit(r)
    return done


def _swap(value: Any, ids: dict[str, str]) -> Any:
    """Inputs with the mocks' ids of other resources replaced by the ids they got in the double."""
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, dict):
        return {k: _swap(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, ids) for v in value]
    return value


def _ints(value: Any) -> Any:
    """Whole numbers as int: the engine's protobuf Struct carries every number as a double, and the
    provider sends each as its schema's type (an int64 field as an integer: 600, not 600.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
