"""Backups of a D1 database as SQL dumps with a manifest, and their verification and retention.

A backup is two files in a folder: `<name>.sql`, restorable with `wrangler d1 execute --file`
(no BEGIN/COMMIT, which D1 rejects; foreign keys deferred), and `<name>.manifest.json` (sha256,
size, per-table row counts, source and bookmark, created_at, reason). Both are written under
temporary names and renamed into place, the manifest last; a backup is listed only when its
manifest exists, so a half-written backup is never listed.

A manifest is data from a folder that others can write to, so nothing in it is followed blindly:
its `name` must be its own file's name and its `file` must be `<name>.sql` (no paths), every field
must have its type, and `created_at` must be an ISO 8601 time with its offset. A manifest that is
not so is skipped with a warning by list and prune, and refused by verify and restore.

Local databases are dumped by `ops.database.sqldump` (streamed, memory stays flat); remote ones through
D1's export API (a polling job, then a download from a signed URL), streamed to disk as well and
bounded in time and size (`ExportLimits`). Rows whose foreign keys point nowhere are recorded in
the manifest, so that verify can say the source already had them.

An export made elsewhere (`wrangler d1 export`, the dashboard) becomes a backup through `import_file`:
loaded and counted first, then copied in with a manifest, exactly as a remote backup's download is.

Verify and restore load a dump through `ops.database.sqlload`: only what dumps contain, within a time and
a size limit. Files being written are partials held by their writer; what a killed run leaves
behind is removed by a later one (`ops.backups.staging`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import re
import shlex
import shutil
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from booking_shared.errors import InputError, OperationFailed
from ops.backups import staging
from ops.database.sqldump import DumpError, ForeignKeyViolations, Progress, dump_sqlite, no_progress, table_kinds
from ops.database.sqlload import Limits, LoadError, load_dump
from ops.database.sqlscript import quote_ident
from ops.targets import SIDECARS, SQLITE_HEADER, Database, LocalDatabase, RemoteDatabase, TargetError

CRITICAL_TABLES = ("users", "appointments", "services")
_MANIFEST = ".manifest.json"
# A backup's name is also the start of its two file names: one path component, not hidden, and
# short enough that "<name>.manifest.json" fits the 255 bytes file systems allow.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MANIFEST_MAX_BYTES = 1 << 20  # a manifest is a few hundred bytes; a larger file is not one
MAX_RETENTION_DAYS = 36_500  # a century: more would reach before year 1 and mean nothing
LOCK_TIMEOUT = 5.0  # seconds a restore waits for a process writing the target database

Warn = Callable[[str], None]


class BackupError(OperationFailed):
    """A backup could not be made, found or trusted; the message says which file and why."""


class BackupInputError(BackupError, InputError):
    """The arguments name something unusable (a label, a name, a folder, a retention): bad input, not a
    bad backup."""


class BackupNotFound(BackupInputError):
    """The backup or folder named does not exist: a wrong name or --dest."""


class ManifestError(BackupError):
    """A manifest file that cannot be trusted; the message names the file and what is wrong."""


def ignore(_message: str) -> None:
    pass


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
    # Rows of the source whose foreign keys pointed nowhere when the backup was made (absent: none).
    foreign_key_violations: dict[str, Any] | None = None
    # source_digest(sha256, source): the source bound to the dump, so that a manifest whose source
    # was edited afterwards (staging's backup relabelled production's) is refused. A checksum, not a
    # signature: whoever can write the folder can recompute it; the folder's (and the R2 bucket's)
    # permissions guard against that. Absent in manifests written before it existed.
    source_sha256: str | None = None

    @property
    def created(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.created_at)

    def to_json(self) -> str:
        data = asdict(self)
        if data["foreign_key_violations"] is None:
            del data["foreign_key_violations"]  # manifests of consistent databases keep their old shape
        if data["source_sha256"] is None:
            del data["source_sha256"]
        return json.dumps(data, indent=2) + "\n"


_FIELDS: dict[str, type] = {"name": str, "file": str, "sha256": str, "size": int, "tables": dict, "source": dict,
                            "created_at": str, "reason": str}
_OPTIONAL_FIELDS: dict[str, type] = {"format": str, "foreign_key_violations": dict, "source_sha256": str}


def source_digest(sha256: str, source: dict[str, Any]) -> str:
    """The checksum binding a backup's `source` to its dump's sha256 (canonical JSON: key order and
    spacing do not matter, every value does)."""
    canonical = json.dumps(source, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{sha256}\n{canonical}".encode()).hexdigest()


def is_backup_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


def read_manifest(path: Path) -> Manifest:
    """The manifest in file `path` (`<name>.manifest.json`), checked; ManifestError says what is wrong."""
    def bad(problem: str) -> ManifestError:
        return ManifestError(f"{path}: not a usable backup manifest: {problem}; restore the file from a copy, "
                             "or delete the backup's files if it is not wanted")

    name = path.name.removesuffix(_MANIFEST)
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            raise bad("not a regular file")
        with path.open("rb") as f:
            raw = f.read(_MANIFEST_MAX_BYTES + 1)
    except OSError as exc:
        raise bad(f"cannot be read ({exc.strerror or exc})") from exc
    if len(raw) > _MANIFEST_MAX_BYTES:
        raise bad(f"larger than {_MANIFEST_MAX_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise bad(f"not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise bad(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    except RecursionError as exc:
        raise bad("not valid JSON (nested too deeply)") from exc
    if not isinstance(data, dict):
        raise bad("not a JSON object")
    missing = [k for k in _FIELDS if k not in data]
    unknown = sorted(k for k in data if k not in _FIELDS and k not in _OPTIONAL_FIELDS)
    if missing or unknown:
        raise bad("; ".join(filter(None, [f"missing field: {', '.join(missing)}" if missing else "",
                                          f"unknown field: {', '.join(unknown)}" if unknown else ""])))
    for key, kind in {**_FIELDS, **_OPTIONAL_FIELDS}.items():
        # bool is an int in Python, but `"size": true` is not a size.
        if key in data and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            raise bad(f"field {key} is {type(data[key]).__name__}, expected {kind.__name__}")
    if data["name"] != name:
        raise bad(f"name {data['name']!r} is not the file's name {name!r}")
    if data["file"] != f"{name}.sql":
        raise bad(f"file {data['file']!r} is not this backup's dump {name}.sql")
    if not _SHA256.fullmatch(data["sha256"]):
        raise bad("sha256 is not 64 lowercase hex digits")
    if data["size"] < 0:
        raise bad("size is negative")
    bound = data.get("source_sha256")
    if bound is not None and bound != source_digest(data["sha256"], data["source"]):
        raise bad("its source does not match source_sha256 (the source was edited after the backup was made, so "
                  "nothing says which database it holds)")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in data["tables"].values()):
        raise bad("tables must map each table to its row count (a whole number)")
    violations = data.get("foreign_key_violations")
    if violations is not None and not (isinstance(violations.get("count"), int) and violations["count"] >= 0
                                       and isinstance(violations.get("examples"), list)):
        raise bad("foreign_key_violations must hold a count and a list of examples")
    try:
        created = dt.datetime.fromisoformat(data["created_at"])
    except ValueError as exc:
        raise bad(f"created_at {data['created_at']!r} is not an ISO 8601 time") from exc
    if created.utcoffset() is None:
        raise bad(f"created_at {data['created_at']!r} has no UTC offset (e.g. +00:00)")
    return Manifest(**data)


@dataclass
class VerifyReport:
    name: str
    ok: bool
    checks: list[dict[str, Any]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"check": name, "ok": ok, "detail": detail})
        self.ok = self.ok and ok

    def failures(self) -> str:
        """The failed checks as `check: detail; ...`, for an error message."""
        return "; ".join(f"{c['check']}: {c['detail']}" for c in self.checks if not c["ok"])


# --- files ----------------------------------------------------------------------------------

def _require_folder(dest: Path) -> None:
    if not dest.exists():
        raise BackupNotFound(f"no backup folder at {dest}; check --dest (or --stack), or make a backup there first")
    if not dest.is_dir():
        raise BackupInputError(f"{dest} is not a folder; --dest names the folder holding the backups")


def _sha256(path: Path, progress: Progress = no_progress) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    progress("sha256", 0, total)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            done += len(chunk)
            progress("sha256", done, total)
    return digest.hexdigest()


def _fsync_rename(tmp: Path, final: Path) -> None:
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    tmp.replace(final)


def _fsync_folder(folder: Path) -> None:
    """Make renames in `folder` durable: without it a power cut can undo them after we reported success."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _new_backup(dest: Path, label: str, now: dt.datetime) -> Iterator[tuple[str, Path]]:
    """A name for a new backup and the partial file its dump goes to, removed unless published.

    The partial `.<name>.sql.partial`, created only if absent, reserves the name: two runs in the
    same second (a schedule and a person) never pick the same one. A name whose files exist is
    taken; they are looked for after the reservation, so a run that published the name and let its
    reservation go is always seen.
    """
    base = f"{label}-{now.strftime('%Y%m%d-%H%M%S')}"
    for number in itertools.count(1):
        name = base if number == 1 else f"{base}-{number}"
        with ExitStack() as held:
            try:
                sql_tmp = held.enter_context(staging.partial(dest, f"{name}.sql", reserve=True))
            except FileExistsError:
                continue  # another run is writing a backup of this name
            if not any(os.path.lexists(dest / f) for f in (f"{name}.sql", f"{name}{_MANIFEST}")):
                yield name, sql_tmp
                return
    raise AssertionError("unreachable: itertools.count() does not end")


