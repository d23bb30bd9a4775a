"""Benchmark of `bookingctl backup create --local` against `sqlite3 FILE .dump`, in the same run.

    venv/bin/python bench/backup_bench.py [--rows 1000000] [--runs 3]

Builds a database with the real schema (migrations/) and N appointment rows, then times both
dumps over `--runs` fresh processes each (median) and records each process's peak RSS from the
kernel's rusage. Targets (issue #4): time <= 1.2x the sqlite3 CLI, peak RSS under 150 MB.
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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ops.migrations import apply, discover  # noqa: E402
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


def measure(cmd: list[str], stdout_path: Path | None) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one process."""
    out = stdout_path.open("wb") if stdout_path else subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if stdout_path:
        out.close()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return elapsed, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sqlite_cli = shutil.which("sqlite3")
    if sqlite_cli is None:
        raise SystemExit("the sqlite3 CLI is needed: apt-get install sqlite3")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "d1.sqlite"
        print(f"building a database with {args.rows:,} appointments ...", file=sys.stderr)
        build(db, args.rows)
        print(f"database: {db.stat().st_size / 1e6:.1f} MB", file=sys.stderr)
        ours, theirs = [], []
        for run in range(args.runs):
            dest = Path(tmp) / f"backups-{run}"
            ours.append(measure([str(Path(sys.executable).parent / "bookingctl"), "backup", "create",
                                 "--local", str(db), "--dest", str(dest), "--project-dir", str(REPO)], None))
            theirs.append(measure([sqlite_cli, str(db), ".dump"], Path(tmp) / f"cli-{run}.sql"))
        dump_size = next(Path(tmp, "backups-0").glob("*.sql")).stat().st_size
        cli_size = Path(tmp, "cli-0.sql").stat().st_size
        with sqlite3.connect(db) as conn:
            count = conn.execute("SELECT COUNT(*) FROM appointments").fetchone()[0]
    t_ours = statistics.median(t for t, _ in ours)
    t_cli = statistics.median(t for t, _ in theirs)
    rss = max(r for _, r in ours)
    print(f"appointments: {count:,}; dump sizes: ours {dump_size / 1e6:.1f} MB, sqlite3 {cli_size / 1e6:.1f} MB")
    print(f"bookingctl backup create: {t_ours:.2f} s (median of {args.runs}), peak RSS {rss / 1e6:.1f} MB")
    print(f"sqlite3 .dump:            {t_cli:.2f} s, peak RSS {max(r for _, r in theirs) / 1e6:.1f} MB")
    print(f"ratio: {t_ours / t_cli:.2f}x the sqlite3 CLI (target <= 1.2x); RSS target < 150 MB: "
          f"{'met' if rss < 150e6 else 'NOT met'}")


if __name__ == "__main__":
    main()
