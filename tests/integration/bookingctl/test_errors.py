"""Every failure a user can meet ends in one line on stderr and a meaningful exit code, never a traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bookingctl.cli import app
from tests.helpers import REPO
from tests.helpers.cf_double import TOKEN, CloudflareDouble, Fault

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

MIGRATE_STATUS = ["migrate", "status", "--stack", "staging", "--project-dir", str(REPO)]


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def one_line_error(result: Result) -> str:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def api(double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudflareDouble]:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    double.add_database("appointmentbooking-db-staging")
    yield double


def test_no_network_names_the_stack_and_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "token")
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", f"http://127.0.0.1:{port}/client/v4")
    result = run(*MIGRATE_STATUS)
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "stack staging" in line and "cannot reach the Cloudflare API" in line and "GET /accounts/" in line


def test_a_wrong_token_is_bad_input_with_what_to_check(api: CloudflareDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "wrong-token")
    result = run(*MIGRATE_STATUS)
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "403" in line and "Authentication error" in line and "CLOUDFLARE_API_TOKEN" in line
    assert "D1 Edit" in line and "wrong-token" not in line


def test_an_unknown_database_is_bad_input_naming_the_key(double: CloudflareDouble,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    result = run(*MIGRATE_STATUS)  # the account has no database of that name
    assert result.exit_code == 2
    assert "booking:databaseName" in one_line_error(result)


@pytest.mark.parametrize(("status", "says"), [(429, "rate-limited"), (500, "failed"), (503, "failed")])
def test_persistent_rate_limits_and_server_errors_fail_after_retries(
        api: CloudflareDouble, status: int, says: str) -> None:
    api.inject(Fault("POST", r"/query$", status=status, times=50))
    result = run(*MIGRATE_STATUS)
    assert result.exit_code == 1
    line = one_line_error(result)
    assert says in line and "stack staging" in line and "POST /accounts/" in line
    assert len([p for m, p in api.requests if p.endswith("/query")]) > 1  # the reads were retried first


@pytest.mark.parametrize("command", [
    ["users", "list"], ["audit", "security"], ["db", "stats"], ["apikeys", "usage"], ["report", "daily", "--out"],
])
def test_read_commands_on_an_unmigrated_file_say_how_to_create_the_schema(tmp_path: object, command: list[str]) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    empty = folder / "empty.db"
    empty.touch()
    args = [*command, str(folder / "reports")] if command[-1] == "--out" else command
    result = run(*args, "--local", str(empty))
    assert result.exit_code == 2
    assert f"bookingctl migrate apply --local {empty}" in one_line_error(result)


@pytest.mark.parametrize(("content", "says"), [(b"root:x:0:0:root:/root:/bin/bash\n", "not a SQLite database")])
def test_read_commands_on_a_file_that_is_not_sqlite_say_so(tmp_path: object, content: bytes, says: str) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "passwd"
    path.write_bytes(content)
    result = run("users", "list", "--local", str(path))
    assert result.exit_code == 2 and says in one_line_error(result)


def test_a_missing_local_database_names_the_command_that_creates_it(tmp_path: object) -> None:
    result = run("users", "list", "--local", f"{tmp_path}/nope.db")
    assert result.exit_code == 2
    assert "bookingctl migrate apply --local" in one_line_error(result)


# --- options every group shares: checked before anything is opened or read ----------------------

def run_in_repo(*args: str) -> Result:
    return run(*args, "--project-dir", str(REPO))


@pytest.mark.parametrize("args", [
    ["migrate", "status"], ["migrate", "status", "--stack", "staging", "--local", "x"],
    ["verify", "--stack", "staging", "--local", "x"], ["monitor", "health", "--stack", "staging", "--local", "x"],
    ["report", "daily", "--stack", "staging", "--local", "x"],
])
def test_exactly_one_database_must_be_named(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Refused before the stack is read: no token is needed to be told.
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    result = run_in_repo(*args)
    assert result.exit_code == 2 and "exactly one database" in result.stderr


def test_options_are_checked_before_the_database_is_opened(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = run_in_repo("monitor", "health", "--local", str(missing))
    assert result.exit_code == 2 and "name what to check" in result.stderr
    (tmp_path / "reports").write_text("")
    result = run_in_repo("report", "daily", "--local", str(missing), "--out", str(tmp_path / "reports"))
    assert result.exit_code == 2 and "is a file" in result.stderr
    assert not missing.exists()


@pytest.mark.parametrize("command", [["migrate", "status"], ["users", "list"], ["audit", "security"],
                                     ["db", "stats"], ["backup", "list"]])
@pytest.mark.parametrize("fmt", ["markdown", "sarif"])
def test_commands_refuse_formats_they_cannot_print(empty_sqlite: Path, command: list[str], fmt: str) -> None:
    args = [*command, "-f", fmt] if command[0] == "backup" else [*command, "--local", str(empty_sqlite), "-f", fmt]
    result = run_in_repo(*args)
    assert result.exit_code == 2 and result.stdout == "" and "'table', 'json'" in result.stderr
