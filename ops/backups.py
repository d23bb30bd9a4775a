"""Backups of a D1 database as SQL dumps with a manifest, and their verification and retention.

A backup is two files in a folder: `<name>.sql`, restorable with `wrangler d1 execute --file`
(no BEGIN/COMMIT, which D1 rejects; foreign keys deferred), and `<name>.manifest.json` (sha256,
size, per-table row counts, source and bookmark, created_at, reason). Both are written under
temporary names and renamed into place, the manifest last; a backup is listed only when its
manifest exists, so a half-written backup is never listed.

Local databases are dumped by `ops.sqldump` (streamed, memory stays flat); remote ones through
D1's export API (a polling job, then a download from a signed URL), streamed to disk as well.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ops.sqldump import DumpError, Progress, dump_sqlite, no_progress
from ops.sqlscript import quote_ident
from ops.targets import Database, LocalDatabase, RemoteDatabase

CRITICAL_TABLES = ("users", "appointments", "services")
_MANIFEST = ".manifest.json"



class BackupError(Exception):
    """A backup could not be made, found or trusted; the message says which file and why."""


@dataclass(frozen=True)
class Manifest:
    name: str
    file: str
    sha256: str
    size: int
    tables: dict[str, int]
    source: dict[str, Any]
    created_at: str
    reason: str
    format: str = "sql"

    @property
    def created(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.created_at)


@dataclass
class VerifyReport:
    name: str
    ok: bool
    checks: list[dict[str, Any]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"check": name, "ok": ok, "detail": detail})
        self.ok = self.ok and ok


# --- files ----------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_rename(tmp: Path, final: Path) -> None:
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    tmp.replace(final)


def _name(dest: Path, label: str, now: dt.datetime) -> str:
    base = f"{label}-{now.strftime('%Y%m%d-%H%M%S')}"
    name, n = base, 1
    while (dest / f"{name}.sql").exists() or (dest / f"{name}{_MANIFEST}").exists():
        n += 1
        name = f"{base}-{n}"
    return name


@contextmanager
def _staged(dest: Path, name: str) -> Iterator[Path]:
    """A temporary file in `dest` that is removed unless the caller renames it."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=dest)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


def _publish(dest: Path, name: str, sql_tmp: Path, tables: dict[str, int], source: dict[str, Any],
             reason: str, now: dt.datetime, sha256: str | None = None) -> Manifest:
    manifest = Manifest(name=name, file=f"{name}.sql", sha256=sha256 or _sha256(sql_tmp), size=sql_tmp.stat().st_size,
                        tables=tables, source=source, created_at=now.isoformat(timespec="seconds"), reason=reason)
    with _staged(dest, name) as manifest_tmp:
        manifest_tmp.write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")
        _fsync_rename(sql_tmp, dest / manifest.file)
        _fsync_rename(manifest_tmp, dest / f"{name}{_MANIFEST}")  # last: now the backup exists
    return manifest


def create(db: Database, dest: Path, *, reason: str = "", label: str = "backup",
           progress: Progress = no_progress, now: dt.datetime | None = None,
           poll_interval: float = 1.0) -> Manifest:
    """Back `db` up into folder `dest`; nothing is left behind if it fails."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", label):
        raise BackupError(f"backup label {label!r}: use lowercase letters, digits and hyphens")
    dest.mkdir(parents=True, exist_ok=True)
    now = now or dt.datetime.now(dt.UTC)
    name = _name(dest, label, now)
    with _staged(dest, name) as sql_tmp:
        digest = None
        if isinstance(db, LocalDatabase):
            with sql_tmp.open("wb", buffering=1 << 20) as out:
                try:
                    result = dump_sqlite(db.conn, db.path, out, progress)
                    tables, digest = result.tables, result.sha256
                except DumpError as exc:
                    raise BackupError(f"{db.label}: {exc}") from exc
            source: dict[str, Any] = {"kind": "local", "database": str(db.path), "bookmark": None}
        else:
            bookmark = _export_to(db, sql_tmp, progress, poll_interval)
            tables = _count_dump(sql_tmp)
            source = {"kind": "remote", "database": db.name, "databaseId": db.database_id, "bookmark": bookmark}
        return _publish(dest, name, sql_tmp, tables, source, reason, now, digest)


def _export_to(db: RemoteDatabase, path: Path, progress: Progress, poll_interval: float) -> str:
    """Run D1's export job to completion and stream the dump into `path`; returns the bookmark."""
    import httpx

    database = db.client.d1.database
    response = database.export(db.database_id, account_id=db.account_id, output_format="polling")
    polls = 1
    while response.status != "complete":
        if response.status == "error":
            raise BackupError(f"{db.label}: export failed: {response.error or 'no reason given'}")
        progress("export", polls, 0)
        time.sleep(poll_interval)
        polls += 1
        response = database.export(db.database_id, account_id=db.account_id, output_format="polling",
                                   current_bookmark=str(response.at_bookmark))
    url = response.result.signed_url if response.result else None
    if not url:
        raise BackupError(f"{db.label}: export completed without a download URL")
    # The signed URL is valid for an hour and needs no API token.
    with httpx.stream("GET", url, timeout=60.0) as stream:
        if stream.status_code != 200:
            raise BackupError(f"{db.label}: downloading the export failed: HTTP {stream.status_code}")
        total = int(stream.headers.get("content-length") or 0)
        done = 0
        with path.open("wb") as out:
            for chunk in stream.iter_bytes(1 << 20):
                out.write(chunk)
                done += len(chunk)
                progress("download", done, total)
    if total and done != total:
        raise BackupError(f"{db.label}: download ended after {done} of {total} bytes")
    return str(response.at_bookmark)


