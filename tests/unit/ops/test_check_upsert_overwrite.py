"""Third hostile review of issue #25 (2026-12-05):
`migrate check` calls `UPDATE services SET price = 0` unsafe (update-overwrites),
but the same overwrite of every row written as an UPSERT or an INSERT OR REPLACE is `safe` (`migrate
rehearse`, rows only, says `safe` too). The `update` case passes on main: it is the control. The
upsert and replace cases fail on main a4f7c1b."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ops.database.migration_check import check_local
from ops.database.migrations import discover

PRICES = ("CREATE TABLE services (id INTEGER PRIMARY KEY, price INT NOT NULL);"
          "INSERT INTO services VALUES (1, 10), (2, 20);")
OVERWRITES = {
    "update": "UPDATE services SET price = 0;\n",
    "upsert": "INSERT INTO services (id, price) SELECT id, 0 FROM services WHERE true "
              "ON CONFLICT (id) DO UPDATE SET price = excluded.price;\n",
    "replace": "INSERT OR REPLACE INTO services (id, price) SELECT id, 0 FROM services;\n",
}


def _folder(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0002_step.sql").write_text(text)
    db = tmp_path / "db.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(PRICES)
    conn.close()
    return folder


@pytest.mark.parametrize("how", sorted(OVERWRITES))
def test_migrate_check_refuses_every_way_of_overwriting_every_row(tmp_path: Path, how: str) -> None:
    folder = _folder(tmp_path, OVERWRITES[how])
    report = check_local(tmp_path / "db.sqlite", discover(folder), [])
    rules = [f.rule for m in report.migrations for f in m.findings]
    assert report.verdict == "unsafe", f"{how} sets services.price = 0 in every row; migrate check: safe {rules}"

