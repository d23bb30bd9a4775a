"""text-columns-classified: a migration adding a text column nobody classified fails the gate."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from policies import columns as policy
from tests.helpers import REPO


def _tree(tmp_path: Path, *migrations: tuple[str, str], classification: str | None = None) -> Path:
    (tmp_path / "migrations").mkdir()
    for path in (REPO / "migrations").glob("*.sql"):
        shutil.copyfile(path, tmp_path / "migrations" / path.name)
    text = (REPO / "migrations" / "columns.yaml").read_text() if classification is None else classification
    (tmp_path / "migrations" / "columns.yaml").write_text(text)
    for name, sql in migrations:
        (tmp_path / "migrations" / name).write_text(sql)
    return tmp_path


def _found(root: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(policy, "project_root", lambda: root)
    found: list[str] = []
    policy.check_columns(Any, lambda text, *rest: found.append(text))  # type: ignore[arg-type]
    return found


def test_the_repositorys_tree_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _found(REPO, monkeypatch) == []


def test_a_migration_adding_unclassified_columns_of_any_type_fails_naming_each(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An INTEGER column needs a class too: SQLite stores a phone number there as an integer (the
    # second hostile review of #26); a generated column is computed from classified ones.
    root = _tree(tmp_path, ("0099_contact.sql", "ALTER TABLE users ADD COLUMN whatsapp TEXT;\n"
                                                "ALTER TABLE users ADD COLUMN extra;\n"  # no type: holds text too
                                                "ALTER TABLE users ADD COLUMN visits INTEGER;\n"
                                                "ALTER TABLE users ADD COLUMN domain TEXT GENERATED ALWAYS AS "
                                                "(substr(email, instr(email, '@') + 1)) VIRTUAL;\n"))
    [violation] = _found(root, monkeypatch)
    assert "3 column(s)" in violation and "users.whatsapp, users.extra, users.visits" in violation
    assert "domain" not in violation and "migrations/columns.yaml" in violation


def test_a_classification_that_does_not_read_fails_naming_the_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path, classification="users:\n  email: maybe\n")
    [violation] = _found(root, monkeypatch)
    assert "users.email: 'maybe' is not a class" in violation
