"""The SQL dump of a local database: exact values, one snapshot, and the helper process's failure paths."""

from __future__ import annotations

import io
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from ops import backups, sqldump
from ops.sqldump import dump_sqlite
from ops.targets import LocalDatabase

AWKWARD_TEXT = ["it's", "100% sure", "line one\nline two", "💇 Sipho", "", "x'00'", "%Q %s %%", "NULL", "\\"]


def make_db(path: Path, rows: int, *, encoding: str = "UTF-8", wal: bool = False) -> None:
    """A table with every storage class in every kind of column, blobs in indexed and unindexed text."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA encoding = '{encoding}'")
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, indexed TEXT, plain TEXT, name VARCHAR(20), "
                 "anything, price REAL, n INTEGER)")
    conn.execute("CREATE INDEX t_indexed ON t(indexed)")
    conn.execute("CREATE TABLE k (a TEXT, b INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID")
    conn.execute("CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)")
    conn.execute("BEGIN")
    for i in range(rows):
        text = AWKWARD_TEXT[i % len(AWKWARD_TEXT)]
        values = (i * 3 + 1,  # sparse rowids
                  b"\x00blob\xff" if i == rows - 2 else f"{text}{i}",  # one blob, in the last range
                  None if i % 5 == 0 else text,
                  f"n{i}",
                  [i, 0.1 * i, text, b"\x01\x02", None][i % 5],
                  [1e300, -0.0, 3.141592653589793, None][i % 4],
                  [2**63 - 1, -(2**63), i, None][i % 4])
        conn.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", values)
    conn.execute("INSERT INTO t (id, plain) VALUES (?, ?)", (rows * 3 + 10, b"blob in plain text column"))
    conn.executemany("INSERT INTO k VALUES (?, ?)", [(AWKWARD_TEXT[i % 9], i) for i in range(50)])
    conn.executemany("INSERT INTO seq (v) VALUES (?)", [("a",), ("b",)])
    conn.execute("DELETE FROM seq WHERE v = 'b'")
    conn.execute("COMMIT")
    conn.close()


def typed_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row with each value's storage class, so 1 vs '1' vs 1.0 vs b'1' all differ."""
    conn = sqlite3.connect(path)
    try:
        out = {}
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
            select = ", ".join(f'"{c}", typeof("{c}")' for c in columns)
            out[table] = sorted(conn.execute(f'SELECT {select} FROM "{table}"').fetchall(), key=repr)
        return out
    finally:
        conn.close()


def dump(path: Path, **kwargs: int) -> tuple[bytes, dict[str, int], str]:
    db = LocalDatabase(path)
    try:
        out = io.BytesIO()
        counts, digest = dump_sqlite(db.conn, db.path, out, **kwargs)
        return out.getvalue(), counts, digest
    finally:
        db.close()


