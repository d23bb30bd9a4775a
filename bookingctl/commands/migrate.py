"""`bookingctl migrate`: D1 migrations in migrations/NNNN_name.sql, tracked in d1_migrations.

`check` says whether the pending migrations are rollback-safe and D1-compatible (ops/database/migration_check.py);
`apply` runs the same check first and refuses an unsafe migration unless --allow-unsafe --reason.
"""

from __future__ import annotations

import contextlib
import sqlite3
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from booking_shared.deploy import migrations_checksum
from bookingctl import output, reports
from bookingctl.errors import Failed, UsageError
from bookingctl.options import (
    DestOption,
    FormatOption,
    LocalOption,
    MigrationsDir,
    ProgressOption,
    ProjectDir,
    StackOption,
    TableOrJson,
    backup_folder,
    confirm,
    load_stack_config,
    migrations_of,
    open_database,
    project_root,
)
from ops.backups.bucket import fetch_newest
from ops.backups.catalog import list_backups, loaded
from ops.backups.manifest import BackupError, Manifest
from ops.backups.staging import scratch_folder
from ops.database.migration_check import check_database, check_local, check_remote, overrides_for, refusal
from ops.database.migration_findings import CheckReport
from ops.database.migrations import apply as apply_migrations
from ops.database.migrations import pending
from ops.database.migrations import status as migration_status
from ops.database.rehearsal import DEFAULT_SLOW_SECONDS, DEFAULT_STATEMENT_TIMEOUT
from ops.database.rehearsal import rehearse as rehearse_migrations
from ops.releases.gate import gather
from ops.targets import SIDECARS, Bucket, cloudflare_client

if TYPE_CHECKING:
    from ops.database.migration_findings import CheckReport
    from ops.database.migrations import Migration
    from ops.database.serving import ServingQuery
    from ops.targets import Database

app = typer.Typer(help="D1 migrations: status, check and apply (tracked in d1_migrations, as wrangler does).",
                  no_args_is_help=True)


class CheckFormat(StrEnum):
    """`migrate check` formats: markdown is for the pull-request comment."""

    table = "table"
    json = "json"
    markdown = "markdown"


QueriesOption = Annotated[list[Path] | None, typer.Option(
    "--queries", help="A query corpus of the serving application: SQL statements separated by ';', "
                      "parameters as '?'. Repeatable. Added to bookingctl's own queries and booking:servingQueries.")]


@app.command("status")
def status(stack: StackOption = None, local: LocalOption = None, folder: MigrationsDir = None,
           fmt: FormatOption = TableOrJson.table, show_progress: ProgressOption = None,
           project_dir: ProjectDir = None) -> None:
    """Show which migrations are applied and which are pending."""

    output.set_progress(show_progress)

    migrations, table = migrations_of(folder, project_dir)
    with open_database(stack, local, project_dir) as db:
        states, unknown = migration_status(db, migrations, table)
        reports.print_migrations(states, unknown, db.label, fmt)


def _corpus(stack: str | None, queries: list[Path] | None, project_dir: Path | None) -> list[ServingQuery]:
    """bookingctl's own queries, the Worker's (from the stack's booking:workerBundle; without a stack,
    the reference Worker), each --queries file, then the stack's booking:servingQueries."""

    files = [(path, str(path)) for path in queries or []]
    bundle = None
    if stack is not None:
        root = project_root(project_dir)
        cfg = load_stack_config(stack, project_dir)
        files += [(root / rel, rel) for rel in cfg.serving_queries]
        bundle = cfg.worker_bundle
    return gather(files, worker_bundle=bundle)


def _check(db: Database, migrations: list[Migration], corpus: list[ServingQuery], table: str) -> CheckReport:

    return check_database(db, migrations, corpus, table=table)


