"""The API double's D1 refuses what D1 refuses: a statement longer than 100,000 bytes (cloudflare-docs
src/content/docs/d1/platform/limits.mdx @ d532f313, "Maximum SQL statement length"), each statement of a
request alike."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cloudflare
import pytest
from cloudflare import Cloudflare

from tests.helpers import ACCOUNT
from tests.helpers.cf_double import CloudflareDouble


def test_a_statement_over_d1s_length_limit_is_refused_and_nothing_of_the_request_is_applied(
        double: CloudflareDouble, client: Cloudflare, tmp_path: Path) -> None:
    path = tmp_path / "d1.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.commit()
    conn.close()
    db = double.add_database("appointmentbooking-db", source=path)
    fits = "INSERT INTO notes (body) VALUES ('" + "x" * (100_000 - 37) + "');"
    assert len(fits.encode()) == 100_000
    client.d1.database.query(db.uuid, account_id=ACCOUNT, sql=fits)
    with pytest.raises(cloudflare.BadRequestError):
        client.d1.database.query(db.uuid, account_id=ACCOUNT, sql="INSERT INTO notes (body) VALUES ('a');\n"
                                 + fits.replace("('x", "('xx"))
    conn = sqlite3.connect(db.path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM notes").fetchone() == (1,)
    finally:
        conn.close()


def test_more_than_d1s_bound_parameters_are_refused_and_nothing_is_applied(
        double: CloudflareDouble, client: Cloudflare) -> None:
    """"Maximum bound parameters per query: 100" (the same limits page)."""
    db = double.add_database("appointmentbooking-db")
    client.d1.database.query(db.uuid, account_id=ACCOUNT, sql="CREATE TABLE wide (v)")
    fits = "INSERT INTO wide (v) VALUES " + ", ".join(["(?)"] * 100)
    client.d1.database.query(db.uuid, account_id=ACCOUNT, sql=fits, params=[str(i) for i in range(100)])
    with pytest.raises(cloudflare.BadRequestError, match="too many SQL variables"):
        client.d1.database.query(db.uuid, account_id=ACCOUNT, sql=fits + ", (?)",
                                 params=[str(i) for i in range(101)])
    conn = sqlite3.connect(db.path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM wide").fetchone() == (100,)
    finally:
        conn.close()


def test_a_value_over_d1s_row_size_is_refused_and_nothing_is_applied(
        double: CloudflareDouble, client: Cloudflare) -> None:
    """"Maximum string, BLOB or table row size: 2,000,000 bytes (2 MB)" (the same limits page)."""
    db = double.add_database("appointmentbooking-db")
    client.d1.database.query(db.uuid, account_id=ACCOUNT, sql="CREATE TABLE notes (body TEXT)")
    # A row is its values and a few header bytes: a value just under the limit fits.
    client.d1.database.query(db.uuid, account_id=ACCOUNT, sql="INSERT INTO notes VALUES (zeroblob(1999000))")
    with pytest.raises(cloudflare.BadRequestError, match="too big"):
        client.d1.database.query(db.uuid, account_id=ACCOUNT, sql="INSERT INTO notes VALUES ('kept?');\n"
                                 "INSERT INTO notes VALUES (zeroblob(2000001))")
    conn = sqlite3.connect(db.path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM notes").fetchone() == (1,)
    finally:
        conn.close()
