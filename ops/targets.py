"""Targets: a local SQLite file standing for a D1 database, a stack's remote D1, an R2 bucket.

Operations take one of these and use what it offers: a local file runs statements inside one
SQLite transaction (all-or-nothing); a remote D1 database cannot (the HTTP API rejects explicit
transactions), so it offers Time Travel bookmarks to restore to instead.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from booking_shared.errors import InputError, OperationFailed

if TYPE_CHECKING:
    from cloudflare import Cloudflare
    from cloudflare.types.workers.scripts.deployment import Deployment

    from stackconfig.model import StackConfig

TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
# Points the SDK at another API root (the tests' local double); unset for Cloudflare itself.
BASE_URL_ENV = "CLOUDFLARE_BASE_URL"


class TargetError(InputError):
    """The database cannot be reached or found, or is not what it should be; the message says what to fix."""


class MissingTokenError(TargetError):
    """CLOUDFLARE_API_TOKEN is not set; the CLI replaces the message with the permissions of the command."""


class UncertainWriteError(OperationFailed):
    """A write got no clear answer: it may or may not have been applied. The message says how to check and undo."""


class AnswerLost(UncertainWriteError):
    """`RemoteDatabase.write_once`: the request's answer was lost (a dropped connection, a timeout, a
    5xx), so it may or may not have been applied; the caller reads the database to learn which."""


# D1 refusing a request outright (429) applied nothing of it: it is sent once more after this pause.
RATE_LIMIT_PAUSE = 2.0


SQLITE_HEADER = b"SQLite format 3\x00"
# The files SQLite keeps beside a database while it writes; a copy or removal of the database covers them.
SIDECARS = ("-journal", "-wal", "-shm")


class _Closing:
    """A target used as `with target:`, closed (its connection or client) when the block ends."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalDatabase(_Closing):
    """A SQLite file standing for a D1 database (the default for development and tests).

    `must_exist=False` makes the file if it is missing (`migrate apply` does, as
    `wrangler d1 migrations apply --local` does); every other command needs an existing SQLite file.
    `damaged_ok=True` opens a file that is not SQLite anyway, so its queries fail: the health checks
    (`verify`, `monitor health`) report a damaged database as an outage, not as bad input.
    """

    kind = "local"

    def __init__(self, path: Path, *, must_exist: bool = True, damaged_ok: bool = False) -> None:
        if path.is_dir():
            raise TargetError(f"{path} is a folder, not a SQLite database file")
        if not path.exists():
            if must_exist:
                raise TargetError(f"no SQLite database at {path}; create it with "
                                  f"`bookingctl migrate apply --local {path}`")
        elif not path.is_file():
            raise TargetError(f"{path} is not a regular file, so it cannot be a SQLite database")
        else:
            with path.open("rb") as f:
                header = f.read(len(SQLITE_HEADER))
            if header and header != SQLITE_HEADER and not damaged_ok:
                raise TargetError(f"{path} is not a SQLite database (its first bytes are not SQLite's header)")
        self.path = path
        self.label = f"local {path}"
        # Autocommit mode: transactions are opened explicitly where an operation needs one.
        # check_same_thread=False: concurrent checks (monitor health) hand the connection to a worker
        # thread; it is never used by two threads at once.
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")

    @property
    def fix_target(self) -> str:
        """How a command names this database, for messages that suggest a command."""
        return f"--local {self.path}"

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in self.conn.execute(sql, tuple(params))]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside commit together or not at all."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            # SQLite may have ended the transaction itself (INSERT OR ROLLBACK, a COMMIT that slipped
            # through); a ROLLBACK then fails and would hide the error that matters.
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def writer(client: Cloudflare) -> Cloudflare:
    """The client for calls that change something (D1 writes, restores, deployments): no automatic retries.

    The SDK retries a POST on timeouts and 5xx; one whose answer was lost may have been applied, and
    sending it again would apply it twice. Callers read the state back after a failure instead.
    """
    return client.with_options(max_retries=0)


@dataclass(frozen=True)
class Bucket:
    """One of the account's R2 buckets through the SDK: the handle operations take instead of a
    loose (client, account id, bucket name)."""

    client: Cloudflare
    account_id: str
    name: str

    @classmethod
    def of(cls, cfg: StackConfig, client: Cloudflare) -> Bucket:
        """The stack's backup bucket (booking:backupBucketName; quarantine records live there too)."""
        return cls(client, cfg.account_id, cfg.backup_bucket_name)


