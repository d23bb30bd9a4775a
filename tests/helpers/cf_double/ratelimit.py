"""The API's global rate limit, when a test turns it on: requests per period, then 429.

"The global rate limit for the Cloudflare API is 1,200 requests per five minute period per user, and
applies cumulatively regardless of whether the request is made via the dashboard, API key, or API
token. If you exceed this limit, all API calls for the next five minutes will be blocked, receiving a
HTTP 429" (developers.cloudflare.com/fundamentals/api/reference/limits/; cloudflare-docs
src/content/partials/fundamentals/api-rate-limits.mdx). A 429 carries `retry-after`, "the number of
seconds, rounded up, until more capacity is available" (the same page, since 2025-09-03). The SDK
(cloudflare 5.9.0 _base_client.py) obeys retry-after up to 60 s.

Modelled strictly: one counter for every token (the double has one user); the period starts with the
first request; the request over the limit blocks every call for a whole period from that moment. The
429 body's error code is not published: 10000 here is the double's own (callers may rely on the
status and the header only).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

PUBLISHED_REQUESTS = 1200
PUBLISHED_PERIOD_SECONDS = 300.0


@dataclass
class RateLimit:
    requests: int = PUBLISHED_REQUESTS
    period: float = PUBLISHED_PERIOD_SECONDS
    answered: int = 0  # requests let through in the current period
    refused: int = 0  # 429s answered, for tests
    _started: float | None = None
    _blocked_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, now: float | None = None) -> int | None:
        """None when a request may be answered now; else the seconds until calls are allowed again."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if now < self._blocked_until:
                self.refused += 1
                return max(1, math.ceil(self._blocked_until - now))
            if self._started is None or now - self._started >= self.period:
                self._started, self.answered = now, 0
            if self.answered >= self.requests:
                self._blocked_until = now + self.period
                self._started, self.answered = None, 0
                self.refused += 1
                return math.ceil(self.period)
            self.answered += 1
            return None
