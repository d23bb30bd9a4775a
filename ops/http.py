"""HTTP for the checks: a GET (and a webhook POST) that always ends (ops/observation/health.py reads /api/health).

verify, monitor health/perf, the watch's probe, the daily report and webhook alerts all talk to
sites that may be broken or hostile, so every request here has:

- an overall deadline for connect + headers + body. httpx's timeouts are per network read, so a
  server that sends one byte every 2 s never trips a 5 s timeout; a watchdog shuts the request's
  socket down when its deadline passes, which wakes a read blocked on a silent server (the guide's
  own curl calls had `--max-time`: this keeps that contract);
- a body cap counted on the decoded bytes: bodies are streamed and decompressed here with
  zlib's `max_length`, so neither a never-ending body nor a gzip bomb is ever held in memory;
- a redirect policy: only within the site (same host, same scheme or http -> https), never to a
  link-local address (where cloud metadata answers) or to another host, loopback included;

Failures are `HttpError`s whose message says why in a few words (connection refused, timed out,
TLS error, redirect refused, body over the limit); checks put it in their detail. Everything taken
from a remote answer is passed through `printable` before it can reach a terminal.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import socket
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from booking_shared.errors import OperationFailed
from booking_shared.text import printable

# Generous for a booking page (tens of KB); small enough that a hundred in flight fit in memory.
MAX_BODY = 2 * 1024 * 1024
MAX_REDIRECTS = 5
# A later try of a check still gets this long even when the retry budget is nearly spent, so a
# deadline of 0 means "one real try" rather than "no time at all".
MIN_REQUEST_SECONDS = 1.0

Body = Literal["keep", "count", "skip"]


class HttpError(OperationFailed):
    """A request that gave no usable answer; the message says why (it never contains a URL's path,
    query or credentials). `status`: the HTTP status, when headers came before the failure."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def url_problem(url: str) -> str | None:
    """Why `url` cannot be requested as given, or None. Never repeats the URL (it may be a credential)."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return "it contains spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # parses the port: an invalid one raises here, not mid-request
    except ValueError:
        return "it does not parse as a URL (check the host and port)"
    if parts.scheme.lower() not in ("http", "https"):
        return "it does not start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    return None


def redact(url: str) -> str:
    """Only scheme, host and port: webhook URLs (Slack-style) carry their credential in the path."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "<not a URL>"
    if not parts.scheme:
        return "<not a URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _loopback(host: str) -> bool:
    address = _ip(host)
    if address is not None:
        return address.is_loopback
    return host.lower() == "localhost" or host.lower().endswith(".localhost")


def redirect_problem(origin: httpx.URL, target: httpx.URL) -> str | None:
    """Why a redirect from a request for `origin` to `target` is not followed, or None.

    A check asks about one site: an answer from anywhere else says nothing about it, and following
    one lets the site point bookingctl at internal addresses (SSRF).
    """
    if target.scheme not in ("http", "https"):
        return f"{target.scheme}: is not http or https"
    address = _ip(target.host)
    if address is not None and address.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if _loopback(target.host) and not _loopback(origin.host):
        return "a loopback address, and the site is not on one"
    if target.host.lower() != origin.host.lower():
        return f"another host than {origin.host}"
    if target.scheme == origin.scheme:
        return None if target.port == origin.port else "another port of the site"
    if origin.scheme == "http" and target.port in (None, origin.port):
        return None  # the site moving itself to https
    return "a downgrade from https to http" if origin.scheme == "https" else "another port of the site"