def _publish(dest: Path, name: str, sql_tmp: Path, tables: dict[str, int], source: dict[str, Any],
             reason: str, now: dt.datetime, sha256: str | None = None,
             foreign_keys: ForeignKeyViolations | None = None) -> Manifest:
    digest = sha256 or _sha256(sql_tmp)
    manifest = Manifest(name=name, file=f"{name}.sql", sha256=digest, size=sql_tmp.stat().st_size,
                        tables=tables, source=source, created_at=now.isoformat(timespec="seconds"), reason=reason,
                        foreign_key_violations=_violations_record(foreign_keys),
                        source_sha256=source_digest(digest, source))
    with staging.partial(dest, f"{name}{_MANIFEST}") as manifest_tmp:
        manifest_tmp.write_text(manifest.to_json(), encoding="utf-8")
        _fsync_rename(sql_tmp, dest / manifest.file)
        _fsync_rename(manifest_tmp, dest / f"{name}{_MANIFEST}")  # last: now the backup exists
    _fsync_folder(dest)
    return manifest


def _violations_record(found: ForeignKeyViolations | None) -> dict[str, Any] | None:
    if found is None or not found.count:
        return None
    return {"count": found.count,
            "examples": [{"table": t, "rowid": r, "parent": p} for t, r, p in found.examples]}


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
    with _new_backup(dest, label, now) as (name, sql_tmp):
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
        return _publish(dest, name, sql_tmp, tables, source, reason, now, digest, violations)


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
    digest = _sha256(source, progress)
    try:
        with _scratch(source, Limits.for_dump(found.st_size), progress) as (conn, violations):
            tables, unsafe = _table_counts(conn), _unsafe_integers(conn)
    except LoadError as exc:
        raise BackupError(f"{source} is not a dump a D1 database can be restored from: {exc}; nothing was "
                          "imported") from exc
    dest.mkdir(parents=True, exist_ok=True)
    staging.sweep(dest)
    now = now or dt.datetime.now(dt.UTC)
    with _new_backup(dest, label, now) as (name, sql_tmp):
        with source.open("rb") as src, sql_tmp.open("wb") as out:
            copied = hashlib.sha256()
            while chunk := src.read(1 << 20):
                copied.update(chunk)
                out.write(chunk)
        if copied.hexdigest() != digest:
            raise BackupError(f"{source} changed while it was imported; nothing was imported: import it again "
                              "once nothing writes to it")
        origin = {"kind": "import", "database": str(source.resolve()), "bookmark": None}
        manifest = _publish(dest, name, sql_tmp, tables, origin, reason or f"imported from {source.name}", now,
                            digest, violations)
    return Imported(manifest, unsafe)


