"""Where a project keeps its D1 migrations, as wrangler reads it from `wrangler.json(c)`/`wrangler.toml`.

A team that also runs `wrangler d1 migrations ...` may have moved the migrations folder
(`migrations_dir`), nested the files (`migrations_pattern`, e.g. drizzle's `*/migration.sql`) or
renamed the tracking table (`migrations_table`) in the D1 binding of its wrangler file. bookingctl
reads the same three keys so both tools look at the same files and the same table.

Sources (cloudflare/workers-sdk f8308360): the keys and their defaults (`./migrations`,
`${migrations_dir}/*.sql`, `d1_migrations`) and the rule that a pattern must start with
`${migrations_dir}/`: packages/wrangler/src/d1/migrations/helpers.ts `resolveMigrationsConfig`,
packages/wrangler/src/d1/constants.ts; the file names, first found wins: wrangler.json,
wrangler.jsonc, wrangler.toml (packages/workers-utils/src/config/config-helpers.ts
`findWranglerConfig`); the keys in a D1 binding: packages/workers-utils/src/config/environment.ts.
Only the top-level `d1_databases` are read (not an `env.<name>` section), and of those the binding
`DB` (booking_shared.naming.DB_BINDING), or the only one there is.
"""

from __future__ import annotations

import json
import posixpath
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from booking_shared.errors import InputError
from booking_shared.naming import DB_BINDING

CONFIG_FILES = ("wrangler.json", "wrangler.jsonc", "wrangler.toml")
DEFAULT_DIR = "migrations"
DEFAULT_TABLE = "d1_migrations"
# A table name goes into SQL quoted; still, a name with control characters is a typo, not a name.
_TABLE_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


class WranglerConfigError(InputError):
    """The wrangler file's D1 migration settings cannot be used; the message names the file, key and fix."""


@dataclass(frozen=True)
class MigrationSettings:
    """The migrations folder, the pattern of migration files in it, and the tracking table."""

    folder: Path
    pattern: str = "*.sql"  # relative to `folder`, glob segments separated by "/" (`**`: any depth)
    table: str = DEFAULT_TABLE
    source: Path | None = None  # the wrangler file these came from (None: the defaults)


def find_config(root: Path) -> Path | None:
    """The wrangler file of the project at `root`, as wrangler would pick it, or None."""
    return next((root / name for name in CONFIG_FILES if (root / name).is_file()), None)


def settings(root: Path) -> MigrationSettings:
    """The D1 migration settings of the project at `root`: its wrangler file's, else the defaults."""
    path = find_config(root)
    if path is None:
        return MigrationSettings(root / DEFAULT_DIR)
    binding = _binding(path, _read(path))
    if binding is None:
        return MigrationSettings(root / DEFAULT_DIR, source=path)
    raw_dir, raw_pattern, table = (binding.get(k) for k in ("migrations_dir", "migrations_pattern",
                                                            "migrations_table"))
    for key, value in (("migrations_dir", raw_dir), ("migrations_pattern", raw_pattern),
                       ("migrations_table", table)):
        if value is not None and not isinstance(value, str):
            raise WranglerConfigError(f"{path}: d1_databases {key} is {type(value).__name__}; it must be a string")
    if table is not None and not _TABLE_NAME.fullmatch(table):
        raise WranglerConfigError(f"{path}: d1_databases migrations_table {table!r}: use a table name of printable "
                                  "characters")
    folder = _normalize(raw_dir or DEFAULT_DIR)
    pattern = "*.sql"
    if raw_pattern is not None:
        if raw_dir is None:
            raise WranglerConfigError(f"{path}: d1_databases migrations_pattern is set without migrations_dir; "
                                      "wrangler needs both (add \"migrations_dir\": \"migrations\")")
        full = _normalize(raw_pattern)
        if folder != "." and not full.startswith(f"{folder}/"):
            raise WranglerConfigError(f"{path}: d1_databases migrations_pattern {raw_pattern!r} must start with "
                                      f"migrations_dir {folder!r} + '/' (e.g. {folder}/*.sql)")
        pattern = full if folder == "." else full[len(folder) + 1:]
    return MigrationSettings(path.parent / folder, pattern, table or DEFAULT_TABLE, path)


def _normalize(raw: str) -> str:
    # As wrangler's normalizeRelativePath: forward slashes, no "./", no trailing "/".
    return posixpath.normpath(raw.replace("\\", "/")).rstrip("/") or "."


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(_jsonc_to_json(text))
    except (OSError, UnicodeDecodeError) as exc:
        raise WranglerConfigError(f"{path}: cannot be read ({exc})") from exc
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise WranglerConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper()} ({exc}); fix the file, "
                                  "or check it with `wrangler check`") from exc
    if not isinstance(data, dict):
        raise WranglerConfigError(f"{path}: the file must hold one object (table)")
    return data


def _binding(path: Path, data: dict[str, Any]) -> dict[str, Any] | None:
    entries = data.get("d1_databases")
    if entries is None:
        return None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise WranglerConfigError(f"{path}: d1_databases must be a list of bindings")
    ours = [e for e in entries if e.get("binding") == DB_BINDING]
    if ours:
        return dict(ours[0])
    return dict(entries[0]) if len(entries) == 1 else None


# Strings (with their escapes), comments, and a comma that only a `}` or `]` follows.
_JSONC = re.compile(r'"(?:[^"\\]|\\.)*"|//[^\n]*|/\*.*?\*/|,(?=\s*(?://[^\n]*\s*|/\*.*?\*/\s*)*[}\]])', re.DOTALL)


def _jsonc_to_json(text: str) -> str:
    """JSON with comments and trailing commas (what wrangler.jsonc allows) as plain JSON."""
    return _JSONC.sub(lambda m: m.group() if m.group().startswith('"') else "", text)


def match(pattern: str, relative: str) -> bool:
    """Whether `relative` (a "/"-separated path under the folder) matches the glob `pattern`.

    As minimatch with `dot: false`, which wrangler uses: `*`, `?` and `[...]` stay within one path
    segment, `**` spans any number of them, and a name starting with "." matches only a pattern
    segment that starts with one.
    """
    return _match(pattern.split("/"), relative.split("/"))


def _match(pattern: list[str], parts: list[str]) -> bool:
    from fnmatch import fnmatchcase

    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, parts[i:]) for i in range(len(parts) + 1)
                   if not any(p.startswith(".") for p in parts[:i]))
    if not parts or (parts[0].startswith(".") and not head.startswith(".")):
        return False
    return fnmatchcase(parts[0], head) and _match(rest, parts[1:])


def files(found: MigrationSettings) -> list[str]:
    """The migration files under the folder matching the pattern, as "/"-separated relative names."""
    names = []
    for path in found.folder.rglob("*") if "/" in found.pattern else found.folder.glob("*"):
        relative = path.relative_to(found.folder).as_posix()
        # A folder named like a migration is kept: reading it fails naming it (ops.database.migrations._read),
        # where skipping it would hide a migration someone meant to write.
        if match(found.pattern, relative):
            names.append(relative)
    return sorted(names)
