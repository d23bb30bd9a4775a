"""`bookingctl backup`: SQL-dump backups with manifests: create, import, list, verify, prune, restore."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from booking_shared.text import printable
from bookingctl import output, reports
from bookingctl.errors import EXIT_FAILED, UsageError
from bookingctl.options import (
    DestOption,
    FormatOption,
    LocalOption,
    ProgressOption,
    ProjectDir,
    StackOption,
    TableOrJson,
    YesOption,
    backup_folder,
    confirm,
    load_stack_config,
    open_database,
    remote_database_of,
)
from ops.backups import backups
from ops.targets import Bucket, RemoteDatabase, cloudflare_client


def _warn(message: str) -> None:
    """A warning about a file in a backup folder, whose name or content may hold control characters."""

    output.warn(printable(message, None))


app = typer.Typer(help="SQL-dump backups: create, import, list, verify, prune, restore.", no_args_is_help=True)


@app.command("create")
def create(
    stack: StackOption = None,
    local: LocalOption = None,
    dest: DestOption = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the manifest).")] = "",
    label: Annotated[str, typer.Option("--label", help="Name prefix, e.g. pre-deploy or daily.")] = "backup",
    upload: Annotated[bool, typer.Option(
        "--upload", help="Also copy it to the stack's R2 backup bucket (booking:backupBucketName).")] = False,
    export_timeout: Annotated[float, typer.Option(
        "--export-timeout", min=1, max=24 * 3600,
        help="With --stack: give D1's export job up after this many seconds.")] = 15 * 60.0,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Dump the database to <dest>/<label>-<UTC time>.sql with a manifest; nothing half-written is kept."""

    output.set_progress(show_progress)

    if upload and stack is None:
        raise UsageError("--upload needs --stack: the R2 bucket is the stack's booking:backupBucketName")
    cfg = load_stack_config(stack, project_dir) if stack is not None and local is None else None
    folder = backup_folder(dest, stack, project_dir)
    # Read once: the database and the bucket both come from the stack's config.
    with (remote_database_of(cfg) if cfg is not None else open_database(stack, local, project_dir)) as db:
        with output.progress_reporter(f"backing up {db.label}") as progress:
            manifest = backups.create(db, folder, reason=reason, label=label, progress=progress,
                                      limits=backups.ExportLimits(export_seconds=export_timeout))
        if upload and cfg is not None and isinstance(db, RemoteDatabase):
            keys = backups.upload(Bucket.of(cfg, db.client), folder, manifest)
            output.info(f"uploaded to R2 bucket {cfg.backup_bucket_name}: {', '.join(keys)}")
    if manifest.foreign_key_violations:
        found = manifest.foreign_key_violations
        shown = ", ".join(f"{e['table']} rowid {e['rowid']} -> {e['parent']}" for e in found["examples"][:3])
        output.warn(f"{found['count']} row(s) of the database have foreign keys that point nowhere, e.g. {shown}; "
                    f"backup {manifest.name} keeps them as they are (its manifest lists them) and restores only "
                    "with --allow-foreign-key-violations: fix those rows")
    output.info(f"backup {manifest.name}: {manifest.size} bytes, "
                f"{sum(manifest.tables.values())} rows in {len(manifest.tables)} tables -> {folder}")
    sys.stdout.write(manifest.name + "\n")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="An SQL export made elsewhere: wrangler d1 export, the dashboard.")],
    stack: Annotated[str | None, typer.Option("--stack", help="Import into backups/<stack>.")] = None,
    dest: DestOption = None,
    label: Annotated[str, typer.Option("--label", help="Name prefix of the backup.")] = "import",
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the manifest).")] = "",
    project_dir: ProjectDir = None,
) -> None:
    """Make an outside .sql export a backup: loaded into a scratch SQLite, counted, given a manifest.

    Verify, restore and prune then treat it as one made by `backup create`. A file that does not
    load writes nothing (exit 1). Integers past 2^53 are reported: an export that went through
    JavaScript (wrangler, D1's export) may have rounded them already.
    """

    folder = backup_folder(dest, stack, project_dir)
    with output.progress_reporter(f"importing {file}") as progress:
        imported = backups.import_file(file, folder, label=label, reason=reason, progress=progress)
    for found in imported.unsafe_integers:
        output.warn(f"{found.describe()}: beyond JavaScript's exact integers; if this file went through wrangler or "
                    "D1's export such values may already be rounded (e.g. 9007199254740993 printed as "
                    "9007199254740992): compare them with the source")
    manifest = imported.manifest
    output.info(f"backup {manifest.name}: {manifest.size} bytes, "
                f"{sum(manifest.tables.values())} rows in {len(manifest.tables)} tables -> {folder}")
    sys.stdout.write(manifest.name + "\n")


