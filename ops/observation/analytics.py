"""Per-version traffic of the API Worker, from the two Cloudflare sources that carry the version id.

A canary is judged on what its own requests saw, so every number is per version:

- **Invocations** (GraphQL Analytics API, `workersInvocationsAdaptive`): requests and the runtime's
  `errors` grouped by `dimensions { scriptVersion status }`, the wall time's quantiles
  (`quantiles { wallTimeP50 wallTimeP75 wallTimeP90 wallTimeP99 }`, microseconds) and
  `avg { sampleInterval }`. Every field is in the published schema
  (tests/helpers/cloudflare_graphql.graphql names its source); the dataset has no
  HTTP status (no `httpResponseStatus`), and "Invocation statuses differ from HTTP status codes"
  (cloudflare-docs workers/observability/metrics-and-analytics.mdx): a handled error answered 503,
  such as the health endpoint's, is a *successful* invocation.
- **HTTP answers** (Workers Analytics Engine): the reference Worker writes one data point per
  request to its `REQUESTS` dataset, indexed by its version id, with the HTTP status (`double1`) and
  the milliseconds it took (`double2`) (worker/src/index.js); the median, 75th, 90th, 95th, 98th and 99th
  percentiles are `quantileExactWeighted(level)` of `double2` (the level is the function's parameter,
  sql-reference/aggregate-functions.mdx). The SQL API
  (`POST /accounts/{id}/analytics_engine/sql`, cloudflare-docs analytics/analytics-engine/sql-api.mdx)
  answers one version per query, as the docs advise for accurate results under sampling ("you may
  only be able to query for one host at a time", analytics-engine/sampling.mdx).

Both are sampled: an adaptive GraphQL dataset answers "an estimate derived from the sampled value"
(analytics/graphql-api/sampling.mdx) and Analytics Engine rows carry `_sample_interval`, so counts
are `SUM(_sample_interval)` and the median is `quantileExactWeighted(0.5)(double2, _sample_interval)`
(sql-api.mdx, "Sampling"). `VersionTraffic.sampled` keeps how many rows stand behind an estimate:
the docs' rule of thumb for trusting one is the number of rows read, `count()` (analytics/faq/wae-faqs.mdx).

Queries go through the official SDK's client (its auth, timeouts and retries: a query is a read).
Two kinds of failure are kept apart. An answer that is not there (an HTTP error, GraphQL `errors`, no
account visible to the token) yields None, "no numbers", never zero traffic: the verdict rests on the
probes. An answer that is there but holds what no real answer can (a count that is text, negative
or infinite, more errors than requests, a NaN median, a row of the wrong shape) raises
UnreadableAnalytics, and the canary rolls back: numbers that cannot be read cannot clear a release.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from booking_shared.errors import OperationFailed
from ops.observation.traffic import Kept as Kept
from ops.observation.traffic import VersionTraffic as VersionTraffic
from ops.targets import WorkerScript

if TYPE_CHECKING:
    from cloudflare import Cloudflare

GRAPHQL_QUERY = """query CanaryInvocations($account: string!, $script: string!, $since: Time!, $until: Time!) {
  viewer {
    accounts(filter: {accountTag: $account}) {
      workersInvocationsAdaptive(limit: 1000,
                                 filter: {scriptName: $script, datetime_geq: $since, datetime_leq: $until}) {
        sum { requests errors }
        quantiles { wallTimeP50 wallTimeP75 wallTimeP90 wallTimeP99 }
        avg { sampleInterval }
        dimensions { scriptVersion status }
      }
    }
  }
}"""

# Invocation statuses that are not failures of the Worker (Cloudflare's "Invocation statuses" table).
_FINE = {"success", "clientDisconnected"}
TAIL_ROWS = 100  # requests behind a p99 that has at least one request above it

# What may be written into the SQL text: version ids are UUIDs, dataset names plain identifiers.
_VERSION = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The length bound is the project's own: any requests_dataset() of a Worker name config accepts
# (1-63 characters, plus "_requests"), or the canary would silently read no HTTP answers.
_DATASET = re.compile(r"[a-z][a-z0-9_]{0,71}")


class UnreadableAnalytics(OperationFailed, ValueError):
    """An analytics answer arrived but holds what no real answer can; the message names the row and field."""


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sql_time(moment: dt.datetime) -> str:
    # toDateTime takes 'YYYY-MM-DD hh:mm:ss' in UTC, no ISO 8601 zone (sql-reference/date-time-functions.mdx).
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _count(value: Any) -> int | None:
    """A non-negative whole count, as JSON number or as the numeric string ClickHouse-style JSON may use."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value)):
        try:
            number = float(value)
        except OverflowError:  # an integer literal too large for a float (json gives it as an int)
            return None
        # 1e400 in JSON (or a 400-digit string) reads as inf: unreadable, never an OverflowError.
        return int(number) if math.isfinite(number) and number >= 0 and number.is_integer() else None
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnreadableAnalytics(f"{where} is {_shown(value)}, not an object")
    return value


