"""`migrate check` is bounded: deadlines that cover compilation, and schema rows it will not run."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from ops.database import migration_check
from ops.database.migration_check import CheckError, check_local, scratch_copy
from ops.database.migrations import apply, discover
from ops.releases.gate import own_queries
from ops.targets import LocalDatabase
from tests.helpers import REPO
from tests.helpers.migrations import folder_with


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "target.sqlite"
    with LocalDatabase(path, must_exist=False) as db:
        apply(db, discover(REPO / "migrations"))
    return path


def view_bomb(bases: int = 8, levels: int = 7) -> str:
    """Nested UNION ALL views (4 per level): a few KB whose compilation alone takes minutes."""
    sql = []
    for b in range(bases):
        sql.append(f"CREATE TABLE vb{b} (a);\nCREATE VIEW vb{b}_0 AS SELECT a FROM vb{b};")
        sql += [f"CREATE VIEW vb{b}_{k} AS " + " UNION ALL ".join([f"SELECT a FROM vb{b}_{k - 1}"] * 4) + ";"
                for k in range(1, levels)]
    sql.append("SELECT count(*) FROM (" + " UNION ALL ".join(f"SELECT a FROM vb{b}_{levels - 1}"
                                                            for b in range(bases)) + ");")
    return "\n".join(sql) + "\n"


def test_a_statement_whose_compilation_never_ends_is_stopped_by_the_statement_deadline(
        target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migration_check, "STATEMENT_SECONDS", 1.0)  # D1's 30 s, shortened for the test
    folder = folder_with(tmp_path, **{"0002_views": view_bomb()})
    monkeypatch.setattr(migration_check, "STEP_GRACE_SECONDS", 1.0)
    started = time.monotonic()
    with pytest.raises(CheckError, match=r"stopped after 2 s on one step at 0002_views.sql:\d+: SQLite was still "
                                         "compiling"):
        check_local(target, discover(folder, strict=False), own_queries())
    assert time.monotonic() - started < 20


def test_the_whole_check_has_a_deadline(target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migration_check, "CHECK_SECONDS", 0.0)
    folder = folder_with(tmp_path, **{"0002_t": "CREATE TABLE t (a);\n"})
    with pytest.raises(CheckError, match="stopped after 0 s in all"):
        check_local(target, discover(folder, strict=False), own_queries())


def test_a_corpus_that_never_ends_is_refused_after_its_size_limit_is_read() -> None:
    from ops.database.serving import CorpusError, read_corpus

    # /dev/zero says it is 0 bytes long: a limit trusting st_size read it until memory ran out.
    started = time.monotonic()
    with pytest.raises(CorpusError, match="larger than 4 MiB"):
        read_corpus(Path("/dev/zero"), "/dev/zero")
    assert time.monotonic() - started < 10


# --- the schema rows a target answers are data, not SQL to run ------------------------------------

@pytest.mark.parametrize(("kind", "sql"), [
    ("table", "VACUUM INTO '{dir}/vacuumed.sqlite'"),
    ("index", "ATTACH DATABASE '{dir}/attached.sqlite' AS a"),
    ("view", "CREATE TABLE v (a)"),  # not what its type says
    ("trigger", "PRAGMA writable_schema = ON"),
])
def test_schema_rows_that_are_not_their_own_create_statement_are_refused_and_never_run(
        tmp_path: Path, kind: str, sql: str) -> None:
    rows = [("table", "t", "t", "CREATE TABLE t (a)"), (kind, "x", "t", sql.format(dir=tmp_path))]
    with pytest.raises(CheckError, match=f"the target's {kind} x is not a CREATE {kind.upper()} statement"):
        scratch_copy(rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_committed_schema_still_copies(target: Path) -> None:
    conn = sqlite3.connect(target)
    rows = [(str(t), str(n), str(tn), s) for t, n, tn, s in conn.execute(migration_check.SCHEMA_QUERY)]
    conn.close()
    copy = scratch_copy(rows)
    assert copy.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").fetchone()[0] >= 5


# --- run_bounded's unbounded stretches (Reporter.free), which the rehearsal uses between statements ---

def test_a_stretch_after_free_has_no_step_deadline_and_the_next_step_has_one_again() -> None:
    import time

    import pytest

    from ops.database.bounded import DeadlineExceeded, Reporter, run_bounded

    def counted_then_bounded(reporter: Reporter) -> str:
        reporter.at("step 1")
        reporter.free()
        time.sleep(0.6)  # longer than step_seconds: counting rows, not a statement
        reporter.at("step 2")
        return "done"

    assert run_bounded(counted_then_bounded, seconds=30, step_seconds=0.3) == "done"

    def stuck(reporter: Reporter) -> None:
        reporter.free()
        reporter.at("0003_x.sql:4")
        time.sleep(30)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        run_bounded(stuck, seconds=float("inf"), step_seconds=0.3)
    assert info.value.where == "0003_x.sql:4" and time.monotonic() - started < 5


def test_a_worker_killed_from_outside_is_an_operation_failure_naming_the_signal_and_where() -> None:
    import os
    import signal

    import pytest

    from booking_shared.errors import OperationFailed
    from ops.database.bounded import Reporter, WorkerDied, run_bounded

    def killed(reporter: Reporter) -> None:
        reporter.at("0004_big.sql:7")
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would

    with pytest.raises(WorkerDied) as info:
        run_bounded(killed, seconds=30, step_seconds=30)
    assert isinstance(info.value, OperationFailed) and info.value.where == "0004_big.sql:7"
    assert "killed by SIGKILL (out of memory?)" in str(info.value) and "0004_big.sql:7" in str(info.value)

    def exits(reporter: Reporter) -> None:
        os._exit(3)

    with pytest.raises(WorkerDied, match="exited with code 3"):
        run_bounded(exits, seconds=30, step_seconds=30)
