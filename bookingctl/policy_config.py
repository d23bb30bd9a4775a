"""The policy config: what `--policy-config` (the JSON `pulumi preview --policy-pack-config` takes) says,
and how it is reconciled with the pack's own levels and settings as the Pulumi engine does.

Schema defaults first, then the pack's initial config, then the user's file (including the `all`
key), validated against each policy's schema. A policy the user's config makes block less than
the pack would is a `Downgrade`, listed in every output of the gate (bookingctl/gate.py) so a
reviewer sees it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from booking_shared.errors import InputError

LEVELS = ("advisory", "mandatory", "remediate", "disabled")
# Policy settings nest a few levels (retentionDays.production); protobuf's Struct and the schema
# validator recurse per level, so a deeper document would end in a RecursionError, not a message.
_MAX_DEPTH = 32

class PolicyConfigError(InputError):
    """The policy config file or its values are invalid (exit 2)."""


@dataclass(frozen=True)
class PolicyConfig:
    level: str | None
    properties: dict[str, Any]


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    description: str
    level: str
    severity: str
    remediation: str
    schema: dict[str, Any] | None


@dataclass(frozen=True)
class Downgrade:
    """A policy the user's policy config made weaker than the pack would run it (e.g. mandatory -> advisory)."""

    policy: str
    was: str
    now: str

    def to_dict(self) -> dict[str, str]:
        return {"policy": self.policy, "from": self.was, "to": self.now}


# How strongly a level blocks; remediate blocks like mandatory (and does for stack policies).
_STRENGTH = {"disabled": 0, "advisory": 1, "mandatory": 2, "remediate": 2}


def load_policy_config(path: Path) -> dict[str, PolicyConfig]:
    """Parse a `--policy-pack-config` JSON file: `{policy: level}` or `{policy: {enforcementLevel, ...}}`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyConfigError(f"cannot read policy config {path}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyConfigError(f"{path}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
                                "save it as UTF-8 JSON") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text, object_pairs_hook=_once)
    except _DuplicateKey as exc:
        raise PolicyConfigError(f"{path}: key {exc.args[0]!r} is set twice; JSON keeps the last silently, so which "
                                "one was meant is unclear: keep one") from None
    except json.JSONDecodeError as exc:
        raise PolicyConfigError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
    except RecursionError:
        data = None  # reported just below, with the limit
    if data is None or _depth(data) > _MAX_DEPTH:
        raise PolicyConfigError(f"{path}: nested more than {_MAX_DEPTH} levels deep; a policy config is an object "
                                "of policy -> level or settings, a few levels at most")
    if not isinstance(data, dict):
        raise PolicyConfigError(f"{path}: expected a JSON object of policy name -> level or settings")
    return parse_policy_config(data, str(path))


class _DuplicateKey(Exception):
    pass


def _once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each set once (as stack files are read: booking_shared/safeyaml.py)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _depth(value: Any) -> int:
    """How deeply lists and objects nest (iteratively: a deep document must not exhaust the stack)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level <= _MAX_DEPTH:
                pending += [(child, level + 1) for child in (item.values() if isinstance(item, dict) else item)]
    return deepest


def parse_policy_config(data: Mapping[str, Any], source: str = "policy config") -> dict[str, PolicyConfig]:
    result = {}
    for name, value in data.items():
        if isinstance(value, str):
            result[name] = PolicyConfig(_level(value, source, name), {})
        elif isinstance(value, dict):
            props = dict(value)
            level = props.pop("enforcementLevel", None)
            result[name] = PolicyConfig(_level(level, source, name) if level is not None else None, props)
        else:
            raise PolicyConfigError(f"{source}: {name!r} must be an enforcement level string or an object, "
                                    f"found {type(value).__name__}")
    return result


def _level(value: Any, source: str, name: str) -> str:
    if value not in LEVELS:
        raise PolicyConfigError(f"{source}: {name!r} has enforcement level {value!r}; "
                                f"allowed: {', '.join(LEVELS)}")
    return str(value)


def downgrades(baseline: Mapping[str, PolicyConfig], configured: Mapping[str, PolicyConfig]) -> list[Downgrade]:
    """Policies whose configured level blocks less than the pack's own (defaults and initial config)."""
    return [Downgrade(name, str(baseline[name].level), str(cfg.level)) for name, cfg in sorted(configured.items())
            if name in baseline and _STRENGTH.get(str(cfg.level), 0) < _STRENGTH.get(str(baseline[name].level), 0)]


def reconcile(policies: list[PolicyInfo], initial: dict[str, PolicyConfig],
              user: dict[str, PolicyConfig]) -> dict[str, PolicyConfig]:
    """Defaults from the schemas, then the pack's initial config, then the user's; then validate."""
    known = {p.name for p in policies}
    unknown = sorted(set(user) - known - {"all"})
    if unknown:
        raise PolicyConfigError(f"policy config names unknown policies: {', '.join(unknown)}; "
                                f"this pack has: {', '.join(sorted(known))}")
    result: dict[str, PolicyConfig] = {}
    for p in policies:
        defaults = {k: v["default"] for k, v in ((p.schema or {}).get("properties") or {}).items()
                    if isinstance(v, dict) and "default" in v}
        result[p.name] = PolicyConfig(p.level, defaults)
    for layer in (initial, user):
        everyone = layer.get("all")
        if everyone is not None and everyone.level is not None:
            result = {k: PolicyConfig(everyone.level, v.properties) for k, v in result.items()}
        for name, given in layer.items():
            if name == "all" or name not in result:
                continue
            current = result[name]
            result[name] = PolicyConfig(given.level or current.level, {**current.properties, **given.properties})
    problems = []
    for p in policies:
        if not p.schema:
            continue
        schema = {"type": "object", **p.schema}
        for error in jsonschema.Draft7Validator(schema).iter_errors(result[p.name].properties):
            where = "/".join(str(part) for part in error.absolute_path) or "(config)"
            problems.append(f"{p.name}: {where}: {error.message}")
    if problems:
        raise PolicyConfigError("policy config is invalid:\n  " + "\n  ".join(problems))
    return result
