"""Per-version traffic of the API Worker, from the two Cloudflare sources that carry the version id.

A canary is judged on what its own requests saw, so every number is per version:

- **Invocations** (GraphQL Analytics API, `workersInvocationsAdaptive`): requests and the runtime's
  `errors` grouped by `dimensions { scriptVersion status }`, the median wall time
  (`quantiles { wallTimeP50 }`, microseconds) and `avg { sampleInterval }`. Every field is in the
  published schema (tests/helpers/cloudflare_graphql.graphql names its source); the dataset has no
  HTTP status (no `httpResponseStatus`), and "Invocation statuses differ from HTTP status codes"
  (cloudflare-docs workers/observability/metrics-and-analytics.mdx): a handled error answered 503,
  such as the health endpoint's, is a *successful* invocation.
- **HTTP answers** (Workers Analytics Engine): the reference Worker writes one data point per
  request to its `REQUESTS` dataset, indexed by its version id, with the HTTP status (`double1`) and
  the milliseconds it took (`double2`) (worker/src/index.js). The SQL API
  (`POST /accounts/{id}/analytics_engine/sql`, cloudflare-docs analytics/analytics-engine/sql-api.mdx)
  answers one version per query, as the docs advise for accurate results under sampling ("you may
  only be able to query for one host at a time", analytics-engine/sampling.mdx).

Both are sampled: an adaptive GraphQL dataset answers "an estimate derived from the sampled value"
(analytics/graphql-api/sampling.mdx) and Analytics Engine rows carry `_sample_interval`, so counts
are `SUM(_sample_interval)` and the median is `quantileExactWeighted(0.5)(double2, _sample_interval)`
(sql-api.mdx, "Sampling"). `VersionTraffic.sampled` keeps how many rows stand behind an estimate:
the docs' rule of thumb for trusting one is the number of rows read, `count()` (analytics/faq/wae-faqs.mdx).

Queries go through the official SDK's client (its auth, timeouts and retries: a query is a read).
Anything that is not a well-formed answer (an HTTP error, GraphQL `errors`, an unexpected shape)
yields None, "no numbers", never zero traffic.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudflare import Cloudflare

GRAPHQL_QUERY = """query CanaryInvocations($account: string!, $script: string!, $since: Time!, $until: Time!) {
  viewer {
    accounts(filter: {accountTag: $account}) {
      workersInvocationsAdaptive(limit: 1000,
                                 filter: {scriptName: $script, datetime_geq: $since, datetime_leq: $until}) {
        sum { requests errors }
        quantiles { wallTimeP50 }
        avg { sampleInterval }
        dimensions { scriptVersion status }
      }
    }
  }
}"""

# Invocation statuses that are not failures of the Worker (Cloudflare's "Invocation statuses" table).
_FINE = {"success", "clientDisconnected"}

# What may be written into the SQL text: version ids are UUIDs, dataset names plain identifiers.
_VERSION = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The length bound is the project's own: any requests_dataset() of a Worker name config accepts
# (1-63 characters, plus "_requests"), or the canary would silently read no HTTP answers.
_DATASET = re.compile(r"[a-z][a-z0-9_]{0,71}")


@dataclass(frozen=True)
class VersionTraffic:
    """What one version's requests saw over a window."""

    requests: int = 0
    errors: int = 0  # failed requests (runtime failures, or HTTP 5xx answers: each source its own)
    latency_seconds: float | None = None  # median, weighted by requests
    # Rows of the sampled dataset behind the estimates (None: exact counts). Evidence for a verdict
    # is this many observations, however many requests they are estimated to stand for.
    sampled: int | None = None

    @property
    def error_rate_percent(self) -> float:
        return 100.0 * self.errors / self.requests if self.requests else 0.0

    @property
    def evidence(self) -> int:
        """The observations the numbers rest on: sampled rows, or the requests when counts are exact."""
        return self.requests if self.sampled is None else self.sampled

    @property
    def estimated(self) -> bool:
        return self.sampled is not None and self.sampled != self.requests

    def describe(self) -> str:
        """`1,000 requests` or `~1,000 requests (estimated from 100 sampled)`."""
        if self.estimated:
            return f"~{self.requests:,} requests (estimated from {self.sampled:,} sampled)"
        return f"{self.requests:,} requests"

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors,
                "errorRatePercent": round(self.error_rate_percent, 3),
                "latencySeconds": None if self.latency_seconds is None else round(self.latency_seconds, 3),
                "sampledRows": self.sampled, "estimated": self.estimated}


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
        number = float(value)
        # 1e400 in JSON (or a 400-digit string) reads as inf: unreadable, never an OverflowError.
        return int(number) if math.isfinite(number) and number >= 0 and number.is_integer() else None
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def aggregate(rows: list[dict[str, Any]]) -> dict[str, VersionTraffic] | None:
    """`workersInvocationsAdaptive` rows (one per version and invocation status) summed per version.

    A row whose counts cannot be read makes the whole answer unreadable (None): a partial sum would
    read as clean traffic.
    """
    totals: dict[str, tuple[int, int, float, int, float]] = {}
    for row in rows:
        dims, summed = row.get("dimensions") or {}, row.get("sum") or {}
        version, status = dims.get("scriptVersion"), dims.get("status")
        requests, runtime_errors = _count(summed.get("requests")), _count(summed.get("errors"))
        interval = _number((row.get("avg") or {}).get("sampleInterval"))
        if not isinstance(version, str) or not version or requests is None or runtime_errors is None:
            return None
        interval = interval if interval is not None and interval >= 1 else 1.0
        # A row is one invocation status: either all its requests failed or only the runtime's own count did.
        errors = requests if status is not None and status not in _FINE else runtime_errors
        wall = _number((row.get("quantiles") or {}).get("wallTimeP50"))
        r, e, weighted, timed, rows_read = totals.get(version, (0, 0, 0.0, 0, 0.0))
        if wall is not None and wall >= 0 and requests:  # a negative time is garbage, never a fast canary
            weighted, timed = weighted + wall * requests, timed + requests
        totals[version] = (r + requests, e + min(errors, requests), weighted, timed, rows_read + requests / interval)
    return {v: VersionTraffic(r, e, (w / t) / 1e6 if t else None, sampled=round(n))
            for v, (r, e, w, t, n) in totals.items()}


