"""The GraphQL Analytics API double: every query validated against a published schema, then executed.

The schema is test data (tests/helpers/cloudflare_graphql.graphql), copied from a published
introspection result of the live API and naming its source per type. graphql-core validates every
query against it, so an unknown field, argument or type is refused exactly as a schema-checking
server refuses it; introspection queries (`__type`, `__schema`) are answered from the same schema.

Answers take the API's shape (cloudflare/cloudflare-docs
src/content/docs/analytics/graphql-api/errors.mdx @ 19d57095d8fc6d34f29f6c3cce10325df26651c6):
every response has `errors`, null when there are none; an error object has `message`, `path`
("the nodes associated with the error, starting from the root") and `extensions.timestamp`. The
same page gives the HTTP status per kind of error: parsing issues such as "unknown field..." are
HTTP 400, "not authorized for that account" 403; an error met while executing a valid query comes
back in a 200 response beside whatever data could be read ("a 200 response can contain an error").

Executed queries read the Worker traffic model (tests/helpers/worker_traffic.py). The double models
only what the canary and its tests need; a valid query that asks for something it does not model
(another dimension, filter or metric, `orderBy`) gets an execution error naming it, never an
invented number.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    IntValueNode,
    Node,
    OperationDefinitionNode,
    StringValueNode,
    build_schema,
    execute_sync,
    parse,
    validate,
)

from tests.helpers.worker_traffic import Served, Traffic, sampled

SCHEMA_FILE = Path(__file__).with_name("cloudflare_graphql.graphql")

# What the double can answer from its traffic model; anything else in a valid query is refused by name.
DIMENSIONS = ("scriptName", "scriptVersion", "status", "datetimeMinute")
FILTERS = ("scriptName", "scriptVersion", "datetime_geq", "datetime_gt", "datetime_leq", "datetime_lt")
METRICS = {"sum": ("requests", "errors"), "quantiles": ("wallTimeP50", "wallTimeP75", "wallTimeP90", "wallTimeP99"),
           "avg": ("sampleInterval",)}


class NotAuthorized(GraphQLError):
    """The token's account is not the one asked for (errors.mdx: "not authorized for that account", 403)."""


@dataclass(frozen=True)
class Dataset:
    """What the resolvers read: the account, the served traffic a query may see now, the sample interval."""

    account_id: str
    # (script, since, until) -> what the script's versions served in that window and is already visible
    served: Callable[[str, dt.datetime, dt.datetime], list[Served]]
    sample_interval: int
    now: Callable[[], dt.datetime]


def _time(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise TypeError(f"Time must be an RFC 3339 string, not {value!r}")
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"Time {value!r} has no time zone")
    return moment


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"string expected, not {value!r}")
    return value


def _uint64(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"uint64 expected, not {value!r}")
    return value


def _literal(kind: type[Node], convert: Callable[[Any], Any]) -> Callable[..., Any]:
    def parse_literal(node: Node, _variables: Any = None) -> Any:
        if not isinstance(node, kind):
            raise TypeError(f"{type(node).__name__} is not a {kind.__name__}")
        return convert(int(node.value) if isinstance(node, IntValueNode) else node.value)  # type: ignore[attr-defined]
    return parse_literal


@cache
def schema() -> GraphQLSchema:
    """The published schema with the custom scalars' rules and the double's resolvers."""
    built = build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))
    for name, convert, kind in (("Time", _time, StringValueNode), ("string", _string, StringValueNode),
                                ("uint64", _uint64, IntValueNode)):
        scalar = built.type_map[name]
        assert isinstance(scalar, GraphQLScalarType)
        scalar.parse_value = convert  # type: ignore[method-assign]
        scalar.parse_literal = _literal(kind, convert)  # type: ignore[method-assign]
    built.type_map["Time"].serialize = lambda v: v.strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[attr-defined]
    query = built.query_type
    assert query is not None
    query.fields["viewer"].resolve = lambda _root, info: info.context
    built.type_map["viewer"].fields["accounts"].resolve = _accounts  # type: ignore[attr-defined]
    built.type_map["account"].fields["workersInvocationsAdaptive"].resolve = _invocations  # type: ignore[attr-defined]
    return built


def _accounts(dataset: Dataset, _info: GraphQLResolveInfo, filter: dict[str, Any]) -> list[Dataset]:
    if filter["accountTag"] != dataset.account_id:
        raise NotAuthorized("not authorized for that account")
    return [dataset]


def _selected(node: FieldNode) -> dict[str, list[str]]:
    """The row's selection as {object field: [its fields]}; fragments are not modelled."""
    chosen: dict[str, list[str]] = {}
    for selection in node.selection_set.selections if node.selection_set else ():
        if not isinstance(selection, FieldNode) or selection.name.value == "__typename":
            if isinstance(selection, FieldNode):
                continue
            raise GraphQLError("the double does not model fragments inside workersInvocationsAdaptive")
        inner = selection.selection_set.selections if selection.selection_set else ()
        names = [s.name.value for s in inner if isinstance(s, FieldNode) and s.name.value != "__typename"]
        if len(names) != len([s for s in inner if not (isinstance(s, FieldNode) and s.name.value == "__typename")]):
            raise GraphQLError("the double does not model fragments inside workersInvocationsAdaptive")
        chosen[selection.name.value] = names
    return chosen