@app.command("list")
def list_(
    stack: Annotated[str | None, typer.Option("--stack", help="List backups/<stack>.")] = None,
    dest: DestOption = None,
    fmt: FormatOption = TableOrJson.table,
    r2: Annotated[bool, typer.Option("--r2", help="List the stack's R2 backup bucket instead.")] = False,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Backups in the folder, oldest first (only complete ones: those with a manifest)."""

    output.set_progress(show_progress)

    if r2:
        if stack is None:
            raise UsageError("--r2 needs --stack: the bucket is the stack's booking:backupBucketName")
        cfg = load_stack_config(stack, project_dir)
        with cloudflare_client() as client:
            names = backups.list_r2(Bucket.of(cfg, client))
        if fmt == TableOrJson.json:
            sys.stdout.write(json.dumps(names, indent=2) + "\n")
        else:
            output.print_rows(f"Backups in R2 bucket {cfg.backup_bucket_name}", [{"name": n} for n in names], fmt)
        return
    reports.print_backups(backups.list_backups(backup_folder(dest, stack, project_dir), warn=_warn), fmt)


@app.command("verify")
def verify(
    backup: Annotated[str, typer.Argument(help="Backup name, or the path of its .sql or manifest file.")],
    stack: Annotated[str | None, typer.Option("--stack", help="Look in backups/<stack>.")] = None,
    dest: DestOption = None,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Restore into a scratch SQLite (deleted afterwards) and compare with the manifest.

    Checks size and sha256, then loads the dump allowing only what dumps contain (no ATTACH,
    SELECT, other pragmas...) within time and size limits, and checks integrity_check, foreign
    keys, the critical tables and the row counts. Prints a JSON report; exits 1 on any mismatch.
    """

    output.set_progress(show_progress)

    with output.progress_reporter(f"verifying {backup}") as progress:
        report = backups.verify_backup(backup_folder(dest, stack, project_dir), backup, progress=progress)
    sys.stdout.write(json.dumps({"backup": report.name, "ok": report.ok, "checks": report.checks}, indent=2) + "\n")
    # The verdict in one line after the JSON (on stderr: stdout stays one JSON document).
    if report.ok:
        output.info(f"backup {report.name}: OK, all {len(report.checks)} checks passed")
    else:
        output.error(f"backup {report.name}: FAILED: {report.failures()}")
        raise typer.Exit(EXIT_FAILED)


@app.command("prune")
def prune(
    retention_days: Annotated[int | None, typer.Option(
        "--retention-days", help="Delete backups older than this (default: the stack's backupRetentionDays).")] = None,
    stack: Annotated[str | None, typer.Option("--stack", help="Prune backups/<stack>.")] = None,
    dest: DestOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Delete backups older than the retention (the guide could only list them)."""

    output.set_progress(show_progress)

    if retention_days is None:
        if stack is None:
            raise UsageError("pass --retention-days N, or --stack STACK to use its booking:backupRetentionDays")
        retention_days = load_stack_config(stack, project_dir).backup_retention_days
    folder = backup_folder(dest, stack, project_dir)
    old = backups.prune(folder, retention_days, dry_run=dry_run, warn=_warn)
    verb = "would delete" if dry_run else "deleted"
    output.info(f"{verb} {len(old)} backup(s) older than {retention_days} days in {folder}")
    for manifest in old:
        sys.stdout.write(f"{manifest.name}\t{manifest.created_at}\n")


@app.command("restore")
def restore(
    backup: Annotated[str | None, typer.Argument(help="Backup name or file (local restore).")] = None,
    local: Annotated[Path | None, typer.Option("--local", help="SQLite file to restore the backup into.")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace",
        help="Overwrite an existing --local file (kept first: as a backup, or as a byte copy when damaged).")] = False,
    allow_foreign_key_violations: Annotated[bool, typer.Option(
        "--allow-foreign-key-violations",
        help="Restore even if rows break foreign keys (as the source had when the backup was made).")] = False,
    stack: Annotated[str | None, typer.Option("--stack", help="Time Travel restore of this stack's D1.")] = None,
    bookmark: Annotated[str | None, typer.Option("--bookmark", help="Time Travel bookmark to restore.")] = None,
    timestamp: Annotated[str | None, typer.Option("--timestamp", help="Or a time (ISO 8601) to restore to.")] = None,
    dest: DestOption = None,
    yes: YesOption = False,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Restore a backup file into a local SQLite file, or a stack's D1 to a Time Travel point.

    Locally the dump is loaded next to the file and checked as `verify` checks it, then put in
    place in one step (through SQLite when a database is there, so a journal or WAL left by a
    crash is never applied to the restored rows). Remotely it asks first and prints the bookmark
    that undoes the restore.
    """

    output.set_progress(show_progress)

    if stack is None:
        if backup is None or local is None:
            raise UsageError("local restore: bookingctl backup restore BACKUP --local FILE [--replace]; "
                             "remote: bookingctl backup restore --stack STACK (--bookmark B | --timestamp T)")
        with output.progress_reporter(f"restoring {backup}") as progress:
            done = backups.restore_local(backup_folder(dest, None, project_dir), backup, local, replace=replace,
                                         allow_foreign_key_violations=allow_foreign_key_violations,
                                         progress=progress)
        output.info(f"restored backup {done.manifest.name} into {local}")
        if done.kept is not None:
            if done.kept.backup:
                output.info(f"the database it replaced is kept as backup {done.kept.backup}; to undo: {done.kept.undo}")
            else:
                output.info(f"the database it replaced could not be read whole ({printable(done.kept.why or '')}), so "
                            f"its bytes are kept as {done.kept.copy}; to undo: {done.kept.undo}")
        return
    if (bookmark is None) == (timestamp is None) or backup is not None:
        raise UsageError("remote restore: bookingctl backup restore --stack STACK (--bookmark B | --timestamp T)")
    with remote_database_of(load_stack_config(stack, project_dir)) as db:
        point = f"bookmark {bookmark}" if bookmark else f"time {timestamp}"
        # A restore loses data: even in CI it needs an explicit --yes.
        confirm(f"Restore {db.label} to {point}? Bookings made since then are lost.", yes, "restore",
                honour_ci=False)
        undo = db.restore(bookmark=bookmark, timestamp=timestamp)
    output.info(f"{db.label} restored to {point}. To undo: bookingctl backup restore --stack {stack} "
                f"--bookmark {undo}")