def invocations(client: Cloudflare, account_id: str, script: str, since: dt.datetime,
                until: dt.datetime) -> dict[str, VersionTraffic] | None:
    """Invocations per version id between `since` and `until`, or None when the API gave no numbers."""
    import cloudflare
    import httpx

    try:
        response = client.post("/graphql", cast_to=httpx.Response, body={
            "query": GRAPHQL_QUERY,
            "variables": {"account": account_id, "script": script, "since": _iso(since), "until": _iso(until)}})
        body = response.json()
    except (cloudflare.APIError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("errors"):
        return None
    try:
        accounts = body["data"]["viewer"]["accounts"]
        rows = accounts[0]["workersInvocationsAdaptive"] if accounts else []
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return None
    return aggregate(rows)


def requests_sql(dataset: str, version: str, since: dt.datetime, until: dt.datetime) -> str:
    """The Analytics Engine query for one version's requests in [since, until): one row of sums."""
    if not _DATASET.fullmatch(dataset) or not _VERSION.fullmatch(version):
        raise ValueError(f"not a dataset name and version id to query: {dataset!r}, {version!r}")
    return ("SELECT count() AS sampled, sum(_sample_interval) AS requests, "
            "sum(if(double1 >= 500, _sample_interval, 0)) AS errors, "
            "quantileExactWeighted(0.5)(double2, _sample_interval) AS median_ms "
            f"FROM {dataset} WHERE index1 = '{version}' "
            f"AND timestamp >= toDateTime('{_sql_time(since)}') AND timestamp < toDateTime('{_sql_time(until)}') "
            "FORMAT JSON")


def http_answers(client: Cloudflare, account_id: str, dataset: str, version: str, since: dt.datetime,
                 until: dt.datetime) -> VersionTraffic | None:
    """One version's HTTP answers (5xx as errors, median milliseconds) from Analytics Engine, or None."""
    import cloudflare
    import httpx

    try:
        response = client.post(f"/accounts/{account_id}/analytics_engine/sql", cast_to=httpx.Response,
                               content=requests_sql(dataset, version, since, until).encode(),
                               options={"headers": {"Content-Type": "text/plain"}})
        body = response.json()
    except (cloudflare.APIError, ValueError):
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or len(data) > 1 or not all(isinstance(r, dict) for r in data):
        return None
    row: dict[str, Any] = data[0] if data else {"sampled": 0, "requests": 0, "errors": 0, "median_ms": None}
    sampled, requests, errors = _count(row.get("sampled")), _count(row.get("requests")), _count(row.get("errors"))
    if sampled is None or requests is None or errors is None or errors > requests:
        return None
    median = _number(row.get("median_ms"))
    return VersionTraffic(requests, errors, None if median is None or median < 0 or not requests else median / 1000.0,
                          sampled=sampled)
