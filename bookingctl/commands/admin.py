"""`bookingctl audit`, `users`, `apikeys` and `db`: the guide's security and administration queries."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from booking_shared import columns
from bookingctl import output, reports
from bookingctl.errors import EXIT_FAILED, Failed, UsageError
from bookingctl.options import (
    FormatOption,
    LocalOption,
    ProgressOption,
    ProjectDir,
    StackOption,
    TableOrJson,
    open_database,
    project_root,
)
from ops.database.scrub import scrub
from ops.database.seed import seed
from ops.observation.audit import Thresholds, api_keys, api_usage, dormant, security_audit, user_permissions, users
from ops.observation.dbstats import stats
from ops.targets import LocalDatabase

audit_app = typer.Typer(help="Security audit of the booking database.", no_args_is_help=True)
users_app = typer.Typer(help="Users, their permissions and dormant accounts.", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys and their usage.", no_args_is_help=True)
db_app = typer.Typer(help="Database analysis.", no_args_is_help=True)

AsOfOption = Annotated[str | None, typer.Option(
    "--as-of", help="Judge as of this UTC time (ISO 8601, e.g. 2026-11-26T12:00:00) instead of now, to "
                    "reproduce an earlier report.")]
_DAYS = {"min": 1, "max": 36_500}


def as_of(value: str | None) -> dt.datetime | None:
    """--as-of as an aware UTC datetime (None: now)."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--as-of {value!r}: use an ISO 8601 time such as 2026-11-26T12:00:00") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


