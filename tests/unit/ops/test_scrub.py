"""ops/database/scrub.py on real SQLite: no personal value survives, rows, joins and times do."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import pytest

from booking_shared import columns
from ops.database.migrations import apply, discover
from ops.database.scrub import ScrubRefused, scrub
from ops.database.seed import seed
from ops.targets import LocalDatabase
from tests.helpers import REPO

SALT = b"preview-pr-42-salt-0123456789"
CLASSIFICATION = columns.load(REPO / "migrations")
REPLACED = sorted(key for key, kind in CLASSIFICATION.items() if kind in columns.REPLACED)
JOINS = {
    "appointment -> customer -> salon": "SELECT count(*) FROM appointments a JOIN users u ON u.id = a.user_id "
                                        "JOIN tenants t ON t.id = a.tenant_id JOIN services s ON s.id = a.service_id",
    "login attempts by a known user's e-mail": "SELECT count(*) FROM auth_attempts x JOIN users u ON u.email = x.email",
    "sessions per user": "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id",
    "bookings per hour of day": "SELECT group_concat(n) FROM (SELECT strftime('%H', starts_at) h, count(*) n "
                                "FROM appointments GROUP BY h ORDER BY h)",
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seeded") / "d1.sqlite"
    sqlite3.connect(path).close()
    db = LocalDatabase(path)
    apply(db, discover(REPO / "migrations"))
    seed(db, dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC))
    return path


def _copy(seeded: Path, tmp_path: Path, name: str = "copy.sqlite") -> sqlite3.Connection:
    shutil.copyfile(seeded, tmp_path / name)
    return sqlite3.connect(tmp_path / name, isolation_level=None)


def _values(conn: sqlite3.Connection, table: str, column: str) -> list[object]:
    return [v for v, in conn.execute(f'SELECT "{column}" FROM "{table}" ORDER BY rowid')]


def _every_text_cell(conn: sqlite3.Connection) -> set[str]:
    cells: set[str] = set()
    for table, column in columns.text_columns(conn):
        cells |= {str(v) for v in _values(conn, table, column) if v is not None}
    return cells


def test_no_original_personal_value_survives_anywhere_while_counts_joins_and_times_do(
        seeded: Path, tmp_path: Path) -> None:
    conn = _copy(seeded, tmp_path)
    originals = {(t, c): _values(conn, t, c) for t, c in REPLACED}
    counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t, _ in CLASSIFICATION}
    joins = {name: conn.execute(sql).fetchone()[0] for name, sql in JOINS.items()}
    kept = {(t, c): _values(conn, t, c) for (t, c), kind in CLASSIFICATION.items() if kind in columns.KEPT}
    assert sum(v is not None for values in originals.values() for v in values) > 300  # the seed has people

    report = scrub(conn, CLASSIFICATION, SALT)

    cells = _every_text_cell(conn)
    # A value a kept column holds too is not personal ('staff' as a role, and in an audit row's old value).
    public = {str(v) for values in kept.values() for v in values if v is not None}
    survivors = {(t, c, v) for (t, c), values in originals.items() for v in values
                 if v is not None and str(v) in cells and str(v) not in public}
    assert survivors == set()
    assert sum(str(v) in public for values in originals.values() for v in values) < 20  # the exception stays small
    for (table, column), values in originals.items():  # NULL stays NULL, each value became another
        after = _values(conn, table, column)
        assert [v is None for v in after] == [v is None for v in values], (table, column)
    assert {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t, _ in CLASSIFICATION} == counts
    assert {name: conn.execute(sql).fetchone()[0] for name, sql in JOINS.items()} == joins
    assert {key: _values(conn, *key) for key in kept} == kept  # ids, statuses, times untouched
    assert report.replaced["users.email"] == len(originals[("users", "email")])
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_the_same_salt_gives_the_same_copy_and_another_salt_another(seeded: Path, tmp_path: Path) -> None:
    first, second, other = (_copy(seeded, tmp_path, f"{n}.sqlite") for n in ("a", "b", "c"))
    scrub(first, CLASSIFICATION, SALT)
    scrub(second, CLASSIFICATION, SALT)
    scrub(other, CLASSIFICATION, SALT + b"-other")
    for table, column in REPLACED:
        assert _values(first, table, column) == _values(second, table, column)
    assert _values(first, "users", "email") != _values(other, "users", "email")
    assert all(str(v).endswith("@example.invalid") for v in _values(first, "users", "email"))


def test_a_column_holding_text_without_a_class_refuses_the_scrub_and_changes_nothing(
        seeded: Path, tmp_path: Path) -> None:
    conn = _copy(seeded, tmp_path)
    conn.execute("ALTER TABLE users ADD COLUMN whatsapp TEXT")
    conn.execute("UPDATE users SET whatsapp = '+27821234567' WHERE rowid = 1")
    conn.execute("ALTER TABLE services ADD COLUMN price_note INTEGER")  # text in an INTEGER column counts too
    conn.execute("UPDATE services SET price_note = 'ask Thandi' WHERE rowid = 1")
    before = list(conn.iterdump())
    with pytest.raises(ScrubRefused, match=r"columns\.yaml does not classify: users\.whatsapp, services\.price_note"
                                           r"|columns\.yaml does not classify: services\.price_note, users\.whatsapp"):
        scrub(conn, CLASSIFICATION, SALT)
    assert list(conn.iterdump()) == before


def test_triggers_do_not_fire_during_the_scrub_and_are_kept(seeded: Path, tmp_path: Path) -> None:
    conn = _copy(seeded, tmp_path)
    conn.execute("CREATE TRIGGER copy_email AFTER UPDATE OF email ON users BEGIN "
                 "INSERT INTO audit_logs (tenant_id, user_id, action, resource_type, ip_address, user_agent) "
                 "VALUES (NEW.tenant_id, NEW.id, 'email ' || OLD.email, 'user', NULL, NULL); END")
    audit = conn.execute("SELECT count(*) FROM audit_logs").fetchone()[0]
    scrub(conn, CLASSIFICATION, SALT)
    assert conn.execute("SELECT count(*) FROM audit_logs").fetchone()[0] == audit
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'copy_email'").fetchone()[0] == 1


def test_a_short_salt_is_refused(seeded: Path, tmp_path: Path) -> None:
    from booking_shared.errors import InputError

    with pytest.raises(InputError, match="at least 16 bytes"):
        scrub(_copy(seeded, tmp_path), CLASSIFICATION, b"short")


def test_every_text_column_of_the_repositorys_schema_is_classified() -> None:
    assert columns.unclassified(columns.text_columns(columns.schema_of(REPO / "migrations")), CLASSIFICATION) == []
