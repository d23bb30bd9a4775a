"""Database targets: a local SQLite file standing for a D1 database, or a stack's remote D1.

Operations take one of these and use what it offers: a local file runs statements inside one
SQLite transaction (all-or-nothing); a remote D1 database cannot (the HTTP API rejects explicit
transactions), so it offers Time Travel bookmarks to restore to instead.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudflare import Cloudflare

TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
# Points the SDK at another API root (the tests' local double); unset for Cloudflare itself.
BASE_URL_ENV = "CLOUDFLARE_BASE_URL"


class TargetError(Exception):
    """The database cannot be reached or found; the message says what to fix."""


class LocalDatabase:
    """A SQLite file standing for a D1 database (the default for development and tests)."""

    kind = "local"

    def __init__(self, path: Path, *, must_exist: bool = True) -> None:
        if must_exist and not path.is_file():
            raise TargetError(f"no SQLite database at {path}; pass an existing file to --local")
        self.path = path
        self.label = f"local {path}"
        # Autocommit mode: transactions are opened explicitly where an operation needs one.
        # check_same_thread=False: concurrent checks (monitor health) hand the connection to a worker
        # thread; it is never used by two threads at once.
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in self.conn.execute(sql, tuple(params))]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside commit together or not at all."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


@dataclass
class RemoteDatabase:
    """A stack's D1 database through the official `cloudflare` SDK."""

    client: Cloudflare
    account_id: str
    database_id: str
    name: str
    kind = "remote"

    @property
    def label(self) -> str:
        return f"D1 {self.name} ({self.database_id})"

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for result in self.client.d1.database.query(self.database_id, account_id=self.account_id, sql=sql,
                                                     params=[str(p) for p in params]):
            # Each row arrives as a JSON object keyed by column name.
            rows.extend(r for r in (result.results or []) if isinstance(r, dict))
        return rows

    def execute(self, sql: str) -> None:
        """Run one request of one or more statements; raises on the first failing statement."""
        for result in self.client.d1.database.query(self.database_id, account_id=self.account_id, sql=sql):
            if result.success is False:
                raise TargetError(f"{self.label}: a statement failed")

    def bookmark(self) -> str:
        """The Time Travel bookmark of the database as it is now."""
        return str(self.client.d1.database.time_travel.get_bookmark(
            self.database_id, account_id=self.account_id).bookmark)

    def restore(self, bookmark: str) -> str:
        """Restore the database to `bookmark`; returns the bookmark it had before (to undo)."""
        response = self.client.d1.database.time_travel.restore(
            self.database_id, account_id=self.account_id, bookmark=bookmark)
        return str(response.previous_bookmark or "")

    def close(self) -> None:
        self.client.close()


def cloudflare_client(max_retries: int = 4) -> Cloudflare:
    """The SDK client from the environment: token from CLOUDFLARE_API_TOKEN (never a file or a flag)."""
    from cloudflare import Cloudflare

    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise TargetError(f"{TOKEN_ENV} is not set; export an API token with D1 edit permission "
                          "(and Workers Scripts edit for rollback) to work on a remote stack")
    base_url = os.environ.get(BASE_URL_ENV) or None
    # The SDK retries 408/409/429/5xx with exponential backoff on its own.
    return Cloudflare(api_token=token, base_url=base_url, max_retries=max_retries)


def remote_database(account_id: str, database_name: str, client: Cloudflare | None = None) -> RemoteDatabase:
    """Find the stack's D1 database by name in its account."""
    client = client or cloudflare_client()
    for database in client.d1.database.list(account_id=account_id, name=database_name):
        if database.name == database_name and database.uuid:
            return RemoteDatabase(client, account_id, database.uuid, database_name)
    raise TargetError(f"account {account_id} has no D1 database named {database_name!r}; "
                      "run `pulumi up` for the stack first, or check booking:databaseName")
