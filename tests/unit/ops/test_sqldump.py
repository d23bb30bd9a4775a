"""The SQL dump of a local database: exact values, one snapshot, and the helper process's failure paths."""

from __future__ import annotations

import io
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from ops.backups import backups
from ops.database import sqldump
from ops.database.sqldump import dump_sqlite
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
        result = dump_sqlite(db.conn, db.path, out, **kwargs)
        return out.getvalue(), result.tables, result.sha256
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
    # WAL lets a writer commit while we read. Between our snapshot and the helper's there is a
    # window; the write lock we hold until the helper's snapshot is open must keep writers out of
    # it. The helper is held at its start (a gate file) until the test has tried to write from
    # inside that window, so the window is always there, whatever the machine's load.
    source = tmp_path / "src.sqlite"
    make_db(source, 300, wal=True)
    before = typed_rows(source)
    gate = tmp_path / "gate"
    monkeypatch.setattr(sqldump, "helper_command", lambda path: [
        sys.executable, "-c", "import pathlib, runpy, sys, time\n"
        "gate = pathlib.Path(sys.argv.pop())\n"
        "while not gate.exists(): time.sleep(0.01)\n"
        "runpy.run_module('ops.database.sqldump', run_name='__main__')", str(path), str(gate)])

    def write(timeout: float) -> None:
        writer = sqlite3.connect(source, isolation_level=None, timeout=timeout)
        try:
            writer.execute("UPDATE t SET plain = 'changed', n = 42")
            writer.execute("DELETE FROM t WHERE id > 600")
        finally:
            writer.close()

    waiting: list[threading.Thread] = []

    def in_the_window(table: str, done: int, _total: int) -> None:
        if table == "t" and not waiting:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                write(timeout=0)  # our snapshot is open, the helper's is not: no commit may get in
            waiting.append(threading.Thread(target=write, args=(30.0,)))
            waiting[0].start()  # commits as soon as the lock is released: after the helper's snapshot
            gate.touch()

    monkeypatch.setattr(sqldump, "HELPER_MIN_ROWS", 1)
    db = LocalDatabase(source)
    out = io.BytesIO()
    result = dump_sqlite(db.conn, db.path, out, in_the_window)
    db.close()
    waiting[0].join()
    assert result.tables["t"] == 301
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
    monkeypatch.setattr(sqldump, "HELPER_MIN_ROWS", 1)
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


def test_fts5_tables_are_dumped_as_rows_and_their_index_is_rebuilt_on_restore(tmp_path: Path) -> None:
    # The shadow tables (docs_data, docs_idx, ...) belong to the module: a dump that re-created
    # them next to CREATE VIRTUAL TABLE could never load ("table docs_data already exists").
    source = tmp_path / "src.sqlite"
    conn = sqlite3.connect(source)
    conn.executescript("""
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
        CREATE VIRTUAL TABLE docs USING fts5(title, body);
        CREATE VIRTUAL TABLE notes_fts USING fts5(body, content='notes', content_rowid='id');
        INSERT INTO docs (rowid, title, body) VALUES (7, 'Silk press', 'wash & style'),
                                                     (42, 'Braids', 'it''s 100% long');
        INSERT INTO notes VALUES (3, 'hello world'), (9, 'goodbye world');
        INSERT INTO notes_fts (notes_fts) VALUES ('rebuild');
    """)
    conn.close()
    sql, counts, _ = dump(source)
    assert counts == {"notes": 2, "docs": 2, "notes_fts": 2}
    assert b"docs_data" not in sql and b"writable_schema" not in sql
    restored = sqlite3.connect(restore(sql, tmp_path / "out.sqlite"))
    # Rowids are the FTS5 tables' keys: they must survive, and the index must find the rows.
    assert restored.execute("SELECT rowid, title FROM docs WHERE docs MATCH 'wash'").fetchall() == [(7, "Silk press")]
    assert restored.execute("SELECT rowid FROM docs WHERE docs MATCH 'long'").fetchall() == [(42,)]
    assert restored.execute("SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'world' ORDER BY rowid").fetchall() == [
        (3,), (9,)]
    restored.execute("INSERT INTO docs (docs) VALUES ('integrity-check')")
    restored.execute("INSERT INTO notes_fts (notes_fts) VALUES ('integrity-check')")


@pytest.mark.parametrize("table, message", [
    ("CREATE VIRTUAL TABLE v USING fts5(body, content='')", "contentless FTS5 table"),
    ("CREATE VIRTUAL TABLE v USING rtree(id, x0, x1)", "virtual table of module rtree"),
])
def test_a_virtual_table_a_dump_cannot_rebuild_is_refused(tmp_path: Path, table: str, message: str) -> None:
    source = tmp_path / "src.sqlite"
    conn = sqlite3.connect(source)
    conn.execute(table)
    conn.close()
    with pytest.raises(sqldump.DumpError, match=message):
        dump(source)


@pytest.mark.parametrize("helper_min_rows", [1, 10**9], ids=["beside the dump", "at its end"])
def test_foreign_key_violations_are_counted_in_the_dumps_snapshot(tmp_path: Path, helper_min_rows: int) -> None:
    source = tmp_path / "src.sqlite"
    conn = sqlite3.connect(source, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")  # a writer may commit while the dump reads
    conn.executescript("""
        CREATE TABLE parent (id INTEGER PRIMARY KEY);
        CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
        INSERT INTO parent VALUES (1);
        INSERT INTO child VALUES (10, 1), (11, 2), (12, NULL);
    """)  # child 11's parent 2 does not exist; a NULL key points nowhere by design, not a violation
    conn.close()

    def fix_the_orphan_meanwhile(table: str, _done: int, _total: int) -> None:
        if table == "child":
            writer = sqlite3.connect(source, isolation_level=None, timeout=30)
            writer.execute("DELETE FROM child WHERE id = 11")
            writer.close()

    db = LocalDatabase(source)
    result = dump_sqlite(db.conn, db.path, io.BytesIO(), fix_the_orphan_meanwhile, helper_min_rows=helper_min_rows)
    db.close()
    assert result.foreign_keys == sqldump.ForeignKeyViolations(1, (("child", 11, "parent"),))
    assert result.tables["child"] == 3
