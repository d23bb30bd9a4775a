"""`bookingctl restore`: scoped restores from a backup (one tenant's rows), unlike `backup restore`,
which replaces a whole database or rewinds it with Time Travel."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from bookingctl import output
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
    open_database,
)
from ops.backups import backups
from ops.tenants.tenant_restore import TenantRestoreError, apply_restore, check_slug, plan_restore

app = typer.Typer(help="Scoped restores from a backup: one tenant's rows, every other tenant left as it is.",
                  no_args_is_help=True)


@app.command("tenant")
def tenant(
    slug: Annotated[str, typer.Argument(help="The tenant's slug (tenants.slug), e.g. instylehairboutique.")],
    backup: Annotated[str, typer.Option("--from", help="Backup name (in --dest) or the path of its .sql or "
                                                      "manifest file.")],
    stack: StackOption = None,
    local: LocalOption = None,
    tables: Annotated[list[str] | None, typer.Option(
        "--tables", help="Only these of the tenant's tables (repeat, or comma-separated).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change and write nothing.")] = False,
    delete_missing: Annotated[bool, typer.Option(
        "--delete-missing", help="Also delete the tenant's rows the backup lacks (default: keep them); never rows "
                                 "of the log tables (audit_logs, role_audit_log, api_usage_logs).")] = False,
    allow_local_source: Annotated[bool, typer.Option(
        "--allow-local-source", help="With --stack: take a backup of a local file (not of a D1), which could hold "
                                     "a dev or test copy's rows.")] = False,
    dest: DestOption = None,
    fmt: FormatOption = TableOrJson.table,
    yes: YesOption = False,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Restore one tenant's rows from a backup, leaving every other tenant's rows byte-identical.

    Loads the backup into a scratch SQLite (checked against its manifest, under the dump
    authorizer), works out the tenant's rows from the schema's foreign keys, and previews per
    table the rows to insert, update and keep (or delete, with --delete-missing). Refuses, before
    writing anything, when a row would touch another tenant's row or break a constraint, rows of a
    table reference one another in a cycle, or (--stack) a row is too long for one D1 statement or
    the backup is of a local file (unless --allow-local-source). Then takes
    a Time Travel bookmark (--stack) or a full safety backup (--local) and upserts the tenant's rows
    parents first, in batches. Asks first unless --yes (even in CI).
    """

    output.set_progress(show_progress)

    check_slug(slug)
    chosen = [name.strip() for value in tables or [] for name in value.split(",") if name.strip()]
    folder = backup_folder(dest, stack, project_dir)
    with open_database(stack, local, project_dir) as db:
        with output.progress_reporter(f"loading {backup}") as progress, \
                backups.loaded(folder, backup, progress=progress) as (manifest, scratch):
            plan = plan_restore(db, scratch, slug, backup_name=manifest.name, tables=chosen,
                                delete_missing=delete_missing, source=manifest.source,
                                source_bound=manifest.source_sha256 is not None,
                                allow_local_source=allow_local_source)
        _print_plan(plan.to_dict(), fmt, final=dry_run or bool(plan.conflicts) or not plan.writes)
        if plan.conflicts:
            raise TenantRestoreError(f"not restoring tenant {slug} from {manifest.name}, nothing was written: "
                                     + "; ".join(plan.conflicts))
        if dry_run:
            output.info(f"dry run: {plan.writes} row change(s) for tenant {slug}; nothing was written")
            return
        if not plan.writes:
            output.info(f"tenant {slug} in {db.label} already has the rows of backup {manifest.name}; nothing to do")
            return
        deleting = sum(len(c.deletes) for c in plan.changes)
        confirm(f"Write {plan.writes} row change(s) of tenant {slug} from backup {manifest.name} into {db.label}"
                f"{f' and delete {deleting} row(s) the backup lacks' if deleting else ''}?", yes,
                "restore a tenant", honour_ci=False)
        result = apply_restore(db, plan, safety_dest=folder, log=output.info)
    if fmt == TableOrJson.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    undo = (f"Time Travel bookmark before it: {result.bookmark}" if result.bookmark
            else f"safety backup before it: {result.safety_backup} in {folder}")
    output.info(f"restored tenant {slug} from backup {manifest.name}: {result.applied} row change(s) written; {undo}")


def _print_plan(plan: dict[str, object], fmt: str, *, final: bool) -> None:
    """The preview: a table per table of the tenant, or (JSON) the plan when nothing will follow it."""

    if fmt == TableOrJson.json:
        if final:
            sys.stdout.write(json.dumps(plan, indent=2) + "\n")
        return
    rows = plan["tables"]
    assert isinstance(rows, list)
    output.print_rows(f"Tenant {plan['tenant']} from backup {plan['backup']} into {plan['target']} "
                      f"(rows the backup lacks: {plan['rowsTheBackupLacks']})", rows, fmt)
