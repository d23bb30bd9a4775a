"""Without a token, each command names the permissions it needs; CLOUDFLARE_BASE_URL is named only when set."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from tests.helpers import REPO

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

runner = CliRunner()


def error_line(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--project-dir", str(REPO)])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return result.exit_code, lines[0]


@pytest.mark.parametrize(("args", "needed", "not_needed"), [
    (["migrate", "status", "--stack", "staging"], ["D1 Edit"], ["Workers Scripts", "R2"]),
    (["backup", "create", "--stack", "staging", "--upload"], ["D1 Edit", "Workers R2 Storage Edit"], ["Turnstile"]),
    (["release", "canary", "--stack", "staging", "--version-id", "v1", "--yes"],
     ["Workers Scripts Edit", "Account Analytics Read"], ["Turnstile"]),
    (["rollback", "--stack", "staging", "--yes"], ["Workers Scripts Edit"], ["Turnstile"]),
])
def test_a_missing_token_names_the_permissions_of_that_command(
        monkeypatch: pytest.MonkeyPatch, args: list[str], needed: list[str], not_needed: list[str]) -> None:
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    code, line = error_line(*args)
    assert code == 2
    assert "CLOUDFLARE_API_TOKEN is not set" in line
    for permission in needed:
        assert permission in line, line
    for permission in not_needed:
        assert permission not in line, line


def test_offline_the_error_does_not_name_an_unset_base_url_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "token")
    monkeypatch.delenv("CLOUDFLARE_BASE_URL", raising=False)
    # An unroutable proxy stands for a machine without network, without waiting on a real one.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("CLOUDFLARE_MAX_RETRIES", "0")
    code, line = error_line("migrate", "status", "--stack", "staging")
    assert code == 1 and "check the network" in line
    assert "CLOUDFLARE_BASE_URL" not in line


def test_a_set_base_url_is_named_with_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    base = f"http://127.0.0.1:{port}/client/v4"
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "token")
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", base)
    code, line = error_line("migrate", "status", "--stack", "staging")
    assert code == 1 and f"CLOUDFLARE_BASE_URL is set ({base})" in line
