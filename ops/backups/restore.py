"""Restoring a backup into a local database file, keeping what it replaces."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shlex
import shutil
import sqlite3
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from ops.backups import staging
from ops.backups.archive import create
from ops.backups.catalog import check_file, check_loaded, find
from ops.backups.files import fsync_rename
from ops.backups.manifest import LOCK_TIMEOUT, BackupError, BackupInputError, Manifest, VerifyReport
from ops.database.sqldump import Progress, no_progress
from ops.database.sqlload import Limits, LoadError, load_dump
from ops.targets import SIDECARS, SQLITE_HEADER, LocalDatabase, TargetError


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
    if check_file(report, sql_file, manifest, progress) and report.ok:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.sweep(target.parent, prefix=f".{target.name}.")
        with staging.partial(target.parent, target.name) as staged:
            conn = sqlite3.connect(staged, isolation_level=None)
            try:
                if page_size:  # the backup API cannot change the page size of a database in WAL mode
                    conn.execute(f"PRAGMA page_size = {page_size}")
                violations = load_dump(conn, sql_file, limits=Limits.for_dump(manifest.size), progress=progress)
                check_loaded(report, conn, manifest, violations,
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
                        fsync_rename(staged, target)
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


