"""A real HTTP server on 127.0.0.1 that plays the deployed site: healthy, failing, slow or odd."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from booking_shared.rollout import PROBE_HEADER

HEALTHY = {"status": "ok", "version": "v-123", "environment": "staging", "database": {"status": "ok", "result": 1}}


OVERRIDE = re.compile(r'^\s*([a-z0-9-]+)\s*=\s*"([^"]+)"\s*$')


@dataclass
class PinnedVersion:
    """How one Worker version answers requests pinned to it with Cloudflare-Workers-Version-Overrides."""

    health_status: int = 200
    root_status: int = 200
    healthy: bool = True


@dataclass
class Site:
    """What the server answers; tests change it while the server runs."""

    root_status: int = 200
    health_status: int = 200
    health_body: Any = field(default_factory=lambda: dict(HEALTHY))
    delay: float = 0.0
    # Answer 503 to this many requests first (a deployment still propagating).
    failures_first: int = 0
    hits: list[str] = field(default_factory=list)
    port: int = 0
    # Version pinning as Cloudflare does it: honoured only for `worker` and only for a version in the
    # current deployment (`deployed()`, e.g. the API double's shares), otherwise ignored.
    worker: str = ""
    deployed: Callable[[], dict[str, float]] | None = None
    versions: dict[str, PinnedVersion] = field(default_factory=dict)
    pinned_hits: list[tuple[str, str]] = field(default_factory=list)  # (version, path)
    # The Booking-Canary-Probe header of each pinned hit (None: absent), which the reference Worker
    # reads to keep the canary's own probes out of its numbers.
    probe_marks: list[str | None] = field(default_factory=list)

    def pinned(self, header: str | None) -> str | None:
        """The version a request's override header selects, if Cloudflare would honour it."""
        match = OVERRIDE.match(header or "")
        if not match or match.group(1) != self.worker or self.deployed is None:
            return None
        return match.group(2) if match.group(2) in self.deployed() else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serving(site: Site) -> Iterator[Site]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            site.hits.append(self.path)
            if site.delay:
                time.sleep(site.delay)
            version = site.pinned(self.headers.get("Cloudflare-Workers-Version-Overrides"))
            if version is not None:
                site.pinned_hits.append((version, self.path))
                site.probe_marks.append(self.headers.get(PROBE_HEADER))
                behaviour = site.versions.get(version, PinnedVersion())
                if self.path == "/api/health":
                    status = behaviour.health_status
                    body = json.dumps({**HEALTHY, "version": version,
                                       "status": "ok" if behaviour.healthy else "degraded"}).encode()
                else:
                    status, body = behaviour.root_status, b"<html>InStyle Hair Boutique</html>"
            elif site.failures_first > 0:
                site.failures_first -= 1
                status, body = 503, b"starting"
            elif self.path == "/api/health":
                status = site.health_status
                body = (site.health_body if isinstance(site.health_body, bytes)
                        else json.dumps(site.health_body).encode())
            else:
                status, body = site.root_status, b"<html>InStyle Hair Boutique</html>"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.port = server.server_address[1]
    # A short poll: shutdown() waits up to one poll, once per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def answering(handler_body: Any) -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A server whose GET/POST behaviour is `handler_body(path, body) -> status`; records requests."""
    seen: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen.append((self.path, body))
            status = handler_body(self.path, body)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
