"""`monitor health`: a third-party integration that cannot be reached degrades the report; it is not
a critical failure of the platform, and the message says how to skip integrations offline."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from ops.observation.monitor import health
from ops.targets import LocalDatabase
from tests.helpers import REPO
from tests.helpers.http_site import Site, serving


@pytest.fixture
def site() -> Iterator[Site]:
    with serving(Site()) as running_site:
        yield running_site


def closed_port_url() -> str:
    """A URL nothing listens on: what an integration looks like from an offline machine."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_an_unreachable_integration_degrades_the_report_while_app_and_database_are_ok(
        site: Site, tmp_path: Path) -> None:
    path = tmp_path / "d1.sqlite"
    sqlite3.connect(path).close()
    report = health(site.url + "/api/health", LocalDatabase(path), {"paystack": closed_port_url()})
    assert report.checks["main_application"]["status"] == "OK"
    assert report.checks["paystack"]["status"] == "FAIL"
    assert report.overall_status == "DEGRADED"


def test_offline_the_command_says_degraded_and_names_skip_integrations(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "d1.sqlite"
    sqlite3.connect(path).close()
    down = closed_port_url()
    result = CliRunner().invoke(app, ["monitor", "health", "--base-url", site.url, "--local", str(path),
                                      "--paystack-url", down, "--google-calendar-url", down, "--whatsapp-url", down,
                                      "--project-dir", str(REPO)])
    assert result.exit_code == 1, result.stderr
    assert "critical" not in result.stderr
    assert "degraded" in result.stderr and "paystack" in result.stderr
    assert "--skip-integrations" in result.stderr


def test_a_failing_application_is_still_critical(tmp_path: Path) -> None:
    path = tmp_path / "d1.sqlite"
    sqlite3.connect(path).close()
    report = health(closed_port_url() + "api/health", LocalDatabase(path), {})
    assert report.overall_status == "FAIL"
