#!/usr/bin/env python3
"""Benchmark of `bookingctl migrate check` on 50 pending migrations against the committed schema.

    bench/migrate_check_bench.py [--runs 5] [--migrations 50]

A local SQLite file gets migrations/ applied (the committed schema, as production has it); a scratch
folder holds those migrations plus N generated pending ones that cycle through what real releases
do: a new table with an index, a defaulted column, a backfill, a contract that drops a column
nothing serving reads, a table rebuild (copy, drop, rename). Each run is the whole command in its
own process (`bookingctl migrate check --local F --dir D -f json`, start-up and imports included),
preparing bookingctl's own serving queries and a 40-statement application corpus after every schema
change. Reports every run, the median, and the in-process time of the check itself. Target: under
2 s on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if __name__ == "__main__" and not __package__:  # started as a file: again as a module, in the venv
    from _rerun import rerun_as_module

    rerun_as_module(__file__)

from ops.database.migration_check import check_local  # noqa: E402
from ops.database.migrations import apply, discover  # noqa: E402
from ops.releases.gate import gather  # noqa: E402
from ops.targets import LocalDatabase  # noqa: E402


def pending(number: int) -> str:
    """The SQL of generated migration `number` (2, 3, ...): five kinds in turn."""
    n = number
    kind = (n - 2) % 5  # 0002 starts a cycle: each kind refers to the migrations just before it
    if kind == 0:
        return (f"CREATE TABLE feature_{n} (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), "
                f"value TEXT, created_at TEXT NOT NULL DEFAULT (datetime('now')));\n"
                f"CREATE INDEX idx_feature_{n}_tenant ON feature_{n}(tenant_id);\n")
    if kind == 1:
        return f"ALTER TABLE appointments ADD COLUMN extra_{n} TEXT DEFAULT 'none';\n"
    if kind == 2:
        return f"UPDATE appointments SET extra_{n - 1} = 'set' WHERE extra_{n - 1} IS NULL;\n"
    if kind == 3:
        return f"ALTER TABLE appointments DROP COLUMN extra_{n - 2};\n"
    return (f"CREATE TABLE feature_{n - 4}_new (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), "
            f"value TEXT, note TEXT, created_at TEXT NOT NULL DEFAULT (datetime('now')));\n"
            f"INSERT INTO feature_{n - 4}_new (id, tenant_id, value, created_at) "
            f"SELECT id, tenant_id, value, created_at FROM feature_{n - 4};\n"
            f"DROP TABLE feature_{n - 4};\n"
            f"ALTER TABLE feature_{n - 4}_new RENAME TO feature_{n - 4};\n"
            f"CREATE INDEX idx_feature_{n - 4}_tenant ON feature_{n - 4}(tenant_id);\n")


CORPUS = "\n".join(
    [f"SELECT a.id, a.starts_at, a.status, s.name FROM appointments a JOIN services s ON a.service_id = s.id "
     f"WHERE a.tenant_id = ? AND a.starts_at > ? LIMIT {i + 1};" for i in range(20)]
    + [f"SELECT id, email, name FROM users WHERE tenant_id = ? AND role = ? LIMIT {i + 1};" for i in range(10)]
    + [f"INSERT INTO sessions (id, user_id, expires_at, ip_address) VALUES (?, ?, ?, ?); -- {i}" for i in range(10)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--migrations", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="migrate-check-bench-"))
    try:
        target = work / "production.sqlite"
        with LocalDatabase(target, must_exist=False) as db:
            apply(db, discover(REPO / "migrations"))
        folder = work / "migrations"
        shutil.copytree(REPO / "migrations", folder)
        for number in range(2, args.migrations + 2):
            # Numbered after the committed migrations (0002 is taken), so the folder stays valid.
            (folder / f"{number + 100:04d}_generated_{number}.sql").write_text(pending(number))
        corpus = work / "app-queries.sql"
        corpus.write_text(CORPUS)
        cmd = [str(REPO / "venv" / "bin" / "bookingctl"), "migrate", "check", "--local", str(target), "--dir",
               str(folder), "--queries", str(corpus), "-f", "json", "--project-dir", str(REPO)]
        times = []
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            elapsed = time.perf_counter() - started
            if proc.returncode not in (0, 1):
                raise SystemExit(f"migrate check failed ({proc.returncode}): {proc.stderr[-500:]}")
            report = json.loads(proc.stdout)
            times.append(elapsed)
            classes = {c: sum(m["class"] == c for m in report["migrations"]) for c in ("expand", "contract", "data")}
            print(f"run {run}: {elapsed:.2f} s, {len(report['migrations'])} pending, {report['servingQueries']} "
                  f"serving queries, verdict {report['verdict']}, classes {classes}")
        started = time.perf_counter()
        check_local(target, discover(folder, strict=False), gather([(corpus, "app-queries.sql")]))
        in_process = time.perf_counter() - started
        median = statistics.median(times)
        print(f"median {median:.2f} s for the command (target < 2 s); the check itself in process: "
              f"{in_process:.2f} s")
        return 0 if median < 2 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
