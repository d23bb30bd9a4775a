"""What `bookingctl drift` reads and reports (ops/observation/drift.py): a declared resource, a difference,
what was read live, and the run's context, shared by the readers of drift.py and drift_workers.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cloudflare import Cloudflare

Kind = Literal["changed", "missing", "unmanaged"]


@dataclass(frozen=True)
class Declared:
    """A resource the program declares: its type token, logical name, inputs (secrets unwrapped) and the id
    the plan gave it (a mock's id, "" when unknown): what another resource's inputs name it by (a Worker
    version's D1 binding, an alert's health check), never an id in the account."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    id: str = ""


@dataclass(frozen=True)
class Difference:
    kind: Kind
    resource: str  # "<Type> <name>" of the declared resource, or what was found live
    detail: str
    fix: str
    field: str | None = None
    declared: Any = None
    live: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Snapshot:
    """What was read live, per declared resource (by name): the pack's view of reality (`reality` in
    bookingctl/commands/drift.py patches the plan with it)."""

    live: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Context:
    client: Cloudflare
    account_id: str
    stack: str
    hostnames: frozenset[str]  # every hostname the stack serves
    differences: list[Difference] = field(default_factory=list)
    snapshot: Snapshot = field(default_factory=Snapshot)

    def up(self) -> str:
        # --refresh: a plain `up` compares the program with the state, which still says what was
        # declared, and changes nothing; refreshed, the state holds what the account holds, and the
        # update puts the declared value back.
        return f"pulumi up --refresh --stack {self.stack}"

    def add(self, kind: Kind, resource: str, detail: str, fix: str, **values: Any) -> None:
        self.differences.append(Difference(kind, resource, detail, fix, **values))


def short(declared: Declared) -> str:
    return f"{declared.type.rsplit(':', 1)[-1]} {declared.name}"


def compare(ctx: Context, declared: Declared, live: Mapping[str, Any], fields: Iterable[tuple[str, str]]) -> None:
    """`changed` for each (input, live field) pair whose values differ."""
    ctx.snapshot.live[declared.name] = dict(live)
    for declared_key, live_key in fields:
        want, have = declared.inputs.get(declared_key), live.get(live_key)
        if want is not None and want != have:
            ctx.add("changed", short(declared), f"{live_key} is {have!r} live, {want!r} declared", ctx.up(),
                    field=live_key, declared=want, live=have)


def report_missing(ctx: Context, declared: Declared, what: str, fix: str | None = None) -> None:
    ctx.add("missing", short(declared), f"{what} is not in the account", fix or ctx.up())


def provider_inputs(value: Any) -> Any:
    """The API's snake_case fields as the provider's inputs (action_parameters -> actionParameters),
    fields the API left empty (None) left out; header names (the keys under `headers`) are names and
    stay as they are. For comparing a live object with the declared inputs, and for the pack over
    reality (bookingctl/commands/drift.py)."""
    if isinstance(value, dict):
        return {k.split("_")[0] + "".join(p.title() for p in k.split("_")[1:]):
                v if k == "headers" else provider_inputs(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [provider_inputs(v) for v in value]
    return value
