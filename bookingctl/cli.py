"""`bookingctl`: the command line of the appointment-booking infrastructure.

This module only parses arguments and prints. Commands import the heavy modules they need
(pulumi, pulumi_cloudflare) inside their bodies, so `bookingctl --help` and commands that do not
plan stay fast.

Exit codes: 0 success; 1 a mandatory policy violation remains, or the program or the policy pack
failed (the gate cannot pass); 2 usage, project, configuration or policy-config errors.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bookingctl.output import Format

if TYPE_CHECKING:  # imported lazily at run time: the CLI starts fast
    from infra.config import StackConfig
    from ops.migrations import Migration
    from ops.targets import LocalDatabase, RemoteDatabase

EXIT_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="bookingctl",
    help="Plan, gate and operate the appointment-booking platform on Cloudflare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Plan, gate and operate the appointment-booking platform on Cloudflare."""


ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", help="Folder holding Pulumi.yaml (default: this folder or a parent)."),
]


@app.command()
def plan(
    stack: Annotated[str, typer.Argument(help="Stack name: the STACK of Pulumi.STACK.yaml, e.g. production.")],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format (sarif: SARIF 2.1.0).")] = Format.table,
    policy_config: Annotated[Path | None, typer.Option(
        "--policy-config", help="Policy config JSON, as `pulumi preview --policy-pack-config` takes it "
                                "(checklist evidence, levels, settings).")] = None,
    policy_pack: Annotated[Path | None, typer.Option(
        "--policy-pack", help="Policy pack folder (default: policies/ of the project).")] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Plan a stack offline and gate it with the policy pack.

    Runs the Pulumi program under Pulumi's mocks (no Pulumi CLI, credentials or network), prints
    every resource it declares, then evaluates the policy pack over them through the Analyzer gRPC
    protocol, as `pulumi preview --policy-pack` does. Exits 1 when a mandatory violation remains.
    Secret config values cannot be decrypted offline and appear as [secret]; every secret input is
    redacted in all formats.
    """
    from bookingctl import output
    from bookingctl.gate import PolicyConfigError, PolicyPackError, load_policy_config
    from bookingctl.project import ProjectError, find_project, load_stack
    from infra.config import ConfigError

    try:
        project = find_project(project_dir or Path.cwd())
        settings = load_stack(project, stack)
        user_config = load_policy_config(policy_config) if policy_config else {}
    except (ProjectError, PolicyConfigError) as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None

    from bookingctl.gate import PackProcess, evaluate
    from bookingctl.planner import plan_stack

    pack_dir = (policy_pack or project.root / "policies").resolve()
    try:
        # Started before planning so the pack's start-up overlaps the program's run.
        pack = PackProcess(pack_dir, project.name, stack, settings.flat)
    except PolicyPackError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    with pack:
        try:
            result = plan_stack(project, settings)
        except ConfigError as exc:
            output.error(exc.render())
            raise typer.Exit(EXIT_USAGE) from None
        except Exception:
            output.error(f"the Pulumi program failed while planning stack {stack!r}:")
            traceback.print_exc(file=sys.stderr)
            raise typer.Exit(EXIT_FAILED) from None
        try:
            gate = evaluate(result, pack, user_config)
        except PolicyConfigError as exc:
            output.error(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except PolicyPackError as exc:
            output.error(str(exc))
            raise typer.Exit(EXIT_FAILED) from None

    sarif = None
    if fmt is Format.sarif:
        from bookingctl.sarif import sarif_text

        sarif = sarif_text(result, gate, project.root)
    output.print_plan(result, fmt, gate, sarif)
    if not gate.passed:
        raise typer.Exit(EXIT_FAILED)


def main() -> None:
    """Console-script entry point."""
    app()


# --- database operations --------------------------------------------------------------------

migrate_app = typer.Typer(help="D1 migrations in migrations/NNNN_name.sql (tracked in d1_migrations).",
                          no_args_is_help=True)
app.add_typer(migrate_app, name="migrate")

StackOption = Annotated[str | None, typer.Option("--stack", help="Work on this stack's remote D1 database.")]
LocalOption = Annotated[Path | None, typer.Option("--local", help="Work on this SQLite file instead.")]
MigrationsDir = Annotated[Path | None, typer.Option("--dir", help="Migrations folder (default: migrations/).")]


def open_target(stack: str | None, local: Path | None, project_dir: Path | None) -> LocalDatabase | RemoteDatabase:
    """The database an operation works on: `--local FILE` or the `--stack` one (exit 2 otherwise)."""
    from bookingctl import output
    from ops.targets import LocalDatabase, TargetError, remote_database

    if (stack is None) == (local is None):
        output.error("name exactly one database: --stack STACK (remote D1) or --local FILE (SQLite)")
        raise typer.Exit(EXIT_USAGE)
    try:
        if local is not None:
            return LocalDatabase(local)
        cfg = stack_config(str(stack), project_dir)
        return remote_database(cfg.account_id, cfg.database_name)
    except TargetError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None


def stack_config(stack: str, project_dir: Path | None) -> StackConfig:
    """A stack's typed config read offline (secrets stand in as placeholders); exit 2 when bad."""
    from bookingctl import output
    from bookingctl.project import ProjectError, find_project, load_stack
    from infra.config import ConfigError, parse_config

    try:
        project = find_project(project_dir or Path.cwd())
        settings = load_stack(project, stack)
        return parse_config(settings.flat, settings.secret_keys, stack=stack, source=settings.source,
                            project_root=project.root)
    except (ProjectError, ConfigError) as exc:
        output.error(exc.render() if isinstance(exc, ConfigError) else str(exc))
        raise typer.Exit(EXIT_USAGE) from None


def _migrations(folder: Path | None, project_dir: Path | None) -> list[Migration]:
    from bookingctl import output
    from ops.migrations import MigrationError, discover

    root = project_dir or Path.cwd()
    try:
        found = discover(folder or root / "migrations")
    except MigrationError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    for migration in found:
        for warning in migration.warnings:
            output.warn(warning)
    return found


@migrate_app.command("status")
def migrate_status(
    stack: StackOption = None,
    local: LocalOption = None,
    folder: MigrationsDir = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
    project_dir: ProjectDir = None,
) -> None:
    """Show which migrations are applied and which are pending."""
    from bookingctl import output
    from ops.migrations import status

    migrations = _migrations(folder, project_dir)
    db = open_target(stack, local, project_dir)
    states, unknown = status(db, migrations)
    output.print_migrations(states, unknown, db.label, fmt)


@migrate_app.command("apply")
def migrate_apply(
    stack: StackOption = None,
    local: LocalOption = None,
    folder: MigrationsDir = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Apply pending migrations: all or none (locally one transaction; remotely a Time Travel bookmark
    is taken first and restored on any failure). Asks first unless --yes or CI is set."""
    import os

    from bookingctl import output
    from ops.migrations import MigrationError, apply, pending, status

    migrations = _migrations(folder, project_dir)
    db = open_target(stack, local, project_dir)
    todo = pending(db, migrations)
    if not todo:
        output.info(f"{db.label}: nothing to apply; all {len(migrations)} migrations are applied.")
        return
    output.info(f"{db.label}: {len(todo)} pending: {', '.join(m.name for m in todo)}")
    if not (yes or os.environ.get("CI")):
        if not sys.stdin.isatty():
            output.error("refusing to apply without confirmation on a non-interactive input; pass --yes")
            raise typer.Exit(EXIT_USAGE)
        typer.confirm("Apply them now?", abort=True)
    try:
        result = apply(db, migrations, progress=output.info)
    except MigrationError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_FAILED) from None
    states, unknown = status(db, migrations)
    output.print_migrations(states, unknown, db.label, Format.table, just_applied=result.applied)
