"""Fourth hostile review of issue #25 (2026-12-05):
`migrate check`'s new rule (an INSERT/REPLACE/upsert rewriting every row is
`update-overwrites`), after the third round (each test fails on main 063bd60, except the controls).

The rule reads "every row" from the check's scratch copy, where each table holds SAMPLE_ROWS (3)
sample rows, an INTEGER PRIMARY KEY taking rowids 1, 2, 3: a statement naming keys 1..3 meets all
of them; one naming 1..4 adds a row and is passed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ops.database.migration_check import check_local
from ops.database.migrations import discover


def _check(tmp_path: Path, setup: str, text: str) -> tuple[str, list[str]]:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0002_step.sql").write_text(text)
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    conn.executescript(setup)
    conn.close()
    report = check_local(tmp_path / "db.sqlite", discover(folder), [])
    return report.verdict, [f.rule for m in report.migrations for f in m.findings]


STATUSES = "CREATE TABLE statuses (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
SEEDS = {
    "upsert-3": "INSERT INTO statuses (id, name) VALUES (1, 'pending'), (2, 'confirmed'), (3, 'cancelled') "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name;\n",
    "replace-3": "INSERT OR REPLACE INTO statuses (id, name) VALUES (1, 'pending'), (2, 'confirmed'), "
                 "(3, 'cancelled');\n",
    # control: the same seed with a fourth status is passed on main
    "upsert-4": "INSERT INTO statuses (id, name) VALUES (1, 'pending'), (2, 'confirmed'), (3, 'cancelled'), "
                "(4, 'no-show') ON CONFLICT (id) DO UPDATE SET name = excluded.name;\n",
}


@pytest.mark.parametrize("how", sorted(SEEDS))
def test_a_reference_data_seed_naming_its_keys_is_not_an_overwrite_of_every_row(tmp_path: Path, how: str) -> None:
    """An idempotent seed of reference rows by key (a common migration) is an ERROR `update-overwrites`
    ("sets statuses.name in every row") when it names exactly 3 keys, and passes with 4: the verdict
    depends on SAMPLE_ROWS, not on the migration. (The UPDATE rule shares the cause: `UPDATE statuses
    SET name = 'x' WHERE id IN (1, 2, 3)` is flagged too; that part predates this round.)"""
    verdict, rules = _check(tmp_path, STATUSES, SEEDS[how])
    assert "update-overwrites" not in rules, f"{how}: a seed naming its keys is judged {verdict} {rules}"


def test_an_upsert_of_a_single_row_settings_table_is_not_an_overwrite_of_every_row(tmp_path: Path) -> None:
    """A one-row settings table (CHECK (id = 1)) gets one sample row; the usual upsert of that row is an
    ERROR `update-overwrites`. (As `UPDATE settings ... WHERE id = 1` is: same cause, older.)"""
    verdict, rules = _check(tmp_path, "CREATE TABLE settings (id INTEGER PRIMARY KEY CHECK (id = 1), "
                                      "currency TEXT NOT NULL);",
                            "INSERT INTO settings (id, currency) VALUES (1, 'EUR') "
                            "ON CONFLICT (id) DO UPDATE SET currency = excluded.currency;\n")
    assert "update-overwrites" not in rules, f"the upsert of the one settings row is judged {verdict} {rules}"


PRICES = "CREATE TABLE services (id INTEGER PRIMARY KEY, price INT NOT NULL);"
OVERWRITE_PLUS_ONE = {
    "replace": "INSERT OR REPLACE INTO services (id, price) SELECT id, 0 FROM services UNION ALL SELECT 1000000, 0;\n",
    "upsert": "INSERT INTO services (id, price) SELECT id, 0 FROM services UNION ALL SELECT 1000000, 0 WHERE true "
              "ON CONFLICT (id) DO UPDATE SET price = excluded.price;\n",
}


@pytest.mark.parametrize("how", sorted(OVERWRITE_PLUS_ONE))
def test_an_overwrite_of_every_row_that_also_adds_one_is_refused(tmp_path: Path, how: str) -> None:
    """The rule requires the table to hold no more rows afterwards (`rows_after <= had_rows`): the
    overwrite of every price that also inserts one row passes as `safe` (without the extra row: unsafe)."""
    verdict, rules = _check(tmp_path, PRICES, OVERWRITE_PLUS_ONE[how])
    assert verdict == "unsafe", (f"{how} sets services.price = 0 in every row (and adds one); "
                                 f"migrate check: {verdict} {rules}")


GUARDED = {
    "update": "UPDATE services SET price = 0 WHERE price IS NOT 0;\n",
    "upsert": "INSERT INTO services (id, price) SELECT id, 0 FROM services WHERE true ON CONFLICT (id) DO UPDATE "
              "SET price = excluded.price WHERE services.price IS NOT excluded.price;\n",
}


@pytest.mark.parametrize("how", sorted(GUARDED))
def test_an_overwrite_of_every_row_that_skips_rows_already_holding_the_value_is_refused(
        tmp_path: Path, how: str) -> None:
    """Setting every price to 0, skipping rows that hold 0 already (the usual no-op guard): afterwards
    every row holds 0, the serving version's prices are gone. `safe`, because one of the 3 sample rows
    holds 0 already (migration_rows._INT: 1, 0, 1000000007), so `changed` (2) < rows (3). The same with 5
    is unsafe: the verdict depends on whether the new value is a sample value (0 and 1 are: flags, prices)."""
    verdict, rules = _check(tmp_path, PRICES, GUARDED[how])
    assert verdict == "unsafe", f"{how} leaves every services.price = 0; migrate check: {verdict} {rules}"
