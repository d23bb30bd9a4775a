"""The Workers Analytics Engine SQL API double: the one query the canary sends, and nothing else.

`POST /accounts/{account}/analytics_engine/sql` takes the query text as the request body and
answers FORMAT JSON: `{"meta": [{"name", "type"}...], "data": [{column: value}...], "rows": n}`
(cloudflare/cloudflare-docs src/content/docs/analytics/analytics-engine/sql-api.mdx @
0ef614522dc006966304415e963a38dd5b656f32 and sql-reference/statements.mdx @
0309c8bed23afe438f28fd5026b5a7999e653081, whose example writes every value as a string; the
counts here are strings, so a client must not expect JSON numbers). A failed query is a non-200
answer with a text body ("The API will return a 200 status code if the query succeeded",
analytics-engine/worker-querying.mdx @ 0309c8bed23afe438f28fd5026b5a7999e653081); its status is
not documented, so the double answers 400.

Only the exact shape ops/observation/analytics.py's `requests_sql` writes is accepted: one version (`index1`,
the sampling key, as the docs advise for accurate results) over a `timestamp` window, with
`count()`, `sum(_sample_interval)`, conditional sums of 5xx (their weight and their rows) and
`quantileExactWeighted(level)` of `(double2, _sample_interval)` at 0.5, 0.75, 0.9, 0.95, 0.98 and 0.99 (each
version's from its model's log-normal, tests/helpers/worker_traffic.py): every function and column is in the SQL
reference (sql-api.mdx "Table structure" and "Sampling", sql-reference/aggregate-functions.mdx,
conditional-functions.mdx, date-time-functions.mdx). Anything else is refused rather than guessed at.

Rows come from the Worker traffic model (tests/helpers/worker_traffic.py): the reference Worker
writes one data point per request it answers (index: its version id, double1: the HTTP status,
double2: milliseconds). An invocation that fails in the runtime writes none (whether a data point
written before an uncaught exception is kept is not documented, so the double assumes the worse).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from tests.helpers.worker_traffic import Served, sampled

_QUERY = re.compile(
    r"SELECT count\(\) AS sampled, sum\(_sample_interval\) AS requests, "
    r"sum\(if\(double1 >= 500, _sample_interval, 0\)\) AS errors, "
    r"sum\(if\(double1 >= 500, 1, 0\)\) AS failed_rows, "
    r"quantileExactWeighted\(0\.5\)\(double2, _sample_interval\) AS median_ms, "
    r"quantileExactWeighted\(0\.75\)\(double2, _sample_interval\) AS p75_ms, "
    r"quantileExactWeighted\(0\.9\)\(double2, _sample_interval\) AS p90_ms, "
    r"quantileExactWeighted\(0\.95\)\(double2, _sample_interval\) AS p95_ms, "
    r"quantileExactWeighted\(0\.98\)\(double2, _sample_interval\) AS p98_ms, "
    r"quantileExactWeighted\(0\.99\)\(double2, _sample_interval\) AS p99_ms "
    r"FROM (?P<dataset>[a-z][a-z0-9_]*) WHERE index1 = '(?P<version>[0-9a-f-]{36})' "
    r"AND timestamp >= toDateTime\('(?P<since>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)'\) "
    r"AND timestamp < toDateTime\('(?P<until>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)'\) FORMAT JSON")

# The canary's unit queries (ops/observation/analytics.py units_sql): distinct blob1 of one version,
# all of them or those with an answer of 500 or more; `count(DISTINCT ...)` is in
# sql-reference/aggregate-functions.mdx (cloudflare-docs @ 382b3b07).
_UNITS = re.compile(
    r"SELECT count\(DISTINCT blob1\) AS units "
    r"FROM (?P<dataset>[a-z][a-z0-9_]*) WHERE index1 = '(?P<version>[0-9a-f-]{36})' "
    r"AND timestamp >= toDateTime\('(?P<since>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)'\) "
    r"AND timestamp < toDateTime\('(?P<until>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)'\) "
    r"(?P<failing>AND double1 >= 500 )?FORMAT JSON")

META = [{"name": "sampled", "type": "UInt64"}, {"name": "requests", "type": "UInt64"},
        {"name": "errors", "type": "UInt64"}, {"name": "failed_rows", "type": "UInt64"},
        {"name": "median_ms", "type": "Float64"},
        {"name": "p75_ms", "type": "Float64"}, {"name": "p90_ms", "type": "Float64"},
        {"name": "p95_ms", "type": "Float64"}, {"name": "p98_ms", "type": "Float64"},
        {"name": "p99_ms", "type": "Float64"}]


@dataclass(frozen=True)
class Datasets:
    """What the SQL reads: dataset -> the script whose Worker writes it, and what a query may see now."""

    writers: dict[str, str]
    served: Callable[[str, dt.datetime, dt.datetime], list[Served]]
    sample_interval: int


def _utc(text: str) -> dt.datetime:
    # toDateTime reads 'YYYY-MM-DD hh:mm:ss' as UTC without a zone argument (date-time-functions.mdx).
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)


def answer(sql: str, datasets: Datasets) -> tuple[int, str | dict[str, object]]:
    """(HTTP status, JSON body or error text) for one SQL API request."""
    units = _UNITS.fullmatch(sql.strip())
    if units is not None:
        return _units(units, datasets)
    match = _QUERY.fullmatch(sql.strip())
    if match is None:
        return 400, "the Analytics Engine double accepts only the canary's per-version query (tests/helpers/" \
                    "analytics_engine.py)"
    script = datasets.writers.get(match["dataset"])
    if script is None:
        return 400, f"unknown table {match['dataset']}"
    points = errors = 0.0
    median = tail = None
    middle: dict[str, float | None] = {"p75_ms": None, "p90_ms": None, "p95_ms": None, "p98_ms": None}
    parts = [p for p in datasets.served(script, _utc(match["since"]), _utc(match["until"]))
             if p.version == match["version"]]
    for part in parts:
        points += part.requests - part.thrown
        errors += part.answered_5xx
    kept, requests = sampled(points, datasets.sample_interval)
    failed_rows, failed = sampled(errors, datasets.sample_interval)
    if kept:
        by_latency = sorted(parts, key=lambda p: p.model.latency_ms)
        seen = 0.0
        for part in by_latency:
            seen += part.requests - part.thrown
            if seen >= points / 2:
                median = part.model.latency_ms
                break
        # Each version has one model, so its parts share one tail.
        tail = max(p.model.latency_p99_ms for p in parts)
        middle = {name: max(p.model.latency_quantile_ms(level) for p in parts)
                  for name, level in (("p75_ms", 0.75), ("p90_ms", 0.9), ("p95_ms", 0.95), ("p98_ms", 0.98))}
    row = {"sampled": str(kept), "requests": str(requests), "errors": str(min(failed, requests)),
           "failed_rows": str(min(failed_rows, kept)),
           "median_ms": median, **middle, "p99_ms": tail}
    return 200, {"meta": META, "data": [row], "rows": 1}


def _units(match: re.Match[str], datasets: Datasets) -> tuple[int, str | dict[str, object]]:
    """Distinct units of one version (or those that failed), from the traffic model's requests per unit.

    Sampled 1 in `sample_interval`, a distinct count sees only the units with a row kept: a unit
    of r rows is seen with probability 1 - (1 - 1/interval)^r (rows are kept one by one), and never
    more units than the rows kept. That a distinct count runs over the kept rows is the double's model,
    not published: the SQL reference says only "the number of different values in the column", and
    the sampling page warns that unique counts of fields outside the index may not be accurate
    (analytics-engine/sampling), which is why the judge believes a version's browsers only within
    bounds (ops/releases/baseline.py `_own_browsers`).
    """
    script = datasets.writers.get(match["dataset"])
    if script is None:
        return 400, f"unknown table {match['dataset']}"
    keep = 1.0 / datasets.sample_interval
    total = answered = failed = 0.0
    for part in datasets.served(script, _utc(match["since"]), _utc(match["until"])):
        if part.version != match["version"]:
            continue
        per_unit = max(part.model.requests_per_unit, 1.0)
        units = (part.requests - part.thrown) / per_unit
        rate = part.answered_5xx / (part.requests - part.thrown) if part.requests > part.thrown else 0.0
        if match["failing"]:
            failing = 1 - (1 - rate) ** per_unit
            # A failing unit's failed rows: its expected failures given at least one.
            rows = per_unit * rate / failing if failing else 0.0
            total += units * failing * (1 - (1 - keep) ** rows)
        else:
            total += units * (1 - (1 - keep) ** per_unit)
        answered, failed = answered + part.requests - part.thrown, failed + part.answered_5xx
    # Never more units than the rows (or failing ones than the 5xx rows) the requests query keeps.
    rows_kept, _ = sampled(failed if match["failing"] else answered, datasets.sample_interval)
    units = min(round(total), rows_kept)
    return 200, {"meta": [{"name": "units", "type": "UInt64"}], "data": [{"units": str(units)}], "rows": 1}