def _count_dump(path: Path) -> dict[str, int]:
    """Rows per table of a dump, by restoring it into a scratch database (also proves it loads)."""
    with _scratch(path) as conn:
        return _table_counts(conn)


# --- listing, verifying, pruning ------------------------------------------------------------

def list_backups(dest: Path) -> list[Manifest]:
    """Backups in `dest`, oldest first; only those whose manifest was written."""
    found = []
    for path in sorted(dest.glob(f"*{_MANIFEST}")) if dest.is_dir() else []:
        try:
            found.append(Manifest(**json.loads(path.read_text(encoding="utf-8"))))
        except (ValueError, TypeError) as exc:
            raise BackupError(f"{path}: not a backup manifest ({exc})") from exc
    return sorted(found, key=lambda m: (m.created_at, m.name))


def find(dest: Path, name_or_file: str) -> tuple[Manifest, Path]:
    """A backup by name, or by the path of its .sql or manifest file."""
    candidate = Path(name_or_file)
    if candidate.suffix == ".sql" or name_or_file.endswith(_MANIFEST):
        folder = candidate.parent
        name = candidate.name.removesuffix(_MANIFEST).removesuffix(".sql")
    else:
        folder, name = dest, name_or_file
    manifest_path = folder / f"{name}{_MANIFEST}"
    if not manifest_path.is_file():
        raise BackupError(f"no backup {name!r} in {folder} (no {manifest_path.name})")
    return Manifest(**json.loads(manifest_path.read_text(encoding="utf-8"))), folder


