"""`migrate check` on real SQLite: every class and every rule, with the line each finding names."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.database import migration_check
from ops.database.migration_check import RULES, CheckReport, MigrationResult, check_local
from ops.database.migrations import apply, discover
from ops.database.serving import ServingQuery, read_corpus
from ops.releases.gate import gather, own_queries
from ops.targets import LocalDatabase
from tests.helpers import REPO
from tests.helpers.migrations import folder_with


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A local database with the committed schema applied, as production has it."""
    path = tmp_path / "target.sqlite"
    with LocalDatabase(path, must_exist=False) as db:
        apply(db, discover(REPO / "migrations"))
    return path



def run(target: Path, folder: Path, queries: list[ServingQuery] | None = None) -> CheckReport:
    return check_local(target, discover(folder, strict=False), own_queries() if queries is None else queries)


def only(report: CheckReport) -> MigrationResult:
    [result] = report.migrations
    return result


def rules(result: MigrationResult) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in result.findings]


def corpus(tmp_path: Path, text: str) -> list[ServingQuery]:
    path = tmp_path / "queries.sql"
    path.write_text(text)
    return gather([(path, "queries.sql")])


# --- classes ---------------------------------------------------------------------------------

def test_new_table_nullable_column_and_index_are_an_expand(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_reminders": (
        "CREATE TABLE reminders (id TEXT PRIMARY KEY, appointment_id TEXT REFERENCES appointments(id));\n"
        "ALTER TABLE appointments ADD COLUMN reminder_sent INTEGER NOT NULL DEFAULT 0;\n"
        "CREATE INDEX idx_reminders_appointment ON reminders(appointment_id);\n"
        "INSERT INTO reminders (id) VALUES ('seed');\n")})
    result = only(run(target, folder))
    assert result.cls == "expand" and result.findings == [] and not result.unsafe


def test_dropping_a_column_nothing_serving_reads_is_a_safe_contract(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_drop_user_agent": "-- sessions.user_agent is unused\n"
                                                              "ALTER TABLE sessions DROP COLUMN user_agent;\n"})
    report = run(target, folder)
    result = only(report)
    assert result.cls == "contract" and report.verdict == "safe"
    assert rules(result) == [("contract", 2)] and "column sessions.user_agent" in result.findings[0].message


