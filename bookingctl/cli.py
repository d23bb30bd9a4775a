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
    from ops.targets import LocalDatabase, TargetError

    if (stack is None) == (local is None):
        output.error("name exactly one database: --stack STACK (remote D1) or --local FILE (SQLite)")
        raise typer.Exit(EXIT_USAGE)
    if local is None:
        return _remote(stack_config(str(stack), project_dir))
    try:
        return LocalDatabase(local)
    except TargetError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None


def _remote(cfg: StackConfig) -> RemoteDatabase:
    """The stack's D1 database; exit 2 when it cannot be found or no token is set."""
    from bookingctl import output
    from ops.targets import TargetError, remote_database

    try:
        return remote_database(cfg.account_id, cfg.database_name)
    except TargetError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None


def site_target(stack: str | None, base_url: str | None, local: Path | None,
                project_dir: Path | None) -> tuple[str | None, LocalDatabase | RemoteDatabase | None]:
    """(site URL, database) for the commands that check a deployed site: from --stack (its domain and
    D1), or from --base-url with an optional --local file."""
    if stack is not None:
        cfg = stack_config(stack, project_dir)
        return base_url or f"https://{cfg.domain}", _remote(cfg)
    return base_url, (open_target(None, local, project_dir) if local is not None else None)


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


def confirm_or_exit(question: str, yes: bool, action: str, *, honour_ci: bool = True) -> None:
    """Ask before a change unless --yes (or CI, where there is nobody to ask); never hang on a pipe."""
    import os

    from bookingctl import output

    if yes or (honour_ci and os.environ.get("CI")):
        return
    if not sys.stdin.isatty():
        output.error(f"refusing to {action} without confirmation on a non-interactive input; pass --yes")
        raise typer.Exit(EXIT_USAGE)
    typer.confirm(question, abort=True)


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

    from bookingctl import output
    from ops.migrations import MigrationError, apply, pending, status

    migrations = _migrations(folder, project_dir)
    db = open_target(stack, local, project_dir)
    todo = pending(db, migrations)
    if not todo:
        output.info(f"{db.label}: nothing to apply; all {len(migrations)} migrations are applied.")
        return
    output.info(f"{db.label}: {len(todo)} pending: {', '.join(m.name for m in todo)}")
    confirm_or_exit("Apply them now?", yes, "apply")
    try:
        result = apply(db, migrations, progress=output.info)
    except MigrationError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_FAILED) from None
    states, unknown = status(db, migrations)
    output.print_migrations(states, unknown, db.label, Format.table, just_applied=result.applied)


backup_app = typer.Typer(help="SQL-dump backups with manifests: create, list, verify, prune, restore.",
                         no_args_is_help=True)
app.add_typer(backup_app, name="backup")

DestOption = Annotated[Path | None, typer.Option(
    "--dest", help="Backup folder (default: backups/<stack> or backups/local under the project).")]


def _dest(dest: Path | None, stack: str | None, project_dir: Path | None) -> Path:
    return dest or (project_dir or Path.cwd()) / "backups" / (stack or "local")


def _backup_error(exc: Exception) -> typer.Exit:
    from bookingctl import output

    output.error(str(exc))
    return typer.Exit(EXIT_FAILED)