def _invocations(dataset: Dataset, info: GraphQLResolveInfo, filter: dict[str, Any], limit: int,
                 orderBy: list[str] | None = None) -> list[dict[str, Any]]:
    unmodelled = [key for key in filter if key not in FILTERS]
    if unmodelled or orderBy:
        raise GraphQLError(f"the double does not model {', '.join(unmodelled) or 'orderBy'}")
    since = filter.get("datetime_geq", filter.get("datetime_gt"))
    until = filter.get("datetime_leq", filter.get("datetime_lt"))
    if since is None or until is None or "scriptName" not in filter:
        raise GraphQLError("the double models only windows with both datetime bounds and a scriptName")
    chosen = _selected(info.field_nodes[0])
    dims = chosen.get("dimensions", [])
    asked = [f"dimensions.{d}" for d in dims if d not in DIMENSIONS]
    asked += [f"{group}.{name}" for group, names in chosen.items() if group != "dimensions"
              for name in names if name not in METRICS.get(group, ())]
    if asked:
        raise GraphQLError(f"the double does not model {', '.join(asked)}")

    # (requests, errors, median ms, p99 ms, the version's model)
    groups: dict[tuple[Any, ...], list[tuple[float, float, float, float, Traffic]]] = defaultdict(list)
    for part in dataset.served(filter["scriptName"], since, until):
        if filter.get("scriptVersion") not in (None, part.version):
            continue
        for status, count, errors in (("success", part.requests - part.thrown, 0.0),
                                      ("scriptThrewException", part.thrown, part.thrown)):
            values = {"scriptName": filter["scriptName"], "scriptVersion": part.version, "status": status,
                      "datetimeMinute": part.minute}
            groups[tuple(values[d] for d in dims)].append((count, errors, part.model.latency_ms,
                                                           part.model.latency_p99_ms, part.model))

    rows: list[dict[str, Any]] = []
    interval = dataset.sample_interval
    for key, parts in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        kept, requests = sampled(sum(p[0] for p in parts), interval)
        if not kept:
            continue  # no sampled row: the group is absent from the answer, as an adaptive dataset's would be
        _, errors = sampled(sum(p[1] for p in parts), interval)
        rows.append({"dimensions": dict(zip(dims, key, strict=True)),
                     "sum": {"requests": requests, "errors": errors},
                     "quantiles": {"wallTimeP50": _median_us(parts), "wallTimeP75": _level_us(parts, 0.75),
                                   "wallTimeP90": _level_us(parts, 0.9), "wallTimeP99": _p99_us(parts)},
                     "avg": {"sampleInterval": float(interval)}})
    return rows[:limit]


Parts = list[tuple[float, float, float, float, Traffic]]


def _level_us(parts: Parts, level: float) -> float:
    """The group's wall time at `level` in microseconds, as `_p99_us` reads the slowest part's."""
    return max(p[4].latency_quantile_ms(level) for p in parts) * 1000.0


def _median_us(parts: Parts) -> float:
    """The weighted median wall time, in microseconds as the schema's quantiles are."""
    total = sum(p[0] for p in parts)
    seen = 0.0
    for count, _, ms, _, _ in sorted(parts, key=lambda p: p[2]):
        seen += count
        if seen >= total / 2:
            return ms * 1000.0
    return 0.0


def _p99_us(parts: Parts) -> float:
    """The group's 99th percentile wall time in microseconds: each version's model has one, and a
    group's parts share a version unless the query groups by less (then the slowest part's)."""
    return max(p[3] for p in parts) * 1000.0


def _path_to(document: Any, target: Node) -> list[str]:
    """The response keys from the root down to `target` (the error's node), as the API's `path` names them."""
    def walk(selections: Any, trail: list[str]) -> list[str] | None:
        for selection in selections:
            if not isinstance(selection, FieldNode):
                continue
            here = [*trail, (selection.alias or selection.name).value]
            if selection is target:
                return here
            found = walk(selection.selection_set.selections if selection.selection_set else (), here)
            if found is not None:
                return found
        return None
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            found = walk(definition.selection_set.selections, [])
            if found is not None:
                return found
    return []


def _error(message: str, path: list[Any], now: dt.datetime) -> dict[str, Any]:
    return {"message": message, "path": path,
            "extensions": {"timestamp": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}


def answer(body: dict[str, Any], dataset: Dataset) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for one POST /graphql."""
    now = dataset.now()
    query = body.get("query")
    if not isinstance(query, str):
        return 400, {"data": None, "errors": [_error("query contains error, please review it and retry", [], now)]}
    try:
        document = parse(query)
    except GraphQLError as exc:
        return 400, {"data": None, "errors": [_error(f"error parsing query: {exc.message}", [], now)]}
    invalid = validate(schema(), document)
    if invalid:
        return 400, {"data": None, "errors": [
            _error(e.message, _path_to(document, e.nodes[0]) if e.nodes else [], now) for e in invalid]}
    result = execute_sync(schema(), document, context_value=dataset,
                          variable_values=body.get("variables") or None, operation_name=body.get("operationName"))
    # The API writes list indexes in a path as strings ("0": the first account), errors.mdx's example.
    errors = [_error(e.message, [str(p) for p in e.path or []], now) for e in result.errors or []]
    if result.data is None and errors and not any(e.path for e in result.errors or []):
        # Arguments that do not fit their types (a variable that is not a Time): "error parsing args...", 400.
        return 400, {"data": None, "errors": errors}
    if any(isinstance(e.original_error, NotAuthorized) or isinstance(e, NotAuthorized)
           for e in result.errors or []):
        return 403, {"data": None, "errors": errors}
    return 200, {"data": result.data, "errors": errors or None}