def test_contract_that_breaks_a_serving_query_is_unsafe_and_names_the_column(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_drop_notes": "\n\nALTER TABLE appointments DROP COLUMN notes;\n"})
    queries = corpus(tmp_path, "SELECT id, starts_at FROM appointments WHERE tenant_id = ?;\n"
                               "-- the booking page\nSELECT id, notes FROM appointments WHERE id = ?;\n")
    report = run(target, folder, queries)
    result = only(report)
    assert report.verdict == "unsafe" and result.cls == "contract"
    [broken] = [f for f in result.findings if f.rule == "serving-query-breaks"]
    assert (broken.severity, broken.file, broken.line) == ("error", "0002_drop_notes.sql", 3)
    assert "queries.sql:3" in broken.message and "no such column: notes" in broken.message


def test_the_same_contract_is_safe_once_the_corpus_no_longer_reads_the_column(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_drop_notes": "\n\nALTER TABLE appointments DROP COLUMN notes;\n"})
    queries = corpus(tmp_path, "SELECT id, starts_at FROM appointments WHERE tenant_id = ?;\n"
                               "SELECT id FROM appointments WHERE id = ?;\n")
    report = run(target, folder, queries)
    assert report.verdict == "safe" and only(report).cls == "contract"


def test_a_dropped_table_bookingctl_reads_breaks_its_own_queries(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_drop_auth": "DROP TABLE auth_attempts;\n"})
    result = only(run(target, folder))
    broken = [f for f in result.findings if f.rule == "serving-query-breaks"]
    assert broken and all(f.line == 1 for f in broken)
    assert any("ops/observation/audit.py FAILED_LOGINS" in f.message and "no such table: auth_attempts" in f.message
               for f in broken)


def test_a_table_rebuilt_within_the_migration_breaks_nothing(target: Path, tmp_path: Path) -> None:
    # SQLite's way to change a column: copy into a new table, drop the old, rename. The queries
    # break for a moment inside the migration and work again at its end. api_usage_logs' rows
    # reference api_keys, so D1 needs the foreign keys deferred to the end of the migration
    # (developers.cloudflare.com/d1/sql-api/foreign-keys/: PRAGMA defer_foreign_keys).
    folder = folder_with(tmp_path, **{"0002_rebuild": (
        "PRAGMA defer_foreign_keys = on;\n"
        "CREATE TABLE api_keys_new (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), name TEXT NOT "
        "NULL, key_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL DEFAULT (datetime('now')), last_used TEXT, "
        "expires_at TEXT, scope TEXT);\n"
        "INSERT INTO api_keys_new (id, user_id, name, key_hash, created_at, last_used, expires_at) "
        "SELECT id, user_id, name, key_hash, created_at, last_used, expires_at FROM api_keys;\n"
        "DROP TABLE api_keys;\n"
        "ALTER TABLE api_keys_new RENAME TO api_keys;\n")})
    result = only(run(target, folder))
    assert not [f for f in result.findings if f.rule == "serving-query-breaks"]
    assert ("contract", 4) in rules(result)  # its index idx_api_keys_user went with the old table (DROP TABLE)


def test_contract_and_tighter_constraint_findings_name_the_line_of_the_statement_that_did_it(
        target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_mixed": (
        "-- loyalty points, and the notes column goes\n"    # 1
        "CREATE TABLE loyalty (user_id TEXT);\n"           # 2
        "\n"                                               # 3
        "ALTER TABLE appointments\n"                       # 4
        "  DROP COLUMN notes;\n"                           # 5
        "SELECT 1; CREATE UNIQUE INDEX idx_users_name ON users(name);\n")})  # 6
    assert rules(only(run(target, folder))) == [("contract", 4), ("tighter-constraint", 6)]


def test_a_new_unique_index_on_an_existing_table_is_a_tighter_constraint(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_unique": "CREATE UNIQUE INDEX idx_services_name ON services(tenant_id, "
                                                     "name);\n"})
    report = run(target, folder)
    result = only(report)
    assert result.cls == "contract" and rules(result) == [("tighter-constraint", 1)]
    assert report.verdict == "safe"  # a warning: prepares cannot tell, a reviewer must


def test_a_not_null_column_without_default_on_an_existing_table_is_an_error_at_its_line(
        target: Path, tmp_path: Path) -> None:
    # The scratch copy holds sample rows, so SQLite refuses it there as D1 does on a table with rows.
    folder = folder_with(tmp_path, **{"0002_plan": "CREATE TABLE plans (id TEXT NOT NULL);\n"
                                                   "ALTER TABLE tenants ADD COLUMN plan TEXT NOT NULL;\n"})
    report = run(target, folder)
    result = only(report)
    assert report.verdict == "unsafe"
    assert rules(result) == [("apply-failed", 2)]
    assert "ADD COLUMN plan" in result.findings[0].message
    assert "Cannot add a NOT NULL column with default value NULL" in result.findings[0].message


def test_a_new_unique_index_on_an_expression_of_an_existing_table_is_a_tighter_constraint(
        target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_unique_email": "\nCREATE UNIQUE INDEX idx_users_email_ci ON "
                                                           "users(tenant_id, lower(email));\n"})
    result = only(run(target, folder))
    assert result.cls == "contract" and rules(result) == [("tighter-constraint", 2)]


