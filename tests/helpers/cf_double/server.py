"""The double on the wire: one HTTP handler that records, checks, injects faults, authenticates, then routes.

Order per request, as the real path goes: the OpenAPI document's check of the request (a 400 the
API would answer), an injected fault (the network and the API on a bad day), the token, the route.
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

from tests.helpers.cf_double.envelope import error
from tests.helpers.cf_double.faults import Fault
from tests.helpers.cf_double.routes import API_PREFIX, Bytes, Request

if TYPE_CHECKING:
    from tests.helpers.cf_double.double import CloudflareDouble

DOWNLOADS = "/__downloads/"  # signed URLs of exports: storage, not the API


def make_handler(double: CloudflareDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes; with Nagle's algorithm on, the body waits for the
        # client's delayed ACK (~40 ms a request), which made 100 onboardings take half a minute.
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _write(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            self._write(status, json.dumps(body).encode(), "application/json", headers)

        def _drop(self) -> None:
            self.close_connection = True
            self.connection.shutdown(2)

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            double.requests.append((method, url.path))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if url.path.endswith("/query") and raw:
                double.sql.append(str(json.loads(raw).get("sql", "")))
            refused = double.check_request(method, url, self.headers.get("Content-Type"), raw)
            if refused is not None:
                return self._send(400, refused)
            if double.rate_limit is not None and not url.path.startswith(DOWNLOADS):
                wait = double.rate_limit.retry_after()
                if wait is not None:
                    return self._send(429, error(10000, "rate limited: too many requests for this token"),
                                      {"retry-after": str(wait)})
            fault = double.take_fault(method, url.path)
            if url.path.startswith(DOWNLOADS):
                return self._download(url.path.rsplit("/", 1)[-1], fault)
            request = Request(method, url.path.removeprefix(API_PREFIX), parse_qs(url.query), raw,
                              authorization=self.headers.get("Authorization"))
            if fault is not None and fault.applied:
                double.answer(request)  # it happened...
                if fault.status == 0:  # ...and the answer is lost with the connection
                    return self._drop()
                return self._send(fault.status, error(fault.status, "injected fault after applying"))
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.body is not None:
                    return self._write(fault.status, fault.body, "application/json")
                if fault.status == 0:  # the connection drops before anything is done
                    return self._drop()
                if fault.status != 200:
                    return self._send(fault.status, error(fault.status, "injected fault"),
                                      {"retry-after-ms": str(fault.retry_after_ms)})
            token = double.token_of(self.headers.get("Authorization"))
            if token is None or not double.permitted(token, method, request.path):
                return self._send(403, error(10000, "Authentication error"))
            reply = double.answer(request)
            if isinstance(reply, Bytes):
                return self._write(reply.status, reply.data, reply.content_type)
            return self._send(*reply)

        def _download(self, token: str, fault: Fault | None) -> None:
            path = double.downloads.get(token)
            if path is None:
                return self._send(404, error(404, "expired or unknown signed URL"))
            data = path.read_bytes()
            if fault is None or not fault.truncate:
                return self._write(200, data, "application/sql")
            self.send_response(200)
            self.send_header("Content-Type", "application/sql")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])  # then close: a download cut short
            self.wfile.flush()
            self.close_connection = True

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_DELETE(self) -> None:
            self._route("DELETE")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return Handler
