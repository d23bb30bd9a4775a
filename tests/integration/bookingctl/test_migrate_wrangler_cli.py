"""`bookingctl migrate` in a project that also uses wrangler: its file names and wrangler file settings."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from bookingctl.cli import app
from tests.helpers import REPO

runner = CliRunner()


def project(tmp_path: Path, wrangler_jsonc: str | None = None) -> Path:
    """A project folder (Pulumi.yaml, a program) with the committed migration in migrations/."""
    (tmp_path / "Pulumi.yaml").write_text("name: t\nruntime: python\n")
    (tmp_path / "__main__.py").write_text("")
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_initial_schema.sql").write_text(
        (REPO / "migrations" / "0001_initial_schema.sql").read_text())
    if wrangler_jsonc is not None:
        (tmp_path / "wrangler.jsonc").write_text(wrangler_jsonc)
    return tmp_path


def run(root: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project-dir", str(root)])
    return result.exit_code, result.stdout, result.stderr


def test_a_migration_named_by_wrangler_d1_migrations_create_is_applied_not_refused(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "migrations" / "0002_Add_Staff_Table.sql").write_text(
        "-- Migration number: 0002 \t 2026-12-04T10:00:00.000Z\nCREATE TABLE staff (id TEXT PRIMARY KEY);\n")
    db = tmp_path / "d1.sqlite"
    code, _, err = run(root, "migrate", "apply", "--local", str(db), "--yes")
    assert code == 0, err
    code, out, err = run(root, "migrate", "status", "--local", str(db), "-f", "json")
    assert code == 0, err
    assert "0002_Add_Staff_Table.sql" in out and json.loads(out)


def test_migrations_table_and_pattern_of_the_wrangler_file_are_used(tmp_path: Path) -> None:
    """The review's M3: wrangler applied into schema_migrations from nested folders; bookingctl agrees."""
    root = project(tmp_path, """{
      "name": "appointmentbooking-api",
      "d1_databases": [{"binding": "DB", "database_name": "appointmentbooking-db",
        "migrations_table": "schema_migrations", "migrations_dir": "nested",
        "migrations_pattern": "nested/*/migration.sql"}],
    }""")
    (root / "nested" / "0001_initial_schema").mkdir(parents=True)
    (root / "nested" / "0001_initial_schema" / "migration.sql").write_text(
        (REPO / "migrations" / "0001_initial_schema.sql").read_text())
    db = tmp_path / "d1.sqlite"
    code, _, err = run(root, "migrate", "apply", "--local", str(db), "--yes")
    assert code == 0, err
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT name FROM schema_migrations").fetchall()
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert rows == [("0001_initial_schema/migration.sql",)] and "d1_migrations" not in tables
    code, out, err = run(root, "migrate", "check", "--local", str(db), "-f", "json")
    assert code == 0 and json.loads(out)["verdict"] == "safe", err
    code, out, _ = run(root, "migrate", "apply", "--local", str(db), "--yes")
    assert code == 0 and "nothing to apply" in (out + _)


def test_a_bad_wrangler_file_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    root = project(tmp_path, '{"d1_databases": [{"binding": "DB", "migrations_pattern": "x/*.sql"}]}')
    code, _, err = run(root, "migrate", "status", "--local", str(tmp_path / "x.sqlite"))
    assert code == 2 and "wrangler.jsonc" in err and "migrations_dir" in err