@app.command("check")
def check(stack: StackOption = None, local: LocalOption = None, folder: MigrationsDir = None,
          queries: QueriesOption = None,
          corpus_stack: Annotated[str | None, typer.Option(
              "--corpus-stack", help="Also prepare the booking:servingQueries corpus of this stack (default: the "
                                     "--stack one); for a --local check in CI.")] = None,
          fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")] = CheckFormat.table,
          show_progress: ProgressOption = None, project_dir: ProjectDir = None) -> None:
    """Say whether the pending migrations are safe to roll a Worker back over (exit 0) or not (exit 1).

    Never writes to the target: its schema is copied into a scratch SQLite (a local file is opened
    read-only; a stack's D1 is read through its query API), the pending migrations are applied
    there, and each is classified (expand, contract, data, none) with findings: serving queries that
    no longer prepare, what D1 rejects, UPDATE/DELETE without WHERE, statements that fail.
    """

    output.set_progress(show_progress)

    if (stack is None) == (local is None):
        raise UsageError("name exactly one database: --stack STACK (remote D1) or --local FILE (SQLite)")
    migrations, table = migrations_of(folder, project_dir, strict=False)
    corpus = _corpus(corpus_stack or stack, queries, project_dir)
    if local is not None:
        if not local.is_file():
            raise UsageError(f"--local {local}: no such SQLite file")
        report = check_local(local, migrations, corpus, table=table)
    else:
        with open_database(stack, None, project_dir) as db:
            report = check_remote(db, migrations, corpus, table=table)
    reports.print_migration_check(report, fmt)
    if report.verdict != "safe":
        raise typer.Exit(1)