def _shown(value: Any) -> str:
    return repr(value)[:60]


@dataclass
class _Sums:
    """One version's running sums over its rows."""

    requests: int = 0
    errors: int = 0
    weighted_wall: float = 0.0  # median wall time x requests, over rows that have one
    timed: int = 0
    rows_read: float = 0.0
    tail: float | None = None  # the largest p99 of the rows of answered invocations
    middle: dict[float, float] = field(default_factory=dict)  # p75, p90: the largest, as the tail


def aggregate(rows: list[Any]) -> dict[str, VersionTraffic]:
    """`workersInvocationsAdaptive` rows (one per version and invocation status) summed per version.

    A version's 99th percentile is the largest of its answered rows' (statuses `success` and
    `clientDisconnected`): a percentile of a mixture is never above its parts' largest, so this
    never understates the tail, and the dataset gives no finer grouping to merge them exactly.
    Failed invocations are judged as errors, not on how long they took to fail.

    Raises UnreadableAnalytics naming the first row that cannot be counts: one such row makes the
    whole answer unreadable, since a partial sum would read as clean traffic.
    """
    totals: dict[str, _Sums] = {}
    for number, row in enumerate(rows, start=1):
        where = f"row {number}"
        row = _object(row, where)
        dims, summed = _object(row.get("dimensions"), f"{where}: dimensions"), _object(row.get("sum"), f"{where}: sum")
        version, status = dims.get("scriptVersion"), dims.get("status")
        if not isinstance(version, str) or not version:
            raise UnreadableAnalytics(f"{where}: dimensions.scriptVersion is {_shown(version)}, not a version id")
        # `status` is a string dimension of the dataset (tests/helpers/cloudflare_graphql.graphql).
        if not isinstance(status, str):
            raise UnreadableAnalytics(f"{where}: dimensions.status is {_shown(status)}, not an invocation status")
        requests, runtime_errors = _count(summed.get("requests")), _count(summed.get("errors"))
        if requests is None or runtime_errors is None:
            bad = "requests" if requests is None else "errors"
            raise UnreadableAnalytics(f"{where}: sum.{bad} is {_shown(summed.get(bad))}, not a count")
        if runtime_errors > requests:
            raise UnreadableAnalytics(f"{where}: sum.errors {runtime_errors} is more than sum.requests {requests}")
        # `avg` and `quantiles` may be absent (null); present, they are objects of numbers.
        averages = _object(row.get("avg") or {}, f"{where}: avg")
        quantiles = _object(row.get("quantiles") or {}, f"{where}: quantiles")
        interval = _measure(averages.get("sampleInterval"), f"{where}: avg.sampleInterval", least=1.0)
        wall = _measure(quantiles.get("wallTimeP50"), f"{where}: quantiles.wallTimeP50", least=0.0)
        tail = _measure(quantiles.get("wallTimeP99"), f"{where}: quantiles.wallTimeP99", least=0.0)
        middle = {level: _measure(quantiles.get(name), f"{where}: quantiles.{name}", least=0.0)
                  for level, name in ((0.75, "wallTimeP75"), (0.9, "wallTimeP90"))}
        sums = totals.setdefault(version, _Sums())
        # A row is one invocation status: either all its requests failed or only the runtime's own count did.
        sums.errors += requests if status not in _FINE else runtime_errors
        sums.requests += requests
        sums.rows_read += requests / (interval or 1.0)
        if wall is not None and requests:
            sums.weighted_wall, sums.timed = sums.weighted_wall + wall * requests, sums.timed + requests
        # A row's p99 counts where it rests on a tail: the success row's always, a clientDisconnected
        # row's only from TAIL_ROWS requests (one closed tab's wall time would otherwise be the
        # version's p99; what that wall time measures is not documented).
        if requests and (status == "success" or (status in _FINE and requests >= TAIL_ROWS)):
            if tail is not None:
                sums.tail = tail if sums.tail is None else max(sums.tail, tail)
            for level, value in middle.items():
                if value is not None:
                    sums.middle[level] = max(sums.middle.get(level, value), value)
    return {version: VersionTraffic(t.requests, t.errors, (t.weighted_wall / t.timed) / 1e6 if t.timed else None,
                                    tail_latency_seconds=None if t.tail is None else t.tail / 1e6,
                                    quantiles=tuple((level, v / 1e6) for level, v in sorted(t.middle.items())),
                                    sampled=round(t.rows_read))
            for version, t in totals.items()}


