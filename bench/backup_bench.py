#!/usr/bin/env python3
"""Benchmark of `bookingctl backup create --local` against `sqlite3 FILE .dump`, in the same run.

    bench/backup_bench.py [--rows 1000000] [--runs 3] [--one-process]

Builds a database with the real schema (migrations/) and N appointment rows, then times both
dumps over `--runs` fresh processes each (median; the order rotates, and each starts after
`sync` with the database in the page cache) and records each run's peak RSS, helper process
included. Both sides are timed until their output is on disk: `backup create` fsyncs its files,
and the CLI's output is fsynced before its clock stops. `--one-process` also times `backup
create` without the helper process (HELPER_MIN_ROWS out of reach), to see what the helper buys.
Targets (issue #4): time <= 1.2x the sqlite3 CLI, peak RSS under 150 MB.
Needs the sqlite3 CLI (Debian package `sqlite3`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if __name__ == "__main__" and not __package__:  # started as a file: again as a module, in the venv
    from _rerun import rerun_as_module

    rerun_as_module(__file__)

from ops.database.migrations import apply, discover  # noqa: E402
from ops.targets import LocalDatabase  # noqa: E402


def build(path: Path, rows: int) -> None:
    db = LocalDatabase(path, must_exist=False)
    apply(db, discover(REPO / "migrations"))
    conn = db.conn
    conn.execute("BEGIN")
    conn.execute("INSERT INTO tenants (id, slug, name) VALUES ('t1', 'instyle', 'InStyle Hair Boutique')")
    conn.executemany("INSERT INTO users (id, tenant_id, email, name) VALUES (?, 't1', ?, ?)",
                     ((f"u{i}", f"client{i}@example.co.za", f"Client {i}") for i in range(1000)))
    conn.executemany("INSERT INTO services (id, tenant_id, name, duration_minutes, price_cents) VALUES "
                     "(?, 't1', ?, 60, 35000)", ((f"s{i}", f"Service {i}") for i in range(20)))
    conn.executemany(
        "INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at, status, notes, created_at) "
        "VALUES (?, 't1', ?, ?, ?, 'booked', ?, ?)",
        ((f"a{i:07d}", f"s{i % 20}", f"u{i % 1000}", f"2026-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00",
          None if i % 4 else f"note {i}: it's fine", "2026-11-01 09:00:00") for i in range(rows)))
    conn.execute("COMMIT")
    db.close()


def settle(db: Path) -> None:
    """Start each measurement from the same state: earlier output on disk, the database in the page cache.

    Without this a run pays for the previous run's writeback (our fsync waits for it) or for
    re-reading a database the VM's memory reclaim evicted, whichever process happens to come next.
    """
    os.sync()
    with db.open("rb") as f:
        while f.read(1 << 24):
            pass


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and its descendants now (0 once they are gone)."""
    total = 0
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += tree_rss(int(child))
    except (OSError, StopIteration, ValueError):
        pass
    return total


def measure(cmd: list[str], stdout_path: Path | None) -> tuple[float, int, int]:
    """Wall seconds, peak RSS of the process tree sampled every 5 ms, and the kernel's peak (bytes).

    The sampled figure is the one that counts: `backup create` runs a helper process next to
    itself, which the kernel's per-process peak leaves out, and that peak also counts the pages
    the child shares with this benchmark between fork and exec.
    """
    out = stdout_path.open("wb") if stdout_path else subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], tree_rss(proc.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    if stdout_path:  # as `backup create` does for its files: the dump counts once it is on disk
        os.fsync(out.fileno())  # type: ignore[union-attr]
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    if stdout_path:
        out.close()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return elapsed, peak[0], usage.ru_maxrss * 1024


ONE_PROCESS = ("import sys; import ops.database.sqldump; ops.database.sqldump.HELPER_MIN_ROWS = 10**12; "
               "sys.argv[0] = 'bookingctl'; from bookingctl.cli import main; main()")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one-process", action="store_true", help="also time backup create without its helper")
    args = parser.parse_args()
    sqlite_cli = shutil.which("sqlite3")
    if sqlite_cli is None:
        raise SystemExit("the sqlite3 CLI is needed: apt-get install sqlite3")
    ours = "bookingctl backup create"
    alone = "  ... in one process"
    cli = "sqlite3 .dump"
    variants = [ours, cli] + ([alone] if args.one_process else [])
    results: dict[str, list[tuple[float, int, int]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "d1.sqlite"
        print(f"building a database with {args.rows:,} appointments ...", file=sys.stderr)
        build(db, args.rows)
        print(f"database: {db.stat().st_size / 1e6:.1f} MB", file=sys.stderr)
        sizes: dict[str, int] = {}
        for run in range(args.runs):
            for variant in variants[run % len(variants):] + variants[:run % len(variants)]:  # rotate who goes first
                settle(db)
                dest = Path(tmp) / "out"
                if variant == cli:
                    dest.mkdir()
                    results[variant].append(measure([sqlite_cli, str(db), ".dump"], dest / "cli.sql"))
                else:
                    create = ["backup", "create", "--local", str(db), "--dest", str(dest), "--project-dir", str(REPO)]
                    command = ([str(Path(sys.executable).parent / "bookingctl")] if variant == ours
                               else [sys.executable, "-c", ONE_PROCESS])
                    results[variant].append(measure(command + create, None))
                sizes[variant] = next(dest.glob("*.sql")).stat().st_size
                shutil.rmtree(dest)
        with sqlite3.connect(db) as conn:
            count = conn.execute("SELECT COUNT(*) FROM appointments").fetchone()[0]
    t_cli = statistics.median(t for t, _, _ in results[cli])
    print(f"appointments: {count:,}; dump sizes: ours {sizes[ours] / 1e6:.1f} MB, sqlite3 {sizes[cli] / 1e6:.1f} MB")
    for variant, runs in results.items():
        median = statistics.median(t for t, _, _ in runs)
        print(f"{variant:26s} {median:.2f} s (median of {len(runs)}), {median / t_cli:.2f}x the CLI, "
              f"peak RSS {max(r for _, r, _ in runs) / 1e6:.0f} MB (kernel's per-process peak "
              f"{max(k for _, _, k in runs) / 1e6:.0f} MB); runs: {' '.join(f'{t:.2f}' for t, _, _ in runs)}")
    rss = max(r for _, r, _ in results[ours])
    ratio = statistics.median(t for t, _, _ in results[ours]) / t_cli
    print(f"target <= 1.2x the sqlite3 CLI: {'met' if ratio <= 1.2 else 'NOT met'}; "
          f"RSS < 150 MB: {'met' if rss < 150e6 else 'NOT met'}")
    # A missed target fails the run (as migrate_check_bench does), so a script or CI cannot miss it.
    return 0 if ratio <= 1.2 and rss < 150e6 else 1


if __name__ == "__main__":
    sys.exit(main())