@audit_app.command("security")
def audit_security(
    stack: StackOption = None,
    local: LocalOption = None,
    fmt: FormatOption = TableOrJson.table,
    fail_on_findings: Annotated[bool, typer.Option(
        "--fail-on-findings", help="Exit 1 when anything is found.")] = False,
    failed_logins: Annotated[int, typer.Option(
        min=0, max=1_000_000, help="Flag IPs with more failed logins than this in 24 h.")] = 5,
    dormant_days: Annotated[int, typer.Option(**_DAYS, help="Flag accounts unused for this many days.")] = 30,
    unused_key_days: Annotated[int, typer.Option(**_DAYS, help="Flag API keys unused for this many days.")] = 90,
    requests_per_hour: Annotated[int, typer.Option(
        min=1, max=1_000_000_000, help="Flag key/IP pairs above this many requests/hour.")] = 100,
    at: AsOfOption = None,
    show_progress: ProgressOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Failed logins, privilege escalation, dormant accounts, expired or unused API keys, suspicious
    API usage; access patterns and role changes for review."""

    output.set_progress(show_progress)

    with open_database(stack, local, project_dir) as db:
        report = security_audit(db, Thresholds(failed_logins, dormant_days, unused_key_days, requests_per_hour),
                                now=as_of(at))
    reports.print_audit(report, fmt)
    if fail_on_findings and report.findings:
        raise typer.Exit(EXIT_FAILED)


@users_app.command("list")
def users_list(stack: StackOption = None, local: LocalOption = None, fmt: FormatOption = TableOrJson.table,
               show_progress: ProgressOption = None, project_dir: ProjectDir = None) -> None:
    """All users with role, tenant, status, created and last login."""

    output.set_progress(show_progress)

    with open_database(stack, local, project_dir) as db:
        output.print_rows("Users", users(db), fmt)


@users_app.command("permissions")
def users_permissions(user: Annotated[str, typer.Argument(help="User id or email.")], stack: StackOption = None,
                      local: LocalOption = None, fmt: FormatOption = TableOrJson.table,
                      show_progress: ProgressOption = None, project_dir: ProjectDir = None) -> None:
    """A user's permissions (exit 1 when there is no such user)."""

    output.set_progress(show_progress)

    with open_database(stack, local, project_dir) as db:
        rows = user_permissions(db, user)
        if rows is None:
            raise Failed(f"{db.label} has no user with id or email {user!r}; `bookingctl users list` lists them")
    output.print_rows(f"Permissions of {user}", rows, fmt)


@users_app.command("dormant")
def users_dormant(stack: StackOption = None, local: LocalOption = None, fmt: FormatOption = TableOrJson.table,
                  days: Annotated[int, typer.Option(**_DAYS, help="Unused for this many days.")] = 30,
                  at: AsOfOption = None, show_progress: ProgressOption = None, project_dir: ProjectDir = None) -> None:
    """Accounts that never logged in or not for --days."""

    output.set_progress(show_progress)

    with open_database(stack, local, project_dir) as db:
        output.print_rows("Dormant accounts", dormant(db, Thresholds(dormant_days=days), now=as_of(at)), fmt)


@apikeys_app.command("list")
def apikeys_list(stack: StackOption = None, local: LocalOption = None, fmt: FormatOption = TableOrJson.table,
                 at: AsOfOption = None, show_progress: ProgressOption = None, project_dir: ProjectDir = None) -> None:
    """API keys with status Active, Expired or Unused (90 days)."""

    output.set_progress(show_progress)

    with open_database(stack, local, project_dir) as db:
        output.print_rows("API keys", api_keys(db, now=as_of(at)), fmt)


@apikeys_app.command("usage")
def apikeys_usage(stack: StackOption = None, local: LocalOption = None, fmt: FormatOption = TableOrJson.table,
                  at: AsOfOption = None, show_progress: ProgressOption = None, project_dir: ProjectDir = None) -> None:
    """API requests per day over 30 days: count, unique users, average response time."""

    output.set_progress(show_progress)

    with open_database(stack, local, project_dir) as db:
        output.print_rows("API usage per day", api_usage(db, now=as_of(at)), fmt)


@db_app.command("stats")
def db_stats(stack: StackOption = None, local: LocalOption = None, fmt: FormatOption = TableOrJson.table,
             show_progress: ProgressOption = None, project_dir: ProjectDir = None) -> None:
    """Tables with row, index and column counts; indexes; size; whether the tenant query uses an index."""

    output.set_progress(show_progress)

    with open_database(stack, local, project_dir) as db:
        result = stats(db)
    if fmt == TableOrJson.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    output.print_rows("Tables", result["tables"], fmt)
    output.print_rows("Indexes", result["indexes"], fmt)
    size = result["size"]
    summary = [{"item": "size", "value": f"{size['size_bytes']:,} bytes ({size['page_count']:,} pages of "
                                          f"{size['page_size']:,} bytes)" if "size_bytes" in size
                else f"unknown ({size.get('error')})"},
               {"item": "appointments-by-tenant query",
                "value": ("uses an index" if result["tenant_query_uses_index"] else "does NOT use an index")
                + ": " + "; ".join(result["tenant_query_plan"])}]
    output.print_rows("Summary", summary, fmt)


@db_app.command("seed")
def db_seed(
    local: Annotated[Path, typer.Option("--local", help="The migrated, empty SQLite file to fill.")],
    at: Annotated[str | None, typer.Option(
        "--as-of", help="Date the data relative to this UTC time (ISO 8601; default: the start of this hour). The "
                        "same time gives the same rows.")] = None,
) -> None:
    """Fill a local database with realistic fake data for two salons (local only: never a stack).

    Users, services, appointments over the past 30 and next 14 days, sessions, permissions, API keys
    and usage, logins (a failed-login burst included) and admin actions, dated back from --as-of so
    `report`, `audit`, `users` and `tenants` all have something to show. Deterministic; refuses a
    database that already has rows.
    """

    moment = as_of(at) or dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    with LocalDatabase(local) as db:  # --local only: there is no way to seed a stack's database
        result = seed(db, moment)
    output.print_rows(f"Seeded {local} (as of {moment:%Y-%m-%d %H:%M} UTC)",
                      [{"table": t, "rows": n} for t, n in result.rows.items()], TableOrJson.table)


SALT_ENV = "BOOKING_SCRUB_SALT"


@db_app.command("scrub")
def db_scrub(
    local: Annotated[Path, typer.Option("--local", help="The SQLite copy to scrub in place (never a stack's "
                                                        "database, never a backup's files).")],
    project_dir: ProjectDir = None,
) -> None:
    """Replace every personal value of a local copy with a deterministic fake (local only).

    By migrations/columns.yaml: ids, foreign keys, statuses and times are kept (rows, joins and the
    spread of bookings over time stay real); names, e-mails, phones, notes, payment references, key
    hashes, session tokens, IPs and user agents are replaced by fakes keyed by the salt in
    BOOKING_SCRUB_SALT (a secret of at least 16 characters: the same salt gives the same copy).
    Refuses, changing nothing, when a column the file does not classify holds text.
    """
    salt = os.environ.get(SALT_ENV, "")
    if len(salt.encode()) < 16:
        raise UsageError(f"set {SALT_ENV} to a secret of at least 16 characters (e.g. `export {SALT_ENV}=$(openssl "
                         "rand -hex 16)`); it keys the fakes and is never printed")
    if not local.is_file():
        raise UsageError(f"--local {local}: no such SQLite file")
    folder = project_root(project_dir) / "migrations"
    classification = columns.load(folder)
    with LocalDatabase(local) as db:
        report = scrub(db.conn, classification, salt.encode(), folder)
    output.print_rows(f"Scrubbed {local} (salt {report.salt_id}...; rows unchanged)",
                      [{"column": c, "values replaced": n} for c, n in sorted(report.replaced.items())],
                      TableOrJson.table)
