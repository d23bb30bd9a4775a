"""ops/database/schema.py: one reader of a local SQLite schema, exact for any table name."""

from __future__ import annotations

import sqlite3

import pytest

from ops.database import schema
from ops.database.sqlscript import quote_ident

# Names a reader that splices them into SQL gets wrong: quotes of each kind, spaces, a keyword,
# unicode, a pragma's own argument syntax, and a LIKE wildcard.
HOSTILE = ['it"s', "it's", "two words", "select", "Ünïcödé 💇", "t)--", "a%_b", "[br]", "`bt`"]


@pytest.fixture
def conn() -> sqlite3.Connection:
    return sqlite3.connect(":memory:")


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_table_name_is_read_exactly(conn: sqlite3.Connection, name: str) -> None:
    q = quote_ident(name)
    conn.execute(f"CREATE TABLE {q} ({quote_ident(name + ' id')} INTEGER PRIMARY KEY, {q} TEXT NOT NULL "
                 f"DEFAULT 'x' UNIQUE)")
    table = schema.table(conn, name)
    assert [c.name for c in table.columns] == [f"{name} id", name], f"columns of {name!r} read wrong"
    assert table.primary_key == (f"{name} id",)
    assert [i.columns for i in table.indexes if i.unique] == [(name,)], f"the UNIQUE of {name!r} was not read"
    assert name in schema.table_names(conn)
    assert schema.has_rowid(conn, name)


@pytest.mark.parametrize("name", HOSTILE)
def test_a_foreign_key_to_a_hostile_name_is_read_exactly(conn: sqlite3.Connection, name: str) -> None:
    conn.execute(f"CREATE TABLE {quote_ident(name)} (id INTEGER PRIMARY KEY)")
    conn.execute(f"CREATE TABLE child (id INTEGER PRIMARY KEY, {quote_ident(name)} INTEGER "
                 f"REFERENCES {quote_ident(name)})")
    assert schema.foreign_keys(conn, "child") == (schema.ForeignKey(0, (name,), name, (None,)),)


def test_names_are_read_as_stored_and_looked_up_case_insensitively(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE Bookings (Id INTEGER PRIMARY KEY, Slot TEXT)")
    assert [c.name for c in schema.columns(conn, "bookings")] == ["Id", "Slot"]  # SQLite finds any case
    assert schema.table_names(conn) == ["Bookings"]  # and keeps the case it was created with


def test_columns_carry_type_not_null_default_and_key_position(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE t (b text NOT NULL DEFAULT 'it''s', a INTEGER, c, PRIMARY KEY (a, b))")
    assert schema.columns(conn, "t") == (
        schema.Column("b", "TEXT", True, "'it''s'", 2, 0),
        schema.Column("a", "INTEGER", False, None, 1, 0),
        schema.Column("c", "", False, None, 0, 0),
    )
    assert schema.table(conn, "t").primary_key == ("a", "b")


def test_a_composite_foreign_key_is_one_key_with_its_columns_in_order(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE p (x, y, z, PRIMARY KEY (x, y), UNIQUE (y, z))")
    conn.execute("CREATE TABLE c (a, b, d, e, FOREIGN KEY (b, a) REFERENCES p (x, y), "
                 "FOREIGN KEY (d, e) REFERENCES p (y, z), FOREIGN KEY (e) REFERENCES p)")
    keys = {fk.columns: fk for fk in schema.foreign_keys(conn, "c")}
    assert keys[("b", "a")].parent_columns == ("x", "y")
    assert keys[("d", "e")].parent_columns == ("y", "z")
    assert keys[("e",)].parent_columns == (None,)  # REFERENCES p: its primary key
    assert len({fk.id for fk in keys.values()}) == 3


def test_a_table_without_rowid_has_no_rowid_and_its_key_is_read(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE kv (k TEXT, v, PRIMARY KEY (k)) WITHOUT ROWID")
    conn.execute("CREATE TABLE plain (k TEXT PRIMARY KEY, v)")
    assert not schema.has_rowid(conn, "kv") and schema.has_rowid(conn, "plain")
    assert schema.table(conn, "kv").primary_key == ("k",)
    assert not schema.has_rowid(conn, "no such table")


def test_index_terms_name_columns_and_mark_expressions_and_partial_indexes(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT, name TEXT)")
    conn.execute("CREATE UNIQUE INDEX by_email ON t (lower(email), name)")
    conn.execute("CREATE INDEX named ON t (name) WHERE name IS NOT NULL")
    found = {i.name: i for i in schema.indexes(conn, "t")}
    assert found["by_email"].unique and found["by_email"].origin == "c"
    assert found["by_email"].cids == (schema.EXPRESSION_CID, 2) and found["by_email"].columns == (None, "name")
    assert found["named"].partial and not found["named"].unique and found["named"].columns == ("name",)


def test_generated_and_hidden_columns_are_listed_and_marked(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE t (a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2) STORED)")
    table = schema.table(conn, "t")
    assert [(c.name, c.hidden) for c in table.columns] == [("a", 0), ("b", 3)]
    assert [c.name for c in table.visible] == ["a"]  # what PRAGMA table_info lists


def test_ordinary_tables_leave_out_sqlite_d1_and_virtual_tables(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE b (id INTEGER PRIMARY KEY AUTOINCREMENT)")
    conn.execute("CREATE TABLE _cf_KV (k)")
    conn.execute("CREATE TABLE xcfy (k)")  # `_cf_` as a LIKE pattern would match it; it is ordinary
    conn.execute("CREATE VIRTUAL TABLE docs USING fts5(body)")
    assert schema.ordinary_tables(conn) == ["b", "xcfy"]
    assert {"sqlite_sequence", "_cf_KV", "docs", "docs_data"} <= set(schema.table_names(conn))


def test_objects_come_in_creation_order_with_null_sql_for_automatic_indexes(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE z (a UNIQUE)")
    conn.execute("CREATE TABLE a (b)")
    conn.execute("CREATE VIEW v AS SELECT b FROM a")
    found = [(o.type, o.name, o.tbl_name, o.sql is None) for o in schema.objects(conn)]
    assert found == [("table", "z", "z", False), ("index", "sqlite_autoindex_z_1", "z", True),
                     ("table", "a", "a", False), ("view", "v", "v", False)]