@dataclass(frozen=True)
class WorkerScript:
    """One Worker of the account through the SDK: its versions, deployments and analytics; the handle
    operations take instead of a loose (client, account id, script name)."""

    client: Cloudflare
    account_id: str
    name: str

    @classmethod
    def of(cls, cfg: StackConfig, client: Cloudflare) -> WorkerScript:
        """The stack's API Worker (booking:workerName in booking:accountId)."""
        return cls(client, cfg.account_id, cfg.worker_name)

    def deployments(self) -> list[Deployment]:
        """The script's latest deployments (Cloudflare lists the last 10), newest first.

        Read from the raw response and validated with the SDK's own model: the SDK types this list as
        `{"result": {"items": ...}}` pagination, but the API answers `{"result": {"deployments": ...}}`,
        so iterating the page would silently yield nothing.
        """
        import cloudflare
        import pydantic
        from cloudflare.types.workers.scripts.deployment_list_response import DeploymentListResponse

        raw = self.client.workers.scripts.deployments.with_raw_response.list(self.name, account_id=self.account_id)
        try:
            body = raw.http_response.json()
            result = body.get("result") if isinstance(body, dict) else body
            # Anything but an object (or no result at all) is no list of deployments: read as "none",
            # it would tell a rollback or the deployment-failed hook that no split serves.
            if result is not None and not isinstance(result, dict):
                raise ValueError(f"'result' is {type(result).__name__}, not an object with 'deployments'")
            listed = DeploymentListResponse.model_validate(result or {"deployments": []})
        except (ValueError, pydantic.ValidationError) as exc:  # JSONDecodeError is a ValueError
            raise cloudflare.APIResponseValidationError(
                raw.http_response, None, message=f"the deployments of {self.name} could not be read: {exc}") from exc
        return sorted(listed.deployments, key=lambda d: d.created_on, reverse=True)


