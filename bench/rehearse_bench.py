#!/usr/bin/env python3
"""Benchmark of `bookingctl migrate rehearse` on a database of a million rows and 50 migrations.

    bench/rehearse_bench.py [--rows 1000000] [--migrations 50] [--from-backup]

Builds a database with the real schema (migrations/) and N appointment rows (bench/backup_bench.py's
`build`), writes 50 pending migrations of the kinds a year of a booking platform has (a new
column, its backfill, an index on it, a new table and its rows, a rebuild of a table under
defer_foreign_keys, a check), then times the whole command in a fresh process, as a user runs it:
`--local` copies the file first; `--from-backup` makes a backup of it first (not timed) and
rehearses on that, which loads the dump into the scratch copy. Prints the command's own progress
(one line per migration) and the wall time. Target (issue #25): under 60 s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if __name__ == "__main__" and not __package__:  # started as a file: again as a module, in the venv
    from _rerun import rerun_as_module

    rerun_as_module(__file__)

from bench.backup_bench import build  # noqa: E402
from ops.backups.archive import create  # noqa: E402
from ops.targets import LocalDatabase  # noqa: E402


def migrations(folder: Path, count: int) -> None:
    """The committed migrations, then `count` more of a year's kinds, in turn."""
    for source in sorted((REPO / "migrations").glob("*.sql")):
        (folder / source.name).write_text(source.read_text())
    first = len(list(folder.glob("*.sql"))) + 1
    kinds = [
        lambda n: f"ALTER TABLE appointments ADD COLUMN extra_{n} TEXT;\n",
        lambda n: (f"-- check: SELECT count(*) > 0 FROM appointments -- there are appointments\n"
                   f"UPDATE appointments SET extra_{n - 1} = status WHERE extra_{n - 1} IS NULL;\n"),
        lambda n: f"CREATE INDEX idx_appointments_extra_{n - 2} ON appointments(extra_{n - 2});\n",
        lambda n: (f"CREATE TABLE loyalty_{n} (user_id TEXT PRIMARY KEY REFERENCES users(id), points INTEGER "
                   f"NOT NULL DEFAULT 0);\nINSERT INTO loyalty_{n} (user_id) SELECT id FROM users;\n"),
        lambda n: ("PRAGMA defer_foreign_keys = ON;\n"
                   f"CREATE TABLE services_{n} (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), "
                   "name TEXT NOT NULL, duration_minutes INTEGER NOT NULL CHECK (duration_minutes > 0), "
                   "price_cents INTEGER NOT NULL DEFAULT 0 CHECK (price_cents >= 0), active INTEGER NOT NULL "
                   "DEFAULT 1, created_at TEXT NOT NULL DEFAULT (datetime('now')));\n"
                   f"INSERT INTO services_{n} SELECT id, tenant_id, name, duration_minutes, price_cents, active, "
                   "created_at FROM services;\nDROP TABLE services;\n"
                   f"ALTER TABLE services_{n} RENAME TO services;\n"
                   "CREATE INDEX idx_services_tenant ON services(tenant_id);\nPRAGMA defer_foreign_keys = OFF;\n"),
    ]
    for index in range(count):
        number = first + index
        (folder / f"{number:04d}_step.sql").write_text(kinds[index % len(kinds)](number))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--migrations", type=int, default=50)
    parser.add_argument("--from-backup", action="store_true", help="rehearse on a backup of it (loads the dump)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        database, folder = work / "d1.sqlite", work / "migrations"
        folder.mkdir()
        started = time.monotonic()
        build(database, args.rows)
        migrations(folder, args.migrations)
        print(f"built {args.rows:,} appointments and {args.migrations} migrations in "
              f"{time.monotonic() - started:.1f} s", file=sys.stderr)
        command = [str(REPO / "venv" / "bin" / "bookingctl"), "migrate", "rehearse", "--local", str(database),
                   "--dir", str(folder), "--project-dir", str(REPO), "-f", "json"]
        if args.from_backup:
            dest = work / "backups"
            dest.mkdir()
            with LocalDatabase(database) as db:
                made = create(db, dest, label="bench")
            command += ["--from", made.name, "--dest", str(dest)]
        started = time.monotonic()
        done = subprocess.run(command, stdout=subprocess.DEVNULL, check=False)
        took = time.monotonic() - started
    verdict = {0: "safe", 1: "unsafe"}.get(done.returncode, f"exit {done.returncode}")
    print(f"migrate rehearse: {args.migrations} migrations on {args.rows:,} rows"
          f"{' from a backup' if args.from_backup else ''}: {took:.1f} s ({verdict}; target under 60 s)")


if __name__ == "__main__":
    main()
