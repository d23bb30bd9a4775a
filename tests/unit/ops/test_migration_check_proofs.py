"""`migrate check` judges from what SQLite proves on a scratch copy holding sample rows: rows a
statement removes, tables emptied or swapped away, defaults and constraints lost, writes of the
serving version refused or undone by triggers, the runner's own tables; and its corpus holds the
Worker's SQL and bookingctl's tenant queries (issue #22; adversarial review 2 H1-H4, M7, L6)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ops.database.migration_check import CheckReport, MigrationResult, check_local
from ops.database.migrations import apply, discover
from ops.database.serving import ServingQuery, worker_queries
from ops.releases.gate import gather, own_queries
from ops.targets import LocalDatabase
from tests.helpers import REPO
from tests.helpers.migrations import folder_with

APPT = ("CREATE TABLE {n} (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), service_id TEXT NOT "
        "NULL REFERENCES services(id), user_id TEXT NOT NULL REFERENCES users(id), starts_at TEXT NOT NULL, status "
        "TEXT NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'confirmed', 'cancelled', 'completed', "
        "'no_show')), payment_reference TEXT, notes TEXT, created_at TEXT NOT NULL DEFAULT (datetime('now')));")
IDX = ("CREATE INDEX idx_appointments_tenant_created ON appointments(tenant_id, created_at);\n"
       "CREATE INDEX idx_appointments_created ON appointments(created_at);\n"
       "CREATE INDEX idx_appointments_service ON appointments(service_id);\n"
       "CREATE INDEX idx_appointments_user ON appointments(user_id);")
SWAP = "\nDROP TABLE appointments;\nALTER TABLE appointments_new RENAME TO appointments;\n" + IDX
COLS = "id, tenant_id, service_id, user_id, starts_at, status, payment_reference, notes, created_at"


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A local database with the committed schema and no rows, as the reviewer's was."""
    path = tmp_path / "target.sqlite"
    with LocalDatabase(path, must_exist=False) as db:
        apply(db, discover(REPO / "migrations"))
    return path


def run(target: Path, tmp_path: Path, sql: str, queries: list[ServingQuery] | None = None) -> CheckReport:
    folder = folder_with(tmp_path, **{"0002_case": sql + "\n"})
    return check_local(target, discover(folder, strict=False), gather() if queries is None else queries)


def only(report: CheckReport) -> MigrationResult:
    [result] = report.migrations
    return result


def errors(result: MigrationResult) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in result.findings if f.severity == "error"]


# --- H1: a WHERE that matches every row is no WHERE -------------------------------------------

@pytest.mark.parametrize("where", ["1", "true", "1=1", "id IS NOT NULL", "id = id", "EXISTS (SELECT 1)",
                                   "id IN (SELECT id FROM appointments)", "created_at > ''", "rowid > 0"])
def test_a_delete_whose_where_matches_every_row_is_a_delete_without_where(
        target: Path, tmp_path: Path, where: str) -> None:
    report = run(target, tmp_path, f"DELETE FROM appointments WHERE {where};")
    assert report.verdict == "unsafe" and errors(only(report)) == [("delete-without-where", 1)]
    assert "every row" in only(report).findings[0].message


def test_an_always_true_delete_behind_a_cte_is_a_delete_without_where(target: Path, tmp_path: Path) -> None:
    report = run(target, tmp_path, "WITH c AS (SELECT 1) DELETE FROM appointments WHERE 1;")
    assert errors(only(report)) == [("delete-without-where", 1)]


def test_a_delete_that_keeps_some_rows_is_data_and_safe(target: Path, tmp_path: Path) -> None:
    report = run(target, tmp_path, "DELETE FROM sessions WHERE expires_at < datetime('now');\n"
                                   "DELETE FROM appointments WHERE notes IS NOT NULL;\n"
                                   "DELETE FROM services WHERE active = 1;")
    assert report.verdict == "safe" and only(report).cls == "data", only(report).findings


