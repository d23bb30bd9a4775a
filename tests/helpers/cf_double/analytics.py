"""What the Workers served, as the analytics APIs show it: GraphQL (workersInvocationsAdaptive,
tests/helpers/graphql_analytics.py) and Workers Analytics Engine SQL (tests/helpers/analytics_engine.py).

Both read the same traffic model (tests/helpers/worker_traffic.py) through `served`, which leaves
out what arrived less than `ingestion_delay` ago: the real data arrives late too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.helpers import analytics_engine, graphql_analytics, worker_traffic
from tests.helpers.cf_double.base import Service
from tests.helpers.cf_double.routes import Bytes, Reply, Request, Route
from tests.helpers.cf_double.workers import ScriptState
from tests.helpers.worker_traffic import Served


class Analytics(Service):
    scripts: dict[str, ScriptState]
    analytics_engine_datasets: dict[str, str]
    graphql_errors: str | None  # set: every GraphQL query answers this error
    ingestion_delay: dt.timedelta
    sample_interval: int  # the adaptive datasets' sample interval (1: unsampled, as at low volume)

    def _init_analytics(self) -> None:
        self.graphql_errors = None
        self.ingestion_delay = dt.timedelta(minutes=3)
        self.sample_interval = 1

    def served(self, script_name: str, since: dt.datetime, until: dt.datetime) -> list[Served]:
        """What `script_name`'s versions served in [since, until] that analytics show by now (late rows left out)."""
        with self.lock:
            script = self.scripts.get(script_name)
            if script is None:
                return []
            return worker_traffic.served(list(script.share_history), script.requests_per_minute,
                                         dict(script.traffic), since, until, self.clock.now() - self.ingestion_delay)

    def graphql(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(status, body) of POST /graphql: validated against the published schema, then executed."""
        if self.graphql_errors:
            status, answer = graphql_analytics.answer(body, self._analytics())
            if status != 200:
                return status, answer  # an invalid query is refused before any outage could answer
            return 200, {"data": None, "errors": [{"message": self.graphql_errors, "path": ["viewer", "accounts"],
                                                   "extensions": {"timestamp": self.clock.now().isoformat()}}]}
        return graphql_analytics.answer(body, self._analytics())

    def _analytics(self) -> graphql_analytics.Dataset:
        return graphql_analytics.Dataset(self.account_id, self.served, self.sample_interval, self.clock.now)

    def _datasets(self) -> analytics_engine.Datasets:
        with self.lock:
            return analytics_engine.Datasets(dict(self.analytics_engine_datasets), self.served, self.sample_interval)

    # --- routes ---------------------------------------------------------------------------------

    def route_graphql(self, req: Request) -> Reply:
        return self.graphql(req.json())

    def route_analytics_engine(self, req: Request) -> Reply:
        status, answer = analytics_engine.answer(req.raw.decode("utf-8", "replace"), self._datasets())
        if isinstance(answer, str):  # its errors are plain text
            return Bytes(status, answer.encode(), "text/plain; charset=utf-8")
        return status, answer


# GraphQL and Analytics Engine answer in their own shapes, not the v4 envelope: their models
# (graphql_analytics, analytics_engine) check them, not the OpenAPI subset.
ROUTES = (
    Route("POST", "/graphql", Analytics.route_graphql, checked=False),
    Route("POST", "/accounts/{account}/analytics_engine/sql", Analytics.route_analytics_engine, checked=False),
)
