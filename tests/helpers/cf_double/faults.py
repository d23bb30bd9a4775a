"""Faults injected per request: what the network and the API do on a bad day."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass
class Fault:
    method: str
    path: str  # regex on the path
    status: int = 500
    delay: float = 0.0  # seconds to sleep before answering (timeouts)
    truncate: bool = False  # downloads: send half the body, then close
    # status 0: drop the connection without an answer. applied: do the request first, then fail it
    # (the answer is lost: the write happened although the client sees an error).
    applied: bool = False
    times: int = 1
    skip: int = 0  # let this many matching requests through untouched first
    # Sent as `retry-after-ms` with an injected error, which the SDK obeys instead of its exponential
    # backoff: storms exhaust the SDK's retries in milliseconds, so the tests stay fast.
    retry_after_ms: int = 5
    # Answer these bytes (with `status`, as application/json) instead: an API answering garbage.
    body: bytes | None = None


def take(faults: list[Fault], method: str, path: str) -> Fault | None:
    """The fault that hits this request, counted (the caller holds the double's lock)."""
    for fault in faults:
        if fault.method == method and re.search(fault.path, path):
            if fault.skip > 0:
                fault.skip -= 1
                return None
            fault.times -= 1
            if fault.times <= 0:
                faults.remove(fault)
            return fault
    return None
