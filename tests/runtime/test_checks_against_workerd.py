"""`verify`, `monitor health`, `monitor perf` and the canary's pinned smoke test against the reference
Worker in the real runtime (workerd under wrangler dev), and each breakage of
shared/reviews/2026-12-04-real-runtime.md section 3 caught, one variant Worker per breakage."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from booking_shared.rollout import override_header
from ops import localdev
from ops.localdev import WORKER_NAME, WorkerDev
from ops.observation.verify import verify
from tests.helpers import REPO
from tests.runtime.conftest import VARIANT, StartWorkerDev, bookingctl

pytestmark = pytest.mark.runtime


def checks(base_url: str, database: Path | None, *, request_timeout: float = 10,
           verify_timeout: float = 4) -> dict[str, tuple[int, str]]:
    """bookingctl's three views of the site: exit code and output of each."""
    local = ["--local", str(database)] if database is not None else []
    runs = {
        "verify": bookingctl("verify", "--base-url", base_url, *local, "--timeout", str(verify_timeout),
                             "--request-timeout", str(request_timeout)),
        "health --local": bookingctl("monitor", "health", "--base-url", base_url, *local, "--skip-integrations",
                                     "--timeout", str(request_timeout)),
        "health": bookingctl("monitor", "health", "--base-url", base_url, "--skip-integrations",
                             "--timeout", str(request_timeout)),
    }
    return {name: (run.returncode, run.stdout + run.stderr) for name, run in runs.items()}


def test_the_reference_worker_passes_verify_and_monitor_health_in_the_real_runtime(worker_dev: WorkerDev) -> None:
    health = httpx.get(worker_dev.base_url + "/api/health").json()
    assert health["status"] == "ok" and health["database"] == {"status": "ok", "result": 1}
    for name, (code, output) in checks(worker_dev.base_url, worker_dev.database).items():
        assert code == 0, f"{name}: {output}"


def test_verify_passes_for_the_version_workerd_serves_and_fails_for_another(worker_dev: WorkerDev) -> None:
    serving = httpx.get(worker_dev.base_url + "/api/health").json()["version"]
    same = bookingctl("verify", "--base-url", worker_dev.base_url, "--version", serving, "--timeout", "3")
    assert same.returncode == 0, same.stdout
    other = bookingctl("verify", "--base-url", worker_dev.base_url, "--version",
                       "11111111-2222-3333-4444-555555555555", "--timeout", "2")
    assert other.returncode == 1 and "waiting for version 11111111" in other.stdout


def test_the_canary_pinned_smoke_test_passes_on_the_serving_version_and_waits_for_any_other(
        worker_dev: WorkerDev) -> None:
    # Locally the override header is ignored (reaches the Worker unchanged), so the pinned probe
    # (ops/releases/canary.py: verify with the header and the expected version) can only see the serving one.
    serving = httpx.get(worker_dev.base_url + "/api/health").json()["version"]
    pinned = verify(worker_dev.base_url, None, deadline=3, expected_version=serving,
                    headers=override_header(WORKER_NAME, serving))
    assert pinned.ok, pinned.failures()
    other = "11111111-2222-3333-4444-555555555555"
    waiting = verify(worker_dev.base_url, None, deadline=2, expected_version=other,
                     headers=override_header(WORKER_NAME, other))
    assert not waiting.ok and f"waiting for version {other}" in waiting.failures()


def test_monitor_perf_measures_the_real_runtime_within_the_guides_thresholds(
        worker_dev: WorkerDev, tmp_path: Path) -> None:
    out = tmp_path / "perf.json"
    run = bookingctl("monitor", "perf", "--url", worker_dev.base_url + "/", "--url",
                     worker_dev.base_url + "/api/health", "--samples", "5", "--concurrency", "2", "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    metrics = {m["url"]: m for m in json.loads(out.read_text())}
    assert len(metrics) == 2
    for url, m in metrics.items():
        assert m["success_rate"] == 100, (url, m)


# Each breakage, its variant Worker, and what must fail (every check exits 1).
BREAKAGES = ["health500", "health200-dberror", "health200-textok", "throw", "d1fail", "nodb"]


@pytest.mark.parametrize("mode", BREAKAGES)
def test_each_broken_variant_of_the_worker_fails_every_check(mode: str, start_worker_dev: StartWorkerDev) -> None:
    with start_worker_dev(mode, main=VARIANT, variables={"BREAK": mode}) as broken:
        results = checks(broken.base_url, broken.database, verify_timeout=2)
    for name, (code, output) in results.items():
        assert code == 1, f"BREAK={mode}: {name} exited {code}, not 1: {output}"


def test_a_slow_health_answer_fails_every_check_on_its_request_timeout(start_worker_dev: StartWorkerDev) -> None:
    with start_worker_dev("slow", main=VARIANT, variables={"BREAK": "slow"}) as slow:
        results = checks(slow.base_url, slow.database, request_timeout=3, verify_timeout=3)
    for name, (code, output) in results.items():
        assert code == 1 and "timed out" in output, f"{name}: {output}"


def test_monitor_perf_fails_a_slow_worker_past_its_threshold(start_worker_dev: StartWorkerDev) -> None:
    with start_worker_dev("slowperf", main=VARIANT, variables={"BREAK": "slow"}) as slow:
        run = bookingctl("monitor", "perf", "--url", slow.base_url + "/api/health", "--samples", "1",
                         "--threshold", "2")
    assert run.returncode == 1 and "threshold breached" in run.stderr


def test_the_origin_down_fails_the_main_application_check_with_a_502(start_worker_dev: StartWorkerDev) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with start_worker_dev("noorigin", origin_port=port) as running:
        root = httpx.get(running.base_url + "/")
        run = bookingctl("verify", "--base-url", running.base_url, "--timeout", "2")
    assert root.status_code == 502 and "did not answer" in root.json()["error"]
    report = json.loads(run.stdout)
    assert run.returncode == 1
    assert [c["name"] for c in report["checks"] if not c["ok"]] == ["main_application"]


def test_plain_wrangler_dev_answers_502_naming_the_setting_instead_of_calling_itself(
        start_worker_dev: StartWorkerDev) -> None:
    with start_worker_dev("plain", origin_port=None) as plain:
        root = httpx.get(plain.base_url + "/", timeout=20)
        health = httpx.get(plain.base_url + "/api/health", timeout=10)
        log = plain.log.read_text(errors="replace")
    assert root.status_code == 502 and "PAGES_ORIGIN" in root.json()["error"]
    assert health.status_code == 200  # the Worker is still answering: no loop used up its file descriptors
    assert "Too many open files" not in log


def test_a_damaged_d1_file_under_the_runtime_is_an_outage_to_every_check(
        start_worker_dev: StartWorkerDev) -> None:
    with start_worker_dev("garbage") as running:
        database = running.database
    # The runtime's own file overwritten with garbage, then the runtime started again on it.
    database.write_bytes(os.urandom(200_704))
    for sidecar in ("-wal", "-shm"):
        Path(f"{database}{sidecar}").unlink(missing_ok=True)
    state = database.parents[len(Path("v3/d1/miniflare-D1DatabaseObject").parts)]
    folder = state.parent
    with localdev.worker_dev(REPO, folder, origin_port=None, migrate=False) as damaged:
        assert httpx.get(damaged.base_url + "/api/health").status_code == 503
        results = checks(damaged.base_url, damaged.database, verify_timeout=2)
    for name, (code, output) in results.items():
        assert code == 1, f"{name}: {output}"
    assert json.loads(results["verify"][1].split("\nerror:")[0])["ok"] is False
    shutil.rmtree(folder, ignore_errors=True)