def test_an_update_whose_where_matches_every_row_overwrites_every_row(target: Path, tmp_path: Path) -> None:
    result = only(run(target, tmp_path, "UPDATE services SET active = 0 WHERE 1 = 1;"))
    assert [(f.rule, f.severity) for f in result.findings] == [("update-overwrites", "error")]


# --- H2: rows, defaults and constraints lost in rebuilds and swaps ----------------------------

def test_dropping_and_re_creating_a_table_loses_its_rows_and_is_unsafe(target: Path, tmp_path: Path) -> None:
    report = run(target, tmp_path, "DROP TABLE appointments;\n" + APPT.format(n="appointments") + "\n" + IDX)
    assert report.verdict == "unsafe" and ("rows-lost", 1) in errors(only(report))
    assert only(report).cls == "contract"


def test_a_rebuild_that_copies_no_rows_is_unsafe_at_the_drop(target: Path, tmp_path: Path) -> None:
    report = run(target, tmp_path, APPT.format(n="appointments_new")
                 + f"\nINSERT INTO appointments_new SELECT {COLS} FROM appointments WHERE 0;" + SWAP)
    assert ("rows-lost", 3) in errors(only(report))


def test_a_rename_swap_leaves_the_serving_version_an_empty_table(target: Path, tmp_path: Path) -> None:
    report = run(target, tmp_path, "ALTER TABLE appointments RENAME TO appointments_old;\n"
                 + APPT.format(n="appointments"))
    assert ("rows-lost", 1) in errors(only(report)) and only(report).cls == "contract"


def test_a_rebuild_that_loses_a_default_refuses_the_serving_versions_insert(target: Path, tmp_path: Path) -> None:
    rebuilt = APPT.format(n="appointments_new").replace("DEFAULT 'booked' ", "")
    result = only(run(target, tmp_path, f"{rebuilt}\nINSERT INTO appointments_new SELECT {COLS} FROM appointments;"
                      + SWAP))
    found = errors(result)
    assert ("constraint-lost", 4) in found and ("serving-writes-break", 4) in found
    assert any("appointments.status" in f.message and "NOT NULL" in f.message for f in result.findings
               if f.rule == "serving-writes-break")


def test_a_create_table_as_rebuild_loses_the_primary_key_and_defaults(target: Path, tmp_path: Path) -> None:
    result = only(run(target, tmp_path, "CREATE TABLE appointments_new AS SELECT * FROM appointments;" + SWAP))
    lost = " ".join(f.message for f in result.findings if f.rule == "constraint-lost")
    assert "PRIMARY KEY" in lost and "DEFAULT" in lost and result.unsafe


def test_a_faithful_rebuild_that_keeps_rows_and_constraints_is_safe(target: Path, tmp_path: Path) -> None:
    report = run(target, tmp_path, "PRAGMA defer_foreign_keys = true;\n" + APPT.format(n="appointments_new")
                 + f"\nINSERT INTO appointments_new SELECT {COLS} FROM appointments;" + SWAP)
    assert report.verdict == "safe", only(report).findings


def test_a_rebuild_that_drops_a_unique_constraint_is_a_contract(target: Path, tmp_path: Path) -> None:
    result = only(run(target, tmp_path, (
        "CREATE TABLE users_new (id TEXT PRIMARY KEY, tenant_id TEXT REFERENCES tenants(id), email TEXT NOT NULL, "
        "name TEXT NOT NULL, role TEXT NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'staff', 'admin', "
        "'owner')), status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'invited')), "
        "created_at TEXT NOT NULL DEFAULT (datetime('now')), last_login TEXT);\n"
        "PRAGMA defer_foreign_keys = true;\n"
        "INSERT INTO users_new SELECT * FROM users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;\n"
        "CREATE INDEX idx_users_tenant ON users(tenant_id);\nCREATE INDEX idx_users_last_login ON users(last_login);\n"
        "CREATE INDEX idx_users_created_at ON users(created_at);")))
    assert result.cls == "contract"
    assert any(f.rule == "constraint-loosened" and "users(email)" in f.message for f in result.findings)


# --- H3: triggers, REPLACE and cascades --------------------------------------------------------

