"""A preview's database loaded with staging's newest verified backup, migrated and scrubbed, rows only.

The order matters, and each step is an existing, tested part:
1. the newest backup of the source database in its bucket, fetched and checked against its manifest
   (size, sha256: ops/backups/bucket.fetch_newest), loaded into a scratch SQLite under the dump
   authorizer (ops/backups/catalog.loaded);
2. the pull request's pending migrations applied to that scratch copy (ops/database/migrations), so
   the rows have the schema the preview's Worker reads; a backup recording a migration the checkout
   does not have (a branch behind main) is refused first: merge main;
3. every personal value replaced (ops/database/scrub: refuses, changing nothing, when a column holds
   text that migrations/columns.yaml does not classify);
4. the rows written into the preview's D1, whose schema the deploy hook (or `preview up` itself)
   created from the same migrations: tables parents first, one INSERT per row naming its columns,
   in batches under D1's statement limit, foreign keys deferred in each batch; then the counts are
   read back and must equal the scratch copy's.

A completed load writes a row into MARKER last; `preview up` on a push then keeps what the preview
holds (a reviewer's test bookings). Without that row (a new preview, whose migrations may have written
reference rows; or a load cut short by a failure, Ctrl-C or a cancelled job) every table is emptied
first and the load runs again, so a half-written copy is never kept as data. The scratch copy is
removed in every case.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from booking_shared import columns
from booking_shared.errors import InputError, OperationFailed
from booking_shared.limits import D1_STATEMENT_BYTES
from booking_shared.wrangler_config import MigrationSettings
from ops.backups import catalog
from ops.backups.bucket import fetch_newest
from ops.backups.manifest import BackupError
from ops.database import migrations, schema
from ops.database.scrub import scrub
from ops.database.sqlscript import quote_ident, quote_literal
from ops.targets import Bucket, LocalDatabase, RemoteDatabase
from ops.tenants.tenant_changes import batches

Log = Callable[[str], None]
DEFER = "PRAGMA defer_foreign_keys = on;"
# The record of a completed load, in the preview's own database (never in staging's or production's).
MARKER = "_booking_preview_load"


class PreviewDataError(OperationFailed):
    """The scrubbed data could not be loaded; the message says what was left and what to run."""


class BranchBehind(InputError):
    """Staging's backup has migrations the pull request's checkout does not: its branch is behind."""


def _not_behind(recorded: dict[str, str], found: list[migrations.Migration], source: str, backup: str) -> None:
    """Refuse, before anything is scrubbed or written, a backup whose schema this checkout does not know.

    Why here and not at the scrubber: the scrubber would ask to classify main's new columns in this
    branch's columns.yaml (duplicating main's change), and a new column that is not text would fail
    the load on every run; the fix is to merge main, which brings its migrations and classification."""
    ahead = [name for name in recorded if name not in {m.name for m in found}]
    if ahead:
        raise BranchBehind(f"this branch is behind: {source}'s backup {backup} has migration(s) {', '.join(ahead)} "
                           "this checkout does not; merge main (or rebase onto it) and push, then run `bookingctl "
                           "preview up` again; nothing was written to the preview's database")


@dataclass
class Loaded:
    backup: str | None  # the backup loaded; None when the preview already held rows (nothing loaded)
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows written
    salt_id: str = ""


def loaded(db: RemoteDatabase) -> str | None:
    """The backup a completed load wrote into `db`, or None (never loaded, or a load cut short)."""
    if MARKER not in _tables(db):
        return None
    rows = db.query(f"SELECT backup FROM {quote_ident(MARKER)} LIMIT 1")
    return str(rows[0]["backup"]) if rows else None


def _tables(db: RemoteDatabase) -> list[str]:
    return [str(r["name"]) for r in db.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")]


def not_behind(source: Bucket, folder: Path, source_database: str, settings: MigrationSettings, log: Log) -> None:
    """Fetch the newest verified backup of `source_database` into `folder` and refuse (BranchBehind)
    when it records migrations this checkout lacks: `preview up` asks this before its plan, so a
    branch behind main changes nothing, destroys no other preview for the cap, and is told to merge
    main; the load after `up` finds the same backup in `folder` (fetched once)."""
    try:
        manifest = fetch_newest(source, folder, source_database)
    except BackupError as exc:
        # Staging's backups are what previews load: say how to make one of staging's, by name.
        raise PreviewDataError(f"{exc}; for previews: `bookingctl backup create --stack staging --upload` (the "
                               "scheduled workflow's staging-backup job does it daily); nothing was created") from exc
    with catalog.loaded(folder, manifest.name) as (_, conn):
        path = Path(conn.execute("PRAGMA database_list").fetchone()[2])
        with LocalDatabase(path) as local:
            recorded = migrations.applied_names(local, settings.table)
    _not_behind(recorded, migrations.discover(settings.folder, pattern=settings.pattern), source_database,
                manifest.name)
    log(f"backup {manifest.name} of {source_database}: no migration this checkout lacks")


def load_scrubbed(target: RemoteDatabase, source: Bucket, source_database: str, settings: MigrationSettings, *,
                  salt: bytes, log: Log, classification: Path | None = None, folder: Path | None = None) -> Loaded:
    """Steps 1-4 above; `settings`: the project's migrations (folder, pattern, tracking table);
    `folder`: where the backup was fetched already (`not_behind`), else a temporary one."""
    table = settings.table
    done = loaded(target)
    if done is not None:
        log(f"{target.label} holds the load of backup {done} and what reviewers did since: kept as it is "
            "(destroy the preview to load fresh data)")
        return Loaded(None)
    with tempfile.TemporaryDirectory(prefix="booking-preview-") as scratch:
        dest = folder or Path(scratch)
        manifest = fetch_newest(source, dest, source_database)  # not downloaded again when `folder` has it
        log(f"loading backup {manifest.name} of {source_database} (verified against its manifest)")
        with catalog.loaded(dest, manifest.name) as (_, conn):
            path = Path(conn.execute("PRAGMA database_list").fetchone()[2])
            found = migrations.discover(settings.folder, pattern=settings.pattern)
            with LocalDatabase(path) as local:
                _not_behind(migrations.applied_names(local, table), found, source_database, manifest.name)
                applied = migrations.apply(local, found, log=log, table=table)
            log(f"{len(applied.applied)} pending migration(s) applied to the scratch copy")
            named_in = classification.parent if classification else settings.folder
            kinds = columns.load_file(classification) if classification else columns.load(settings.folder)
            report = scrub(conn, kinds, salt, named_in)
            log(f"personal values replaced (salt {report.salt_id}...)")
            rows = _write(target, conn, table, manifest.name, log)
    return Loaded(manifest.name, rows, report.salt_id)


def parents_first(conn: sqlite3.Connection, tables: list[str]) -> list[str]:
    """`tables` ordered so that a table comes after every table its foreign keys name (cycles and
    self-references keep their place: deferred foreign keys cover them within a batch)."""
    wanted = {t.lower(): t for t in tables}
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: frozenset[str]) -> None:
        if name in seen or name in path:
            return
        for fk in schema.foreign_keys(conn, wanted[name]):
            parent = fk.parent.lower()
            if parent in wanted and parent != name:
                visit(parent, path | {name})
        seen.add(name)
        done.append(wanted[name])

    for name in sorted(wanted):
        visit(name, frozenset())
    return done


def _inserts(conn: sqlite3.Connection, table: str) -> list[str]:
    names = [c.name for c in schema.columns(conn, table) if not c.hidden]
    listed = ", ".join(quote_ident(n) for n in names)
    values = " || ',' || ".join(f"quote({quote_ident(n)})" for n in names)
    out = []
    for (row,) in conn.execute(f"SELECT {values} FROM {quote_ident(table)}"):
        statement = f"INSERT INTO {quote_ident(table)} ({listed}) VALUES ({row});"
        if len(statement.encode()) > D1_STATEMENT_BYTES:
            raise PreviewDataError(f"a row of {table} needs a statement of {len(statement.encode()):,} bytes, over "
                                   f"D1's {D1_STATEMENT_BYTES:,}; nothing was written")
        out.append(statement)
    return out


def _write(target: RemoteDatabase, conn: sqlite3.Connection, tracking: str, backup: str, log: Log) -> dict[str, int]:
    # The tracking table is the preview's own (its migrations); the record of approved unsafe
    # migrations is staging's audit trail, which the preview's database (migrated without any
    # override) has no table for.
    bookkeeping = {tracking.lower(), f"{tracking}_unsafe".lower()}
    tables = [t for t in parents_first(conn, schema.ordinary_tables(conn)) if t.lower() not in bookkeeping]
    live = {t.lower() for t in _tables(target)}
    missing = [t for t in tables if t.lower() not in live]
    if missing:
        raise PreviewDataError(f"{target.label} has no table {', '.join(missing)}, which the migrated backup has: "
                               "its migrations are not applied; nothing was written")
    statements: list[str] = []
    counts: dict[str, int] = {}
    for table in tables:
        rows = _inserts(conn, table)
        counts[table] = len(rows)
        statements.extend(rows)
    groups = batches(statements)
    # Whatever is there without a completed load's record (rows a migration seeded, a load cut short)
    # goes first: the copy is loaded whole or not at all.
    _empty(target, tables, log)
    try:
        for number, batch in enumerate(groups, 1):
            target.write_once("\n".join([DEFER, *batch]), log)
            log(f"batch {number}/{len(groups)}: {len(batch)} row(s) written")
        found = {t: int(target.query(f"SELECT count(*) AS n FROM {quote_ident(t)}")[0]["n"]) for t in tables}
        if found != counts:
            wrong = ", ".join(f"{t} {found[t]} (expected {counts[t]})" for t in tables if found[t] != counts[t])
            raise PreviewDataError(f"{target.label} holds other counts than the scrubbed copy: {wrong} (a trigger "
                                   "of the schema writing rows?)")
        target.write_once(f"CREATE TABLE IF NOT EXISTS {quote_ident(MARKER)} (backup TEXT NOT NULL, loaded_at TEXT "
                          f"NOT NULL); INSERT INTO {quote_ident(MARKER)} VALUES ({quote_literal(backup)}, "
                          "datetime('now'));", log)
    except BaseException as exc:  # Ctrl-C and a cancelled job too: nothing half-written is left as data
        emptied = _try_empty(target, tables, log)
        if isinstance(exc, PreviewDataError | KeyboardInterrupt | SystemExit):
            raise
        where = ("the rows written were deleted again" if emptied else
                 "some rows written may remain, and the next `bookingctl preview up` empties them first")
        raise PreviewDataError(f"loading {target.label} failed ({exc}); {where}; run `bookingctl preview up` "
                               "again") from exc
    return counts


def _empty(target: RemoteDatabase, tables: list[str], log: Log) -> None:
    """Delete every row of `tables`, children first, in one request (D1 runs it as one transaction)."""
    target.write_once("\n".join([DEFER, *(f"DELETE FROM {quote_ident(t)};" for t in reversed(tables))]), log)


def _try_empty(target: RemoteDatabase, tables: list[str], log: Log) -> bool:
    try:
        _empty(target, tables, log)
    except Exception as exc:
        log(f"could not delete the rows written to {target.label} ({exc}); the next `bookingctl preview up` "
            "empties them before loading")
        return False
    log(f"the rows written to {target.label} were deleted again")
    return True
