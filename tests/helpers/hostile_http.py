"""A real HTTP server on 127.0.0.1 that answers the way broken or hostile sites do.

The first path segment picks the behaviour, so one server plays every case and a check's base URL
is e.g. `server.url + "/drip"` (verify then asks /drip/ and /drip/api/health):

- drip: headers (Content-Length `drip_length`), then one body byte every `interval` seconds;
- slow-headers: the status line, then one header byte every `interval` seconds;
- endless: a chunked body that never ends (64 KiB chunks);
- huge: Content-Length 4 GiB, then zeros;
- bomb: a gzip body that inflates to `BOMB_SIZE` bytes (16 KiB on the wire);
- gzip: /api/health's healthy JSON, gzip-encoded (a well-behaved compressed answer);
- deep: 200 with JSON nested `depth` levels on /api/health, a plain page elsewhere;
- ansi: 200 on /api/health with ANSI escapes in the version and a status of "error";
- redirect: 302 to `location`;
- hang: accepts the request and never answers.

Every endless behaviour stops when the client goes away, when the test ends (`stop`), or after
`budget` bytes: a client that reads without a limit is then caught by counting what was sent
(`sent`), instead of by the test machine running out of memory.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from tests.helpers.http_site import HEALTHY

BOMB_SIZE = 16 * 1024 * 1024  # 8x the largest body cap; compressing more only costs test time
T = TypeVar("T")


@cache
def gzip_bomb() -> bytes:
    return gzip.compress(b"\0" * BOMB_SIZE, compresslevel=9)


@dataclass
class Hostile:
    interval: float = 0.2
    depth: int = 100_000
    drip_length: int = 1_000_000  # below HEALTH_MAX_BODY, /api/health drips instead of being refused
    location: str = "http://169.254.169.254/latest/meta-data/"
    budget: int = 64 * 1024 * 1024  # bytes any endless body sends at most
    sent: Counter[str] = field(default_factory=Counter)  # body bytes sent, by behaviour
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    stop: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def hostile() -> Iterator[Hostile]:
    site = Hostile()
    gzip_bomb()  # made before serving: a handler compressing it could itself miss a short deadline

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, mode: str, data: bytes) -> bool:
            """Write `data`; False once the client is gone, the test is over or the budget is spent."""
            if site.stop.is_set() or site.sent[mode] >= site.budget:
                return False
            try:
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:
                return False
            site.sent[mode] += len(data)
            return True

        def _plain(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            site.requests.append((self.command, self.path))
            mode, _, rest = self.path.lstrip("/").partition("/")
            health = rest.startswith("api/health")
            if mode == "drip":
                self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Length: {site.drip_length}\r\n\r\n".encode())
                while self._send(mode, b" "):
                    site.stop.wait(site.interval)
            elif mode == "slow-headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for byte in b"X-Slow: " + b"x" * 100_000:
                    if site.stop.wait(site.interval) or not self._send(mode, bytes([byte])):
                        break
            elif mode == "endless":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                frame = b"10000\r\n" + b"x" * 65536 + b"\r\n"
                while self._send(mode, frame):
                    pass
            elif mode == "huge":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4294967296\r\n\r\n")
                while self._send(mode, b"\0" * 65536):
                    pass
            elif mode == "bomb":
                body = gzip_bomb()
                self._plain(200, body, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
                site.sent[mode] += len(body)
            elif mode == "gzip":
                self._plain(200, gzip.compress(json.dumps(HEALTHY).encode()),
                            {"Content-Encoding": "gzip", "Content-Type": "application/json"})
            elif mode == "deep" and health:
                self._plain(200, b"[" * site.depth + b"]" * site.depth, {"Content-Type": "application/json"})
            elif mode == "ansi" and health:
                hostile_health = {**HEALTHY, "status": "error\x1b[2J", "version": "\x1b[31mv-evil\x1b[0m\u202e"}
                self._plain(200, json.dumps(hostile_health).encode(), {"Content-Type": "application/json"})
            elif mode == "redirect":
                self._plain(302, b"", {"Location": site.location})
            elif mode == "hang":
                site.stop.wait()
            else:
                self._plain(200, b"<html>a page</html>")
            # One request per connection: a client that gave up resets it, and waiting on it for a
            # next request would only print that reset as a server error.
            self.close_connection = True

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield site
    finally:
        site.stop.set()
        server.shutdown()
        server.server_close()


def within(seconds: float, work: Callable[[], T]) -> tuple[T, float]:
    """(what `work` returns, seconds it took); fails the test if it is still running after `seconds`.

    The work runs in a daemon thread, so code that never ends fails this test instead of hanging
    the whole run.
    """
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("ok", work()))
        except BaseException as exc:  # handed to the test below
            outcome.append(("error", exc))

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    elapsed = time.monotonic() - started
    if thread.is_alive():
        raise AssertionError(f"still running after {seconds:g} s: no overall deadline")
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value, elapsed


@dataclass(frozen=True)
class Run:
    code: int | None  # None: killed at the time limit
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float


# Runs bookingctl and, at exit, writes its peak RSS (VmHWM: since exec, unlike getrusage's
# ru_maxrss, which also counts the pages a fork of the large pytest process shared).
_MEASURED = """
import atexit, runpy, sys
report = sys.argv.pop(1)

def peak():
    with open("/proc/self/status") as status, open(report, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])

atexit.register(peak)
sys.argv[0] = "bookingctl"
runpy.run_module("bookingctl", run_name="__main__")
"""


def run_cli(args: list[str], limit: float, *, memory_cap_mb: int = 1536) -> Run:
    """`bookingctl ARGS` in a subprocess: its exit code, output, wall time and peak RSS.

    Killed after `limit` seconds, and its address space capped (a client that reads an endless body
    into memory dies with MemoryError instead of taking the test machine with it).
    """
    import resource
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from tests.helpers import REPO

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_cap_mb * 1024 * 1024,) * 2)

    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "peak"
        started = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, "-c", _MEASURED, str(peak), *args], cwd=REPO, capture_output=True,
                                  text=True, errors="replace", timeout=limit, preexec_fn=cap)
        except subprocess.TimeoutExpired as expired:
            return Run(None, str(expired.stdout or ""), str(expired.stderr or ""), time.monotonic() - started, 0.0)
        seconds = time.monotonic() - started
        peak_kb = int(peak.read_text()) if peak.exists() else 0
        return Run(proc.returncode, proc.stdout, proc.stderr, seconds, peak_kb / 1024)