@app.command("rehearse")
def rehearse(
    stack: StackOption = None,
    local: LocalOption = None,
    from_backup: Annotated[str | None, typer.Option(
        "--from", help="The backup to rehearse on (a name in --dest, or a .sql/manifest path); default: the "
                       "newest one that verifies, of the stack's database (with --local and no --from: a copy of "
                       "the file).")] = None,
    dest: DestOption = None,
    folder: MigrationsDir = None,
    queries: QueriesOption = None,
    slow_seconds: Annotated[float, typer.Option(
        "--slow-seconds", min=0.001, max=3600,
        help="Report a statement that takes longer than this here (D1 stops a query at 30 s).")] = DEFAULT_SLOW_SECONDS,
    statement_timeout: Annotated[float, typer.Option(
        "--statement-timeout", min=0.01, max=86400, help="Stop a statement that runs longer than this.")]
        = DEFAULT_STATEMENT_TIMEOUT,
    r2: Annotated[bool, typer.Option(
        "--r2", help="Copy the newest backup of the stack's database from its R2 bucket into --dest first, and "
                     "rehearse on it (needs a token with Workers R2 Storage Read).")] = False,
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")] = CheckFormat.table,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Apply the pending migrations to a scratch copy of real data and report what they do to the rows.

    Restores the newest verified backup of the stack's database (or --from BACKUP; with --r2, first
    copies the newest one from the stack's R2 bucket into --dest; with --local and no --from, copies
    the file) into a scratch SQLite with D1's semantics, applies the pending migrations one statement
    at a time, and reports per migration and table: rows before and after, rows deleted by a cascade
    or trigger, constraint failures with a sample of the keys (personal values masked), NULLs in a
    column made NOT NULL, orphans, slow statements, serving queries turned into full scans, and the
    migrations' `-- check:` assertions. Never writes the target; the scratch copy is removed on exit,
    Ctrl-C included. Its JSON is the evidence of the `migrations-rehearsed` policy. Exit 0: safe; 1: a
    finding of severity error.
    """
    output.set_progress(show_progress)

    if (stack is None) == (local is None):
        raise UsageError("name exactly one database: --stack STACK (its backups) or --local FILE (SQLite)")
    if r2 and (stack is None or from_backup is not None):
        raise UsageError("--r2 takes the newest backup of --stack STACK from its R2 bucket: it needs --stack and "
                         "no --from")
    migrations, table = migrations_of(folder, project_dir, strict=False)
    corpus = _corpus(stack, queries, project_dir)
    with _rehearsal_copy(stack, local, from_backup, dest, project_dir, r2=r2) as (origin, conn):
        report = rehearse_migrations(conn, migrations, corpus, source=origin.label, slow_seconds=slow_seconds,
                                     statement_timeout=statement_timeout, log=output.info, table=table)
    report.database, report.backup_created_at = origin.database, origin.created_at
    report.migrations_checksum = migrations_checksum(migrations[0].path.parent) if migrations else ""
    reports.print_rehearsal(report, fmt)
    if report.verdict != "safe":
        raise typer.Exit(1)


@dataclass(frozen=True)
class _Origin:
    """What a rehearsal's data came from, for its evidence: a label, and for a backup the D1 database
    it was taken of and when."""

    label: str
    database: str | None = None
    created_at: str | None = None

    @classmethod
    def of(cls, manifest: Manifest) -> _Origin:
        database = manifest.source.get("database")
        return cls(f"backup {manifest.name}", str(database) if database else None, manifest.created_at)


@contextlib.contextmanager
def _rehearsal_copy(stack: str | None, local: Path | None, from_backup: str | None, dest: Path | None,
                    project_dir: Path | None, *, r2: bool = False) -> Iterator[tuple[_Origin, sqlite3.Connection]]:
    """(what the data came from, a scratch SQLite holding it); the scratch copy is removed afterwards."""
    if local is not None and from_backup is None:
        if not local.is_file():
            raise UsageError(f"--local {local}: no such SQLite file")
        with scratch_folder() as scratch:
            # SQLite's backup API reads a consistent snapshot; the target is opened read-only.
            source = sqlite3.connect(_read_only_uri(local), uri=True)
            conn = sqlite3.connect(scratch / "rehearsal.sqlite", isolation_level=None)
            try:
                source.backup(conn)
                source.close()
                yield _Origin(str(local)), conn
            finally:
                source.close()
                conn.close()
        return
    folder = backup_folder(dest, stack, project_dir)
    if from_backup is not None:
        with loaded(folder, from_backup) as (manifest, conn):
            yield _Origin.of(manifest), conn
        return
    cfg = load_stack_config(stack, project_dir) if stack else None
    database = cfg.database_name if cfg else None
    if r2 and cfg is not None:
        with cloudflare_client() as client:
            fetched = fetch_newest(Bucket.of(cfg, client), folder, cfg.database_name)
        output.info(f"copied backup {fetched.name} from R2 bucket {cfg.backup_bucket_name} into {folder}")
        with loaded(folder, fetched.name) as (manifest, conn):
            yield _Origin.of(manifest), conn
        return
    for manifest in reversed(list_backups(folder, warn=output.warn)):
        if database is not None and manifest.source.get("database") != database:
            continue
        try:
            with loaded(folder, manifest.name) as (found, conn):
                rows = sum(found.tables.values())
                output.info(f"rehearsing on backup {found.name} ({found.created_at}, {rows:,} rows)")
                yield _Origin.of(found), conn
                return
        except BackupError as exc:
            output.warn(f"skipped backup {manifest.name}: {exc}")
    made_by = f"--stack {stack}" if stack else "--local FILE"
    raise Failed(f"no backup of {database or 'the local database'} in {folder} verifies; make one with "
                 f"`bookingctl backup create {made_by}`, take the newest from R2 with --r2, or name one with --from")


def _read_only_uri(path: Path) -> str:
    """The URI that opens `path` read-only and leaves nothing beside it.

    The path goes through as_uri (a `#`, `?` or `%` in it would otherwise end the file name and open
    another file). A database in WAL mode needs its -wal and -shm files even to read, and SQLite
    creates them beside it, which a read-only connection cannot remove again: when none exists (no
    connection has it open), it is opened `immutable` (sqlite.org/uri.html#uriimmutable), reading the
    main file alone, which then holds every committed write.
    """
    uri = f"{path.resolve().as_uri()}?mode=ro"
    with path.open("rb") as file:
        header = file.read(20)
    wal = header.startswith(b"SQLite format 3\0") and header[18:20] == b"\x02\x02"
    if wal and not any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm")):
        uri += "&immutable=1"
    return uri


@app.command("apply")
def apply(
    stack: StackOption = None,
    local: LocalOption = None,
    folder: MigrationsDir = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    queries: QueriesOption = None,
    allow_unsafe: Annotated[bool, typer.Option(
        "--allow-unsafe", help="Apply migrations `migrate check` calls unsafe (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Why the unsafe migrations are applied anyway; recorded in d1_migrations_unsafe.")] = None,
    restore_on_failure: Annotated[bool, typer.Option(
        "--restore-on-failure", help="Remote: restore the pre-migration Time Travel bookmark if a migration "
                                     "fails, erasing every write since (bookings included).")] = False,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Apply pending migrations: locally all or none, remotely each one whole or not at all.

    `migrate check` runs first; an unsafe migration is refused unless --allow-unsafe --reason TEXT
    (recorded in d1_migrations_unsafe and printed). A failed remote migration is never restored
    automatically: the error prints the bookmark, what a restore would erase and the command
    (--restore-on-failure opts in). Asks first unless --yes or CI is set.
    """
    output.set_progress(show_progress)

    if allow_unsafe != (reason is not None):
        raise UsageError("--allow-unsafe and --reason go together: --allow-unsafe --reason 'why it is safe anyway'")
    # The reason is stored in d1_migrations_unsafe and echoed: no control character (C0, C1) or
    # format character (a bidi override could make it read as something else), one line.
    if reason is not None and (len(reason.strip()) < 15 or any(
            unicodedata.category(ch) in ("Cc", "Cf") for ch in reason)):
        raise UsageError("--reason: say why in a sentence of 15 characters or more, on one line, without control "
                         "or bidirectional formatting characters")
    migrations, table = migrations_of(folder, project_dir)
    creating = local is not None and stack is None and not local.exists()
    if local is not None and creating:
        # Ask before the file exists: a refusal (or a failed first migration) leaves nothing behind.
        if not local.parent.is_dir():
            raise UsageError(f"--local {local}: folder {local.parent} does not exist")
        output.info(f"local {local}: no such file; it would be created and {len(migrations)} migrations "
                    f"applied: {', '.join(m.name for m in migrations)}")
        confirm("Create it and apply them now?", yes, "create a database")
    with _removed_on_failure(local if creating else None), open_database(stack, local, project_dir,
                                                                         create=True) as db:
        todo = pending(db, migrations, table)
        if not todo:
            output.info(f"{db.label}: nothing to apply; all {len(migrations)} migrations are applied.")
            return
        output.info(f"{db.label}: {len(todo)} pending: {', '.join(m.name for m in todo)}")
        # A database this command creates serves nobody yet: there is no version to roll back to.
        report = (CheckReport(db.label, 0) if creating
                  else _check(db, migrations, _corpus(stack, queries, project_dir), table))
        if report.verdict == "unsafe" and reason is None:
            raise Failed(refusal(report, "Nothing was applied. Make them safe (see `bookingctl migrate check`), or "
                                         "apply them anyway with --allow-unsafe --reason TEXT."))
        for finding in report.corpus:
            output.warn(f"{finding.rule}: {finding.message}")
        overrides = overrides_for(report, (reason or "").strip(), "bookingctl migrate apply --allow-unsafe")
        for name, override in overrides.items():
            output.warn(f"UNSAFE migration {name} will be applied (--allow-unsafe): {override.findings}")
        if overrides:
            output.warn(f"reason, recorded in d1_migrations_unsafe: {(reason or '').strip()}")
        confirm("Apply them now?", yes or creating, "apply")
        result = apply_migrations(db, migrations, log=output.info, overrides=overrides,
                                  restore_on_failure=restore_on_failure, table=table)
        states, unknown = migration_status(db, migrations, table)
        reports.print_migrations(states, unknown, db.label, TableOrJson.table, just_applied=result.applied)


@contextlib.contextmanager
def _removed_on_failure(created: Path | None) -> Iterator[None]:
    """Remove the database file this command created (and SQLite's files beside it) if it fails."""
    try:
        yield
    except BaseException:
        if created is not None:

            for leftover in (created, *(created.with_name(created.name + s) for s in SIDECARS)):
                leftover.unlink(missing_ok=True)
        raise
