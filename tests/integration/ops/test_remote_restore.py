"""Time Travel restores of a stack's D1: undoable, never sent twice, by bookmark or by time."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from cloudflare import Cloudflare

from ops.targets import RemoteDatabase, UncertainWriteError, remote_database
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import CloudflareDouble, D1State, Fault

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow


@pytest.fixture
def d1(double: CloudflareDouble) -> D1State:
    state = double.add_database("appointmentbooking-db-staging")
    conn = sqlite3.connect(state.path)
    conn.execute("CREATE TABLE appointments (id TEXT PRIMARY KEY)")
    conn.commit()
    conn.close()
    return state


@pytest.fixture
def db(client: Cloudflare, d1: D1State) -> RemoteDatabase:
    return remote_database(ACCOUNT, d1.name, client=client)


def book(d1: D1State, appointment: str) -> None:
    conn = sqlite3.connect(d1.path)
    conn.execute("INSERT INTO appointments VALUES (?)", (appointment,))
    conn.commit()
    conn.close()


def booked(d1: D1State) -> set[str]:
    return {row[0] for row in sqlite3.connect(d1.path).execute("SELECT id FROM appointments")}


def test_restore_returns_a_bookmark_that_undoes_it(db: RemoteDatabase, d1: D1State, double: CloudflareDouble) -> None:
    point = double.snapshot(d1)
    book(d1, "booked-after-the-bookmark")
    undo = db.restore(bookmark=point)
    assert booked(d1) == set()
    db.restore(bookmark=undo)
    assert booked(d1) == {"booked-after-the-bookmark"}


def test_a_restore_whose_answer_is_lost_is_not_repeated_and_the_undo_point_is_the_state_before(
        db: RemoteDatabase, d1: D1State, double: CloudflareDouble) -> None:
    """The review's D10: a 502 after the restore happened used to make the SDK restore again and
    report the already-restored state as the one to undo to."""
    point = double.snapshot(d1)
    book(d1, "booked-after-the-bookmark")
    double.inject(Fault("POST", r"/time_travel/restore$", status=502, applied=True))
    with pytest.raises(UncertainWriteError) as info:
        db.restore(bookmark=point)
    assert sum(1 for m, p in double.requests if p.endswith("/time_travel/restore")) == 1
    undo = str(info.value).split("--bookmark ")[1].split("`")[0]
    db.restore(bookmark=undo)  # what the message says to run
    assert booked(d1) == {"booked-after-the-bookmark"}


def test_restore_by_timestamp_goes_back_to_the_state_at_that_time(
        db: RemoteDatabase, d1: D1State, double: CloudflareDouble) -> None:
    book(d1, "kept")
    double.snapshot(d1)
    between = dt.datetime.now(dt.UTC)
    book(d1, "made-later")
    double.snapshot(d1)
    db.restore(timestamp=between.isoformat())
    assert booked(d1) == {"kept"}


def test_cli_remote_restore_by_timestamp_prints_the_undo_command(
        d1: D1State, double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bookingctl.cli import app
    from tests.helpers import REPO
    from tests.helpers.cf_double import TOKEN

    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    book(d1, "kept")
    double.snapshot(d1)
    between = dt.datetime.now(dt.UTC).isoformat()
    book(d1, "made-later")
    result = CliRunner().invoke(app, ["backup", "restore", "--stack", "staging", "--timestamp", between, "--yes",
                                      "--project-dir", str(REPO)])
    assert result.exit_code == 0, result.output
    assert booked(d1) == {"kept"}
    assert "To undo: bookingctl backup restore --stack staging --bookmark " in result.stderr


def cli(double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from bookingctl.cli import app
    from tests.helpers import REPO
    from tests.helpers.cf_double import TOKEN

    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    result = CliRunner().invoke(app, [*args, "--project-dir", str(REPO)])
    return result.exit_code, result.stderr


def test_cli_an_uncertain_restore_fails_naming_the_stack_and_an_undo_that_brings_bookings_back(
        d1: D1State, double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    point = double.snapshot(d1)
    book(d1, "booked-after-the-bookmark")
    double.inject(Fault("POST", r"/time_travel/restore$", status=502, applied=True))
    code, err = cli(double, monkeypatch, "backup", "restore", "--stack", "staging", "--bookmark", point, "--yes")
    assert code == 1 and "Traceback" not in err and "may or may not have been applied" in err
    undo = err.split("bookingctl backup restore --stack staging --bookmark ")[1].split()[0]
    code, _ = cli(double, monkeypatch, "backup", "restore", "--stack", "staging", "--bookmark", undo, "--yes")
    assert code == 0 and booked(d1) == {"booked-after-the-bookmark"}


def test_cli_an_export_that_never_completes_is_given_up_at_the_export_timeout(
        d1: D1State, double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """The review's D9: `backup create --stack` used to poll a stuck export for ever."""
    import time

    double.export_polls_needed = 10**9
    started = time.monotonic()
    code, err = cli(double, monkeypatch, "backup", "create", "--stack", "staging", "--dest", f"{tmp_path}/b",
                    "--export-timeout", "2")
    assert code == 1 and time.monotonic() - started < 15
    assert "export" in err and "Traceback" not in err


def test_the_restore_answer_names_a_new_bookmark_of_the_state_after_the_restore(
        client: Cloudflare, d1: D1State, double: CloudflareDouble) -> None:
    """The SDK (types/d1/database/time_travel_restore_response.py): `bookmark` is "the new bookmark
    representing the state of the database after the restore", `previous_bookmark` the one before."""
    point = double.snapshot(d1)
    book(d1, "booked-after-the-bookmark")
    answer = client.d1.database.time_travel.restore(d1.uuid, account_id=ACCOUNT, bookmark=point)
    assert answer is not None and answer.bookmark and answer.previous_bookmark
    assert answer.bookmark not in (point, answer.previous_bookmark)
    book(d1, "booked-after-the-restore")
    client.d1.database.time_travel.restore(d1.uuid, account_id=ACCOUNT, bookmark=answer.bookmark)
    assert booked(d1) == set()
    client.d1.database.time_travel.restore(d1.uuid, account_id=ACCOUNT, bookmark=answer.previous_bookmark)
    assert booked(d1) == {"booked-after-the-bookmark"}


def test_no_bookmark_in_the_answer_is_an_error_not_the_restore_point_none(
        db: RemoteDatabase, d1: D1State, monkeypatch: pytest.MonkeyPatch) -> None:
    """`get_bookmark().bookmark` is Optional in the SDK: an answer without one stops whatever needed the
    restore point, before it changes anything, instead of logging "None" as one."""
    from cloudflare.types.d1.database.time_travel_get_bookmark_response import TimeTravelGetBookmarkResponse

    from ops.targets import TargetError

    monkeypatch.setattr(db.client.d1.database.time_travel, "get_bookmark",
                        lambda *a, **k: TimeTravelGetBookmarkResponse(bookmark=None))
    with pytest.raises(TargetError, match=r"no Time Travel bookmark.*nothing was changed"):
        db.bookmark()
    book(d1, "kept")
    with pytest.raises(TargetError):
        db.restore(timestamp=dt.datetime.now(dt.UTC).isoformat())
    assert booked(d1) == {"kept"}
