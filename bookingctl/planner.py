"""Runs the real Pulumi program under Pulumi's own mocks and records what it declares.

No Pulumi CLI, provider plugin, credential or network is involved: `pulumi.runtime.set_mocks`
replaces the engine with an in-process monitor. We subclass that monitor to keep the full
registration request (protect, retainOnDelete, parent, dependencies and the serialized inputs,
with secrets still marked), which the public `Mocks.new_resource` hook does not receive.
"""

from __future__ import annotations

import asyncio
import runpy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings

# Not re-exported by `pulumi.runtime`, but they are what `pulumi.runtime.test` uses to drive a
# program to completion under mocks; the dependency range pins the major version.
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from booking_shared.project import Project, StackSettings

REDACTED = "[secret]"
# How a value that only the provider knows after creating a resource shows in a --fresh plan.
UNKNOWN_SHOWN = "[unknown until created]"

# Provider-computed outputs the program reads. The mocks fill them the way Cloudflare would,
# assuming the requested names are free (a taken pages.dev name gets a suffix in reality).
_COMPUTED: dict[str, Any] = {
    "cloudflare:index/pagesProject:PagesProject": lambda inputs: {"subdomain": f"{inputs['name']}.pages.dev"},
    # The widget's site key and secret (the provider marks `secret` secret; obviously fake here).
    "cloudflare:index/turnstileWidget:TurnstileWidget": lambda inputs: {
        "sitekey": "0x4AAAAAAAplannedSiteKey", "secret": "0x4AAAAAAAplannedSecretNotReal"},
}

# An invoke's answer, from its arguments (as the provider's result, camelCase keys).
InvokeAnswer = Callable[[Mapping[str, Any]], dict[str, Any]]
GET_TURNSTILE_WIDGETS = "cloudflare:index/getTurnstileWidgets:getTurnstileWidgets"
# The invokes the program makes, answered as by an account where nothing they read is live: offline
# nothing is, and a plan (and `bookingctl diff`) must be the same wherever it runs. The SaaS
# widgets' read (infra/turnstile.py) finds no widget, so each is planned with the fallback hostname.
INVOKES: dict[str, InvokeAnswer] = {GET_TURNSTILE_WIDGETS: lambda args: {"results": []}}


@dataclass(frozen=True)
class PlannedResource:
    """One resource registration as the engine would receive it."""

    type: str
    name: str
    urn: str
    parent: str | None
    custom: bool
    protect: bool
    retain_on_delete: bool
    inputs: dict[str, Any]  # redacted: safe to print
    dependencies: tuple[str, ...]
    # As serialized, secret markers intact. Never printed; for checks that need real values
    # (which database a binding names) and for the policy gate, which sends them to the analyzer.
    raw_inputs: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    # The mocked provider's outputs plus `id`, as the engine gives AnalyzeStack (bridged providers
    # include `id` among a resource's outputs). Secret markers intact; never printed.
    raw_outputs: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    # Resource hooks bound to the resource, by lifecycle step: {"before_create": ["hook-name"], ...}.
    hooks: dict[str, list[str]] = field(default_factory=dict)
    # ResourceOptions.ignore_changes: inputs the engine leaves as they are in the cloud.
    ignore_changes: tuple[str, ...] = ()
    # ResourceOptions.import_: the id of a live resource the engine adopts instead of creating one.
    import_id: str | None = None

    def value(self, *path: str | int) -> Any:
        """The unredacted input at `path`, e.g. `value("readReplication", "mode")`."""
        current: Any = unwrap_secrets(self.raw_inputs)
        for step in path:
            current = current[step]
        return current

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "urn": self.urn,
            "parent": self.parent,
            "custom": self.custom,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "dependencies": list(self.dependencies),
            "hooks": self.hooks,
            **({"ignoreChanges": list(self.ignore_changes)} if self.ignore_changes else {}),
            **({"importId": self.import_id} if self.import_id else {}),
            "inputs": self.inputs,
        }