def test_a_trigger_on_d1_migrations_is_refused_and_its_wipe_counted(target: Path, tmp_path: Path) -> None:
    result = only(run(target, tmp_path, "CREATE TRIGGER wipe AFTER INSERT ON d1_migrations BEGIN DELETE FROM "
                                        "appointments; END;"))
    assert ("migrations-table", 1) in errors(result) and ("rows-lost", 1) in errors(result)


def test_a_trigger_fired_by_a_later_statement_that_empties_a_table_is_unsafe(target: Path, tmp_path: Path) -> None:
    result = only(run(target, tmp_path, "CREATE TABLE fire (x);\nCREATE TRIGGER wipe2 AFTER INSERT ON fire BEGIN "
                                        "DELETE FROM appointments; END;\nINSERT INTO fire VALUES (1);"))
    assert ("rows-lost", 3) in errors(result)


def test_an_instead_of_trigger_on_a_view_that_empties_a_table_is_unsafe(target: Path, tmp_path: Path) -> None:
    result = only(run(target, tmp_path, "CREATE VIEW v_fire AS SELECT 1 AS x;\nCREATE TRIGGER tv INSTEAD OF "
                                        "INSERT ON v_fire BEGIN DELETE FROM appointments; END;\n"
                                        "INSERT INTO v_fire VALUES (1);"))
    assert ("rows-lost", 3) in errors(result)


def test_a_trigger_that_deletes_each_new_booking_is_unsafe(target: Path, tmp_path: Path) -> None:
    result = only(run(target, tmp_path, "CREATE TRIGGER eat AFTER INSERT ON appointments BEGIN DELETE FROM "
                                        "appointments WHERE id = NEW.id; END;"))
    assert errors(result) == [("serving-writes-break", 1)]
    assert "INSERT into appointments" in result.findings[0].message


def test_a_trigger_that_refuses_each_new_booking_is_unsafe(target: Path, tmp_path: Path) -> None:
    result = only(run(target, tmp_path, "CREATE TRIGGER closed BEFORE INSERT ON appointments BEGIN "
                                        "SELECT RAISE(ABORT, 'closed'); END;"))
    assert errors(result) == [("serving-writes-break", 1)] and "closed" in result.findings[0].message


def test_a_harmless_trigger_is_an_expand(target: Path, tmp_path: Path) -> None:
    result = only(run(target, tmp_path, "CREATE TRIGGER touch AFTER UPDATE ON tenants BEGIN INSERT INTO audit_logs "
                                        "(action) VALUES ('tenant.updated'); END;"))
    assert result.cls == "expand" and result.findings == []


def test_insert_or_replace_that_cascades_deletes_is_unsafe(target: Path, tmp_path: Path) -> None:
    result = only(run(target, tmp_path, "INSERT OR REPLACE INTO users SELECT * FROM users;"))
    assert ("rows-lost", 1) in errors(result)
    assert any("sessions" in f.message for f in result.findings if f.rule == "rows-lost")


# --- L6: the runner's record, and a rename's message -----------------------------------------

def test_dropping_the_approval_record_is_unsafe(target: Path, tmp_path: Path) -> None:
    result = only(run(target, tmp_path, "CREATE TABLE IF NOT EXISTS d1_migrations_unsafe (id INTEGER PRIMARY KEY);\n"
                                        "DROP TABLE d1_migrations_unsafe;"))
    assert ("migrations-table", 2) in errors(result) and result.cls != "none"


def test_renaming_a_not_null_column_is_a_contract_not_an_unfillable_column(target: Path, tmp_path: Path) -> None:
    result = only(run(target, tmp_path, "ALTER TABLE tenants RENAME COLUMN name TO display_name;"))
    assert result.cls == "contract" and "apply-failed" not in [f.rule for f in result.findings]
    assert any("renames column tenants.name" in f.message for f in result.findings), result.findings


# --- values wiped in place (hostile review of #22, D2) ------------------------------------------

