"""A backup's manifest and names: what a backup is, read without trusting the folder it sits in."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from booking_shared.errors import InputError, OperationFailed

CRITICAL_TABLES = ("users", "appointments", "services")
MANIFEST = ".manifest.json"
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

    name = path.name.removesuffix(MANIFEST)
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