def _unsafe_integers(conn: sqlite3.Connection) -> list[UnsafeIntegers]:
    found = []
    for table in _table_counts(conn):
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
        with _scratch(path) as (conn, violations):
            return _table_counts(conn), violations
    except LoadError as exc:
        raise BackupError(f"the export does not load: {exc}") from exc


# --- listing, verifying, pruning ------------------------------------------------------------

def list_backups(dest: Path, *, warn: Warn = ignore) -> list[Manifest]:
    """Backups in `dest`, oldest first; only those whose manifest was written and can be trusted.

    Each other manifest is skipped with a `warn` naming it and what is wrong: one bad file must
    not hide the rest of the folder.
    """
    _require_folder(dest)
    found = []
    for path in sorted(dest.iterdir()):
        if not path.name.endswith(_MANIFEST) or path.name.startswith("."):
            continue
        try:
            found.append(read_manifest(path))
        except ManifestError as exc:
            warn(f"skipped {exc}")
    return sorted(found, key=lambda m: (m.created, m.name))


def find(dest: Path, name_or_file: str) -> tuple[Manifest, Path]:
    """A backup by name (in `dest`), or by the path of its .sql or manifest file."""
    candidate = Path(name_or_file)
    if candidate.suffix == ".sql" or name_or_file.endswith(_MANIFEST) or "/" in name_or_file:
        folder = candidate.parent
        name = candidate.name.removesuffix(_MANIFEST).removesuffix(".sql")
    else:
        folder, name = dest, name_or_file
    if not is_backup_name(name):
        raise BackupInputError(f"{name!r} is not a backup name (letters, digits, '.', '_' and '-', at most 200 "
                               "characters); `bookingctl backup list` shows the backups")
    manifest_path = folder / f"{name}{_MANIFEST}"
    if not manifest_path.is_file():
        hint = (f"; an export made elsewhere (wrangler d1 export, the dashboard) becomes a backup with "
                f"`bookingctl backup import {candidate}`" if candidate.suffix == ".sql" and candidate.is_file() else "")
        raise BackupNotFound(f"no backup {name!r} in {folder} (no {manifest_path.name}); `bookingctl backup list` "
                             f"shows the backups there{hint}")
    return read_manifest(manifest_path), folder