def test_rewriting_rows_of_an_existing_table_is_data(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_backfill": "UPDATE services SET price_cents = 0 WHERE price_cents < 0;\n"})
    result = only(run(target, folder))
    assert result.cls == "data" and result.findings == []


def test_a_migration_that_changes_nothing_is_none(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_noop": "SELECT 1;\n"})
    assert only(run(target, folder)).cls == "none"


# --- lint rules ------------------------------------------------------------------------------

def test_every_d1_rule_names_its_line(target: Path, tmp_path: Path) -> None:
    big = "INSERT INTO tenants (id, slug, name) VALUES " + ", ".join(
        f"('t{i}', 's{i}', '{'x' * 40}')" for i in range(2200)) + ";"
    params = "SELECT * FROM tenants WHERE id IN (" + ", ".join("?" for _ in range(101)) + ");"
    folder = folder_with(tmp_path, **{"0002_d1": "\n".join([
        "BEGIN TRANSACTION;",                                  # 1
        "PRAGMA journal_mode = WAL;",                          # 2
        "PRAGMA defer_foreign_keys = true;",                   # 3: allowed on D1
        "ATTACH DATABASE 'other.db' AS other;",                # 4
        "VACUUM;",                                             # 5
        "CREATE VIRTUAL TABLE search USING fts5(body);",       # 6
        big,                                                   # 7
        params,                                                # 8
        "COMMIT;",                                             # 9
    ]) + "\n"})
    result = only(run(target, folder))
    found = set(rules(result))
    assert {("d1-transaction-control", 1), ("d1-pragma", 2), ("d1-attach", 4), ("d1-vacuum", 5),
            ("d1-virtual-table", 6), ("d1-statement-too-large", 7), ("d1-too-many-parameters", 8),
            ("d1-transaction-control", 9)} <= found
    assert ("d1-pragma", 3) not in found
    assert not (tmp_path / "other.db").exists()  # ATTACH is reported, never run


def test_a_statement_over_d1s_size_limit_is_reported_and_never_run_in_the_scratch_copy(
        target: Path, tmp_path: Path) -> None:
    # D1 refuses it anyway, and SQLite compiles a multi-row VALUES in quadratic time: a 9 MB seed
    # INSERT kept the check busy for minutes. Were it run, the missing table would fail it.
    rows = ", ".join(f"('t{i}', 's{i}', 'name ' || {i})" for i in range(60_000))
    folder = folder_with(tmp_path, **{"0002_seed": f"CREATE TABLE kept (a TEXT);\nINSERT INTO nope VALUES {rows};\n"})
    result = only(run(target, folder))
    assert rules(result) == [("d1-statement-too-large", 2)]


def test_delete_without_where_and_an_update_overwriting_every_row_are_errors(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_wipe": (
        "UPDATE services SET active = 1; -- a WHERE in a comment does not count\n"
        "DELETE FROM sessions WHERE expires_at < datetime('now');\n"
        "DELETE FROM auth_attempts;\n")})
    report = run(target, folder)
    result = only(report)
    assert result.cls == "data" and report.verdict == "unsafe"
    assert [(f.rule, f.severity, f.line) for f in result.findings] == [
        ("update-overwrites", "error", 1), ("delete-without-where", "error", 3)]
    assert "services.active" in result.findings[0].message


def test_a_backfill_of_a_column_the_migration_added_is_fine_without_a_where(target: Path, tmp_path: Path) -> None:
    # #25 point 4: the serving version never wrote the new column, so setting it in every row loses nothing.
    folder = folder_with(tmp_path, **{"0002_backfill": (
        "ALTER TABLE services ADD COLUMN category TEXT;\n"
        "UPDATE services SET category = 'hair';\n")})
    report = run(target, folder)
    assert report.verdict == "safe" and only(report).findings == []
    # Set together with a column that existed before, it overwrites that one: unsafe, naming it.
    (tmp_path / "b").mkdir()
    both = folder_with(tmp_path / "b", **{"0002_backfill": (
        "ALTER TABLE services ADD COLUMN category TEXT;\n"
        "UPDATE services SET category = 'hair', name = upper(name);\n")})
    [finding] = only(run(target, both)).findings
    assert (finding.rule, finding.line) == ("update-overwrites", 2) and "services.name" in finding.message
    assert "services.category" not in finding.message


def test_an_update_without_where_that_is_never_run_stays_a_warning_from_its_words(target: Path,
                                                                                tmp_path: Path) -> None:
    # After a failed statement the rest is read, not run: what it would set is not known.
    folder = folder_with(tmp_path, **{"0002_broken": "INSERT INTO nope VALUES (1);\nUPDATE services SET active = 1;\n"})
    assert rules(only(run(target, folder))) == [("apply-failed", 1), ("update-without-where", 2)]


def test_a_where_inside_a_subquery_or_cte_does_not_limit_the_update_or_delete(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_wipe": (
        "WITH stale AS (SELECT id FROM sessions WHERE expires_at < datetime('now'))\n"
        "DELETE FROM sessions;\n"
        "UPDATE appointments SET notes = (SELECT name FROM users WHERE users.id = appointments.user_id);\n"
        "DELETE FROM auth_attempts WHERE id IN (SELECT id FROM auth_attempts WHERE success = 1);\n")})
    result = only(run(target, folder))
    assert rules(result) == [("delete-without-where", 1), ("update-overwrites", 3)]