@pytest.mark.parametrize("sql", [
    "INSERT OR REPLACE INTO tenants (id, slug, name) SELECT id, slug, name FROM tenants;",
    "REPLACE INTO tenants (id, slug, name) SELECT id, slug, name FROM tenants;",
    "INSERT INTO tenants (id, slug, name) SELECT id, slug, name FROM tenants WHERE 1 "
    "ON CONFLICT(id) DO UPDATE SET hostname = NULL;",
    "UPDATE tenants SET hostname = NULL WHERE 1;",
    "UPDATE tenants SET hostname = NULL, status = 'active' WHERE id IS NOT NULL;",
])
def test_a_statement_that_empties_a_column_of_every_row_is_unsafe(target: Path, tmp_path: Path, sql: str) -> None:
    """REPLACE rewrites a row from what it names (the rest becomes NULL or its default), and an
    upsert or UPDATE can set every row's value: the rows stay, their values are gone."""
    report = run(target, tmp_path, sql)
    assert report.verdict == "unsafe"
    wiped = [f for f in only(report).findings if f.rule == "values-wiped"]
    assert wiped and wiped[0].severity == "error" and "tenants.hostname" in wiped[0].message


def test_a_backfill_of_a_column_that_had_no_values_is_not_a_wipe(target: Path, tmp_path: Path) -> None:
    sql = "ALTER TABLE tenants ADD COLUMN region TEXT;\nUPDATE tenants SET region = 'za';"
    result = only(run(target, tmp_path, sql))
    assert "values-wiped" not in {f.rule for f in result.findings}


# --- H4, M7: the corpus -----------------------------------------------------------------------

def test_the_built_in_corpus_holds_the_workers_sql_and_the_tenant_queries() -> None:
    sources = [q.source for q in gather()]
    assert any(s.startswith("worker/src/index.js:") for s in sources)
    assert any(s.startswith("ops/tenants/tenants.py:") for s in sources)
    assert any("WHERE t.hostname = ?5" in q.sql for q in worker_queries(REPO / "worker" / "src" / "index.js"))


def test_the_stacks_own_worker_bundle_replaces_the_reference_workers_sql_in_the_corpus(
        target: Path, tmp_path: Path) -> None:
    """H4: the Worker's statements come from the bundle the stack deploys (booking:workerBundle), so a
    stack whose Worker reads a column the reference Worker does not is judged by its own SQL."""
    bundle = tmp_path / "salon-worker.js"
    bundle.write_text("export default { async fetch(req, env) {\n"
                      "  return env.DB.prepare('SELECT payment_reference FROM appointments WHERE id = ?1')"
                      ".bind(1).all();\n"
                      "} };\n")
    corpus = gather(worker_bundle=bundle)
    sources = [q.source for q in corpus]
    assert any(s.endswith("salon-worker.js:2") for s in sources), sources
    assert not any(s.startswith("worker/src/index.js:") for s in sources)
    result = only(run(target, tmp_path, "ALTER TABLE appointments DROP COLUMN payment_reference;", corpus))
    broken = [f.message for f in result.findings if f.rule == "serving-query-breaks"]
    assert broken and all("salon-worker.js:2" in m for m in broken)


@pytest.mark.parametrize("sql", ["ALTER TABLE tenants RENAME COLUMN hostname TO custom_hostname;",
                                 "PRAGMA defer_foreign_keys = ON;\nDROP TABLE tenants;"])
def test_a_change_that_breaks_the_workers_or_the_tenant_queries_is_unsafe(
        target: Path, tmp_path: Path, sql: str) -> None:
    result = only(run(target, tmp_path, sql))
    broken = " ".join(f.message for f in result.findings if f.rule == "serving-query-breaks")
    assert "worker/src/index.js:" in broken and "ops/tenants/tenants.py:" in broken


def test_every_built_in_query_prepares_against_the_committed_schema(target: Path, tmp_path: Path) -> None:
    report = run(target, tmp_path, "SELECT 1;")
    assert report.corpus == [] and report.verdict == "safe"


