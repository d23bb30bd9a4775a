"""CloudflareDouble: the services of this package behind one server, one route table, one lock, one clock."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import ParseResult, parse_qs

from tests.helpers import cf_openapi
from tests.helpers.cf_double import (
    analytics,
    custom_hostnames,
    d1,
    monitoring,
    r2,
    sites,
    tokens,
    turnstile,
    workers,
    workers_beta,
    zones,
)
from tests.helpers.cf_double.analytics import Analytics
from tests.helpers.cf_double.clock import Clock
from tests.helpers.cf_double.custom_hostnames import CustomHostnames
from tests.helpers.cf_double.d1 import D1
from tests.helpers.cf_double.envelope import Refusal, error
from tests.helpers.cf_double.faults import Fault, take
from tests.helpers.cf_double.monitoring import Monitoring
from tests.helpers.cf_double.r2 import R2
from tests.helpers.cf_double.ratelimit import RateLimit
from tests.helpers.cf_double.routes import Bytes, Reply, Request, Router
from tests.helpers.cf_double.server import make_handler
from tests.helpers.cf_double.sites import Sites
from tests.helpers.cf_double.tokens import Tokens
from tests.helpers.cf_double.turnstile import Turnstile

TOKEN = "test-token-not-a-real-secret"

# Every route of the API the double serves, service by service (first match wins within a path).
ROUTER = Router((*d1.ROUTES, *workers.ROUTES, *workers_beta.ROUTES, *r2.ROUTES, *zones.ROUTES, *sites.ROUTES,
                 *monitoring.ROUTES,
                 *custom_hostnames.ROUTES, *turnstile.ROUTES, *tokens.ROUTES, *analytics.ROUTES))


class CloudflareDouble(D1, Sites, Monitoring, R2, CustomHostnames, Turnstile, Tokens, Analytics):
    def __init__(self, root: Path, account_id: str, clock: Clock | None = None) -> None:
        self.root, self.account_id = root, account_id
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self._seq = 0
        self.faults: list[Fault] = []
        # The API's global rate limit (ratelimit.py), off unless a test sets it.
        self.rate_limit: RateLimit | None = None
        self.requests: list[tuple[str, str]] = []
        # What the OpenAPI document refuses (tests/helpers/cf_openapi.py): requests the API would reject
        # and answers of the double that do not fit it; tests/conftest.py fails the test that caused one.
        self.violations: list[str] = []
        self._init_d1()
        self._init_workers()
        self._init_workers_beta()
        self._init_sites()
        self._init_monitoring()
        self._init_r2()
        self._init_zones()
        self._init_custom_hostnames()
        self._init_turnstile()
        self._init_tokens(TOKEN)
        self._init_analytics()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- lifecycle and set-up ---------------------------------------------------------------------

    @property
    def now(self) -> Callable[[], dt.datetime]:
        """The double's wall clock (its Clock's); tests set a fake one: `double.now = clock.wall`."""
        return self.clock.now

    @now.setter
    def now(self, wall: Callable[[], dt.datetime]) -> None:
        self.clock.now = wall

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/client/v4"

    def start(self) -> CloudflareDouble:
        self.thread.start()
        _started.append(self)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            return take(self.faults, method, path)

    # --- one request ------------------------------------------------------------------------------

    def answer(self, req: Request) -> Reply:
        """The API's answer to `req` (its path below /client/v4), checked against the OpenAPI subset."""
        with self.lock:
            try:
                route, params = ROUTER.find(req.method, req.path, self.account_id)
                reply = route.handler(self, replace(req, params=params))
            except Refusal as refusal:
                return self.check_response(req.method, req.path, *refusal.response)
        if isinstance(reply, Bytes) or not route.checked:
            return reply
        return self.check_response(req.method, req.path, *reply)

    # --- the OpenAPI document: one check of every REST request and answer -------------------------

    def check_request(self, method: str, url: ParseResult, content_type: str | None, raw: bytes) -> Any:
        """None, or the API's 400 answer to a request its OpenAPI document refuses (recorded)."""
        if not url.path.startswith(cf_openapi.BASE_PATH + "/"):
            return None  # signed download URLs: storage, not the API (see cf_openapi)
        path = url.path.removeprefix(cf_openapi.BASE_PATH)
        problem = cf_openapi.load().problem_with_request(method, path, parse_qs(url.query, keep_blank_values=True),
                                                         content_type, raw)
        if problem is None:
            return None
        with self.lock:
            self.violations.append(f"request {method} {url.path}?{url.query}: {problem}")
        return error(cf_openapi.REFUSED_CODE, problem)

    def check_response(self, method: str, path: str, status: int, payload: Any) -> tuple[int, Any]:
        """(status, payload), after recording (as a bug of the double) where it does not fit the document."""
        problem = cf_openapi.load().problem_with_response(method, path, status, payload)
        if problem is not None:
            with self.lock:
                self.violations.append(f"the double's answer to {method} {cf_openapi.BASE_PATH}{path}: {problem}")
        return status, payload


_started: list[CloudflareDouble] = []  # every double of this process whose violations are not yet reported


def take_violations() -> list[str]:
    """The violations of every double started since the last call, once (tests/conftest.py fails on them)."""
    found = []
    for double in list(_started):
        with double.lock:
            found += double.violations
            double.violations = []
        if not double.thread.is_alive():
            _started.remove(double)
    return found


@contextmanager
def running(root: Path, account_id: str) -> Iterator[CloudflareDouble]:
    double = CloudflareDouble(root, account_id).start()
    try:
        yield double
    finally:
        double.stop()