@contextmanager
def _scratch(sql_file: Path, limits: Limits | None = None,
             progress: Progress = no_progress) -> Iterator[tuple[sqlite3.Connection, ForeignKeyViolations]]:
    """The dump loaded into a throw-away SQLite file, deleted afterwards (or by a later run if killed)."""
    staging.sweep_scratch()
    with staging.scratch_folder() as folder:
        conn = sqlite3.connect(folder / "scratch.sqlite", isolation_level=None)
        try:
            violations = load_dump(conn, sql_file, limits=limits or Limits.for_dump(sql_file.stat().st_size),
                                   progress=progress)
            yield conn, violations
        finally:
            conn.close()


@contextmanager
def loaded(dest: Path, name_or_file: str, *, progress: Progress = no_progress) -> Iterator[tuple[Manifest,
                                                                                                  sqlite3.Connection]]:
    """A backup checked (size, sha256) and loaded under the dump authorizer into a scratch SQLite.

    For operations that read a backup's rows (the tenant restore); the scratch copy is deleted
    afterwards. A dump that no longer has its manifest's size or sha256, or does not load, is a
    BackupError; an unknown name a BackupNotFound.
    """
    manifest, folder = find(dest, name_or_file)
    sql_file = folder / manifest.file
    report = VerifyReport(manifest.name, ok=True)
    if not _check_file(report, sql_file, manifest, progress) or not report.ok:
        raise BackupError(f"backup {manifest.name} is not the dump its manifest describes: {report.failures()}")
    try:
        with _scratch(sql_file, Limits.for_dump(manifest.size), progress) as (conn, _violations):
            yield manifest, conn
    except LoadError as exc:
        raise BackupError(f"backup {manifest.name} does not load: {exc}") from exc


def _table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    kinds = table_kinds(conn)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY rowid")
             if kinds.get(r[0]) != "shadow"]
    return {n: conn.execute(f"SELECT COUNT(*) FROM {quote_ident(n)}").fetchone()[0] for n in names}