def test_a_statement_that_fails_is_reported_with_sqlites_error_and_undone(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{
        "0002_broken": "CREATE TABLE loyalty (user_id TEXT);\nINSERT INTO nope VALUES (1);\n",
        "0003_after": "CREATE TABLE loyalty (user_id TEXT, points INTEGER);\n"})
    report = run(target, folder)
    broken, after = report.migrations
    assert rules(broken) == [("apply-failed", 2)] and "no such table: nope" in broken.findings[0].message
    # As on D1, the failed migration left nothing behind: 0003 can create the same table.
    assert after.findings == [] and after.cls == "expand"


def test_a_statement_that_never_ends_is_stopped_and_reported_instead_of_hanging_the_check(
        target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migration_check, "STATEMENT_SECONDS", 0.3)  # D1's 30 s, shortened for the test
    folder = folder_with(tmp_path, **{"0002_seed": (
        "CREATE TABLE days (day INTEGER);\n"
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n)  -- no LIMIT: never ends\n"
        "INSERT INTO days SELECT x FROM n;\n")})
    result = only(run(target, folder))
    assert rules(result) == [("apply-failed", 2)] and "after 0.3 s" in result.findings[0].message


def test_every_rule_is_covered_by_a_test_here() -> None:
    source = Path(__file__).read_text() + Path(__file__).with_name("test_migration_check_proofs.py").read_text()
    assert all(f'"{rule}"' in source for rule in RULES), [r for r in RULES if f'"{r}"' not in source]


# --- the target ------------------------------------------------------------------------------

def test_the_target_file_is_byte_identical_after_a_check(target: Path, tmp_path: Path) -> None:
    before = target.read_bytes()
    folder = folder_with(tmp_path, **{"0002_drop_notes": "ALTER TABLE appointments DROP COLUMN notes;\n",
                                      "0003_wipe": "DELETE FROM tenants;\n"})
    run(target, folder)
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith("target")) == ["target.sqlite"]


def test_only_pending_migrations_are_checked(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"0002_add": "ALTER TABLE tenants ADD COLUMN plan TEXT;\n"})
    assert [m.name for m in run(target, folder).migrations] == ["0002_add.sql"]


def test_corpus_statements_carry_their_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "q.sql"
    path.write_text("-- header; with a semicolon\nSELECT 1;\n\nSELECT ';' AS x\nFROM tenants;\n")
    assert [(q.source, q.sql.splitlines()[0]) for q in read_corpus(path, "q.sql")] == [
        ("q.sql:2", "SELECT 1;"), ("q.sql:4", "SELECT ';' AS x")]


def test_a_serving_query_that_is_a_pragma_cannot_change_how_the_scratch_copy_behaves(target: Path,
                                                                                    tmp_path: Path) -> None:
    """Serving queries are only compiled, but compiling `PRAGMA writable_schema = ON` already sets it."""
    folder = folder_with(tmp_path, **{"0002_forge": (
        "UPDATE sqlite_schema SET sql = replace(sql, 'notes', 'nodes') WHERE name = 'appointments';\n")})
    plain = only(run(target, folder, corpus(tmp_path, "SELECT id FROM appointments WHERE id = ?;\n")))
    sneaky = only(run(target, folder, corpus(tmp_path, "PRAGMA writable_schema = ON;\n"
                                                       "SELECT id FROM appointments WHERE id = ?;\n")))
    assert [f.rule for f in plain.findings] == ["apply-failed"]
    assert [(f.rule, f.message) for f in sneaky.findings] == [(f.rule, f.message) for f in plain.findings]


def test_checking_a_wal_mode_database_creates_nothing_beside_it(target: Path, tmp_path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(target)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()  # the last connection checkpoints and removes -wal and -shm
    folder = folder_with(tmp_path, **{"0002_drop_user_agent": "ALTER TABLE sessions DROP COLUMN user_agent;\n"})
    beside = lambda: sorted(p.name for p in target.parent.glob(target.name + "*"))  # noqa: E731
    assert beside() == [target.name]
    data = target.read_bytes()
    assert only(run(target, folder)).cls == "contract"
    assert beside() == [target.name], "no -wal or -shm left beside the target"
    assert target.read_bytes() == data