def test_a_corpus_query_that_never_prepares_is_reported_and_makes_the_verdict_unsafe(
        target: Path, tmp_path: Path) -> None:
    path = tmp_path / "pyformat.sql"
    path.write_text("SELECT id FROM appointments;\nSELECT id, notes FROM appointments WHERE id = %s;\n")
    report = run(target, tmp_path, "ALTER TABLE appointments DROP COLUMN notes;", gather([(path, "pyformat.sql")]))
    assert report.verdict == "unsafe"
    [finding] = report.corpus
    assert (finding.rule, finding.file, finding.line) == ("corpus-query-unprepared", "pyformat.sql", 2)
    assert "pyformat.sql:2" in report.to_dict()["corpus"][0]["message"] and finding.severity == "error"


def test_a_built_in_query_that_does_not_prepare_on_a_foreign_schema_is_only_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with LocalDatabase(path, must_exist=False) as db:
        apply(db, discover(folder_with(tmp_path, **{"0002_other": "CREATE TABLE other (id TEXT);\n"})))
    (tmp_path / "migrations" / "0001_initial_schema.sql").unlink()
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE auth_attempts;")
    conn.close()
    report = check_local(path, discover(tmp_path / "migrations", strict=False), gather())
    assert report.verdict == "safe" and report.corpus
    assert {f.severity for f in report.corpus} == {"warning"}


def test_a_query_of_the_new_code_that_prepares_only_after_the_migration_is_not_reported(
        target: Path, tmp_path: Path) -> None:
    path = tmp_path / "new.sql"
    path.write_text("SELECT plan FROM tenants WHERE id = ?;\n")
    report = run(target, tmp_path, "ALTER TABLE tenants ADD COLUMN plan TEXT;", gather([(path, "new.sql")]))
    assert report.corpus == [] and report.verdict == "safe"


# --- newcomer 1: the README's own example -----------------------------------------------------

def test_the_readmes_expand_and_contract_shipped_together_are_unsafe_without_a_corpus(
        target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{
        "0003_customer_notes": "ALTER TABLE appointments ADD COLUMN customer_notes TEXT;\n"
                               "UPDATE appointments SET customer_notes = notes WHERE customer_notes IS NULL;\n",
        "0004_drop_notes": "ALTER TABLE appointments DROP COLUMN notes;\n"})
    report = check_local(target, discover(folder, strict=False), gather())
    expand, contract = report.migrations
    assert not expand.unsafe and errors(contract) == [("contract-with-its-expand", 1)]
    [paired] = [f for f in contract.findings if f.rule == "contract-with-its-expand"]
    assert "0003_customer_notes.sql" in paired.message


def test_the_readmes_contract_alone_is_safe_once_its_expand_is_applied(target: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{
        "0003_customer_notes": "ALTER TABLE appointments ADD COLUMN customer_notes TEXT;\n"
                               "UPDATE appointments SET customer_notes = notes WHERE customer_notes IS NULL;\n"})
    with LocalDatabase(target) as db:
        apply(db, discover(folder))
    (folder / "0004_drop_notes.sql").write_text("ALTER TABLE appointments DROP COLUMN notes;\n")
    report = check_local(target, discover(folder, strict=False), gather())
    assert report.verdict == "safe" and [m.name for m in report.migrations] == ["0004_drop_notes.sql"]


def test_own_queries_are_part_of_gather() -> None:
    assert set(own_queries()) <= set(gather())


def test_every_query_the_tenants_room_runs_is_in_the_serving_corpus() -> None:
    """The corpus reads SQL from the modules it names (ops/releases/gate.py): a module split off
    `tenants` or `tenant_restore` and left out would make the migration check judge fewer queries."""
    import importlib

    from ops.database.serving import module_queries
    from tests.helpers import REPO

    own = {q.sql for q in own_queries()}
    for path in sorted((REPO / "ops" / "tenants").glob("*.py")):
        module = importlib.import_module(f"ops.tenants.{path.stem}")
        missing = [q.source for q in module_queries(module) if q.sql not in own]
        assert not missing, f"ops/releases/gate.py own_queries() leaves out {missing}"