@dataclass
class RemoteDatabase(_Closing):
    """A stack's D1 database through the official `cloudflare` SDK."""

    client: Cloudflare
    account_id: str
    database_id: str
    name: str
    stack: str | None = None  # the stack it belongs to, when known: for commands in messages
    kind = "remote"

    @classmethod
    def of(cls, cfg: StackConfig, client: Cloudflare | None = None) -> RemoteDatabase:
        """The stack's D1 database (booking:databaseName in booking:accountId), found by name."""
        return remote_database(cfg.account_id, cfg.database_name, client=client, stack=cfg.stack or None)

    @property
    def label(self) -> str:
        return f"D1 {self.name} ({self.database_id})"

    @property
    def fix_target(self) -> str:
        return f"--stack {self.stack or 'STACK'}"

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A read: retried by the SDK on timeouts and 5xx (a read can be sent twice)."""
        rows: list[dict[str, Any]] = []
        for result in self.client.d1.database.query(self.database_id, account_id=self.account_id, sql=sql,
                                                     params=[str(p) for p in params]):
            # Each row arrives as a JSON object keyed by column name.
            rows.extend(r for r in (result.results or []) if isinstance(r, dict))
        return rows

    def execute(self, sql: str) -> None:
        """Run one request of one or more statements that write, never retried blindly.

        Raises on the first failing statement; a lost answer raises the SDK's APIConnectionError,
        after which the caller must read the database to learn what happened.
        """
        for result in writer(self.client).d1.database.query(self.database_id, account_id=self.account_id, sql=sql):
            if result.success is False:
                raise TargetError(f"{self.label}: a statement failed")

    def write_once(self, sql: str, log: Callable[[str], None]) -> None:
        """Send one write request, never blindly twice. A 429 is D1 refusing it outright (nothing of it
        applied): sent once more after RATE_LIMIT_PAUSE. A lost answer, to either send, raises
        AnswerLost: whether the write landed is for the caller to read back (the migration runner reads
        d1_migrations; the tenant restore says how to finish or undo). Migrations and the tenant restore
        each had a copy of this; the runner's did not cover a lost answer to the second send.
        """
        import cloudflare

        for attempt in (1, 2):
            try:
                self.execute(sql)
                return
            except cloudflare.RateLimitError:
                if attempt == 2:
                    raise
                log("D1 rate-limited the request (nothing was applied); sending it once more in "
                    f"{RATE_LIMIT_PAUSE:g} s")
                time.sleep(RATE_LIMIT_PAUSE)
            except (cloudflare.APIConnectionError, cloudflare.InternalServerError) as exc:
                raise AnswerLost(f"{self.label}: the write got no answer ({exc})") from exc

    def bookmark(self) -> str:
        """The Time Travel bookmark of the database as it is now.

        Raises TargetError when the answer has none (the SDK types it Optional): every caller takes it
        as the restore point before changing anything, and "None" is no restore point.
        """
        bookmark = self.client.d1.database.time_travel.get_bookmark(
            self.database_id, account_id=self.account_id).bookmark
        if not bookmark:
            raise TargetError(f"{self.label}: Cloudflare answered no Time Travel bookmark, so there is no restore "
                              "point to go back to; nothing was changed. Try again; if it persists, check the "
                              "database's Time Travel in the Cloudflare dashboard")
        return bookmark

    def restore(self, *, bookmark: str | None = None, timestamp: str | None = None) -> str:
        """Restore the database to a bookmark or a time; returns the bookmark that undoes it.

        The undo bookmark is taken before the restore: a restore retried after a lost answer would
        report the already-restored state as "previous", and undoing to that brings nothing back.
        The restore itself is sent once.
        """
        import cloudflare

        if (bookmark is None) == (timestamp is None):
            raise TargetError("restore needs exactly one of a bookmark or a timestamp")
        undo = self.bookmark()
        point = {"bookmark": bookmark} if bookmark is not None else {"timestamp": timestamp}
        try:
            writer(self.client).d1.database.time_travel.restore(self.database_id, account_id=self.account_id,
                                                                **point)
        except (cloudflare.APIConnectionError, cloudflare.InternalServerError) as exc:
            raise UncertainWriteError(
                f"restoring {self.label} to {bookmark or timestamp} got no clear answer ({exc}): it may or may not "
                f"have been applied. It was at bookmark {undo} just before; to return to that state, run: "
                f"bookingctl backup restore {self.fix_target} --bookmark {undo}") from exc
        return undo

    def close(self) -> None:
        self.client.close()


Database = LocalDatabase | RemoteDatabase


def missing_tables(db: Database, tables: Sequence[str]) -> list[str]:
    """Which of `tables` the database lacks (all of them in a file that was never migrated)."""
    present = {str(r["name"]) for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return [t for t in tables if t not in present]


def require_tables(db: Database, tables: Sequence[str]) -> None:
    """Refuse a database without the schema a read command needs, saying how to create it."""
    missing = missing_tables(db, tables)
    if missing:
        raise TargetError(f"{db.label} has no {', '.join(missing)} table(s): the schema is missing; apply the "
                          f"migrations with `bookingctl migrate apply {db.fix_target}`")


def cloudflare_client(max_retries: int = 4) -> Cloudflare:
    """The SDK client from the environment: token from CLOUDFLARE_API_TOKEN (never a file or a flag).

    Retries (408/409/429/5xx, timeouts) are for reads; writes go through `writer()`.
    """
    from cloudflare import Cloudflare

    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise MissingTokenError(f"{TOKEN_ENV} is not set; export an API token with the permissions docs/deploying.md "
                                "\"A real `pulumi preview` / `pulumi up`\" step 3 lists to work on a remote stack")
    base_url = os.environ.get(BASE_URL_ENV) or None
    return Cloudflare(api_token=token, base_url=base_url, max_retries=max_retries)


def remote_database(account_id: str, database_name: str, client: Cloudflare | None = None,
                    stack: str | None = None) -> RemoteDatabase:
    """Find the stack's D1 database by name in its account."""
    client = client or cloudflare_client()
    for database in client.d1.database.list(account_id=account_id, name=database_name):
        if database.name == database_name and database.uuid:
            return RemoteDatabase(client, account_id, database.uuid, database_name, stack)
    raise TargetError(f"account {account_id} has no D1 database named {database_name!r}; "
                      "run `pulumi up` for the stack first, or check booking:databaseName")
