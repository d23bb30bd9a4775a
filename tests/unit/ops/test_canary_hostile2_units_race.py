"""http_answers (ops/observation/analytics.py) reads one version's window in three SQL queries:
the sums, then count(DISTINCT blob1), then the failing units. Rows that land between them (the
window ends `analyticsDelayMinutes` before now, and that setting may be 0) make units > rows or
failing units > errors; VersionTraffic.nonsense() then calls the answer impossible and judge()
rolls the canary back with judged=True: a good canary is quarantined for an ingestion race.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import http_answers
from ops.releases.judge import judge

V = "11111111-1111-4111-8111-111111111111"
SINCE = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body

    def json(self) -> dict[str, Any]:
        return self._body


class _GrowingDataset:
    """An Analytics Engine whose window gains rows between queries (late ingestion)."""

    def __init__(self, rows: list[tuple[str, int]]) -> None:
        self.rows = rows  # (unit, status)
        self.late = [("late-unit-1", 200), ("late-unit-2", 503)]

    def post(self, path: str, *, cast_to: Any = None, content: bytes = b"", **_: Any) -> _Response:
        sql = content.decode()
        rows = list(self.rows)
        if "count(DISTINCT blob1)" in sql:
            rows = rows + self.late  # they arrived after the sums were read
            if "double1 >= 500" in sql:
                rows = [r for r in rows if r[1] >= 500]
            return _Response({"data": [{"units": str(len({u for u, _ in rows}))}], "rows": 1})
        errors = sum(1 for _, s in rows if s >= 500)
        return _Response({"data": [{"sampled": str(len(rows)), "requests": str(len(rows)), "errors": str(errors),
                                    "failed_rows": str(errors),
                                    "median_ms": 40.0, "p99_ms": 150.0}], "rows": 1})


def test_rows_arriving_between_the_queries_do_not_quarantine_a_good_canary() -> None:
    rows = [(f"unit-{i}", 200) for i in range(150)]
    client = _GrowingDataset(rows)
    traffic = http_answers(client, "acct", "booking_api_requests", V, SINCE, SINCE + dt.timedelta(minutes=5))
    assert traffic is not None
    verdict = judge(traffic, [True] * 5, RolloutSettings(), final=False)
    assert not (verdict.action == "rollback" and verdict.judged), (traffic, verdict)
