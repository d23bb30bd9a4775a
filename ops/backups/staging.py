"""Files written aside and renamed into place, and what runs that were killed leave behind.

Whatever a backup operation writes exists first as a hidden partial file next to where it will
end up (`.<final name>.<tag>.partial`, or `.<final name>.partial` when the name is reserved) and
is renamed into place once complete, so no reader ever sees half a file. While a process works
on a partial it holds an flock on it. A later run can then tell a partial that is still being
written from one whose writer was killed (kill -9, a power cut): `sweep` removes those, with
SQLite's -journal, -wal and -shm files next to them, once they are older than STALE_AFTER.
Scratch folders (`bookingctl-verify-*` in the temporary folder) are held and swept the same way.

flock, not fcntl's record locks: SQLite uses those on the same files, and closing any descriptor
of a file drops all of a process's record locks on it; an flock belongs to its descriptor alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ops.targets import SIDECARS

STALE_AFTER = 3600.0  # seconds without a change after which an unheld partial is a leftover
SCRATCH_PREFIX = "bookingctl-verify-"
_PARTIAL = re.compile(r"\..+\.partial")


@contextlib.contextmanager
def partial(folder: Path, final_name: str, *, reserve: bool = False) -> Iterator[Path]:
    """A new, empty partial file for `final_name` in `folder`, held while the block runs.

    It is removed when the block ends unless it was renamed away. `reserve`: the partial is named
    `.<final_name>.partial` exactly, and FileExistsError says that another run holds that name.
    """
    if reserve:
        path = folder / f".{final_name}.partial"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    else:
        fd, name = tempfile.mkstemp(prefix=f".{final_name}.", suffix=".partial", dir=folder)
        path = Path(name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        try:
            if same_file(path, os.fstat(fd)):  # not renamed into place: still ours to remove
                _remove(path)
        finally:
            os.close(fd)


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A new folder in the temporary folder, held while the block runs and deleted after it."""
    folder = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        try:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)


def sweep(folder: Path, prefix: str = ".", *, now: float | None = None) -> list[Path]:
    """Remove the partial files in `folder` (their names starting with `prefix`) left by killed runs.

    Only regular files of ours, unchanged for STALE_AFTER seconds and held by no process; a
    -journal, -wal or -shm file goes with its partial, or alone once as old. Returns what went.
    """
    now = time.time() if now is None else now
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(folder) as entries:
        for entry in entries:
            base = entry.name
            for suffix in SIDECARS:
                base = base.removesuffix(suffix)
            if not (entry.name.startswith(prefix) and _PARTIAL.fullmatch(base)):
                continue
            path = Path(entry.path)
            if _stale(path, now) and (base != entry.name or _unheld(path)):
                _remove(path)
                removed.append(path)
    return removed


def sweep_scratch(*, now: float | None = None) -> list[Path]:
    """Remove scratch folders of ours that killed runs left in the temporary folder."""
    now = time.time() if now is None else now
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        if _stale(path, now, directory=True) and _unheld(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _stale(path: Path, now: float, *, directory: bool = False) -> bool:
    try:
        found = path.lstat()
    except FileNotFoundError:
        return False
    kind_ok = stat.S_ISDIR(found.st_mode) if directory else stat.S_ISREG(found.st_mode)
    return kind_ok and found.st_uid == os.getuid() and now - found.st_mtime > STALE_AFTER


def _unheld(path: Path) -> bool:
    """True if no process holds `path` (its flock can be had at once)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _remove(path: Path) -> None:
    for name in (path.name, *(path.name + suffix for suffix in SIDECARS)):
        with contextlib.suppress(FileNotFoundError):
            (path.parent / name).unlink()


def same_file(path: Path, known: os.stat_result) -> bool:
    try:
        found = path.lstat()
    except FileNotFoundError:
        return False
    return (found.st_dev, found.st_ino) == (known.st_dev, known.st_ino)