@contextmanager
def _scratch(sql_file: Path) -> Iterator[sqlite3.Connection]:
    """The dump loaded into a throw-away SQLite file that is always deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="bookingctl-verify-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "scratch.sqlite", isolation_level=None)
        try:
            restore_into(conn, sql_file)
            yield conn
        finally:
            conn.close()


class ForeignKeyError(sqlite3.DatabaseError):
    """The loaded dump has rows whose foreign keys point nowhere."""


def restore_into(conn: sqlite3.Connection, sql_file: Path) -> None:
    """Execute a dump inside one transaction (all or nothing), then check its foreign keys.

    Enforcement is off while loading: dumps need not order tables by dependency (an export may
    list them alphabetically), and SQLite rejects a row whose parent table does not exist yet
    even when checks are deferred. `PRAGMA foreign_key_check` then proves the result consistent.
    """
    from ops.sqlscript import iter_statements

    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("BEGIN")
    try:
        # Dumps are one statement per line except multi-line DDL; iter_statements handles both,
        # reading the file line by line.
        with sql_file.open(encoding="utf-8") as lines:
            for statement in iter_statements(lines):
                conn.execute(statement.sql)
        orphans = conn.execute("PRAGMA foreign_key_check").fetchall()
        if orphans:
            table, rowid, parent, _ = orphans[0]
            raise ForeignKeyError(f"{len(orphans)} row(s) break foreign keys, e.g. {table} row {rowid} -> {parent}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    conn.execute("PRAGMA foreign_keys = ON")


def _table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY rowid")]
    return {n: conn.execute(f"SELECT COUNT(*) FROM {quote_ident(n)}").fetchone()[0] for n in names}


def verify_backup(dest: Path, name_or_file: str) -> VerifyReport:
    """Restore into a scratch SQLite and compare with the manifest; the scratch copy is deleted."""
    manifest, folder = find(dest, name_or_file)
    report = VerifyReport(manifest.name, ok=True)
    sql_file = folder / manifest.file
    if not sql_file.is_file():
        report.check("file", False, f"{sql_file} is missing")
        return report
    size = sql_file.stat().st_size
    report.check("size", size == manifest.size, f"{size} bytes (manifest: {manifest.size})")
    digest = _sha256(sql_file)
    report.check("sha256", digest == manifest.sha256, digest)
    try:
        with _scratch(sql_file) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            report.check("integrity_check", integrity == "ok", integrity)
            counts = _table_counts(conn)
    except sqlite3.Error as exc:
        report.check("restore", False, f"the dump does not load: {exc}")
        return report
    missing = [t for t in CRITICAL_TABLES if t not in counts]
    report.check("critical tables", not missing,
                 f"missing: {', '.join(missing)}" if missing else ", ".join(CRITICAL_TABLES))
    for table, expected in manifest.tables.items():
        found = counts.get(table)
        report.check(f"rows {table}", found == expected, f"{found} (manifest: {expected})")
    extra = sorted(set(counts) - set(manifest.tables))
    if extra:
        report.check("tables", False, f"not in the manifest: {', '.join(extra)}")
    return report


def prune(dest: Path, retention_days: int, *, now: dt.datetime | None = None,
          dry_run: bool = False) -> list[Manifest]:
    """Delete backups older than `retention_days` (manifest first, so none is half-listed)."""
    if retention_days < 1:
        raise BackupError(f"--retention-days must be at least 1 (found {retention_days})")
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=retention_days)
    old = [m for m in list_backups(dest) if m.created < cutoff]
    if not dry_run:
        for manifest in old:
            (dest / f"{manifest.name}{_MANIFEST}").unlink()
            with suppress(FileNotFoundError):
                (dest / manifest.file).unlink()
    return old


def restore_local(dest: Path, name_or_file: str, target: Path, *, replace: bool = False) -> Manifest:
    """Load a verified backup into SQLite file `target`, atomically (built aside, then renamed)."""
    report = verify_backup(dest, name_or_file)
    if not report.ok:
        failed = "; ".join(f"{c['check']}: {c['detail']}" for c in report.checks if not c["ok"])
        raise BackupError(f"backup {report.name} failed verification, not restoring: {failed}")
    manifest, folder = find(dest, name_or_file)
    if target.exists() and not replace:
        raise BackupError(f"{target} exists; pass --replace to overwrite it with backup {manifest.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _staged(target.parent, target.name) as tmp:
        tmp.unlink()
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            restore_into(conn, folder / manifest.file)
        finally:
            conn.close()
        _fsync_rename(tmp, target)
    return manifest


# --- the stack's R2 backup bucket -----------------------------------------------------------

def upload(client: Any, account_id: str, bucket: str, dest: Path, manifest: Manifest) -> list[str]:
    """Copy a local backup into the stack's R2 bucket: the dump first, the manifest last.

    Retention in R2 is the bucket's lifecycle rule (declared in infra/backups.py), not a prune.
    The object API takes up to 300 MB per object; larger dumps belong on R2's S3 API.
    """
    keys = []
    for file_name in (manifest.file, f"{manifest.name}{_MANIFEST}"):
        path = dest / file_name
        if path.stat().st_size > 300 * 1024 * 1024:
            raise BackupError(f"{path} is over the 300 MB the R2 object API accepts; upload it with R2's S3 API")
        # Keys are the plain file names, without a "folder/": the SDK percent-encodes "/" in object
        # keys (contrary to its own docstring), and the bucket holds nothing but backups anyway.
        # The path, not an open file: the SDK reads the bytes itself, so its retries resend the whole
        # object (a streamed file handle would be exhausted after a failed first attempt); a PUT of
        # the same key is idempotent, so a retry cannot do harm.
        client.r2.buckets.objects.upload(file_name, path, account_id=account_id, bucket_name=bucket)
        keys.append(file_name)
    return keys


def list_r2(client: Any, account_id: str, bucket: str) -> list[str]:
    """Names of the complete backups in the bucket (those whose manifest was uploaded)."""
    names = []
    for obj in client.r2.buckets.objects.list(bucket, account_id=account_id):
        key = str(obj.key or "")
        if key.endswith(_MANIFEST):
            names.append(key[:-len(_MANIFEST)])
    return sorted(names)