def _measure(value: Any, where: str, *, least: float) -> float | None:
    """A finite number of at least `least`, or None when absent; anything else is unreadable."""
    if value is None:
        return None
    number = _number(value)
    if number is None or number < least:
        raise UnreadableAnalytics(f"{where} is {_shown(value)}, not a number of at least {least:g}")
    return number


def invocations(worker: WorkerScript, since: dt.datetime,
                until: dt.datetime) -> dict[str, VersionTraffic] | None:
    """Invocations per version id between `since` and `until`, or None when the API gave no numbers.

    Raises UnreadableAnalytics when the answer holds what no real answer can.
    """
    import cloudflare
    import httpx

    try:
        response = worker.client.post("/graphql", cast_to=httpx.Response, body={
            "query": GRAPHQL_QUERY,
            "variables": {"account": worker.account_id, "script": worker.name, "since": _iso(since),
                          "until": _iso(until)}})
        body = response.json()
    except (cloudflare.APIError, ValueError):
        return None
    if isinstance(body, dict) and body.get("errors"):
        return None  # the API says the query failed: no numbers
    try:
        accounts = body["data"]["viewer"]["accounts"]
    except (KeyError, IndexError, TypeError) as exc:
        raise UnreadableAnalytics(f"the answer has no data.viewer.accounts ({_shown(body)})") from exc
    if not isinstance(accounts, list):
        raise UnreadableAnalytics(f"data.viewer.accounts is {_shown(accounts)}, not a list")
    if not accounts:
        # The filter names one account tag: none back means the token cannot read that account's
        # analytics (or it is the wrong account). Nothing was measured, which is not zero traffic.
        return None
    rows = _object(accounts[0], "data.viewer.accounts[0]").get("workersInvocationsAdaptive")
    if not isinstance(rows, list):
        raise UnreadableAnalytics(f"workersInvocationsAdaptive is {_shown(rows)}, not a list of rows")
    return aggregate(rows)


def requests_sql(dataset: str, version: str, since: dt.datetime, until: dt.datetime) -> str:
    """The Analytics Engine query for one version's requests in [since, until): one row of sums."""
    if not _DATASET.fullmatch(dataset) or not _VERSION.fullmatch(version):
        raise ValueError(f"not a dataset name and version id to query: {dataset!r}, {version!r}")
    return ("SELECT count() AS sampled, sum(_sample_interval) AS requests, "
            "sum(if(double1 >= 500, _sample_interval, 0)) AS errors, "
            "sum(if(double1 >= 500, 1, 0)) AS failed_rows, "
            "quantileExactWeighted(0.5)(double2, _sample_interval) AS median_ms, "
            "quantileExactWeighted(0.75)(double2, _sample_interval) AS p75_ms, "
            "quantileExactWeighted(0.9)(double2, _sample_interval) AS p90_ms, "
            "quantileExactWeighted(0.95)(double2, _sample_interval) AS p95_ms, "
            "quantileExactWeighted(0.98)(double2, _sample_interval) AS p98_ms, "
            "quantileExactWeighted(0.99)(double2, _sample_interval) AS p99_ms "
            f"FROM {dataset} WHERE index1 = '{version}' "
            f"AND timestamp >= toDateTime('{_sql_time(since)}') AND timestamp < toDateTime('{_sql_time(until)}') "
            "FORMAT JSON")


def units_sql(dataset: str, version: str, since: dt.datetime, until: dt.datetime, *, failing: bool) -> str:
    """The Analytics Engine query for one version's units (distinct blob1) in [since, until), or
    those of them with an answer of 500 or more: `count(DISTINCT ...)` (sql-reference/aggregate-functions.mdx)."""
    if not _DATASET.fullmatch(dataset) or not _VERSION.fullmatch(version):
        raise ValueError(f"not a dataset name and version id to query: {dataset!r}, {version!r}")
    return (f"SELECT count(DISTINCT blob1) AS units FROM {dataset} WHERE index1 = '{version}' "
            f"AND timestamp >= toDateTime('{_sql_time(since)}') AND timestamp < toDateTime('{_sql_time(until)}') "
            f"{'AND double1 >= 500 ' if failing else ''}FORMAT JSON")