def restore(sql: bytes, path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(sql.decode("utf-8"))
    conn.close()
    return path


@pytest.fixture(autouse=True)
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many ranges and chunks on a small table, so both processes take several.
    monkeypatch.setattr(sqldump, "CHUNK_ROWS", 7)
    monkeypatch.setattr(sqldump, "RANGE_CHUNKS", 2)


def test_dump_restores_every_value_with_its_storage_class(tmp_path: Path) -> None:
    make_db(tmp_path / "src.sqlite", 300)
    sql, counts, _ = dump(tmp_path / "src.sqlite")
    assert counts == {"t": 301, "k": 50, "seq": 1}
    assert typed_rows(restore(sql, tmp_path / "out.sqlite")) == typed_rows(tmp_path / "src.sqlite")
    restored = sqlite3.connect(tmp_path / "out.sqlite")
    assert restored.execute("SELECT seq FROM sqlite_sequence WHERE name = 'seq'").fetchone() == (2,)


def test_blobs_in_text_columns_are_written_as_blob_literals(tmp_path: Path) -> None:
    make_db(tmp_path / "src.sqlite", 30)
    sql, _, _ = dump(tmp_path / "src.sqlite")
    assert b"X'00626C6F62FF'" in sql  # the indexed column's blob, found through the index
    assert b"X'626C6F6220696E20706C61696E2074657874206" in sql  # the unindexed column's, found by the scan


def test_helper_process_writes_the_same_bytes_as_one_process(tmp_path: Path) -> None:
    make_db(tmp_path / "src.sqlite", 400)
    alone, counts, digest = dump(tmp_path / "src.sqlite", helper_min_rows=10**9)
    helped, helped_counts, helped_digest = dump(tmp_path / "src.sqlite", helper_min_rows=1)
    assert helped == alone and helped_counts == counts and helped_digest == digest
    assert typed_rows(restore(helped, tmp_path / "out.sqlite")) == typed_rows(tmp_path / "src.sqlite")


def test_helper_is_started_only_for_large_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_db(tmp_path / "src.sqlite", 40)
    started: list[Path] = []
    real = sqldump.helper_command

    def spy(path: Path) -> list[str]:
        started.append(path)
        return real(path)

    monkeypatch.setattr(sqldump, "helper_command", spy)
    dump(tmp_path / "src.sqlite", helper_min_rows=1000)
    assert started == []
    dump(tmp_path / "src.sqlite", helper_min_rows=41)  # only t (41 rows) qualifies
    assert started == [(tmp_path / "src.sqlite")]


def test_utf16_database_is_dumped_as_utf8(tmp_path: Path) -> None:
    make_db(tmp_path / "src.sqlite", 60, encoding="UTF-16le")
    sql, _, _ = dump(tmp_path / "src.sqlite", helper_min_rows=1)
    assert "💇 Sipho".encode() in sql
    assert typed_rows(restore(sql, tmp_path / "out.sqlite")) == typed_rows(tmp_path / "src.sqlite")


def test_a_write_during_the_dump_is_seen_by_neither_process(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # WAL lets a writer commit while we read. It tries as soon as our snapshot is open, while the
    # helper is still starting (slowed down here); the write lock we hold until the helper's
    # snapshot is open makes it wait, so both processes dump the rows as they were.
    source = tmp_path / "src.sqlite"
    make_db(source, 300, wal=True)
    before = typed_rows(source)
    monkeypatch.setattr(sqldump, "helper_command", lambda path: [
        sys.executable, "-c", "import runpy, sys, time; time.sleep(0.5); sys.argv[1:] = [sys.argv[1]]; "
        "runpy.run_module('ops.sqldump', run_name='__main__')", str(path)])

    def write() -> None:
        writer = sqlite3.connect(source, isolation_level=None, timeout=10)
        writer.execute("UPDATE t SET plain = 'changed', n = 42")
        writer.execute("DELETE FROM t WHERE id > 600")
        writer.close()

    threads: list[threading.Thread] = []

    def start_writer(table: str, done: int, _total: int) -> None:
        if table == "t" and not threads:
            threads.append(threading.Thread(target=write))
            threads[0].start()

    db = LocalDatabase(source)
    out = io.BytesIO()
    counts, _ = dump_sqlite(db.conn, db.path, out, start_writer, helper_min_rows=1)
    db.close()
    threads[0].join()
    assert counts["t"] == 301
    assert typed_rows(restore(out.getvalue(), tmp_path / "out.sqlite")) == before
    assert sqlite3.connect(source).execute("SELECT COUNT(*) FROM t").fetchone() == (200,)  # the write happened


def test_without_the_write_lock_the_dump_runs_in_one_process(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "src.sqlite"
    make_db(source, 100, wal=True)
    monkeypatch.setattr(sqldump, "helper_command", lambda path: pytest.fail("a helper was started"))
    holder = sqlite3.connect(source, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # someone else is writing: the helper's snapshot could not be pinned
    try:
        sql, counts, _ = dump(source, helper_min_rows=1)
    finally:
        holder.execute("ROLLBACK")
    assert counts["t"] == 101
    assert typed_rows(restore(sql, tmp_path / "out.sqlite")) == typed_rows(source)


def fake_helper(script: str) -> object:
    def command(path: Path) -> list[str]:
        return [sys.executable, "-c", f"import sys, struct\nout = sys.stdout.buffer\n{script}"]
    return command


READY = "out.write(struct.pack('<cQQ', b'R', 0, 0)); out.flush()\n"


@pytest.mark.parametrize("script, message", [
    ("sys.stderr.write('ImportError: no sqlite3\\n'); sys.exit(3)", "failed to start: exit code 3: ImportError"),
    (READY + "sys.stdin.readline(); sys.exit(4)", "helper process failed: exit code 4"),
    (READY + "sys.stdin.readline(); msg = b'OperationalError: disk I/O error'\n"
             "out.write(struct.pack('<cQQ', b'X', 0, len(msg)) + msg); out.flush()", "disk I/O error"),
    (READY + "sys.stdin.readline(); out.write(struct.pack('<cQQ', b'D', 7, 5) + b'abc'); out.flush()",
     "helper process failed"),  # cut mid-frame
])
def test_a_failing_helper_fails_the_backup_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              script: str, message: str) -> None:
    make_db(tmp_path / "src.sqlite", 200)
    monkeypatch.setattr(sqldump, "helper_command", fake_helper(script))
    monkeypatch.setattr(backups, "dump_sqlite",
                        lambda conn, path, out, progress: dump_sqlite(conn, path, out, progress, helper_min_rows=1))
    dest = tmp_path / "backups"
    with pytest.raises(backups.BackupError, match=message):
        backups.create(LocalDatabase(tmp_path / "src.sqlite"), dest)
    assert list(dest.iterdir()) == []
    # The database is not left locked or inside a transaction.
    conn = sqlite3.connect(tmp_path / "src.sqlite", timeout=0)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ROLLBACK")


def test_an_error_on_our_side_stops_the_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_db(tmp_path / "src.sqlite", 300)
    procs: list[object] = []
    real_init = sqldump._Helper.__init__

    def remember(self: sqldump._Helper, path: Path, lock: sqlite3.Connection) -> None:
        real_init(self, path, lock)
        procs.append(self._proc)

    monkeypatch.setattr(sqldump._Helper, "__init__", remember)

    def explode(table: str, done: int, _total: int) -> None:
        if done > 100:
            raise OSError("disk full")

    db = LocalDatabase(tmp_path / "src.sqlite")
    with pytest.raises(OSError, match="disk full"):
        dump_sqlite(db.conn, db.path, io.BytesIO(), explode, helper_min_rows=1)
    assert len(procs) == 1 and procs[0].poll() is not None  # type: ignore[attr-defined]
    assert not db.conn.in_transaction
    db.close()


def test_a_failing_write_stops_the_dump(tmp_path: Path) -> None:
    make_db(tmp_path / "src.sqlite", 300)

    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            raise OSError(28, "No space left on device")

    db = LocalDatabase(tmp_path / "src.sqlite")
    with pytest.raises(OSError, match="No space left"):
        dump_sqlite(db.conn, db.path, Full(), helper_min_rows=1)
    db.close()
