"""hostile26 finding 13: a pull request whose branch is behind main (a migration reached staging after it
branched) got "classify users.phone in migrations/columns.yaml", which would duplicate main's change; for a
new column that is not text, the load failed on every run. `preview up` now compares the migrations staging's
backup records with the checkout's before scrubbing, and refuses with "merge main", writing nothing; once
main is merged (its migration and its classification), the same `up` loads the data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ops.database.migrations import apply, discover
from ops.database.seed import seed
from ops.targets import LocalDatabase
from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.conftest import NOW, STAGING_DB, publish_staging
from tests.integration.previews.test_preview_lifecycle import run

pytestmark = pytest.mark.slow

# main's migration the pull request's checkout lacks -> (its SQL, the values staging then holds, main's class)
AHEAD = {
    "text": ("0003_users_phone.sql", "ALTER TABLE users ADD COLUMN phone TEXT;",
             "UPDATE users SET phone = '+2782' || (1000000 + rowid)", "phone"),
    "integer": ("0003_users_visits.sql", "ALTER TABLE users ADD COLUMN visits INTEGER;",
                "UPDATE users SET visits = rowid", "keep"),
}


def merge_main(project: Path, kind: str) -> None:
    """Main merged into the checkout: its migration of `kind` and its classification of the new column."""
    name, sql, _, cls = AHEAD[kind]
    (project / "migrations" / name).write_text(sql + "\n")
    column = sql.split("ADD COLUMN ")[1].split()[0]
    columns = project / "migrations" / "columns.yaml"
    columns.write_text(columns.read_text().replace("users:\n", f"users:\n  {column}: {cls}\n", 1))


def staging_ahead(project: Path, api: CloudflareDouble, tmp_path: Path, kind: str) -> None:
    """Staging's D1 with main's migration applied and filled, and its backup in staging's bucket."""
    name, sql, fill, _ = AHEAD[kind]
    main = tmp_path / "main-migrations"
    main.mkdir()
    for f in (project / "migrations").iterdir():
        (main / f.name).write_bytes(f.read_bytes())
    (main / name).write_text(sql + "\n")
    path = tmp_path / "staging.sqlite"
    with LocalDatabase(path, must_exist=False) as db:
        apply(db, discover(main))
        seed(db, NOW)
    conn = sqlite3.connect(path)
    conn.execute(fill)
    conn.commit()
    conn.close()
    publish_staging(api, path, tmp_path)


def preview_rows(api: CloudflareDouble) -> dict[str, int]:
    [db] = [d for d in api.databases.values() if d.name == f"{STAGING_DB}-pr-1"]
    conn = sqlite3.connect(db.path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%' AND name != 'd1_migrations'")]
    return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


@pytest.mark.parametrize("kind", sorted(AHEAD))
def test_a_branch_behind_main_is_told_to_merge_main_and_loads_once_it_has(
        kind: str, project: Path, api: CloudflareDouble, engine: DoubleEngine, tmp_path: Path) -> None:
    staging_ahead(project, api, tmp_path, kind)
    name = AHEAD[kind][0]
    code, out = run(project, api, "up", "--pr", "1")
    last = out.strip().splitlines()[-1]
    assert code == 2, out[-800:]
    assert "this branch is behind" in last and name in last and "merge main" in last, last
    assert "classify" not in out
    # Refused before the plan (hostile26b F1): no preview made at all, nothing of anyone's destroyed.
    assert not any(d.name == f"{STAGING_DB}-pr-1" for d in api.databases.values())
    assert "pr-1" not in engine.states and "pulumi up" not in out

    merge_main(project, kind)
    code, out = run(project, api, "up", "--pr", "1")
    assert code == 0, out[-800:]
    assert "loaded backup" in out and preview_rows(api)["users"] > 0