@dataclass
class Plan:
    """Everything one offline run of the program declared.

    `resources` are in a stable order (parents before their children, siblings by name), so two
    plans of the same code print the same bytes; `registered` keeps the order the program
    registered them in, which depends on when outputs resolve.
    """

    project: str
    stack: str
    resources: list[PlannedResource]
    outputs: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)

    def custom_resources(self) -> list[PlannedResource]:
        return [r for r in self.resources if r.custom]

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> PlannedResource:
        found = self.of_type(type_token)
        if len(found) != 1:
            raise LookupError(f"expected exactly one {type_token}, found {len(found)}")
        return found[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stack": self.stack,
            "resources": [r.to_dict() for r in self.resources],
            "outputs": self.outputs,
            "warnings": self.warnings,
        }


# Inside a secret value only these keys' values are shown, so a reviewer still sees which
# bindings a Worker has ({"type": "secret_text", "name": "WHATSAPP_TOKEN", "text": "[secret]"}).
# One secret binding makes the engine mark the whole `bindings` list secret.
_SHAPE_KEYS = frozenset({"type", "name"})


def redact(value: Any, *, in_secret: bool = False) -> Any:
    """Copy `value` with every secret leaf replaced by `REDACTED`.

    A secret scalar becomes `REDACTED`; a secret list or mapping keeps its shape, showing only
    `type`/`name` keys, every other leaf redacted.
    """
    if rpc.is_rpc_secret(value):
        return redact(rpc.unwrap_rpc_secret(value), in_secret=True)
    if value == rpc.UNKNOWN:
        return UNKNOWN_SHOWN
    if isinstance(value, Mapping):
        # Sorted so two plans of the same code print and diff identically.
        return {str(k): (v if in_secret and k in _SHAPE_KEYS and isinstance(v, str)
                         else redact(v, in_secret=in_secret))
                for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [redact(v, in_secret=in_secret) for v in value]
    if in_secret:
        return REDACTED
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire format has only doubles; ttl 1 reads better than 1.0
    if isinstance(value, pulumi.Resource):
        return f"<resource {type(value).__name__}>"
    return value


def unwrap_secrets(value: Any) -> Any:
    """Copy `value` with secret markers removed (for checks that compare real values)."""
    if rpc.is_rpc_secret(value):
        return unwrap_secrets(rpc.unwrap_rpc_secret(value))
    if isinstance(value, Mapping):
        return {str(k): unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [unwrap_secrets(v) for v in value]
    return value


class _PlanMocks(pulumi_mocks.Mocks):
    """The provider, mocked: an existing stack (ids and computed outputs known) or a fresh one.

    `fresh`: as in the first real preview of a new stack, nothing exists yet, so every id and every
    output the provider computes is unknown (an empty id and the inputs alone, under preview).
    """

    def __init__(self, fresh: bool = False, invokes: Mapping[str, InvokeAnswer] | None = None) -> None:
        self.fresh = fresh
        self.invokes = {**INVOKES, **(invokes or {})}

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        state = dict(args.inputs)
        if self.fresh:
            return "", state
        computed = _COMPUTED.get(args.typ)
        if computed is not None:
            state.update(computed(args.inputs))
        # Deterministic, obviously synthetic ids: plans of the same code compare equal.
        return f"{args.name}-id", state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        answer = self.invokes.get(args.token)
        if answer is None:
            # An invoke no answer is written for would plan on an empty result: say which to add.
            raise NotImplementedError(f"the offline plan has no answer for invoke {args.token}: add one to "
                                      "bookingctl/planner.py INVOKES")
        # The mock monitor iterates the failures: an empty list, not None.
        return answer(args.args), []


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[PlannedResource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            # Unknowns (a --fresh plan) as the engine's sentinel, which is what the analyzer receives.
            inputs = _sentinels(rpc.deserialize_properties(request.object))
            outputs = dict(_sentinels(rpc.deserialize_properties(response.object))) if request.custom else {}
            if request.custom:
                outputs["id"] = response.id or rpc.UNKNOWN
            self.recorded.append(PlannedResource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent or None,
                custom=bool(request.custom),
                protect=request.HasField("protect") and request.protect,
                retain_on_delete=request.HasField("retainOnDelete") and request.retainOnDelete,
                inputs=redact(inputs),
                dependencies=tuple(sorted(request.dependencies)),
                raw_inputs=inputs,
                raw_outputs=outputs,
                hooks=_hooks(request),
                ignore_changes=tuple(request.ignoreChanges),
                import_id=request.importId or None,
            ))
        return response


def _sentinels(value: Any) -> Any:
    """`value` with the SDK's Unknown objects replaced by the wire format's unknown sentinel."""
    if isinstance(value, Unknown):
        return rpc.UNKNOWN
    if rpc.is_rpc_secret(value):
        return rpc.wrap_rpc_secret(_sentinels(rpc.unwrap_rpc_secret(value)))
    if isinstance(value, Mapping):
        return {k: _sentinels(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sentinels(v) for v in value]
    return value


def _hooks(request: Any) -> dict[str, list[str]]:
    if not request.HasField("hooks"):
        return {}
    steps = ("before_create", "after_create", "before_update", "after_update", "before_delete", "after_delete",
             "on_error")
    return {step: list(getattr(request.hooks, step)) for step in steps if getattr(request.hooks, step)}


def run_program(
    project: Project,
    stack: str,
    flat: Mapping[str, str],
    secret_keys: Iterable[str],
    warnings: Iterable[str] = (),
    *,
    fresh: bool = False,
    invokes: Mapping[str, InvokeAnswer] | None = None,
) -> Plan:
    """Run `project.main/__main__.py` under mocks with the given engine-style config.

    `fresh`: plan as the first preview of a stack where nothing exists yet (outputs unknown).
    `invokes`: answers to invokes by token, over INVOKES (tests: what a live account would answer).
    Exceptions from the program (a `ConfigError`, say) propagate to the caller unchanged.
    """
    _ensure_event_loop()
    mocks = _PlanMocks(fresh, invokes)
    monitor = _RecordingMonitor(mocks)
    # A fresh root Stack per run: set_mocks reuses an existing one, with the previous run's outputs.
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=project.name, stack=stack, preview=fresh, monitor=monitor)
    # The real language host sets the project root; MockSettings leaves a dummy value.
    settings.SETTINGS.root_directory = str(project.root)
    pulumi.runtime.set_all_config(dict(flat), list(secret_keys))

    main = str(project.main / "__main__.py")

    def program() -> None:
        # Executed the way the Python language host runs `main: infra/`.
        runpy.run_path(main, run_name="__main__")

    _sync_await(run_pulumi_func(program))

    root = settings.get_root_resource()
    raw_outputs: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})
    outputs = {name: _resolve(value) for name, value in raw_outputs.items()}
    return Plan(project=project.name, stack=stack, resources=tree_order(monitor.recorded),
                outputs=outputs, warnings=list(warnings), registered=[r.urn for r in monitor.recorded])


