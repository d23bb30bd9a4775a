"""`bookingctl db seed --local F`: realistic fake data for two salons, the same for the same --as-of."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from bookingctl.cli import app
from ops.database.seed import TABLES
from tests.helpers import sqlite_dump

AS_OF = "2026-12-04T21:00:00"


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def migrated(path: Path) -> Path:
    assert run("migrate", "apply", "--local", str(path), "--yes").exit_code == 0
    return path


def test_seeding_with_the_same_as_of_gives_identical_databases(tmp_path: Path) -> None:
    first, second = migrated(tmp_path / "a.sqlite"), migrated(tmp_path / "b.sqlite")
    for path in (first, second):
        result = run("db", "seed", "--local", str(path), "--as-of", AS_OF)
        assert result.exit_code == 0, result.output
    # d1_migrations records when each migration ran: the only rows the seed does not write.
    def seeded(path: Path) -> list[str]:
        return [line for line in sqlite_dump(path) if '"d1_migrations" VALUES' not in line]

    assert seeded(first) == seeded(second) and len(seeded(first)) > 800


def test_the_seed_fills_every_table_for_two_salons_and_the_audit_finds_its_failed_login_burst(tmp_path: Path) -> None:
    path = migrated(tmp_path / "d1.sqlite")
    assert run("db", "seed", "--local", str(path), "--as-of", AS_OF).exit_code == 0
    stats = json.loads(run("db", "stats", "--local", str(path), "-f", "json").stdout)
    counts = {t["table_name"]: t["row_count"] for t in stats["tables"]}
    assert all(counts[table] > 0 for table in TABLES), counts
    tenants = json.loads(run("tenants", "list", "--local", str(path), "-f", "json").stdout)
    assert sorted(t["slug"] for t in tenants) == ["glamour", "instyle"]
    audit = run("audit", "security", "--local", str(path), "--as-of", AS_OF, "-f", "json")
    assert "203.0.113.66" in audit.stdout


def test_seed_refuses_a_database_that_already_has_rows(tmp_path: Path) -> None:
    path = migrated(tmp_path / "d1.sqlite")
    assert run("db", "seed", "--local", str(path), "--as-of", AS_OF).exit_code == 0
    again = run("db", "seed", "--local", str(path))
    assert again.exit_code == 2 and "already has rows" in again.stderr


def test_seed_refuses_a_database_that_was_never_migrated(empty_sqlite: Path) -> None:
    result = run("db", "seed", "--local", str(empty_sqlite))
    assert result.exit_code == 2 and "bookingctl migrate apply" in result.stderr
