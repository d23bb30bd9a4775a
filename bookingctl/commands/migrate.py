"""`bookingctl migrate`: D1 migrations in migrations/NNNN_name.sql, tracked in d1_migrations."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from bookingctl.errors import UsageError
from bookingctl.options import (
    FormatOption,
    LocalOption,
    MigrationsDir,
    ProjectDir,
    StackOption,
    TableOrJson,
    confirm,
    migrations_of,
    open_database,
)

app = typer.Typer(help="D1 migrations: status and apply (tracked in d1_migrations, as wrangler does).",
                  no_args_is_help=True)


@app.command("status")
def status(stack: StackOption = None, local: LocalOption = None, folder: MigrationsDir = None,
           fmt: FormatOption = TableOrJson.table, project_dir: ProjectDir = None) -> None:
    """Show which migrations are applied and which are pending."""
    from bookingctl import output
    from ops.migrations import status as migration_status

    migrations = migrations_of(folder, project_dir)
    with open_database(stack, local, project_dir) as db:
        states, unknown = migration_status(db, migrations)
        output.print_migrations(states, unknown, db.label, fmt)


@app.command("apply")
def apply(
    stack: StackOption = None,
    local: LocalOption = None,
    folder: MigrationsDir = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Apply pending migrations, all or none.

    Locally they run in one transaction; remotely a Time Travel bookmark is taken first and
    restored on any failure. Asks first unless --yes or CI is set.
    """
    from bookingctl import output
    from ops.migrations import apply as apply_migrations
    from ops.migrations import pending, status

    migrations = migrations_of(folder, project_dir)
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
        todo = pending(db, migrations)
        if not todo:
            output.info(f"{db.label}: nothing to apply; all {len(migrations)} migrations are applied.")
            return
        output.info(f"{db.label}: {len(todo)} pending: {', '.join(m.name for m in todo)}")
        confirm("Apply them now?", yes or creating, "apply")
        result = apply_migrations(db, migrations, log=output.info)
        states, unknown = status(db, migrations)
        output.print_migrations(states, unknown, db.label, TableOrJson.table, just_applied=result.applied)


@contextlib.contextmanager
def _removed_on_failure(created: Path | None) -> Iterator[None]:
    """Remove the database file this command created (and SQLite's files beside it) if it fails."""
    try:
        yield
    except BaseException:
        if created is not None:
            from ops.targets import SIDECARS

            for leftover in (created, *(created.with_name(created.name + s) for s in SIDECARS)):
                leftover.unlink(missing_ok=True)
        raise
