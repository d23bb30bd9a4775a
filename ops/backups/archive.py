"""Making a backup: a local dump, a remote D1 export downloaded, or an export made elsewhere imported."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sqlite3
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.backups import staging
from ops.backups.catalog import scratch, table_counts
from ops.backups.files import file_sha256, new_backup, publish
from ops.backups.manifest import BackupError, BackupInputError, BackupNotFound, Manifest
from ops.database.sqldump import DumpError, ForeignKeyViolations, Progress, dump_sqlite, no_progress
from ops.database.sqlload import Limits, LoadError
from ops.database.sqlscript import quote_ident
from ops.targets import Database, LocalDatabase, RemoteDatabase


def create(db: Database, dest: Path, *, reason: str = "", label: str = "backup",
           progress: Progress = no_progress, now: dt.datetime | None = None,
           poll_interval: float = 1.0, limits: ExportLimits | None = None) -> Manifest:
    """Back `db` up into folder `dest`; nothing is left behind if it fails.

    A remote database goes through D1's export, bounded by `limits` (default: ExportLimits()).
    """
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", label):
        raise BackupInputError(f"backup label {label!r}: use lowercase letters, digits and hyphens")
    dest.mkdir(parents=True, exist_ok=True)
    staging.sweep(dest)
    now = now or dt.datetime.now(dt.UTC)
    with new_backup(dest, label, now) as (name, sql_tmp):
        digest = None
        if isinstance(db, LocalDatabase):
            with sql_tmp.open("wb", buffering=1 << 20) as out:
                try:
                    result = dump_sqlite(db.conn, db.path, out, progress)
                    tables, digest, violations = result.tables, result.sha256, result.foreign_keys
                except DumpError as exc:
                    raise BackupError(f"{db.label}: {exc}") from exc
            source: dict[str, Any] = {"kind": "local", "database": str(db.path), "bookmark": None}
        else:
            bookmark = _export_to(db, sql_tmp, progress, poll_interval, limits or ExportLimits())
            tables, violations = _count_dump(sql_tmp)
            source = {"kind": "remote", "database": db.name, "databaseId": db.database_id, "bookmark": bookmark}
        return publish(dest, name, sql_tmp, tables, source, reason, now, digest, violations)


# JavaScript's largest exact integer (Number.MAX_SAFE_INTEGER). D1's export and wrangler print every
# number as a JavaScript number, so a larger integer may arrive rounded (9007199254740993 prints as
# 9007199254740992): "Any numeric value in a column is affected by JavaScript's 52-bit precision"
# (cloudflare-docs src/content/docs/d1/best-practices/import-export-data.mdx, "Known limitations";
# workers-sdk f8308360 packages/miniflare/src/workers/d1/dumpSql.ts prints a number cell as is).
MAX_SAFE_INTEGER = 2**53 - 1


@dataclass(frozen=True)
class UnsafeIntegers:
    """Integers of one column beyond MAX_SAFE_INTEGER: how many, and the largest in magnitude."""

    table: str
    column: str
    count: int
    example: int

    def describe(self) -> str:
        return f"{self.table}.{self.column}: {self.count} value(s) past 2^53, e.g. {self.example}"


@dataclass(frozen=True)
class Imported:
    """A file `import_file` made a backup of, and what in it may not be exact."""

    manifest: Manifest
    unsafe_integers: list[UnsafeIntegers]


def import_file(source: Path, dest: Path, *, label: str = "import", reason: str = "",
                progress: Progress = no_progress, now: dt.datetime | None = None) -> Imported:
    """Make an SQL dump made elsewhere (`wrangler d1 export`, the dashboard's export) a backup of `dest`.

    The file is loaded into a scratch SQLite first, under the same authorizer and limits as a
    restore, and its rows counted; only then is it copied into `dest` as `<label>-<UTC time>.sql`
    with a manifest, so verify, restore and prune treat it as one of ours. A file that does not load
    writes nothing. Integers past 2^53 are reported (`Imported.unsafe_integers`): where the file came
    through JavaScript they may already have been rounded, and no later check can tell.
    """
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", label):
        raise BackupInputError(f"backup label {label!r}: use lowercase letters, digits and hyphens")
    try:
        found = source.stat()
    except OSError as exc:
        raise BackupNotFound(f"{source}: no such file to import ({exc.strerror})") from exc
    if not stat.S_ISREG(found.st_mode):
        raise BackupInputError(f"{source} is not a regular file; name the .sql export to import")
    digest = file_sha256(source, progress)
    try:
        with scratch(source, Limits.for_dump(found.st_size), progress) as (conn, violations):
            tables, unsafe = table_counts(conn), _unsafe_integers(conn)
    except LoadError as exc:
        raise BackupError(f"{source} is not a dump a D1 database can be restored from: {exc}; nothing was "
                          "imported") from exc
    dest.mkdir(parents=True, exist_ok=True)
    staging.sweep(dest)
    now = now or dt.datetime.now(dt.UTC)
    with new_backup(dest, label, now) as (name, sql_tmp):
        with source.open("rb") as src, sql_tmp.open("wb") as out:
            copied = hashlib.sha256()
            while chunk := src.read(1 << 20):
                copied.update(chunk)
                out.write(chunk)
        if copied.hexdigest() != digest:
            raise BackupError(f"{source} changed while it was imported; nothing was imported: import it again "
                              "once nothing writes to it")
        origin = {"kind": "import", "database": str(source.resolve()), "bookmark": None}
        manifest = publish(dest, name, sql_tmp, tables, origin, reason or f"imported from {source.name}", now,
                            digest, violations)
    return Imported(manifest, unsafe)


def _unsafe_integers(conn: sqlite3.Connection) -> list[UnsafeIntegers]:
    found = []
    for table in table_counts(conn):
        for (column,) in conn.execute("SELECT name FROM pragma_table_info(?)", [table]).fetchall():
            t, c = quote_ident(table), quote_ident(column)
            # abs() of the smallest 64-bit integer overflows: compare both ends instead.
            past = f"typeof({c}) = 'integer' AND ({c} > {MAX_SAFE_INTEGER} OR {c} < -{MAX_SAFE_INTEGER})"
            count, example = conn.execute(f"SELECT COUNT(*), MAX({c}) FROM {t} WHERE {past}").fetchone()
            if count:
                found.append(UnsafeIntegers(table, str(column), int(count), int(example)))
    return found


@dataclass(frozen=True)
class ExportLimits:
    """How long D1's export and its download may take, and how large the download may grow."""

    export_seconds: float = 15 * 60.0  # D1 exports a 10 GB database in minutes; a job still running later is stuck
    download_seconds: float = 60 * 60.0  # for the whole download, not per read
    # D1's largest database is 10 GB; as SQL text, with blobs in hex, it can be a few times that.
    download_bytes: int = 32 * 10**9


def _export_to(db: RemoteDatabase, path: Path, progress: Progress, poll_interval: float,
               limits: ExportLimits) -> str:
    """Run D1's export job to completion and stream the dump into `path`; returns the bookmark."""
    database = db.client.d1.database
    started = time.monotonic()
    response = database.export(db.database_id, account_id=db.account_id, output_format="polling")
    polls = 1
    while response.status != "complete":
        if response.status == "error":
            raise BackupError(f"{db.label}: export failed: {response.error or 'no reason given'}")
        if time.monotonic() - started > limits.export_seconds:
            raise BackupError(f"{db.label}: the export did not complete within {limits.export_seconds:g} s "
                              f"({polls} polls, still {response.status!r}); D1 may be busy: try again later")
        progress("export", polls, 0)
        time.sleep(poll_interval)
        polls += 1
        response = database.export(db.database_id, account_id=db.account_id, output_format="polling",
                                   current_bookmark=str(response.at_bookmark))
    url = response.result.signed_url if response.result else None
    if not url:
        raise BackupError(f"{db.label}: export completed without a download URL")
    _download(url, path, f"{db.label}: downloading the export", limits, progress)
    return str(response.at_bookmark)


def _download(url: str, path: Path, what: str, limits: ExportLimits, progress: Progress) -> None:
    """Stream `url` into `path` within the limits; BackupError says which was hit.

    Sizes: the limit applies to the bytes written (decoded, when the server compresses), the
    Content-Length check to the bytes received, which is what that header counts.
    """
    import httpx

    deadline = time.monotonic() + limits.download_seconds
    # A read waits at most this long; the deadline is looked at after every read, so a server
    # dripping a byte at a time cannot outlast it.
    timeout = httpx.Timeout(min(60.0, limits.download_seconds))
    try:
        # The signed URL is valid for an hour and needs no API token.
        with httpx.stream("GET", url, timeout=timeout) as stream:
            if stream.status_code != 200:
                raise BackupError(f"{what} failed: HTTP {stream.status_code}")
            length = stream.headers.get("content-length")
            expected = int(length) if length and length.isdigit() else None
            if expected is not None and expected > limits.download_bytes and "content-encoding" not in stream.headers:
                raise BackupError(f"{what}: the server announces {expected} bytes, more than the "
                                  f"{limits.download_bytes} a dump of a D1 database can be")
            written = 0
            with path.open("wb") as out:
                for chunk in stream.iter_bytes():  # as the bytes arrive, decoded
                    written += len(chunk)
                    if written > limits.download_bytes:
                        raise BackupError(f"{what}: more than {limits.download_bytes} bytes arrived, more than a "
                                          "dump of a D1 database can be; stopped")
                    if time.monotonic() > deadline:
                        raise BackupError(f"{what} did not finish within {limits.download_seconds:g} s "
                                          f"({written} bytes so far); try again later")
                    out.write(chunk)
                    progress("download", stream.num_bytes_downloaded, expected or 0)
            received = stream.num_bytes_downloaded
    except httpx.HTTPError as exc:
        raise BackupError(f"{what} failed: {exc}") from exc
    if expected is not None and received != expected:
        raise BackupError(f"{what}: the download ended after {received} of {expected} bytes")


def _count_dump(path: Path) -> tuple[dict[str, int], ForeignKeyViolations]:
    """Rows per table of a dump and its foreign-key violations, by loading it into a scratch database."""
    try:
        with scratch(path) as (conn, violations):
            return table_counts(conn), violations
    except LoadError as exc:
        raise BackupError(f"the export does not load: {exc}") from exc


