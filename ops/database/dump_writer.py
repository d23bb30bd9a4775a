"""The dump's writer thread: hashes and writes the chunks while SQLite formats the next ones.

Apart from ops/database/sqldump.py because it knows nothing of SQLite: bytes in, the sha256 of
what reached the file out, and the first error it hit handed back to the reading thread.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from typing import IO

from ops.database.dump_source import DumpError

QUEUE_CHUNKS = 16  # chunks buffered between the reading thread and the writer


class HashingWriter:
    """Hashes and writes chunks on a thread while SQLite formats the next ones."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._digest = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dump-writer", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error  # e.g. disk full: stop reading the database at once
        self._queue.put(data)

    def close(self) -> str:
        """Wait until everything is written; raise what the writer hit; return the sha256."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()

    def abort(self) -> None:
        self._error = self._error or DumpError("dump aborted")
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:  # after an error keep draining, so the reader never blocks on put()
                try:
                    self._digest.update(data)
                    self._out.write(data)
                except BaseException as exc:  # handed to the reading thread, which raises it
                    self._error = exc
