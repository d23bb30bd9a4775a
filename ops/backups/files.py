"""A backup's files on disk: written under a partial name, fsynced, renamed into place, the manifest last."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from ops.backups import staging
from ops.backups.manifest import MANIFEST, BackupInputError, BackupNotFound, Manifest, source_digest
from ops.database.sqldump import ForeignKeyViolations, Progress, no_progress

# --- files ----------------------------------------------------------------------------------

def require_folder(dest: Path) -> None:
    if not dest.exists():
        raise BackupNotFound(f"no backup folder at {dest}; check --dest (or --stack), or make a backup there first")
    if not dest.is_dir():
        raise BackupInputError(f"{dest} is not a folder; --dest names the folder holding the backups")


def file_sha256(path: Path, progress: Progress = no_progress) -> str:
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


def fsync_rename(tmp: Path, final: Path) -> None:
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
def new_backup(dest: Path, label: str, now: dt.datetime) -> Iterator[tuple[str, Path]]:
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
            if not any(os.path.lexists(dest / f) for f in (f"{name}.sql", f"{name}{MANIFEST}")):
                yield name, sql_tmp
                return
    raise AssertionError("unreachable: itertools.count() does not end")


def publish(dest: Path, name: str, sql_tmp: Path, tables: dict[str, int], source: dict[str, Any],
             reason: str, now: dt.datetime, sha256: str | None = None,
             foreign_keys: ForeignKeyViolations | None = None) -> Manifest:
    digest = sha256 or file_sha256(sql_tmp)
    manifest = Manifest(name=name, file=f"{name}.sql", sha256=digest, size=sql_tmp.stat().st_size,
                        tables=tables, source=source, created_at=now.isoformat(timespec="seconds"), reason=reason,
                        foreign_key_violations=_violations_record(foreign_keys),
                        source_sha256=source_digest(digest, source))
    with staging.partial(dest, f"{name}{MANIFEST}") as manifest_tmp:
        manifest_tmp.write_text(manifest.to_json(), encoding="utf-8")
        fsync_rename(sql_tmp, dest / manifest.file)
        fsync_rename(manifest_tmp, dest / f"{name}{MANIFEST}")  # last: now the backup exists
    _fsync_folder(dest)
    return manifest


def _violations_record(found: ForeignKeyViolations | None) -> dict[str, Any] | None:
    if found is None or not found.count:
        return None
    return {"count": found.count,
            "examples": [{"table": t, "rowid": r, "parent": p} for t, r, p in found.examples]}


