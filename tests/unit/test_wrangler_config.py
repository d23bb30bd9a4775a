"""The D1 migration settings bookingctl reads from a project's wrangler file, as wrangler reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from booking_shared.wrangler_config import MigrationSettings, WranglerConfigError, files, match, settings


def test_without_a_wrangler_file_the_defaults_are_wranglers(tmp_path: Path) -> None:
    assert settings(tmp_path) == MigrationSettings(tmp_path / "migrations", "*.sql", "d1_migrations", None)


def test_the_db_binding_of_a_wrangler_jsonc_with_comments_and_trailing_commas_is_read(tmp_path: Path) -> None:
    (tmp_path / "wrangler.jsonc").write_text("""{
      // the API Worker
      "name": "appointmentbooking-api", /* a "quoted" comment, */
      "d1_databases": [
        {"binding": "OTHER", "database_name": "x", "migrations_dir": "elsewhere"},
        {"binding": "DB", "database_name": "appointmentbooking-db",
         "migrations_table": "schema_migrations", "migrations_dir": "./db/migrations/", // where drizzle writes
         "migrations_pattern": "db/migrations/*/migration.sql",},
      ],
    }""")
    found = settings(tmp_path)
    assert found == MigrationSettings(tmp_path / "db/migrations", "*/migration.sql", "schema_migrations",
                                      tmp_path / "wrangler.jsonc")


def test_a_wrangler_toml_is_read_and_a_lone_binding_is_ours_whatever_its_name(tmp_path: Path) -> None:
    (tmp_path / "wrangler.toml").write_text('name = "api"\n[[d1_databases]]\nbinding = "BOOKINGS"\n'
                                            'database_name = "db"\nmigrations_dir = "sql"\n')
    assert settings(tmp_path).folder == tmp_path / "sql"


def test_wrangler_json_wins_over_jsonc_and_toml_as_in_wrangler(tmp_path: Path) -> None:
    (tmp_path / "wrangler.toml").write_text('[[d1_databases]]\nbinding = "DB"\nmigrations_dir = "toml"\n')
    (tmp_path / "wrangler.json").write_text('{"d1_databases": [{"binding": "DB", "migrations_dir": "json"}]}')
    assert settings(tmp_path).folder == tmp_path / "json"


@pytest.mark.parametrize(("binding", "problem"), [
    ('"migrations_pattern": "migrations/*.sql"', "without migrations_dir"),
    ('"migrations_dir": "migrations", "migrations_pattern": "other/*.sql"', "must start with migrations_dir"),
    ('"migrations_table": 5', "migrations_table is int"),
])
def test_settings_wrangler_refuses_are_refused_naming_the_file_and_key(tmp_path: Path, binding: str,
                                                                       problem: str) -> None:
    (tmp_path / "wrangler.json").write_text(f'{{"d1_databases": [{{"binding": "DB", {binding}}}]}}')
    with pytest.raises(WranglerConfigError, match=rf"wrangler\.json: .*{problem}"):
        settings(tmp_path)


def test_a_wrangler_file_that_does_not_parse_names_itself(tmp_path: Path) -> None:
    (tmp_path / "wrangler.jsonc").write_text('{"d1_databases": [}')
    with pytest.raises(WranglerConfigError, match=r"wrangler\.jsonc: not valid JSONC"):
        settings(tmp_path)


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("*.sql", "0001_a.sql", True), ("*.sql", "sub/0001_a.sql", False), ("*.sql", ".hidden.sql", False),
    ("*/migration.sql", "0001_a/migration.sql", True), ("*/migration.sql", "0001_a/other.sql", False),
    ("**/*.sql", "a/b/c.sql", True), ("**/*.sql", "c.sql", True), ("**/*.sql", ".git/c.sql", False),
])
def test_patterns_match_as_minimatch_without_dot_files(pattern: str, path: str, matches: bool) -> None:
    assert match(pattern, path) is matches


def test_files_lists_what_the_pattern_matches_under_the_folder(tmp_path: Path) -> None:
    for name in ("0002_b/migration.sql", "0001_a/migration.sql", "0001_a/snapshot.json", "top.sql"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("SELECT 1;")
    assert files(MigrationSettings(tmp_path, "*/migration.sql")) == ["0001_a/migration.sql", "0002_b/migration.sql"]