def _shutdown(sock: socket.socket) -> None:
    # socket.socket's own shutdown, also for an SSLSocket: SSLSocket.shutdown would drop its SSL
    # object under a read running in another thread; the plain shutdown only ends the stream.
    with contextlib.suppress(OSError):  # already closed: nothing is waiting on it
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """Ends a request at its deadline: shuts down every socket it connected.

    A read blocked on a silent server wakes up with end-of-file, which httpx reports as a broken
    answer; `expired` tells the caller it was the deadline.
    """

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = False
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's trace extension: the only public way to learn a request's socket."""
        if event not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def stop(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


class _Decoder:
    """Decodes a Content-Encoding with a bound on the output of each chunk (no gzip bomb inflates)."""

    def __init__(self, encoding: str, status: int) -> None:
        name = encoding.strip().lower()
        self._status = status
        self._raw_deflate_tried = False
        self._zlib: Any = None
        if name in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif name == "deflate":
            self._zlib = zlib.decompressobj()
        elif name not in ("", "identity"):
            raise HttpError(f"HTTP {status} with a body encoded as {printable(encoding, 40)!r}, which was not asked "
                            "for", status)
        self._deflate = name == "deflate"

    def feed(self, data: bytes, room: int) -> bytes:
        """The decoded bytes of `data`, at most room + 1 of them (one more than fits tells "too big")."""
        if self._zlib is None:
            return data
        try:
            out: bytes = self._zlib.decompress(data, room + 1)
        except zlib.error:
            # "deflate" is sent both zlib-wrapped (the standard) and raw (some servers): try raw once.
            if not self._deflate or self._raw_deflate_tried:
                raise HttpError(f"HTTP {self._status} with a corrupt compressed body", self._status) from None
            self._raw_deflate_tried = True
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self.feed(data, room)
        return out

    def flush(self, room: int) -> bytes:
        if self._zlib is None:
            return b""
        out: bytes = self._zlib.flush(room + 1)
        return out


@dataclass(frozen=True)
class Answer:
    url: str  # where the answer came from, after the redirects that were followed
    status: int
    elapsed: float  # seconds from the start of the request to its last byte read
    size: int  # decoded body bytes read (0 when the body was skipped)
    body: bytes = b""  # only when asked to keep it


@dataclass
class _Progress:
    status: int | None = None  # set once headers came
    size: int = 0
    announced: int | None = None


def _late(seconds: float, progress: _Progress) -> HttpError:
    if progress.status is None:
        got = "no answer yet"
    elif progress.announced is not None:
        got = f"HTTP {progress.status}, {progress.size:,} of {progress.announced:,} body bytes received"
    else:
        got = f"HTTP {progress.status}, {progress.size:,} body bytes received"
    return HttpError(f"timed out: no complete answer within {seconds:g} s ({got})", progress.status)


def _reason(exc: Exception) -> str:
    text = printable(str(exc) or type(exc).__name__)
    lower = text.lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, httpx.ConnectError):
        if "refused" in lower:
            return "connection refused"
        if "ssl" in lower or "certificate" in lower or "tls" in lower:
            return f"TLS error: {text}"
        if "name or service" in lower or "nodename" in lower or "name resolution" in lower:
            return f"DNS lookup failed: {text}"
        return f"cannot connect: {text}"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "not an http:// or https:// URL"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"broken HTTP answer: {text}"
    if isinstance(exc, httpx.InvalidURL):
        return "not a usable URL"
    if isinstance(exc, httpx.NetworkError):
        return f"connection failed: {text}"
    return f"{type(exc).__name__}: {text}"


class Client:
    """Requests with a deadline, a body cap and the redirect policy; one per command, shared by its threads."""

    def __init__(self, *, timeout: float, max_body: int = MAX_BODY, concurrency: int = 1,
                 headers: Mapping[str, str] | None = None) -> None:
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout {timeout!r}: use a positive number of seconds")
        self.timeout = timeout
        self.max_body = max_body
        # No keep-alive: the watchdog learns a request's socket when it is connected, which a reused
        # connection never is again. The guide's curl made a new connection per request too, so
        # the times compare.
        limits = httpx.Limits(max_connections=max(1, concurrency), max_keepalive_connections=0)
        # Only encodings decoded here with a bound (httpx would also offer br/zstd when installed).
        base = {"User-Agent": "bookingctl", "Accept-Encoding": "gzip, deflate"}
        self._http = httpx.Client(limits=limits, follow_redirects=False, headers={**base, **(headers or {})})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, url: str, *, timeout: float | None = None, max_body: int | None = None, body: Body = "count",
            follow_redirects: bool = True) -> Answer:
        """GET `url` within `timeout` seconds in all, the body read up to `max_body` decoded bytes.

        `body`: "keep" returns it, "count" reads and counts it (a page's time includes its body, as
        curl's time_total does), "skip" stops at the headers. Raises HttpError.
        """
        return self._request("GET", url, None, timeout, max_body, body, follow_redirects)

    def post_json(self, url: str, payload: Any, *, timeout: float | None = None) -> int:
        """POST JSON and return the answer's status. Redirects are not followed (a POST is not
        repeated elsewhere) and the body is not read: a webhook's answer is its status."""
        return self._request("POST", url, payload, timeout, 0, "skip", False).status

    def _request(self, method: str, url: str, payload: Any, timeout: float | None, max_body: int | None,
                 body: Body, follow: bool) -> Answer:
        seconds = self.timeout if timeout is None else timeout
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"timeout {seconds!r}: use a positive number of seconds")
        cap = self.max_body if max_body is None else max_body
        started = time.monotonic()
        deadline = started + seconds
        progress = _Progress()
        watchdog = _Watchdog(seconds)
        try:
            try:
                origin = httpx.URL(url)
            except httpx.InvalidURL as exc:
                raise HttpError(_reason(exc)) from None
            current = origin
            for _ in range(MAX_REDIRECTS + 1):
                progress.status, progress.size, progress.announced = None, 0, None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _late(seconds, progress)
                request = self._http.build_request(method, current, json=payload, timeout=httpx.Timeout(left),
                                                   extensions={"trace": watchdog.trace})
                response = self._http.send(request, stream=True)
                try:
                    progress.status = response.status_code
                    if follow and response.is_redirect:
                        try:
                            target = response.url.join(response.headers["location"])
                        except httpx.InvalidURL:
                            raise HttpError(f"HTTP {response.status_code} redirect to an invalid location",
                                            response.status_code) from None
                        problem = redirect_problem(origin, target)
                        if problem is not None:
                            raise HttpError(f"HTTP {response.status_code} redirect to {redact(str(target))} not "
                                            f"followed: {problem}", response.status_code)
                        current = target
                        continue
                    content = b"" if body == "skip" else self._read(response, cap, deadline, seconds, progress,
                                                                   keep=body == "keep")
                    return Answer(str(response.url), response.status_code, time.monotonic() - started,
                                  progress.size, content)
                finally:
                    response.close()
            raise HttpError(f"more than {MAX_REDIRECTS} redirects")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # A read timeout is the deadline too: each read gets only the time left.
            if watchdog.expired or (isinstance(exc, httpx.TimeoutException)
                                    and not isinstance(exc, httpx.ConnectTimeout)):
                raise _late(seconds, progress) from None
            raise HttpError(_reason(exc)) from None
        finally:
            watchdog.stop()

    @staticmethod
    def _read(response: httpx.Response, cap: int, deadline: float, seconds: float, progress: _Progress, *,
              keep: bool) -> bytes:
        announced = response.headers.get("content-length", "")
        if announced.isdigit():
            progress.announced = int(announced)
            if progress.announced > cap:
                raise HttpError(f"HTTP {response.status_code} with a body of {progress.announced:,} bytes, over the "
                                f"{cap:,}-byte limit (not read)", response.status_code)
        decoder = _Decoder(response.headers.get("content-encoding", ""), response.status_code)
        parts: list[bytes] = []
        wire = 0
        over = HttpError(f"HTTP {response.status_code} with a body over the {cap:,}-byte limit (stopped reading)",
                         response.status_code)
        for chunk in response.iter_raw():
            wire += len(chunk)
            data = decoder.feed(chunk, cap - progress.size)
            progress.size += len(data)
            # The wire bound catches a compressed stream that never decodes to anything.
            if progress.size > cap or wire > 2 * cap + 65536:
                raise over
            if keep:
                parts.append(data)
            if time.monotonic() > deadline:
                raise _late(seconds, progress)
        tail = decoder.flush(cap - progress.size)
        progress.size += len(tail)
        if progress.size > cap:
            raise over
        return b"".join([*parts, tail]) if keep else b""
