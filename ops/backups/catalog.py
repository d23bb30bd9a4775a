"""The backups in a folder: listing, finding, verifying by loading, and pruning by retention."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from ops.backups import staging
from ops.backups.files import file_sha256, require_folder
from ops.backups.manifest import (
    CRITICAL_TABLES,
    MANIFEST,
    MAX_RETENTION_DAYS,
    BackupError,
    BackupInputError,
    BackupNotFound,
    Manifest,
    ManifestError,
    VerifyReport,
    Warn,
    ignore,
    is_backup_name,
    read_manifest,
)
from ops.database.sqldump import ForeignKeyViolations, Progress, no_progress, table_kinds
from ops.database.sqlload import Limits, LoadError, load_dump
from ops.database.sqlscript import quote_ident

# --- listing, verifying, pruning ------------------------------------------------------------

def list_backups(dest: Path, *, warn: Warn = ignore) -> list[Manifest]:
    """Backups in `dest`, oldest first; only those whose manifest was written and can be trusted.

    Each other manifest is skipped with a `warn` naming it and what is wrong: one bad file must
    not hide the rest of the folder.
    """
    require_folder(dest)
    found = []
    for path in sorted(dest.iterdir()):
        if not path.name.endswith(MANIFEST) or path.name.startswith("."):
            continue
        try:
            found.append(read_manifest(path))
        except ManifestError as exc:
            warn(f"skipped {exc}")
    return sorted(found, key=lambda m: (m.created, m.name))


def find(dest: Path, name_or_file: str) -> tuple[Manifest, Path]:
    """A backup by name (in `dest`), or by the path of its .sql or manifest file."""
    candidate = Path(name_or_file)
    if candidate.suffix == ".sql" or name_or_file.endswith(MANIFEST) or "/" in name_or_file:
        folder = candidate.parent
        name = candidate.name.removesuffix(MANIFEST).removesuffix(".sql")
    else:
        folder, name = dest, name_or_file
    if not is_backup_name(name):
        raise BackupInputError(f"{name!r} is not a backup name (letters, digits, '.', '_' and '-', at most 200 "
                               "characters); `bookingctl backup list` shows the backups")
    manifest_path = folder / f"{name}{MANIFEST}"
    if not manifest_path.is_file():
        hint = (f"; an export made elsewhere (wrangler d1 export, the dashboard) becomes a backup with "
                f"`bookingctl backup import {candidate}`" if candidate.suffix == ".sql" and candidate.is_file() else "")
        raise BackupNotFound(f"no backup {name!r} in {folder} (no {manifest_path.name}); `bookingctl backup list` "
                             f"shows the backups there{hint}")
    return read_manifest(manifest_path), folder


@contextmanager
def scratch(sql_file: Path, limits: Limits | None = None,
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
    if not check_file(report, sql_file, manifest, progress) or not report.ok:
        raise BackupError(f"backup {manifest.name} is not the dump its manifest describes: {report.failures()}")
    try:
        with scratch(sql_file, Limits.for_dump(manifest.size), progress) as (conn, _violations):
            yield manifest, conn
    except LoadError as exc:
        raise BackupError(f"backup {manifest.name} does not load: {exc}") from exc


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
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
    if not check_file(report, sql_file, manifest, progress):
        return report
    try:
        with scratch(sql_file, limits, progress) as (conn, violations):
            check_loaded(report, conn, manifest, violations)
    except LoadError as exc:
        report.check("restore", False, f"the dump does not load: {exc}")
    return report


def check_file(report: VerifyReport, sql_file: Path, manifest: Manifest, progress: Progress) -> bool:
    """Size and sha256 of the dump against the manifest; False if there is no dump to load."""
    try:
        found = sql_file.lstat()
    except FileNotFoundError:
        found = None
    if found is None or not stat.S_ISREG(found.st_mode):
        report.check("file", False, f"{sql_file} is missing" if found is None else f"{sql_file} is not a regular file")
        return False
    report.check("size", found.st_size == manifest.size, f"{found.st_size} bytes (manifest: {manifest.size})")
    digest = file_sha256(sql_file, progress)
    report.check("sha256", digest == manifest.sha256, f"{digest} (manifest: {manifest.sha256})")
    return True


def check_loaded(report: VerifyReport, conn: sqlite3.Connection, manifest: Manifest,
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
    counts = table_counts(conn)
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
        (dest / f"{manifest.name}{MANIFEST}").unlink()
        # The file hashed above, not whatever may have been renamed to its name since.
        if f is not None and staging.same_file(dump, opened):
            dump.unlink()
    return None