def verify_backup(dest: Path, name_or_file: str, *, limits: Limits | None = None,
                  progress: Progress = no_progress) -> VerifyReport:
    """Restore into a scratch SQLite and compare with the manifest; the scratch copy is deleted.

    `limits` bound the load (default: Limits.for_dump of the dump's size).
    """
    manifest, folder = find(dest, name_or_file)
    report = VerifyReport(manifest.name, ok=True)
    sql_file = folder / manifest.file
    if not _check_file(report, sql_file, manifest, progress):
        return report
    try:
        with _scratch(sql_file, limits, progress) as (conn, violations):
            _check_loaded(report, conn, manifest, violations)
    except LoadError as exc:
        report.check("restore", False, f"the dump does not load: {exc}")
    return report


def _check_file(report: VerifyReport, sql_file: Path, manifest: Manifest, progress: Progress) -> bool:
    """Size and sha256 of the dump against the manifest; False if there is no dump to load."""
    try:
        found = sql_file.lstat()
    except FileNotFoundError:
        found = None
    if found is None or not stat.S_ISREG(found.st_mode):
        report.check("file", False, f"{sql_file} is missing" if found is None else f"{sql_file} is not a regular file")
        return False
    report.check("size", found.st_size == manifest.size, f"{found.st_size} bytes (manifest: {manifest.size})")
    digest = _sha256(sql_file, progress)
    report.check("sha256", digest == manifest.sha256, f"{digest} (manifest: {manifest.sha256})")
    return True


def _check_loaded(report: VerifyReport, conn: sqlite3.Connection, manifest: Manifest,
                  violations: ForeignKeyViolations, *, allow_foreign_key_violations: bool = False) -> None:
    """What a loaded dump must be: consistent, complete, and what the manifest says it holds."""
    recorded = (manifest.foreign_key_violations or {}).get("count", 0)
    if not violations.count:
        report.check("foreign keys", True, "every foreign key points to a row")
    elif allow_foreign_key_violations:
        report.check("foreign keys", True, f"{violations.describe()}; allowed by --allow-foreign-key-violations")
    elif recorded:
        report.check("foreign keys", False, (
            f"{violations.describe()}, as the source database had when the backup was made (the manifest records "
            f"{recorded}); restore it with --allow-foreign-key-violations and fix those rows, or use another backup"))
    else:
        report.check("foreign keys", False, f"{violations.describe()}, but the source had none when the backup "
                                            "was made: the dump was changed since")
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    report.check("integrity_check", integrity == "ok", integrity)
    counts = _table_counts(conn)
    missing = [t for t in CRITICAL_TABLES if t not in counts]
    report.check("critical tables", not missing,
                 f"missing: {', '.join(missing)}" if missing else ", ".join(CRITICAL_TABLES))
    for table, expected in manifest.tables.items():
        found = counts.get(table)
        report.check(f"rows {table}", found == expected, f"{found} (manifest: {expected})")
    extra = sorted(set(counts) - set(manifest.tables))
    if extra:
        report.check("tables", False, f"not in the manifest: {', '.join(extra)}")


def prune(dest: Path, retention_days: int, *, now: dt.datetime | None = None,
          dry_run: bool = False, warn: Warn = ignore) -> list[Manifest]:
    """Delete backups older than `retention_days` (manifest first, so none is half-listed).

    Only the two files of a trusted manifest are deleted, and the dump only if its sha256 is the
    manifest's: a dump changed or replaced since is left in place, with a `warn`.
    """
    if not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise BackupInputError(f"--retention-days {retention_days}: must be at least 1 and at most "
                               f"{MAX_RETENTION_DAYS} (a century)")
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=retention_days)
    if not dry_run:
        staging.sweep(dest)
    deleted = []
    for manifest in list_backups(dest, warn=warn):
        if manifest.created >= cutoff:
            continue
        kept = _delete_backup(dest, manifest, dry_run)
        if kept:
            warn(f"kept backup {manifest.name} although it is older than {retention_days} days: {kept}")
        else:
            deleted.append(manifest)
    return deleted


