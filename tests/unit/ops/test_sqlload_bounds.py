"""Loading a dump stops at its time limit even when no statement runs long by itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ops.database.sqlload import Limits, LoadError, load_dump


def test_the_time_limit_covers_reading_and_splitting_not_only_running(tmp_path: Path) -> None:
    # Each CREATE TABLE runs in a handful of virtual-machine steps, so the progress handler (called every
    # 1000) never sees the deadline: only a check between statements does.
    dump = tmp_path / "dump.sql"
    dump.write_text("".join(f"CREATE TABLE t{i} (a);\n" for i in range(200)))
    conn = sqlite3.connect(tmp_path / "loaded.sqlite", isolation_level=None)
    with pytest.raises(LoadError, match="time limit"):
        load_dump(conn, dump, limits=Limits(seconds=-1, max_bytes=2**30))
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
