"""How a stack config's problems are told: every bad key at once, each with what was found,
what is allowed and the fix, so one edit fixes a broken stack file instead of one edit per run."""

from __future__ import annotations

import difflib
import json
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from booking_shared.errors import InputError, KeyedValueError
from booking_shared.naming import NAMESPACE, SECRET_KEYS
from stackconfig.model import StackConfig
from stackconfig.sections import Tenant


@dataclass(frozen=True)
class ConfigProblem:
    key: str  # without the namespace, e.g. "domain" or "tenants[0].hostname"; other namespaces in full
    found: str
    allowed: str
    fix: str | None = None  # None: the usual edit / `pulumi config set` hint


class ConfigError(InputError):
    """A stack's configuration cannot be used; `problems` lists every bad key.

    The Pulumi program raises it as the engine's own error (infra/config.py `EngineConfigError`, a
    `pulumi.RunError`), so under `pulumi up` the language host prints the message alone.
    """

    def __init__(self, source: str, stack: str, problems: Iterable[ConfigProblem]) -> None:
        self.source, self.stack, self.problems = source, stack, list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} configuration problem(s) in stack '{self.stack}':"]
        for p in self.problems:
            lines.append(f"  - {full_key(p.key)}: found {p.found}; expected {p.allowed}.")
            lines.append(f"    fix: {p.fix or _fix_hint(p.key, self.stack, self.source)}")
        return "\n".join(lines)


def full_key(key: str) -> str:
    return key if ":" in key.split("[")[0].split(".")[0] else f"{NAMESPACE}:{key}"


def _fix_hint(key: str, stack: str, source: str) -> str:
    top = key.split("[")[0].split(".")[0]
    if top in SECRET_KEYS:
        return (f"remove any plain value from {source}, then run "
                f"`pulumi config set --secret {NAMESPACE}:{top} <value> --stack {stack}`")
    if top == "tenants":
        return f"edit the {NAMESPACE}:tenants list in {source}"
    if top == "saas":
        field = key.split(".", 1)[1] if "." in key else "zoneId"
        return (f"edit the {NAMESPACE}:saas object in {source}, or run "
                f"`pulumi config set --path {NAMESPACE}:saas.{field} <value> --stack {stack}`")
    return f"edit {NAMESPACE}:{top} in {source}, or run `pulumi config set {NAMESPACE}:{top} <value> --stack {stack}`"


def shown(value: object) -> str:
    if value is None:
        return "nothing (key not set)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "...'"



def top_key(key: str) -> str:
    return key.split("[")[0].split(".")[0]


def problems_from(exc: ValidationError, raw: Mapping[str, Any], stack: str, source: str) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, KeyedValueError):
            problems.append(ConfigProblem(ctx_err.key, shown(ctx_err.found), ctx_err.allowed))
            continue
        key = _format_loc(loc)
        top = loc[0] if loc else ""
        if err["type"] == "extra_forbidden":
            problems.append(_unknown_key(key, loc, stack, source))
            continue
        if err["type"] == "missing":
            found = "nothing (key not set)"
        elif top in SECRET_KEYS:
            found = "a value (not shown)"
        else:
            found = shown(_dig(raw, loc))
        # Our validators' ValueErrors already say what is allowed; pydantic's own errors do not.
        allowed = str(ctx_err) if isinstance(ctx_err, Exception) else _plain(err)
        problems.append(ConfigProblem(key, found, allowed))
    return problems


def _unknown_key(key: str, loc: list[str], stack: str, source: str) -> ConfigProblem:
    """An unknown key, answered with the keys allowed where it is and the nearest of them."""
    if loc == ["preDeployExport"]:
        return ConfigProblem(key, "the key's old place", "booking:rollout.preDeployExport",
                             f"move it into booking:rollout in {source}: `booking:rollout: "
                             "{preDeployExport: true}`")
    in_tenant = loc[0] == "tenants" and len(loc) == 3
    in_rollout = loc[0] == "rollout" and len(loc) == 2
    in_saas = loc[0] == "saas" and len(loc) == 2
    model: type[BaseModel] = Tenant if in_tenant else _model_at(loc[:-1])
    known = sorted(field.alias or name for name, field in model.model_fields.items())
    nearest = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    where = f"{NAMESPACE}:{key.rsplit('.', 1)[0]}." if in_tenant or len(loc) > 1 else f"{NAMESPACE}:"
    hint = f" (did you mean {where}{nearest[0]}?)" if nearest else ""
    if nearest:
        fix = f"rename {NAMESPACE}:{key} to {where}{nearest[0]} in {source}"
    else:
        fix = f"remove {NAMESPACE}:{key} from {source}: the program reads no such key"
    if in_rollout:
        fix += f" (booking:rollout has only {', '.join(known)})"
    if in_tenant:
        fix += f" (a tenant has only {', '.join(known)})"
    if in_saas:
        fix += f" (booking:saas has only {', '.join(known)})"
    return ConfigProblem(key, "an unknown key", f"one of: {', '.join(known)}{hint}", fix)


def _model_at(path: list[str]) -> type[BaseModel]:
    """The model that holds the keys at `path` (e.g. rateLimits.login -> EndpointLimit)."""
    model: type[BaseModel] = StackConfig
    for part in path:
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        inner = field.annotation if field is not None else None
        # An optional section (`saas: SaasConfig | None`) holds the keys of its model.
        inner = next((a for a in typing.get_args(inner) if isinstance(a, type) and issubclass(a, BaseModel)), inner)
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return model
        model = inner
    return model


# Pydantic's error types in the words of this file's other messages ("expected <allowed>").
_PLAIN = {
    "missing": "a value (the key is required)",
    "int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_parsing": "a number", "float_type": "a number", "finite_number": "a finite number",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list", "tuple_type": "a list",
    "model_type": "an object of keys and values", "model_attributes_type": "an object of keys and values",
    "dict_type": "an object of keys and values",
    "date_type": "a date written YYYY-MM-DD", "date_parsing": "a date written YYYY-MM-DD",
    "date_from_datetime_parsing": "a date written YYYY-MM-DD",
    "date_from_datetime_inexact": "a date written YYYY-MM-DD",
}
_BOUNDS = {"greater_than_equal": ("ge", "greater than or equal to"), "greater_than": ("gt", "greater than"),
           "less_than_equal": ("le", "less than or equal to"), "less_than": ("lt", "less than")}


def _plain(err: Any) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        return f"a number {words} {ctx.get(name)}"
    if kind == "literal_error":
        return f"one of {ctx.get('expected')}"
    if kind in _PLAIN:
        detail = ctx.get("error")
        return _PLAIN[kind] + (f" ({detail})" if kind.startswith("date") and detail else "")
    return str(err["msg"]).removeprefix("Value error, ").removeprefix("Input should be ")


def _format_loc(loc: list[str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _dig(raw: Mapping[str, Any], loc: list[str]) -> Any:
    value: Any = raw
    for part in loc:
        if isinstance(value, str) and value.startswith(("[", "{")):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return value
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return value
    return value

