"""Migration folders for the `migrate check` tests: the committed schema plus the migrations under test."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import REPO

INITIAL = (REPO / "migrations" / "0001_initial_schema.sql").read_text()


def folder_with(tmp_path: Path, **files: str) -> Path:
    """tmp_path/migrations holding the committed 0001 migration plus `files` (name without .sql -> SQL text)."""
    folder = tmp_path / "migrations"
    folder.mkdir(exist_ok=True)
    (folder / "0001_initial_schema.sql").write_text(INITIAL)
    for name, sql in files.items():
        (folder / f"{name}.sql").write_text(sql)
    return folder
