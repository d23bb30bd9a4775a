"""What every service of the double shares: the account, the scratch folder, one lock, one clock."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.helpers.cf_double.clock import Clock
from tests.helpers.cf_double.routes import Reply, Request


class Service:
    """The state every service module reads; CloudflareDouble (double.py) sets it up once."""

    account_id: str
    root: Path
    lock: threading.RLock
    clock: Clock
    _seq: int

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    def answer(self, req: Request) -> Reply:
        """The API's answer to `req`: the double's route table and checks (double.py)."""
        raise NotImplementedError

    def next_seq(self) -> int:
        """A number no earlier call returned (bookmarks, sitekeys)."""
        with self.lock:
            self._seq += 1
            return self._seq
