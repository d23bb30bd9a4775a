"""A signal that lands while SQLite runs one of our callbacks stays a signal.

Python runs a signal's handler between bytecodes, so Ctrl-C or SIGTERM (bookingctl raises
`Terminated` from it) can surface inside the authorizer or the progress handler. sqlite3 reads an
exception there as "deny" or "interrupt": a good dump was reported as "not authorized" and a
migration as "SQLite refuses" (hostile review of #22, D1). Here the callback itself raises, as the
handler would, on its Nth call.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bookingctl.errors import Terminated
from ops.database import migration_check, sqlload
from ops.database.sqlload import Limits, load_dump


def _dump(tmp_path: Path) -> Path:
    path = tmp_path / "dump.sql"
    path.write_text("CREATE TABLE t (a INTEGER);\n" + "".join(f"INSERT INTO t VALUES ({i});\n" for i in range(200)))
    return path


@pytest.mark.parametrize("signal", [KeyboardInterrupt, Terminated])
def test_a_signal_inside_the_dump_loaders_authorizer_is_raised_not_read_as_a_refusal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signal: type[BaseException]) -> None:
    real = sqlload._Guard.authorize
    calls = {"n": 0}

    def authorize(self: sqlload._Guard, *args: object) -> int:
        calls["n"] += 1
        if calls["n"] == 50:
            raise signal
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlload._Guard, "authorize", authorize)
    conn = sqlite3.connect(tmp_path / "scratch.sqlite", isolation_level=None)
    with pytest.raises(signal):
        load_dump(conn, _dump(tmp_path), limits=Limits.for_dump(10_000))
    assert not conn.in_transaction  # rolled back, nothing half-loaded
    conn.close()


@pytest.mark.parametrize("signal", [KeyboardInterrupt, Terminated])
def test_a_signal_inside_the_dump_loaders_progress_handler_is_raised_not_read_as_the_time_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signal: type[BaseException]) -> None:
    def past_deadline(self: sqlload._Guard) -> int:
        raise signal

    monkeypatch.setattr(sqlload._Guard, "past_deadline", past_deadline)
    monkeypatch.setattr(sqlload, "_TICK_OPCODES", 1)
    conn = sqlite3.connect(tmp_path / "scratch.sqlite", isolation_level=None)
    with pytest.raises(signal):
        load_dump(conn, _dump(tmp_path), limits=Limits.for_dump(10_000))
    conn.close()


def test_a_signal_inside_the_checks_compile_only_authorizer_is_raised_not_reported_as_a_query_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def compile_only(*args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(migration_check, "_compile_only", compile_only)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a)")
    with pytest.raises(KeyboardInterrupt):
        migration_check._prepare_error(conn, "SELECT a FROM t")