def _delete_backup(dest: Path, manifest: Manifest, dry_run: bool) -> str | None:
    """Delete (or, dry, only check) one backup's files; the reason it was left alone, or None."""
    dump = dest / manifest.file
    try:
        fd = os.open(dump, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        fd = None  # only the manifest is left: removing it loses nothing
    except OSError as exc:
        return f"{dump} cannot be opened as the backup's dump ({exc.strerror}); delete it by hand if it is not wanted"
    with open(fd, "rb") if fd is not None else nullcontext() as f:
        if f is not None:
            opened = os.fstat(f.fileno())
            if not stat.S_ISREG(opened.st_mode):
                return f"{dump} is not a regular file; delete it by hand if it is not wanted"
            digest = hashlib.sha256()
            while chunk := f.read(1 << 20):
                digest.update(chunk)
            if digest.hexdigest() != manifest.sha256:
                return (f"{dump} does not have the sha256 its manifest records (it was changed or replaced after "
                        "the backup was made); both files are left in place: check them, and delete them by hand "
                        "if the backup is not wanted")
        if dry_run:
            return None
        (dest / f"{manifest.name}{_MANIFEST}").unlink()
        # The file hashed above, not whatever may have been renamed to its name since.
        if f is not None and staging.same_file(dump, opened):
            dump.unlink()
    return None


@dataclass(frozen=True)
class Kept:
    """What a restore kept of the database it overwrote, and how to put it back."""

    backup: str | None  # a backup in the backup folder, when the database could be read whole
    copy: Path | None  # otherwise a byte copy next to it: a dump would lose what SQLite cannot read
    undo: str  # the command that puts it back, shell-quoted
    why: str | None = None  # for a copy: why it could not be read whole (SQLite's first line)


@dataclass(frozen=True)
class Restored:
    manifest: Manifest  # the backup restored
    kept: Kept | None  # None: there was no database to overwrite (no file, or an empty one)


def restore_local(dest: Path, name_or_file: str, target: Path, *, replace: bool = False,
                  allow_foreign_key_violations: bool = False, progress: Progress = no_progress,
                  lock_timeout: float = LOCK_TIMEOUT) -> Restored:
    """Load a verified backup into SQLite file `target`; `target` is either untouched or fully restored.

    A database that `replace` overwrites is kept first (`_keep_replaced`): "restore over the wrong
    file" must be undoable, as a tenant restore's safety backup makes it.

    The dump is loaded (within sqlload's limits) into a file next to `target` and checked there as
    `verify` checks it; rows whose foreign keys point nowhere fail it unless
    `allow_foreign_key_violations`. Only then does it reach `target`: renamed into place when there is no
    database yet; otherwise copied in through SQLite's backup API, so that SQLite deals with what is
    there. A hot journal or a WAL left by a crashed writer then belongs to the old content and is
    applied to it, never to the new file (renaming over the database and leaving its -journal or
    -wal next to the new file corrupted it); a process writing the database makes the restore wait
    `lock_timeout` seconds and then refuse; an app that keeps the file open sees the restored rows
    instead of a file renamed away under it.
    """
    manifest, folder = find(dest, name_or_file)
    page_size = _check_target(target, replace, manifest.name)
    sql_file = folder / manifest.file
    report = VerifyReport(manifest.name, ok=True)
    kept: Kept | None = None
    if _check_file(report, sql_file, manifest, progress) and report.ok:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.sweep(target.parent, prefix=f".{target.name}.")
        with staging.partial(target.parent, target.name) as staged:
            conn = sqlite3.connect(staged, isolation_level=None)
            try:
                if page_size:  # the backup API cannot change the page size of a database in WAL mode
                    conn.execute(f"PRAGMA page_size = {page_size}")
                violations = load_dump(conn, sql_file, limits=Limits.for_dump(manifest.size), progress=progress)
                _check_loaded(report, conn, manifest, violations,
                              allow_foreign_key_violations=allow_foreign_key_violations)
            except LoadError as exc:
                report.check("restore", False, f"the dump does not load: {exc}")
            finally:
                conn.close()
            if report.ok:
                kept = _keep_replaced(target, dest, manifest.name, progress, lock_timeout) if page_size else None
                progress("install", 0, 1)
                try:
                    if page_size is None and not any(Path(f"{target}{s}").exists() for s in SIDECARS):
                        _fsync_rename(staged, target)
                    else:
                        _copy_into(staged, target, lock_timeout)
                except BackupError as exc:
                    if kept is None:
                        raise
                    what = f"backup {kept.backup}" if kept.backup else str(kept.copy)
                    raise BackupError(f"{exc}; {target} is unchanged, and the copy of it taken first stays: {what}"
                                      ) from exc
                progress("install", 1, 1)
    if not report.ok:
        raise BackupError(f"backup {report.name} failed verification, not restoring: {report.failures()}")
    return Restored(manifest, kept)


def _keep_replaced(target: Path, dest: Path, restoring: str, progress: Progress, lock_timeout: float) -> Kept:
    """Keep the database at `target` before a restore overwrites it.

    Its bytes are copied first, before SQLite opens it: opening applies a hot journal, and a damaged
    file is worth keeping exactly as it was. A database that passes quick_check then becomes an
    ordinary backup in `dest` (listed, verified, restored by name) and the copy goes; a damaged one
    keeps the copy, its -journal and -wal renamed with it so that SQLite still pairs them.
    """
    progress("keeping the database it replaces", 0, 1)
    copy = _reserve_copy_name(target)
    copied = [copy]
    try:
        with target.open("rb") as src, copy.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        for suffix in ("-journal", "-wal"):  # -shm is rebuilt from the -wal; a copy of it means nothing
            if Path(f"{target}{suffix}").exists():
                copied.append(Path(f"{copy}{suffix}"))
                shutil.copyfile(f"{target}{suffix}", copied[-1])
        with LocalDatabase(target) as db:
            db.conn.execute(f"PRAGMA busy_timeout = {int(lock_timeout * 1000)}")
            check = db.conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            safety = create(db, dest, label="pre-restore", reason=f"before restoring backup {restoring} into {target}")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            return _kept_copy(copy, target, progress, str(exc))
        _unlink(copied)
        raise BackupError(f"{target} is in use by another process (it holds a lock on the database); stop what "
                          "writes to it and restore again") from exc
    except (BackupError, sqlite3.DatabaseError) as exc:
        if isinstance(exc, BackupError) and isinstance(exc.__cause__, OSError):
            _unlink(copied)  # the backup folder, not the database: see below
            raise _cannot_keep(target, dest, exc.__cause__) from exc
        return _kept_copy(copy, target, progress, str(exc))
    except OSError as exc:  # a copy the disk cannot hold, a backup folder that cannot be written
        _unlink(copied)
        raise _cannot_keep(target, dest, exc) from exc
    except BaseException:
        _unlink(copied)  # a copy the disk could not hold, or an interrupt: nothing half-kept is left
        raise
    _unlink(copied)
    progress("keeping the database it replaces", 1, 1)
    return Kept(safety.name, None, restore_command(safety.name, dest, target))


def restore_command(backup: str, dest: Path, target: Path) -> str:
    """The command that puts local backup `backup` of folder `dest` back into `target`, shell-quoted:
    printed as the undo of a restore, so that it can be pasted whatever the paths hold."""
    return (f"bookingctl backup restore {backup} --dest {shlex.quote(str(dest))} --local {shlex.quote(str(target))} "
            "--replace")


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _reserve_copy_name(target: Path) -> Path:
    """`<target>.replaced-<stamp>[-n]`, created empty and exclusively: two restores in the same
    second each get their own, where a look-then-write would let one copy over the other."""
    stamp = _stamp()
    for n in itertools.count():
        path = target.with_name(f"{target.name}.replaced-{stamp}{f'-{n}' if n else ''}")
        try:
            path.open("xb").close()
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")


def _cannot_keep(target: Path, dest: Path, exc: OSError) -> BackupError:
    where = exc.filename or dest
    return BackupError(f"cannot keep the database it would replace ({where}: {exc.strerror or exc}), so nothing was "
                       f"restored and {target} is unchanged; pass a backup folder that can be written (--dest) or "
                       "free space, and restore again")


def _kept_copy(copy: Path, target: Path, progress: Progress, why: str) -> Kept:
    progress("keeping the database it replaces", 1, 1)
    moves = [f"mv {shlex.quote(str(copy))} {shlex.quote(str(target))}"]
    moves += [f"mv {shlex.quote(f'{copy}{s}')} {shlex.quote(f'{target}{s}')}"
              for s in ("-journal", "-wal") if Path(f"{copy}{s}").exists()]
    first = (why.strip().splitlines() or ["unreadable"])[0].strip(" *")
    return Kept(None, copy, " && ".join(moves), why=first)


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


_FILE_KINDS = ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "FIFO"),
               (stat.S_ISSOCK, "socket"))


