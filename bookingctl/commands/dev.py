"""`bookingctl dev`: the reference Worker in the real Workers runtime on 127.0.0.1, for trying every command locally."""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from bookingctl import output
from bookingctl.options import ProjectDir, count_between, project_root
from ops.database.seed import seed
from ops.localdev import LocalDevError, origin, worker_dev, wrangler_bin
from ops.targets import LocalDatabase


def dev(
    port: Annotated[int, typer.Option("--port", callback=count_between("--port", 1024, 65535),
                                      help="Where the Worker answers (127.0.0.1 only).")] = 8787,
    origin_port: Annotated[int, typer.Option(
        "--origin-port", callback=count_between("--origin-port", 1024, 65535),
        help="Where the stand-in for the Pages origin answers.")] = 8788,
    state: Annotated[Path | None, typer.Option(
        "--state", help="Folder for wrangler's config, log and local D1 (default: .wrangler/dev in the project).")
    ] = None,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Start from an empty database (deletes --state first).")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Run the reference Worker under `wrangler dev` with a local D1, migrated and seeded, until Ctrl-C.

    worker/src/index.js runs in workerd (wrangler from package-lock.json: `make install-runtime`)
    on http://127.0.0.1:PORT, in front of a stand-in for the Pages origin. Its D1 database is a
    local SQLite file: migrated by `bookingctl migrate apply` and, when it has no salon yet, seeded
    by `bookingctl db seed`; it is kept between runs (--fresh starts over). Prints the base URL, the
    database file and commands to try, then waits.
    """

    # wrangler runs in its own process group, so only this process can stop it: a TERM or HUP (CI, a
    # closed terminal, a supervisor) must end the block below as Ctrl-C does, or workerd outlives us.
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _interrupt)
    root = project_root(project_dir)
    wrangler_bin(root)  # before anything starts: not installed is bad input, with the command that installs it
    folder = (state or root / ".wrangler" / "dev").resolve()
    if fresh and folder.exists():
        shutil.rmtree(folder)
    started = time.monotonic()
    output.info(f"starting wrangler dev on http://127.0.0.1:{port} (log: {folder / 'wrangler-dev.log'}) ...")
    with origin(origin_port) as pages, worker_dev(root, folder, origin_port=pages.port, port=port) as running:
        with LocalDatabase(running.database) as db:
            if not db.query("SELECT 1 AS found FROM tenants LIMIT 1"):
                counts = seed(db, _this_hour())
                output.info(f"seeded {sum(counts.rows.values())} rows for two salons")
        local = running.database.relative_to(Path.cwd()) if running.database.is_relative_to(Path.cwd()) \
            else running.database
        base = running.base_url
        sys.stdout.write(
            f"ready in {time.monotonic() - started:.0f} s: {base} (Pages stand-in on 127.0.0.1:{pages.port})\n"
            f"local D1: {local}\n\ntry, in another terminal:\n"
            f"  venv/bin/bookingctl verify --base-url {base} --local {local}\n"
            f"  venv/bin/bookingctl monitor health --base-url {base} --local {local} --skip-integrations\n"
            f"  venv/bin/bookingctl monitor perf --url {base}/ --url {base}/api/health\n"
            f"  venv/bin/bookingctl report daily --local {local} --base-url {base}\n"
            f"  venv/bin/bookingctl audit security --local {local}\n"
            f"  venv/bin/bookingctl tenants list --local {local}\n\nCtrl-C stops it.\n")
        sys.stdout.flush()
        try:
            while running.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            output.info("stopping wrangler dev")
            return
        raise LocalDevError(f"wrangler dev exited with status {running.process.returncode}; see {running.log}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _this_hour() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