def _ensure_event_loop() -> None:
    """The Pulumi runtime creates futures on the thread's current loop; after an `asyncio.run` (a hook's
    test, an operation) the main thread has none left, and set_mocks would fail."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def tree_order(resources: list[PlannedResource]) -> list[PlannedResource]:
    """Parents before their children, siblings sorted by name (then type): the same for every run."""
    urns = {r.urn for r in resources}
    children: dict[str | None, list[PlannedResource]] = {}
    for r in resources:
        children.setdefault(r.parent if r.parent in urns else None, []).append(r)
    ordered: list[PlannedResource] = []

    def visit(parent: str | None) -> None:
        for child in sorted(children.get(parent, []), key=lambda r: (r.name, r.type)):
            ordered.append(child)
            visit(child.urn)

    visit(None)
    return ordered


def plan_stack(project: Project, stack_settings: StackSettings, *, fresh: bool = False) -> Plan:
    """Plan one stack from its loaded settings."""
    return run_program(project, stack_settings.stack, stack_settings.flat,
                       stack_settings.secret_keys, stack_settings.warnings, fresh=fresh)


def _resolve(value: Any) -> Any:
    output = pulumi.Output.from_input(value)
    if _sync_await(output.is_secret()):
        return REDACTED
    if not _sync_await(output.is_known()):
        return UNKNOWN_SHOWN
    return redact(_sync_await(output.future()))