def _check_target(target: Path, replace: bool, backup: str) -> int | None:
    """Refuse a target a restore must not replace; the page size of the database there, if any (0: empty)."""
    try:
        found = target.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(found.st_mode):
        raise TargetError(f"{target} is a symbolic link (to {os.readlink(target)}); a restore would replace the link, "
                          f"not the database: restore into the file itself, --local {target.resolve()}")
    if stat.S_ISDIR(found.st_mode):
        raise TargetError(f"{target} is a folder; --local names the database file, "
                          f"e.g. --local {target}/restored.sqlite")
    if not stat.S_ISREG(found.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(found.st_mode)), "special file")
        raise TargetError(f"{target} is a {kind}, not a regular file; --local names a SQLite database file")
    if not replace:
        raise BackupInputError(f"{target} exists; pass --replace to overwrite it with backup {backup}")
    with target.open("rb") as f:
        header = f.read(100)
    if not header:
        return 0  # an empty file is an empty SQLite database
    if len(header) < 100 or not header.startswith(SQLITE_HEADER):
        raise TargetError(f"{target} is not a SQLite database (its first bytes are not SQLite's header), and "
                          "--replace only replaces a database: move it away, or restore to another path")
    size = int.from_bytes(header[16:18], "big")
    return 65536 if size == 1 else size


