"""The real Workers runtime: the reference Worker (or a variant) under `wrangler dev` on 127.0.0.1.

wrangler, workerd and Node 22 come from package-lock.json (`make install-runtime`); these tests run
only in `make test-runtime` (each module sets `pytestmark = pytest.mark.runtime`). Without wrangler
they fail in CI (CI set), where a skip would hide that nothing ran, and are skipped elsewhere with
the command that installs it.

Fixtures for other runtime tests:
- `wrangler_bin`: the pinned wrangler; `runtime_env` the environment to run it in (pinned Node first on PATH);
- `origin_stand_in`: the Pages origin stand-in (its port);
- `worker_dev`: the reference Worker, shared by the session: `.base_url`, `.database` (the local
  D1 SQLite file, migrated by bookingctl). Do not damage it; start your own with `start_worker_dev`;
- `start_worker_dev(name, main=None, variables=None, origin_port=...)`: a context manager that
  runs one more `wrangler dev` (a variant Worker) in its own folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from ops import localdev
from ops.localdev import Origin, RuntimeMissingError, WorkerDev, origin, runtime_env
from ops.localdev import wrangler_bin as find_wrangler
from tests.helpers import REPO

HERE = Path(__file__).parent
VARIANT = HERE / "variant.js"
StartWorkerDev = Callable[..., AbstractContextManager[WorkerDev]]


@pytest.fixture(scope="session")
def wrangler_bin() -> Path:
    """The pinned wrangler (node_modules/.bin/wrangler); `runtime_env` puts the pinned Node on PATH."""
    try:
        path = find_wrangler(REPO)
        runtime_env(REPO)
    except RuntimeMissingError as missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} (CI must run the runtime tests, not skip them)")
        pytest.skip(str(missing))
    return path


@pytest.fixture(scope="session")
def wrangler_env(wrangler_bin: Path) -> dict[str, str]:
    """The environment to run wrangler in: the pinned Node first on PATH, no telemetry, no prompts."""
    return runtime_env(REPO)


@pytest.fixture(scope="session")
def origin_stand_in() -> Iterator[Origin]:
    with origin() as serving:
        yield serving


@pytest.fixture(scope="session")
def start_worker_dev(wrangler_bin: Path, origin_stand_in: Origin,
                     tmp_path_factory: pytest.TempPathFactory) -> StartWorkerDev:
    def start(name: str, *, main: Path | None = None, variables: Mapping[str, str] | None = None,
              origin_port: int | str | None = "stand-in") -> AbstractContextManager[WorkerDev]:
        port = origin_stand_in.port if origin_port == "stand-in" else origin_port
        assert port is None or isinstance(port, int)
        return localdev.worker_dev(REPO, tmp_path_factory.mktemp(name), origin_port=port, main=main,
                                   variables=variables)

    return start


@pytest.fixture(scope="session")
def worker_dev_session(start_worker_dev: StartWorkerDev) -> Iterator[WorkerDev]:
    with start_worker_dev("reference") as running:
        yield running


@pytest.fixture
def worker_dev(worker_dev_session: WorkerDev) -> WorkerDev:
    """The reference Worker under wrangler dev (shared; `.base_url`, `.database`)."""
    return worker_dev_session


def bookingctl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI as a person runs it, in its own process."""
    return subprocess.run([sys.executable, "-m", "bookingctl", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
