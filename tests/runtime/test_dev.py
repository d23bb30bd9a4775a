"""`bookingctl dev` (what `make dev` runs): the reference Worker in workerd with a migrated, seeded local
D1 and an origin stand-in, so verify, monitor, report, audit and tenants work against it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ops.localdev import free_port
from tests.helpers import REPO
from tests.runtime.conftest import bookingctl

pytestmark = pytest.mark.runtime


def test_bookingctl_dev_serves_a_seeded_local_site_every_command_works_against_and_stops_whole(
        wrangler_bin: Path, tmp_path: Path) -> None:
    port, origin = free_port(), free_port()
    started = time.monotonic()
    dev = subprocess.Popen([sys.executable, "-m", "bookingctl", "dev", "--port", str(port), "--origin-port",
                            str(origin), "--state", str(tmp_path / "dev")], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert dev.stdout is not None
        lines = [dev.stdout.readline(), dev.stdout.readline()]
        assert lines[0].startswith("ready in "), lines[0] + (dev.stderr.read() if dev.poll() is not None else "")
        ready = time.monotonic() - started
        database = lines[1].removeprefix("local D1: ").strip()
        base = f"http://127.0.0.1:{port}"
        commands = {
            "verify": ["verify", "--base-url", base, "--local", database, "--timeout", "5"],
            "monitor health": ["monitor", "health", "--base-url", base, "--local", database, "--skip-integrations"],
            "monitor perf": ["monitor", "perf", "--url", base + "/", "--url", base + "/api/health", "--samples", "3"],
            "report daily": ["report", "daily", "--local", database, "--base-url", base, "--out",
                             str(tmp_path / "reports")],
            "audit security": ["audit", "security", "--local", database, "-f", "json"],
            "tenants list": ["tenants", "list", "--local", database, "-f", "json"],
        }
        results = {name: bookingctl(*args) for name, args in commands.items()}
    finally:
        # TERM, as CI or a supervisor stops it: wrangler (its own process group) must stop with it.
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=30)
    with pytest.raises(httpx.ConnectError):
        httpx.get(base + "/api/health", timeout=5)
    for name, run in results.items():
        assert run.returncode == 0, f"{name}: {run.stdout}{run.stderr}"
    assert sorted(t["slug"] for t in json.loads(results["tenants list"].stdout)) == ["glamour", "instyle"]
    assert "203.0.113.66" in results["audit security"].stdout  # the seed's failed-login burst
    print(f"bookingctl dev ready in {ready:.1f} s")  # the README's quick start quotes it (pytest -s)