def _copy_into(staged: Path, target: Path, lock_timeout: float) -> None:
    """Copy the database `staged` over the one at `target` in one SQLite transaction."""
    source = sqlite3.connect(staged)
    into = sqlite3.connect(target, timeout=lock_timeout, isolation_level=None)
    deadline = time.monotonic() + lock_timeout

    def waited(status: int, _remaining: int, _pages: int) -> None:
        # Python retries a busy step for ever; a writer that keeps the lock must end the restore.
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) and time.monotonic() > deadline:
            raise BackupError(f"{target} is in use by another process (it holds a lock on the database); stop "
                              "what writes to it and restore again")

    try:
        source.backup(into, progress=waited)
        check = into.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{target} cannot be replaced through SQLite ({exc}); if it is damaged beyond that, move it "
                          f"and any {target.name}-journal, -wal and -shm files aside and restore to the path") from exc
    finally:
        into.close()
        source.close()
    if check != "ok":
        raise BackupError(f"{target} fails SQLite's quick_check after the restore ({check}); restore again into a "
                          "new path and compare")


# --- the stack's R2 backup bucket -----------------------------------------------------------

def upload(client: Any, account_id: str, bucket: str, dest: Path, manifest: Manifest) -> list[str]:
    """Copy a local backup into the stack's R2 bucket: the dump first, the manifest last.

    What goes is what the folder holds for `manifest.name`, checked as every reader checks it: the
    manifest on disk must be this one, and the dump must still have its sha256.
    Retention in R2 is the bucket's lifecycle rule (declared in infra/backups.py), not a prune.
    The object API takes up to 300 MB per object; larger dumps belong on R2's S3 API.
    """
    if not is_backup_name(manifest.name) or manifest.file != f"{manifest.name}.sql":
        raise BackupError(f"backup {manifest.name!r}: {manifest.file!r} is not this backup's dump "
                          f"{manifest.name}.sql; not uploading")
    on_disk = read_manifest(dest / f"{manifest.name}{_MANIFEST}")
    if on_disk != manifest:
        raise BackupError(f"{dest / (manifest.name + _MANIFEST)} changed since the backup was made; not uploading")
    sql_file = dest / manifest.file
    report = VerifyReport(manifest.name, ok=True)
    if not _check_file(report, sql_file, manifest, no_progress) or not report.ok:
        raise BackupError(f"{sql_file} is not the dump its manifest describes ({report.failures()}); not uploading")
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