@backup_app.command("create")
def backup_create(
    stack: StackOption = None,
    local: LocalOption = None,
    dest: DestOption = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the manifest).")] = "",
    label: Annotated[str, typer.Option("--label", help="Name prefix, e.g. pre-deploy or daily.")] = "backup",
    upload: Annotated[bool, typer.Option(
        "--upload", help="Also copy it to the stack's R2 backup bucket (booking:backupBucketName).")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Dump the database to <dest>/<label>-<UTC time>.sql with a manifest; nothing half-written is kept."""
    from bookingctl import output
    from ops import backups

    if upload and stack is None:
        output.error("--upload needs --stack: the R2 bucket is the stack's booking:backupBucketName")
        raise typer.Exit(EXIT_USAGE)
    if local is not None or stack is None:
        db: LocalDatabase | RemoteDatabase = open_target(stack, local, project_dir)
        cfg = None
    else:
        cfg = stack_config(stack, project_dir)  # read once: the database and the bucket come from it
        db = _remote(cfg)
    folder = _dest(dest, stack, project_dir)
    try:
        with output.progress_reporter(f"backing up {db.label}") as progress:
            manifest = backups.create(db, folder, reason=reason, label=label, progress=progress)
        from ops.targets import RemoteDatabase

        if upload and cfg is not None and isinstance(db, RemoteDatabase):
            keys = backups.upload(db.client, cfg.account_id, cfg.backup_bucket_name, folder, manifest)
            output.info(f"uploaded to R2 bucket {cfg.backup_bucket_name}: {', '.join(keys)}")
    except Exception as exc:
        raise _backup_error(exc) from None
    finally:
        db.close()
    output.info(f"backup {manifest.name}: {manifest.size} bytes, "
                f"{sum(manifest.tables.values())} rows in {len(manifest.tables)} tables -> {folder}")
    sys.stdout.write(manifest.name + "\n")


@backup_app.command("list")
def backup_list(
    stack: Annotated[str | None, typer.Option("--stack", help="List backups/<stack>.")] = None,
    dest: DestOption = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
    r2: Annotated[bool, typer.Option("--r2", help="List the stack's R2 backup bucket instead.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Backups in the folder, oldest first (only complete ones: those with a manifest)."""
    from bookingctl import output
    from ops import backups

    if r2:
        from ops.targets import TargetError, cloudflare_client

        if stack is None:
            output.error("--r2 needs --stack")
            raise typer.Exit(EXIT_USAGE)
        cfg = stack_config(stack, project_dir)
        try:
            names = backups.list_r2(cloudflare_client(), cfg.account_id, cfg.backup_bucket_name)
        except TargetError as exc:
            output.error(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        sys.stdout.write("".join(f"{n}\n" for n in names))
        return
    try:
        found = backups.list_backups(_dest(dest, stack, project_dir))
    except backups.BackupError as exc:
        raise _backup_error(exc) from None
    output.print_backups(found, fmt)


@backup_app.command("verify")
def backup_verify(
    backup: Annotated[str, typer.Argument(help="Backup name, or the path of its .sql or manifest file.")],
    stack: Annotated[str | None, typer.Option("--stack", help="Look in backups/<stack>.")] = None,
    dest: DestOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Restore into a scratch SQLite (deleted afterwards): integrity_check, critical tables, row counts
    and checksum against the manifest. Prints a JSON report; exits 1 on any mismatch."""
    import json

    from ops import backups

    try:
        report = backups.verify(_dest(dest, stack, project_dir), backup)
    except backups.BackupError as exc:
        raise _backup_error(exc) from None
    sys.stdout.write(json.dumps({"backup": report.name, "ok": report.ok, "checks": report.checks}, indent=2) + "\n")
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@backup_app.command("prune")
def backup_prune(
    retention_days: Annotated[int | None, typer.Option(
        "--retention-days", help="Delete backups older than this (default: the stack's backupRetentionDays).")] = None,
    stack: Annotated[str | None, typer.Option("--stack", help="Prune backups/<stack>.")] = None,
    dest: DestOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Delete backups older than the retention (the guide could only list them)."""
    from bookingctl import output
    from ops import backups

    if retention_days is None:
        if stack is None:
            output.error("pass --retention-days N, or --stack STACK to use its booking:backupRetentionDays")
            raise typer.Exit(EXIT_USAGE)
        retention_days = stack_config(stack, project_dir).backup_retention_days
    try:
        old = backups.prune(_dest(dest, stack, project_dir), retention_days, dry_run=dry_run)
    except backups.BackupError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    verb = "would delete" if dry_run else "deleted"
    output.info(f"{verb} {len(old)} backup(s) older than {retention_days} days")
    for manifest in old:
        sys.stdout.write(f"{manifest.name}\t{manifest.created_at}\n")


@backup_app.command("restore")
def backup_restore(
    backup: Annotated[str | None, typer.Argument(help="Backup name or file (local restore).")] = None,
    local: Annotated[Path | None, typer.Option("--local", help="SQLite file to restore the backup into.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an existing --local file.")] = False,
    stack: Annotated[str | None, typer.Option("--stack", help="Time Travel restore of this stack's D1.")] = None,
    bookmark: Annotated[str | None, typer.Option("--bookmark", help="Time Travel bookmark to restore.")] = None,
    timestamp: Annotated[str | None, typer.Option("--timestamp", help="Or a time (ISO 8601) to restore to.")] = None,
    dest: DestOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Restore: a backup file into a local SQLite file (verified first, replaced atomically), or a
    stack's remote D1 to a Time Travel bookmark or timestamp (asks first; prints how to undo)."""
    from bookingctl import output
    from ops import backups

    if stack is None:
        if backup is None or local is None:
            output.error("local restore: bookingctl backup restore BACKUP --local FILE [--replace]")
            raise typer.Exit(EXIT_USAGE)
        try:
            manifest = backups.restore_local(_dest(dest, None, project_dir), backup, local, replace=replace)
        except backups.BackupError as exc:
            raise _backup_error(exc) from None
        output.info(f"restored backup {manifest.name} into {local}")
        return
    if (bookmark is None) == (timestamp is None) or backup is not None:
        output.error("remote restore: bookingctl backup restore --stack STACK (--bookmark B | --timestamp T)")
        raise typer.Exit(EXIT_USAGE)
    db = _remote(stack_config(stack, project_dir))
    point = f"bookmark {bookmark}" if bookmark else f"time {timestamp}"
    # A restore loses data: even in CI it needs an explicit --yes.
    confirm_or_exit(f"Restore {db.label} to {point}? Bookings made since then are lost.", yes, "restore",
                    honour_ci=False)
    kwargs = {"bookmark": bookmark} if bookmark else {"timestamp": timestamp}
    try:
        response = db.client.d1.database.time_travel.restore(db.database_id, account_id=db.account_id, **kwargs)
    except Exception as exc:
        raise _backup_error(exc) from None
    output.info(f"{db.label} restored to {point}. To undo: bookingctl backup restore --stack {stack} "
                f"--bookmark {response.previous_bookmark}")


@app.command("verify")
def verify_command(
    stack: Annotated[str | None, typer.Option(
        "--stack", help="Verify https://<booking:domain> and the stack's D1 (SELECT 1 through the API).")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="Site to verify instead, e.g. a preview.")] = None,
    local: LocalOption = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to keep retrying failing checks.")] = 120.0,
    request_timeout: Annotated[float, typer.Option("--request-timeout", help="Seconds per request.")] = 10.0,
    project_dir: ProjectDir = None,
) -> None:
    """Check the site root (200), /api/health (200 with a healthy body) and the database, retrying
    with backoff until --timeout. Prints JSON; exits 0 when healthy, 1 otherwise."""
    import json

    from bookingctl import output
    from ops.verify import verify

    if stack is None and base_url is None and local is None:
        output.error("name what to verify: --stack STACK, or --base-url URL [--local FILE]")
        raise typer.Exit(EXIT_USAGE)
    base_url, db = site_target(stack, base_url, local, project_dir)
    result = verify(base_url, db, deadline=timeout, request_timeout=request_timeout)
    sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    if not result.ok:
        failed = ", ".join(c.name for c in result.checks if not c.ok)
        output.error(f"verification failed after {result.elapsed:.0f} s: {failed}")
        raise typer.Exit(EXIT_FAILED)


@app.command("rollback")
def rollback_command(
    stack: Annotated[str, typer.Option("--stack", help="Roll back this stack's API Worker.")],
    to: Annotated[str | None, typer.Option("--to", help="Version id (default: previous 100% version).")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Recorded on the deployment.")] = "manual rollback",
    verify_after: Annotated[bool, typer.Option("--verify/--no-verify", help="Verify the site afterwards.")] = True,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds verification keeps retrying.")] = 120.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Deploy an earlier Worker version at 100 % (forcing when secrets changed since), then verify.
    The database is never touched: rolling bookings back would lose them. Prints JSON; exit 1 when
    the rollback or the verification after it fails."""
    import json

    from bookingctl import output
    from ops.rollback import RollbackError, rollback
    from ops.targets import TargetError, cloudflare_client, remote_database
    from ops.verify import verify

    cfg = stack_config(stack, project_dir)
    try:
        client = cloudflare_client()
    except TargetError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    confirm_or_exit(f"Roll {cfg.worker_name} back to {to or 'its previous version'}?", yes, "roll back")
    try:
        result = rollback(client, cfg.account_id, cfg.worker_name, to=to, reason=reason)
    except RollbackError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_FAILED) from None
    if result.forced:
        output.warn(f"secrets changed since version {result.to_version}: deployed with force; it runs with "
                    "today's secrets")
    report: dict[str, object] = {"script": result.script, "from": result.from_version, "to": result.to_version,
                                 "deploymentId": result.deployment_id, "forced": result.forced}
    ok = True
    if verify_after:
        db = remote_database(cfg.account_id, cfg.database_name, client=client)
        checked = verify(f"https://{cfg.domain}", db, deadline=timeout)
        report["verification"] = checked.to_dict()
        ok = checked.ok
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    if not ok:
        output.error("rolled back, but the site does not verify healthy; see the verification report")
        raise typer.Exit(EXIT_FAILED)


audit_app = typer.Typer(help="Security audit of the booking database.", no_args_is_help=True)
users_app = typer.Typer(help="Users, their permissions and dormant accounts.", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys and their usage.", no_args_is_help=True)
db_app = typer.Typer(help="Database analysis.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(apikeys_app, name="apikeys")
app.add_typer(db_app, name="db")

FormatOption = Annotated[Format, typer.Option("--format", "-f", help="table or json.")]


@audit_app.command("security")
def audit_security(
    stack: StackOption = None,
    local: LocalOption = None,
    fmt: FormatOption = Format.table,
    fail_on_findings: Annotated[bool, typer.Option(
        "--fail-on-findings", help="Exit 1 when anything is found.")] = False,
    failed_logins: Annotated[int, typer.Option(help="Flag IPs with more failed logins than this in 24 h.")] = 5,
    dormant_days: Annotated[int, typer.Option(help="Flag accounts unused for this many days.")] = 30,
    unused_key_days: Annotated[int, typer.Option(help="Flag API keys unused for this many days.")] = 90,
    requests_per_hour: Annotated[int, typer.Option(help="Flag key/IP pairs above this many requests/hour.")] = 100,
    project_dir: ProjectDir = None,
) -> None:
    """Failed logins, privilege escalation (the guide's precedence bug fixed), dormant accounts,
    expired/unused API keys, suspicious API usage; access patterns and role changes for review."""
    from bookingctl import output
    from ops.audit import Thresholds, security_audit

    db = open_target(stack, local, project_dir)
    report = security_audit(db, Thresholds(failed_logins, dormant_days, unused_key_days, requests_per_hour))
    output.print_audit(report, fmt)
    if fail_on_findings and report.findings:
        raise typer.Exit(EXIT_FAILED)


@users_app.command("list")
def users_list(stack: StackOption = None, local: LocalOption = None, fmt: FormatOption = Format.table,
               project_dir: ProjectDir = None) -> None:
    """All users with role, tenant, status, created and last login."""
    from bookingctl import output
    from ops.audit import users

    output.print_rows("Users", users(open_target(stack, local, project_dir)), fmt)


@users_app.command("permissions")
def users_permissions(user: Annotated[str, typer.Argument(help="User id or email.")], stack: StackOption = None,
                      local: LocalOption = None, fmt: FormatOption = Format.table,
                      project_dir: ProjectDir = None) -> None:
    """A user's permissions."""
    from bookingctl import output
    from ops.audit import user_permissions

    output.print_rows(f"Permissions of {user}", user_permissions(open_target(stack, local, project_dir), user), fmt)


@users_app.command("dormant")
def users_dormant(stack: StackOption = None, local: LocalOption = None, fmt: FormatOption = Format.table,
                  days: Annotated[int, typer.Option(help="Unused for this many days.")] = 30,
                  project_dir: ProjectDir = None) -> None:
    """Accounts that never logged in or not for --days."""
    from bookingctl import output
    from ops.audit import Thresholds, dormant

    db = open_target(stack, local, project_dir)
    output.print_rows("Dormant accounts", dormant(db, Thresholds(dormant_days=days)), fmt)


@apikeys_app.command("list")
def apikeys_list(stack: StackOption = None, local: LocalOption = None, fmt: FormatOption = Format.table,
                 project_dir: ProjectDir = None) -> None:
    """API keys with status Active, Expired or Unused (90 days)."""
    from bookingctl import output
    from ops.audit import api_keys

    output.print_rows("API keys", api_keys(open_target(stack, local, project_dir)), fmt)


@apikeys_app.command("usage")
def apikeys_usage(stack: StackOption = None, local: LocalOption = None, fmt: FormatOption = Format.table,
                  project_dir: ProjectDir = None) -> None:
    """API requests per day over 30 days: count, unique users, average response time."""
    from bookingctl import output
    from ops.audit import api_usage

    output.print_rows("API usage per day", api_usage(open_target(stack, local, project_dir)), fmt)


@db_app.command("stats")
def db_stats(stack: StackOption = None, local: LocalOption = None, fmt: FormatOption = Format.table,
             project_dir: ProjectDir = None) -> None:
    """Tables with row, index and column counts; indexes; size; whether the tenant query uses an index."""
    import json

    from bookingctl import output
    from ops.dbstats import stats

    result = stats(open_target(stack, local, project_dir))
    if fmt is Format.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    output.print_rows("Tables", result["tables"], fmt)
    output.print_rows("Indexes", result["indexes"], fmt)
    output.info(f"size: {result['size']}")
    verdict = "uses an index" if result["tenant_query_uses_index"] else "does NOT use an index"
    output.info(f"appointments-by-tenant query {verdict}: {'; '.join(result['tenant_query_plan'])}")


monitor_app = typer.Typer(help="Health report and performance monitor.", no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")


@monitor_app.command("health")
def monitor_health(
    stack: Annotated[str | None, typer.Option("--stack", help="Check https://<domain>/api/health and the D1.")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="Site to check instead.")] = None,
    local: LocalOption = None,
    paystack_url: Annotated[str | None, typer.Option(help="Paystack endpoint to probe.")] = None,
    google_calendar_url: Annotated[str | None, typer.Option(help="Google Calendar endpoint to probe.")] = None,
    whatsapp_url: Annotated[str | None, typer.Option(help="WhatsApp (Graph API) endpoint to probe.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per check.")] = 10.0,
    webhook: Annotated[str | None, typer.Option("--webhook", help="POST an alert here when FAIL.")] = None,
    project_dir: ProjectDir = None,
) -> None:
    """The guide's health JSON: main application, database, Paystack, Google Calendar and WhatsApp,
    checked concurrently. Exit 1 when the overall status is FAIL (and alert --webhook)."""
    import json

    from bookingctl import output
    from ops.monitor import INTEGRATIONS, health, post_webhook

    base_url, db = site_target(stack, base_url, local, project_dir)
    if base_url is None:
        output.error("name what to check: --stack STACK, or --base-url URL [--local FILE]")
        raise typer.Exit(EXIT_USAGE)
    endpoints = dict(INTEGRATIONS)
    for name, url in (("paystack", paystack_url), ("google_calendar", google_calendar_url),
                      ("whatsapp", whatsapp_url)):
        if url:
            endpoints[name] = url
    report = health(base_url.rstrip("/") + "/api/health", db, endpoints, timeout=timeout)
    sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    if report.overall_status == "FAIL":
        failed = ", ".join(name for name, c in report.checks.items() if c["status"] == "FAIL")
        output.error(f"critical health check failure: {failed}")
        if webhook and not post_webhook(webhook, f"Health check FAILED for {base_url}: {failed}"):
            output.warn(f"the alert could not be delivered to {webhook}")
        raise typer.Exit(EXIT_FAILED)


@monitor_app.command("perf")
def monitor_perf(
    url: Annotated[list[str] | None, typer.Option("--url", help="URL to sample (repeatable).")] = None,
    stack: Annotated[str | None, typer.Option(
        "--stack", help="Default URLs: root, /book/<salon>, /api/health.")] = None,
    samples: Annotated[int, typer.Option("--samples", min=1, help="Requests per URL.")] = 5,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Requests in flight.")] = 5,
    out: Annotated[Path | None, typer.Option("--out", help="Write the metrics JSON here too.")] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Average response time limit (s).")] = 2.0,
    success: Annotated[float, typer.Option("--success", help="Success-rate floor (%).")] = 99.0,
    project_dir: ProjectDir = None,
) -> None:
    """Per URL: average, p50, p95 and max response time and success rate; exit 1 on a breach of the
    guide's thresholds (2.0 s average, 99 % success)."""
    import json

    from bookingctl import output
    from ops.monitor import default_urls, perf

    urls = list(url or [])
    if not urls:
        if stack is None:
            output.error("pass --url URL (repeatable) or --stack STACK for its default URLs")
            raise typer.Exit(EXIT_USAGE)
        urls = default_urls(stack_config(stack, project_dir).domain)
    metrics = perf(urls, samples=samples, concurrency=concurrency, response_threshold=threshold,
                   success_threshold=success)
    text = json.dumps([m.to_dict() for m in metrics], indent=2) + "\n"
    if out is not None:
        out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    breaches = [m.url for m in metrics if m.response_breach or m.success_breach]
    if breaches:
        output.error(f"threshold breached for: {', '.join(breaches)}")
        raise typer.Exit(EXIT_FAILED)


@app.command("watch")
def watch_command(
    stack: Annotated[str, typer.Option("--stack", help="Watch https://<booking:domain>/api/health.")],
    duration: Annotated[str, typer.Option("--duration", help="How long, e.g. 10m, 600s, 1h.")] = "10m",
    base_url: Annotated[str | None, typer.Option("--base-url", help="Probe this site instead of the domain.")] = None,
    rollback_on_trigger: Annotated[bool, typer.Option(
        "--rollback/--no-rollback", help="Roll the Worker back when a trigger fires.")] = True,
    project_dir: ProjectDir = None,
) -> None:
    """Sample the site after a deployment and roll the Worker back when a guide trigger fires: error rate
    > 5 % over 5 minutes, response time > 2 s for 10 minutes, database failures (thresholds:
    booking:watch). Prints JSON; exit 1 when a trigger fired."""
    import json

    from bookingctl import output
    from ops.rollback import RollbackError, rollback
    from ops.targets import TargetError, cloudflare_client
    from ops.verify import Clock
    from ops.watch import WatchSettings, http_probe, watch

    seconds = _duration(duration)
    cfg = stack_config(stack, project_dir)
    t = cfg.watch
    settings = WatchSettings(duration=seconds, interval=t.interval_seconds, error_rate_percent=t.error_rate_percent,
                             error_window=t.error_window_seconds, latency_seconds=t.latency_seconds,
                             latency_window=t.latency_window_seconds, database_failures=t.database_failures)
    clock = Clock()
    url = (base_url or f"https://{cfg.domain}").rstrip("/") + "/api/health"

    def roll_back(reason: str) -> object:
        try:
            return rollback(cloudflare_client(), cfg.account_id, cfg.worker_name, reason=f"watch: {reason}")
        except (RollbackError, TargetError) as exc:
            output.error(f"automatic rollback failed: {exc}")
            return {"error": str(exc)}

    result = watch(http_probe(url, clock), settings, clock, roll_back if rollback_on_trigger else None,
                   log=output.info)
    sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    if result.trigger:
        raise typer.Exit(EXIT_FAILED)


def _duration(text: str) -> float:
    import re

    from bookingctl import output

    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh]?)", text.strip())
    if not match:
        output.error(f"--duration {text!r}: use a number with s, m or h, e.g. 10m")
        raise typer.Exit(EXIT_USAGE)
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


report_app = typer.Typer(help="Reports.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("daily")
def report_daily(
    stack: StackOption = None,
    local: LocalOption = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", help="Site to probe (default with --stack: its domain).")] = None,
    out: Annotated[Path, typer.Option(
        "--out", help="Folder for daily-report-<date>.json and .md.")] = Path("reports"),
    webhook: Annotated[str | None, typer.Option("--webhook", help="POST a one-line status here (retried).")] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Uptime, response time, bookings today/this week/total, server errors, and a summary with key
    issues and recommendations; JSON and Markdown (with a bookings-per-day chart) into --out."""
    from bookingctl import output
    from ops.monitor import post_webhook
    from ops.report import build, write

    db = open_target(stack, local, project_dir)
    if stack is not None and base_url is None:
        base_url = f"https://{stack_config(stack, project_dir).domain}"
    report = build(db, base_url)
    for path in write(report, out):
        output.info(f"wrote {path}")
    sys.stdout.write(report.one_line() + "\n")
    if webhook and not post_webhook(webhook, report.one_line()):
        output.warn(f"the daily status could not be delivered to {webhook}")


EXIT_CHANGES = 3


@app.command("diff")
def diff_command(
    stack: Annotated[str, typer.Argument(help="Stack to compare.")],
    base: Annotated[str, typer.Option("--base", help="Git ref to compare the working tree with.")],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, json or markdown.")] = Format.table,
    policy_config: Annotated[Path | None, typer.Option("--policy-config", help="As for plan, both sides.")] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Desired-state diff of STACK between --base and the working tree: resources added, updated,
    replaced and deleted with their changed inputs (secrets redacted; data-bearing and protected
    resources first, with a warning), and policy results new / fixed / still failing. Exit 0 no
    changes, 3 changes, 1 new mandatory violations, 2 usage errors."""
    import json

    from bookingctl import output
    from bookingctl.diff import DiffError, diff, summary_line, to_json, to_markdown

    root = project_dir or Path.cwd()
    try:
        result = diff(root.resolve(), stack, base, policy_config)
    except DiffError as exc:
        output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    if fmt is Format.json:
        sys.stdout.write(json.dumps(to_json(result), indent=2, default=str) + "\n")
    elif fmt is Format.markdown:
        sys.stdout.write(to_markdown(result))
    else:
        for change in result.warnings:
            output.warn(change.warning or "")
        sys.stdout.write(summary_line(result) + "\n")
        if result.changes:
            output.print_rows("Changes", [
                {"action": c.action, "type": c.type, "name": c.name, "changed inputs": ", ".join(c.inputs)}
                for c in result.changes], Format.table)
    if result.new_mandatory:
        raise typer.Exit(EXIT_FAILED)
    if result.changes:
        raise typer.Exit(EXIT_CHANGES)
