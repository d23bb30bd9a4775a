"""Helpers for policy tests: change one field of a planned stack, run the gate over gRPC."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from pulumi.runtime import rpc

from booking_shared.checklist import ITEMS
from booking_shared.deploy import migrations_checksum
from bookingctl.gate import GateResult, PackProcess, Violation, evaluate
from bookingctl.planner import Plan
from bookingctl.policy_config import PolicyConfig, parse_policy_config
from tests.helpers import REPO

# The policy pack folder, as the engine is given it (`--policy-pack policies`).
PACK = REPO / "policies"

# Every item of the guide's checklist true, for the commit being deployed.
COMPLETE_EVIDENCE: dict[str, Any] = {"commit": "3e8d5e0a1b2c", **{key: True for key in ITEMS}}
# `bookingctl migrate check --format json` of this tree, nothing pending (migrations-rollback-safe): a
# pull request's check of a scratch copy, bound to this tree's migrations, so it fits both stacks.
SAFE_MIGRATIONS: dict[str, Any] = {"verdict": "safe", "target": "local /tmp/base.sqlite", "scope": "pull-request",
                                   "servingQueries": 15, "migrationsChecksum": migrations_checksum(REPO / "migrations"),
                                   "migrations": []}
# `migrate rehearse` evidence of the same pull request: nothing pending, on seeded data.
SAFE_REHEARSAL: dict[str, Any] = {"verdict": "safe", "source": "/tmp/base.sqlite", "database": None,
                                  "backupCreatedAt": None, "scope": "pull-request",
                                  "migrationsChecksum": migrations_checksum(REPO / "migrations"), "migrations": []}


def _set(container: Any, path: tuple[Any, ...], value: Any) -> bool:
    """Set `value` at `path`, stepping through secret wrappers; False when the path is absent."""
    node = container
    for step in path[:-1]:
        if rpc.is_rpc_secret(node):
            node = node["value"]
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return False
    if rpc.is_rpc_secret(node):
        node = node["value"]
    if value is _DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return True


_DELETE = object()


def changed(plan: Plan, name: str, path: tuple[Any, ...] = (), value: Any = None, *,
            protect: bool | None = None, delete: bool = False) -> Plan:
    """A copy of `plan` with one field of resource `name` changed (in its inputs and outputs)."""
    resources = []
    hit = False
    for r in plan.resources:
        if r.name != name:
            resources.append(r)
            continue
        hit = True
        inputs, outputs = copy.deepcopy(r.raw_inputs), copy.deepcopy(r.raw_outputs)
        if path:
            new = _DELETE if delete else value
            found = _set(inputs, path, new)
            found = _set(outputs, path, new) or found
            assert found, f"{name} has no input {path}"
        resources.append(dataclasses.replace(
            r, raw_inputs=inputs, raw_outputs=outputs, protect=r.protect if protect is None else protect))
    assert hit, f"no resource named {name}"
    return dataclasses.replace(plan, resources=resources)


def without(plan: Plan, type_token: str) -> Plan:
    return dataclasses.replace(plan, resources=[r for r in plan.resources if r.type != type_token])


def gate(pack: PackProcess, plan: Plan, config: dict[str, Any] | None = None,
         evidence: dict[str, Any] | None = None, migrations: dict[str, Any] | None = SAFE_MIGRATIONS,
         rehearsal: dict[str, Any] | None = SAFE_REHEARSAL) -> GateResult:
    """The gate over `plan`; `migrations` and `rehearsal` are the migrate-check and migrate-rehearse
    evidence (None: none given, as CI without it)."""
    user: dict[str, PolicyConfig] = parse_policy_config(config or {})
    if evidence is not None:
        user["pre-deploy-checklist"] = PolicyConfig(None, dict(evidence))
    if migrations is not None and "migrations-rollback-safe" not in user:
        user["migrations-rollback-safe"] = PolicyConfig(None, dict(migrations))
    if rehearsal is not None and "migrations-rehearsed" not in user:
        user["migrations-rehearsed"] = PolicyConfig(None, dict(rehearsal))
    return evaluate(plan, pack, user)


def found(result: GateResult, policy: str) -> list[Violation]:
    return [v for v in result.violations if v.policy == policy]


def not_applicable(result: GateResult, policy: str) -> list[str]:
    return [reason for name, reason in result.not_applicable if name == policy]