def _sql_rows(client: Cloudflare, account_id: str, sql: str) -> list[dict[str, Any]] | None:
    """The rows of one SQL API answer; None when the API gave none (an error answer)."""
    import cloudflare
    import httpx

    try:
        response = client.post(f"/accounts/{account_id}/analytics_engine/sql", cast_to=httpx.Response,
                               content=sql.encode(), options={"headers": {"Content-Type": "text/plain"}})
        body = response.json()
    except (cloudflare.APIError, ValueError):
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or len(data) > 1 or not all(isinstance(r, dict) for r in data):
        raise UnreadableAnalytics(f"the SQL API answered {_shown(body)}, not one row of sums")
    return data


def _units(client: Cloudflare, account_id: str, dataset: str, version: str, since: dt.datetime,
           until: dt.datetime) -> tuple[int, int] | None:
    """(units, failing units) of one version, or None when either answer is missing."""
    found = []
    for failing in (False, True):
        rows = _sql_rows(client, account_id, units_sql(dataset, version, since, until, failing=failing))
        if rows is None:
            return None
        count = _count(rows[0].get("units")) if rows else 0
        if count is None:
            raise UnreadableAnalytics(f"units is {_shown(rows[0].get('units'))}, not a count")
        found.append(count)
    return found[0], found[1]


def http_answers(client: Cloudflare, account_id: str, dataset: str, version: str, since: dt.datetime,
                 until: dt.datetime) -> VersionTraffic | None:
    """One version's HTTP answers (5xx as errors, median and 99th percentile) from Analytics Engine, or None.

    None when the API gave no numbers; UnreadableAnalytics when its answer holds what no real one can.
    """
    data = _sql_rows(client, account_id, requests_sql(dataset, version, since, until))
    if data is None:
        return None
    row: dict[str, Any] = data[0] if data else {"sampled": 0, "requests": 0, "errors": 0, "failed_rows": 0,
                                                  "median_ms": None, "p99_ms": None}
    counts = {name: _count(row.get(name)) for name in ("sampled", "requests", "errors", "failed_rows")}
    for name, value in counts.items():
        if value is None:
            raise UnreadableAnalytics(f"{name} is {_shown(row.get(name))}, not a count")
    sampled, requests, errors = counts["sampled"] or 0, counts["requests"] or 0, counts["errors"] or 0
    if errors > requests:
        raise UnreadableAnalytics(f"errors {errors} is more than requests {requests}")
    # The median of no rows is whatever the engine makes of an empty set (NaN, null): only read with rows.
    median = _measure(row.get("median_ms"), "median_ms", least=0.0) if requests else None
    tail = _measure(row.get("p99_ms"), "p99_ms", least=0.0) if requests else None
    middle = [(level, _measure(row.get(name), name, least=0.0) if requests else None)
              for level, name in ((0.75, "p75_ms"), (0.9, "p90_ms"), (0.95, "p95_ms"), (0.98, "p98_ms"))]
    units = _units(client, account_id, dataset, version, since, until)
    failed_rows = counts["failed_rows"] or 0
    # Three queries, not one snapshot: rows that arrive between them can make the browsers counted
    # outnumber the rows summed a moment before. At most the rows (failing ones: the 5xx rows); never
    # fewer (rows only arrive), which `nonsense()` holds an answer to.
    counted = (min(units[0], sampled), min(units[1], errors, units[0], sampled)) if units else None
    # Exact units only where every row stands for itself: distinct values counted over sampled rows
    # favour the units with the most requests, differently per version (each index is sampled at its
    # own rate), so they are kept apart, as what one version's kept rows say.
    kept = (Kept(failed_rows, counted[0], min(counted[1], failed_rows))
            if counted is not None and sampled != requests else None)
    if sampled != requests:
        counted = None
    return VersionTraffic(requests, errors, None if median is None else median / 1000.0,
                          tail_latency_seconds=None if tail is None else tail / 1000.0,
                          quantiles=tuple((level, v / 1000.0) for level, v in middle if v is not None), sampled=sampled,
                          units=counted[0] if counted else None, failing_units=counted[1] if counted else None,
                          kept=kept)
