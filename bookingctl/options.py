"""Options several commands share, and how they turn into a stack's config, a database or a site.

Everything here raises `UsageError` (or the domain error) for bad input; `bookingctl.errors`
reports it. Heavy modules (pydantic, pulumi, the Cloudflare SDK) are imported inside the
functions, so `bookingctl --help` and the local commands start fast.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bookingctl.errors import UsageError, current_stack

if TYPE_CHECKING:
    from ops.database.migrations import Migration
    from ops.targets import Database, RemoteDatabase
    from stackconfig.model import StackConfig


class TableOrJson(StrEnum):
    """The formats of the operations commands: a table for people, JSON for scripts."""

    table = "table"
    json = "json"


ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", help="Folder holding Pulumi.yaml (default: this folder or a parent)."),
]
StackOption = Annotated[str | None, typer.Option("--stack", help="Work on this stack's remote D1 database.")]
LocalOption = Annotated[Path | None, typer.Option("--local", help="Work on this SQLite file instead.")]
MigrationsDir = Annotated[Path | None, typer.Option("--dir", help="Migrations folder (default: migrations/).")]
DestOption = Annotated[Path | None, typer.Option(
    "--dest", help="Backup folder (default: backups/<stack> or backups/local under the project).")]
FormatOption = Annotated[TableOrJson, typer.Option("--format", "-f", help="Output format.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
# Every long or network-bound command takes it (docs/bookingctl.md: "Exit codes and errors (every command)").
ProgressOption = Annotated[bool | None, typer.Option(
    "--progress/--quiet", help="Report each step on stderr, also in CI logs (--progress), or never (--quiet); "
                               "default: only on a terminal.")]


def project_root(project_dir: Path | None) -> Path:
    """The folder holding Pulumi.yaml (this folder or a parent), or this folder when there is none."""
    from booking_shared.project import ProjectError, find_project

    start = project_dir or Path.cwd()
    try:
        return find_project(start).root
    except ProjectError:
        if project_dir is not None:
            raise
        return start


def load_stack_config(stack: str, project_dir: Path | None) -> StackConfig:
    """A stack's typed config read offline (secrets stand in as placeholders), naming its stack and project.

    Also the stack a failure's message names (`bookingctl.errors`): a Cloudflare SDK error raised deep
    inside an operation does not know which stack's account it came from.
    """
    from stackconfig.files import read_stack_config

    current_stack.set(stack)
    return read_stack_config(stack, project_dir or Path.cwd())


def remote_database_of(cfg: StackConfig) -> RemoteDatabase:
    """The stack's D1 database (needs CLOUDFLARE_API_TOKEN)."""
    from bookingctl.output import progress_log
    from ops.targets import RemoteDatabase

    progress_log()(f"stack {cfg.stack}: finding D1 database {cfg.database_name} in account {cfg.account_id}")
    return RemoteDatabase.of(cfg)


_ONE_DATABASE = "name exactly one database: --stack STACK (remote D1) or --local FILE (SQLite)"


def open_database(stack: str | None, local: Path | None, project_dir: Path | None, *,
                  create: bool = False, damaged_ok: bool = False) -> Database:
    """The database an operation works on: `--local FILE` or the `--stack` one.

    `create`: a missing local file is created (empty), as `wrangler d1 migrations apply --local` does.
    """
    from bookingctl import output
    from ops.targets import LocalDatabase

    if (stack is None) == (local is None):
        raise UsageError(_ONE_DATABASE)
    if local is None:
        return remote_database_of(load_stack_config(str(stack), project_dir))
    existed = local.exists()
    db = LocalDatabase(local, must_exist=not create, damaged_ok=damaged_ok)
    if not existed:
        output.info(f"created a new SQLite database at {local}")
    return db


def site_and_database(stack: str | None, base_url: str | None, local: Path | None,
                      project_dir: Path | None, *, damaged_ok: bool = False) -> tuple[str | None, Database | None]:
    """(site URL, database) for the commands that check a deployed site: from --stack (its domain and
    D1), or from --base-url with an optional --local file (`damaged_ok`: as `LocalDatabase`'s)."""
    if stack is not None and local is not None:
        raise UsageError(_ONE_DATABASE)
    if stack is not None:
        cfg = load_stack_config(stack, project_dir)
        return base_url or cfg.site_url, remote_database_of(cfg)
    return base_url, (open_database(None, local, project_dir, damaged_ok=damaged_ok) if local is not None else None)


def migrations_of(folder: Path | None, project_dir: Path | None, *,
                  strict: bool = True) -> tuple[list[Migration], str]:
    """The migration files and the tracking table: the project's wrangler file's `migrations_dir`,
    `migrations_pattern` and `migrations_table` when it has one (booking_shared/wrangler_config.py), else
    migrations/ and d1_migrations; --dir replaces the folder. `strict=False` as `discover`'s."""
    from booking_shared.wrangler_config import settings
    from ops.database.migrations import discover

    found = settings(project_root(project_dir))
    return discover(folder or found.folder, strict=strict, pattern=found.pattern), found.table


def backup_folder(dest: Path | None, stack: str | None, project_dir: Path | None) -> Path:
    from booking_shared.project import check_stack_name

    return dest or project_root(project_dir) / "backups" / (check_stack_name(stack) if stack else "local")


def confirm(question: str, yes: bool, action: str, *, honour_ci: bool = True) -> None:
    """Ask before a change unless --yes (or CI, where there is nobody to ask); never hang on a pipe."""
    if yes or (honour_ci and os.environ.get("CI")):
        return
    if not sys.stdin.isatty():
        raise UsageError(f"refusing to {action} without confirmation on a non-interactive input; pass --yes")
    typer.confirm(question, abort=True)


def parse_duration(text: str, option: str = "--duration") -> float:
    """`10m`, `600s`, `1h` or plain seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh]?)", text.strip())
    if not match:
        raise UsageError(f"{option} {text!r}: use a number with s, m or h, e.g. 10m")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def number_between(option: str, low: float, high: float, what: str = "a number of seconds") -> Callable[
        [float | None], float | None]:
    """An option callback: the value must be a finite number from `low` to `high`.

    NaN and infinities are named here, not left to a range check: every comparison with NaN is
    false, so whether a range check lets it through depends on how the check is written.
    """
    def check(value: float | None) -> float | None:
        if value is None:
            return value
        if not math.isfinite(value) or not low <= value <= high:
            found = "not a number" if math.isnan(value) else f"{value:g}"
            raise UsageError(f"{option} {found}: use {what} from {low:g} to {high:g}")
        return value
    return check


def count_between(option: str, low: int, high: int) -> Callable[[int | None], int | None]:
    """An option callback: the value must be a whole number from `low` to `high`."""
    def check(value: int | None) -> int | None:
        if value is not None and not low <= value <= high:
            raise UsageError(f"{option} {value}: use a whole number from {low} to {high}")
        return value
    return check


def url_option(option: str, *, secret: bool = False) -> Callable[[Any], Any]:
    """An option callback: each value must be a full http(s) URL; `secret` ones are never echoed."""
    def check(value: Any) -> Any:
        for url in [value] if isinstance(value, str) else value or []:
            from ops.http import url_problem  # here: httpx costs start-up time for every command

            problem = url_problem(url)
            if problem is not None:
                shown = "(value not shown: it may hold the hook's credential)" if secret else repr(url)
                raise UsageError(f"{option} {shown} is not a usable URL: {problem}; give the whole URL with its "
                                 "scheme, e.g. https://www.example.co.za or http://127.0.0.1:8787")
        return value
    return check
