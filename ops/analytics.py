"""Per-version traffic of the API Worker, read from Cloudflare's GraphQL Analytics API.

A canary is judged on what its own requests saw, so the numbers are grouped by the script's
version. Errors are counted two ways, because either alone misses failures: the invocation
`status` (an exception, exceeded resources: the runtime's `errors`) and the HTTP status the
Worker answered with (a handled error answered as 5xx, such as the health endpoint's 503, is a
*successful* invocation and never reaches `errors`).

The query goes through the official SDK's client (its auth, timeouts and retries: a GraphQL query
is a read, so retrying it is harmless). Analytics are sampled and arrive with a short delay; a
query that fails or answers GraphQL errors yields None, "no numbers", never zero traffic: the
canary then says its verdict rests on the version-pinned probes (ops/canary.py).

Dataset and fields: `workersInvocationsAdaptive` (account scope) filtered by `scriptName` and a
`datetime` window, `sum { requests errors }`, `quantiles { wallTimeP50 }` (microseconds), grouped by
`dimensions { scriptVersion status httpResponseStatus }`. The dataset, filter and `sum`/`status`
fields are the ones Cloudflare's "Querying Workers Metrics with GraphQL" tutorial uses; the version
and HTTP-status dimensions could not be checked against the live schema from here (no network):
should the schema name them differently, the API answers a GraphQL error, which this module
reports as "no numbers", so a wrong name can never pass a bad canary on traffic.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudflare import Cloudflare

QUERY = """query CanaryTraffic($account: string!, $script: string!, $since: Time!, $until: Time!) {
  viewer {
    accounts(filter: {accountTag: $account}) {
      workersInvocationsAdaptive(limit: 1000,
                                 filter: {scriptName: $script, datetime_geq: $since, datetime_leq: $until}) {
        sum { requests errors }
        quantiles { wallTimeP50 }
        dimensions { scriptVersion status httpResponseStatus }
      }
    }
  }
}"""

# Invocation statuses that are not failures of the Worker (Cloudflare's "Invocation statuses" table).
_FINE = {"success", "clientDisconnected"}


@dataclass(frozen=True)
class VersionTraffic:
    """What one version's requests saw over a window."""

    requests: int = 0
    errors: int = 0  # runtime failures plus HTTP 5xx answers
    latency_seconds: float | None = None  # median wall time, weighted by requests

    @property
    def error_rate_percent(self) -> float:
        return 100.0 * self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors,
                "errorRatePercent": round(self.error_rate_percent, 3),
                "latencySeconds": None if self.latency_seconds is None else round(self.latency_seconds, 3)}


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def aggregate(rows: list[dict[str, Any]]) -> dict[str, VersionTraffic]:
    """Rows of the dataset (one per version/status/HTTP status) summed per version."""
    totals: dict[str, tuple[int, int, float, int]] = {}
    for row in rows:
        dims = row.get("dimensions") or {}
        version = dims.get("scriptVersion")
        if not isinstance(version, str) or not version:
            continue
        summed = row.get("sum") or {}
        requests = int(summed.get("requests") or 0)
        runtime_errors = int(summed.get("errors") or 0)
        status = dims.get("status")
        http_status = dims.get("httpResponseStatus")
        failed_http = isinstance(http_status, int) and http_status >= 500
        # A row is one combination of statuses: either all its requests failed or only the runtime's
        # own count did.
        errors = requests if failed_http or (status is not None and status not in _FINE) else runtime_errors
        wall = (row.get("quantiles") or {}).get("wallTimeP50")
        r, e, weighted, timed = totals.get(version, (0, 0, 0.0, 0))
        if isinstance(wall, (int, float)) and requests:
            weighted, timed = weighted + float(wall) * requests, timed + requests
        totals[version] = (r + requests, e + min(errors, requests), weighted, timed)
    return {v: VersionTraffic(r, e, (w / t) / 1e6 if t else None) for v, (r, e, w, t) in totals.items()}


def version_traffic(client: Cloudflare, account_id: str, script: str, since: dt.datetime,
                    until: dt.datetime) -> dict[str, VersionTraffic] | None:
    """Traffic per version id between `since` and `until`, or None when the API gave no numbers."""
    import cloudflare
    import httpx

    try:
        response = client.post("/graphql", cast_to=httpx.Response, body={
            "query": QUERY,
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
    if not isinstance(rows, list):
        return None
    return aggregate([r for r in rows if isinstance(r, dict)])
