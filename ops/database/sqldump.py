"""SQL dumps of a local SQLite file standing for a D1 database, as fast as `sqlite3 FILE .dump`.

A dump is restorable with `wrangler d1 execute --file`: no BEGIN/COMMIT (D1 rejects them),
foreign keys deferred, one INSERT per row, SQLite's and D1's internal tables (`sqlite_*`,
`_cf_*`) left out. An FTS5 table is written as its CREATE VIRTUAL TABLE and one INSERT per row
(rowid included), never as its shadow tables: inserting the rows rebuilds the index, and the
shadow tables are the module's own (the sqlite3 CLI copies them under `PRAGMA writable_schema`,
which D1 and our restore refuse). Other virtual tables are refused with a message.

Speed (issue #4: within 1.2x of the sqlite3 CLI) comes from four choices, each measured on
1,000,000 rows:
- SQLite formats the rows itself and joins a chunk of them into one value returned as bytes, so
  Python touches one object per ~5,000 rows and never decodes or re-encodes text.
- Text columns are rendered with printf's %Q, which writes into the line directly; quote()
  allocates a string per value and was ~40 % of the time. quote() stays for every other column.
- Hashing and writing run on a thread (both release the GIL) while SQLite formats the next chunk.
- Large tables are cut into rowid ranges and a helper process (`python -m ops.database.sqldump`) formats
  3 of every 5 ranges on the second core (this process also hashes, writes and reads the helper's
  output). Two threads with a connection each were no faster than one (measured). Measured again
  on the 2-core development machine at 1,000,000 rows (bench/backup_bench.py --one-process, median
  of 7, machine otherwise idle): 1.16x the CLI with the helper, 1.64x without it, foreign-key check
  included (1.03x and 1.35x before it was added): SQLite's formatting alone takes as long as the
  whole CLI, and Python's start adds 0.2 s. When other work keeps both cores busy, the helper's gain
  shrinks. The helper reads the same snapshot: it opens its read transaction while we hold the
  database's write lock, so no commit can come between the two snapshots.

Rows whose foreign keys point nowhere are counted in the same snapshot (`PRAGMA
foreign_key_check`, beside the dump on a connection of its own when a table is large), so the
manifest can say that the source already had them.

Memory stays flat: chunks are bounded, and so are the queues between the parts.

This module cuts the tables into chunks, shares them with the helper process and writes them in
order; beside it: dump_source.py (the one snapshot, the kinds of tables, the foreign-key check),
dump_format.py (a row's INSERT text, alike in both processes), dump_writer.py (the writer thread).
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from booking_shared import CHECKOUT
from ops.database import schema
from ops.database.dump_format import Columns, as_bytes, columns_of, returns_utf8, row_format, without_rowid
from ops.database.dump_source import (
    DumpError,
    ForeignKeyCheck,
    ForeignKeyViolations,
    check_virtual,
    foreign_key_violations,
    release,
    table_kinds,
    write_lock,
)
from ops.database.dump_writer import HashingWriter
from ops.database.sqlscript import quote_ident

# The dump's face: backups and the tests import these from here, where the dump is.
__all__ = ["CHUNK_ROWS", "HELPER_MIN_ROWS", "DumpError", "DumpResult", "ForeignKeyViolations", "Progress",
           "dump_sqlite", "foreign_key_violations", "helper_command", "no_progress", "table_kinds"]

CHUNK_ROWS = 5_000  # rows SQLite joins into one value (~0.7 MB of SQL for an appointment row)
RANGE_CHUNKS = 4  # chunks per rowid range; ranges alternate between this process and the helper
HELPER_SHARE = (1, 2, 4)  # of each 5 consecutive ranges, the ones the helper formats (see _table_chunks)
HELPER_MIN_ROWS = 100_000  # smaller tables are dumped in-process: a helper costs ~50 ms to start
HELPER_START_TIMEOUT = 30.0  # seconds for the helper to open its snapshot
_QUEUE_CHUNKS = 16  # chunks buffered between the helper and us (dump_writer.py buffers as many)

Progress = Callable[[str, int, int], None]  # (table, rows done, rows in the table)
Chunk = tuple[bytes, int]  # (SQL text, rows in it)
SchemaObject = tuple[str, str, str]  # (type, name, sql) of sqlite_schema


def no_progress(_what: str, _done: int, _total: int) -> None:
    pass


@dataclass(frozen=True)
class DumpResult:
    tables: dict[str, int]  # rows per dumped table
    sha256: str  # of the bytes written
    foreign_keys: ForeignKeyViolations  # in the snapshot that was dumped


def dump_sqlite(conn: sqlite3.Connection, path: Path, out: IO[bytes], progress: Progress = no_progress,
                *, helper_min_rows: int | None = None) -> DumpResult:
    """Write a D1-restorable dump of the database at `path` (open as `conn`) to `out`.

    Schema, rows, counts and the foreign-key check come from one consistent snapshot; a row count
    that differs from the snapshot's raises DumpError. `helper_min_rows` defaults to HELPER_MIN_ROWS.
    """
    sink = HashingWriter(out)
    helper: _Helper | None = None
    check: ForeignKeyCheck | None = None
    minimum = HELPER_MIN_ROWS if helper_min_rows is None else helper_min_rows
    try:
        objects, totals, helper, shared, check = _open_snapshot(conn, path, minimum)
        counts = _write_dump(conn, objects, totals, sink, progress, helper, shared)
        if helper is not None:
            helper.close()
        violations = check.result() if check is not None else foreign_key_violations(conn)
    except BaseException:
        if helper is not None:
            helper.abort()
        if check is not None:
            check.abort()
        sink.abort()
        raise
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
    return DumpResult(counts, sink.close(), violations)


def _open_snapshot(conn: sqlite3.Connection, path: Path, helper_min_rows: int
                   ) -> tuple[list[SchemaObject], dict[str, int], _Helper | None, frozenset[str],
                              ForeignKeyCheck | None]:
    """Begin `conn`'s read transaction; start a helper if a table is large enough to share.

    Returns the schema objects, the row count of each table to dump, the helper (or None), the
    tables it shares, and the foreign-key check running beside the dump (None: `conn` runs it at
    the end, which costs little when no table is large).
    """
    lock = write_lock(path)
    try:
        conn.execute("BEGIN")
        kinds = table_kinds(conn)
        objects = [(o.type, o.name, o.sql) for o in schema.objects(conn)
                   if o.sql is not None and kinds.get(o.name) != "shadow"]
        for _, name, sql in objects:
            if kinds.get(name) == "virtual":
                check_virtual(name, sql)
        totals = {name: conn.execute(f"SELECT COUNT(*) FROM {quote_ident(name)}").fetchone()[0]
                  for kind, name, _ in objects if kind == "table" and not name.startswith(("sqlite_", "_cf_"))}
        large = frozenset(name for _, name, sql in objects
                          if name in totals and totals[name] >= helper_min_rows and kinds.get(name) == "table"
                          and not without_rowid(sql))
        if lock is not None and large:
            check = ForeignKeyCheck(path)  # its snapshot opens under the lock too
            helper, lock = _Helper(path, lock), None  # it releases the lock once its snapshot is open
            return objects, totals, helper, large, check
        return objects, totals, None, frozenset(), None
    finally:
        if lock is not None:
            release(lock)


def _write_dump(conn: sqlite3.Connection, objects: list[SchemaObject], totals: dict[str, int],
                sink: HashingWriter, progress: Progress, helper: _Helper | None,
                shared: frozenset[str]) -> dict[str, int]:
    utf8 = returns_utf8(conn)

    def write(text: str) -> None:
        sink.write(text.encode("utf-8"))

    # D1 checks foreign keys; rows are written table by table, so defer the check to the end.
    write("PRAGMA defer_foreign_keys=TRUE;\n")
    counts: dict[str, int] = {}
    for _, name, sql in objects:
        if name not in totals:  # not a table to dump
            continue
        write(f"{sql};\n")
        total = totals[name]
        if sql.lstrip().upper().startswith("CREATE VIRTUAL"):
            chunks = _scan_chunks(conn, name, utf8, with_rowid=True)
        elif without_rowid(sql):
            chunks = _scan_chunks(conn, name, utf8)
        else:
            chunks = _table_chunks(conn, name, total, utf8, helper if name in shared else None)
        done = 0
        progress(name, 0, total)
        for data, rows in chunks:
            sink.write(data)
            done += rows
            progress(name, done, total)
        if done != total:
            raise DumpError(f"table {name}: dumped {done} rows but the snapshot holds {total}")
        counts[name] = done
    for kind, name, sql in objects:
        if kind in ("index", "trigger", "view") and not name.startswith("sqlite_"):
            write(f"{sql};\n")
    if any(name == "sqlite_sequence" for _, name, _ in objects):
        # Inserting the rows filled sqlite_sequence already; set the counters as they were.
        write("DELETE FROM sqlite_sequence;\n")
        for seq_name, seq in conn.execute("SELECT quote(name), seq FROM sqlite_sequence"):
            write(f"INSERT INTO sqlite_sequence(name, seq) VALUES({seq_name}, {seq});\n")
    return counts


def _ranges(low: int, high: int, width: int) -> Iterator[tuple[int, int]]:
    """Inclusive rowid ranges of `width` rowids covering [low, high]."""
    first = low
    while first <= high:
        last = min(first + width - 1, high)
        yield first, last
        first = last + 1


def _range_chunks(conn: sqlite3.Connection, columns: Columns, first: int, last: int,
                  utf8: bool) -> Iterator[Chunk]:
    """The rows with rowid in [first, last], CHUNK_ROWS at a time, joined inside SQLite."""
    table = columns.table
    line = row_format(conn, columns, "rowid BETWEEN ? AND ?", (first, last))
    joined = "group_concat(line, char(10)) || char(10)"
    query = (f"SELECT {f'CAST({joined} AS BLOB)' if utf8 else joined}, COUNT(*), max(rid) FROM "
             f"(SELECT rowid AS rid, {line} AS line FROM {table} WHERE rowid BETWEEN ? AND ? "
             f"ORDER BY rowid LIMIT {CHUNK_ROWS})")
    position = first
    while True:
        data, rows, top = conn.execute(query, (position, last)).fetchone()
        if not rows:
            return
        yield as_bytes(data), rows
        if top >= last:
            return
        position = top + 1


def _table_chunks(conn: sqlite3.Connection, name: str, total: int, utf8: bool,
                  helper: _Helper | None) -> Iterator[Chunk]:
    table = quote_ident(name)
    low, high = conn.execute(f"SELECT min(rowid), max(rowid) FROM {table}").fetchone()
    if low is None:
        return
    columns = columns_of(conn, name)
    if helper is None:
        yield from _range_chunks(conn, columns, low, high, utf8)
        return
    # Ranges of ~RANGE_CHUNKS chunks if rowids are spread evenly; uneven ones only cost balance.
    width = max(1, (high - low + 1) * CHUNK_ROWS * RANGE_CHUNKS // max(total, 1))
    ranges = list(_ranges(low, high, width))
    # The helper takes 3 ranges of every 5, as this process also hashes, writes and reads its output.
    theirs = [index % 5 in HELPER_SHARE for index in range(len(ranges))]
    helper.request(name, [r for r, helped in zip(ranges, theirs, strict=True) if helped])
    for (first, last), helped in zip(ranges, theirs, strict=True):
        yield from helper.chunks() if helped else _range_chunks(conn, columns, first, last, utf8)


def _scan_chunks(conn: sqlite3.Connection, name: str, utf8: bool, *, with_rowid: bool = False) -> Iterator[Chunk]:
    """The rows of a table without rowid ranges (WITHOUT ROWID, virtual), through one cursor."""
    columns = columns_of(conn, name)
    line = row_format(conn, columns, with_rowid=with_rowid)
    cursor = conn.execute(f"SELECT {f'CAST({line} AS BLOB)' if utf8 else line} FROM {columns.table}")
    while batch := cursor.fetchmany(CHUNK_ROWS):
        yield b"".join(as_bytes(row[0]) + b"\n" for row in batch), len(batch)


# --- the helper process ---------------------------------------------------------------------
# Frames on the helper's stdout: kind (1 byte), rows (8 bytes), length (8 bytes), payload.
# R: snapshot open. D: a chunk of SQL. E: end of a range. X: an error, the payload says which.

_HEADER = struct.Struct("<cQQ")


def _frame(out: IO[bytes], kind: bytes, rows: int = 0, payload: bytes = b"") -> None:
    out.write(_HEADER.pack(kind, rows, len(payload)))
    out.write(payload)


def helper_command(path: Path) -> list[str]:
    """How the helper is started: this module run by the same interpreter."""
    return [sys.executable, "-m", "ops.database.sqldump", str(path.resolve())]


class _Helper:
    """A second process formatting its share (HELPER_SHARE) of the rowid ranges of the large tables."""

    def __init__(self, path: Path, lock: sqlite3.Connection) -> None:
        # The helper imports this very copy of `ops`, installed or not.
        source_root = str(CHECKOUT)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")]))}
        self._proc = subprocess.Popen(helper_command(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=env)
        self._lock: sqlite3.Connection | None = lock
        self._frames: queue.Queue[tuple[bytes, int, bytes] | None] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self._stopping = False
        self._reader = threading.Thread(target=self._read, name="dump-helper-reader", daemon=True)
        self._reader.start()

    def _wait_ready(self) -> None:
        """Wait (once) until the helper's snapshot is open, then release the write lock.

        Not done at start: Python takes ~50 ms to start, and meanwhile we dump the small tables.
        """
        if self._lock is None:
            return
        try:
            frame = self._frames.get(timeout=HELPER_START_TIMEOUT)
        except queue.Empty:
            frame = (b"X", 0, f"did not start within {HELPER_START_TIMEOUT:.0f} s".encode())
        finally:
            release(self._lock)
            self._lock = None
        if frame is None or frame[0] != b"R":
            raise DumpError(f"the dump helper process failed to start: {self._why(frame)}")

    def request(self, table: str, ranges: list[tuple[int, int]]) -> None:
        """Ask for these rowid ranges of `table`, to be read in this order with chunks()."""
        self._wait_ready()
        assert self._proc.stdin is not None
        job = {"table": table, "ranges": ranges}
        try:
            self._proc.stdin.write(json.dumps(job).encode() + b"\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise DumpError(f"the dump helper process stopped: {self._why(None)}") from None

    def chunks(self) -> Iterator[Chunk]:
        """The chunks of the helper's next range, in order."""
        while (frame := self._frames.get()) is not None and frame[0] == b"D":
            yield frame[2], frame[1]
        if frame is None or frame[0] != b"E":
            raise DumpError(f"the dump helper process failed: {self._why(frame)}")

    def close(self) -> None:
        self._wait_ready()
        assert self._proc.stdin is not None
        self._proc.stdin.close()  # no more requests: the helper exits
        try:
            code = self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.abort()
            raise DumpError("the dump helper process did not exit within 60 s of the end of the dump") from None
        self._reader.join()
        if self._frames.get() is not None:  # after the last asked-for frame only the end of output
            raise DumpError("the dump helper process wrote more than was asked for")
        if code != 0:
            raise DumpError(f"the dump helper process exited with {code}: {self._why(None)}")

    def abort(self) -> None:
        if self._lock is not None:
            release(self._lock)
            self._lock = None
        self._stopping = True
        self._proc.kill()
        self._proc.wait()
        while self._reader.is_alive():  # unblock a reader waiting on a full queue
            try:
                self._frames.get_nowait()
            except queue.Empty:
                self._reader.join(0.01)
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    def _why(self, frame: tuple[bytes, int, bytes] | None) -> str:
        if frame is not None and frame[0] == b"X":
            return frame[2].decode("utf-8", "replace")
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        assert self._proc.stderr is not None
        stderr = self._proc.stderr.read().decode("utf-8", "replace").strip()
        last = stderr.splitlines()[-1] if stderr else "no message"
        return f"exit code {self._proc.returncode}: {last}"

    def _read(self) -> None:
        assert self._proc.stdout is not None
        stdout = self._proc.stdout
        try:
            while not self._stopping:
                header = stdout.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    break
                kind, rows, length = _HEADER.unpack(header)
                self._frames.put((kind, rows, stdout.read(length)))
        except (OSError, ValueError):  # the pipe was closed by abort()
            pass
        self._frames.put(None)


def _helper_main(path: str) -> int:
    """The helper: open a read snapshot, say so, then dump the ranges it is asked for, in order."""
    out = sys.stdout.buffer
    try:
        conn = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True, isolation_level=None)
        conn.execute("BEGIN")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # the read snapshot starts here
        utf8 = returns_utf8(conn)
        _frame(out, b"R")
        out.flush()
        for line in sys.stdin.buffer:
            job: dict[str, Any] = json.loads(line)
            columns = columns_of(conn, job["table"])
            for first, last in job["ranges"]:
                for data, rows in _range_chunks(conn, columns, first, last, utf8):
                    _frame(out, b"D", rows, data)
                _frame(out, b"E")
                out.flush()
    except BrokenPipeError:
        return 1  # the dump was aborted
    except Exception as exc:  # reported to the parent, which fails the dump with this message
        _frame(out, b"X", 0, f"{type(exc).__name__}: {exc}".encode())
        out.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_helper_main(sys.argv[1]))
