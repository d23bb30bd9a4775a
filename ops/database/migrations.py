"""D1 migrations in `migrations/NNNN_name.sql`, tracked the way wrangler tracks them.

Where a project's wrangler file moves the folder, nests the files or renames the table, the same
settings are read (`booking_shared.wrangler_config`): callers pass its `pattern` to `discover` and its `table`.

Applied migrations are rows of `d1_migrations` (id, unique name = file name, applied_at), the
table `wrangler d1 migrations apply` creates and reads, and each row is written in the same unit
of work as its migration, so ours and wrangler's agree on what is applied.

Atomicity: on a local file every pending migration runs inside one SQLite transaction, so a failure
leaves schema and data exactly as before. On a remote D1 each migration goes in one `/query`
request together with its `d1_migrations` row, and D1 runs a request's statements as one
transaction: wrangler sends exactly that request and documents that a failing migration "will be
rolled back, and the previous successful migration will remain applied" (workers-sdk
packages/wrangler/src/d1/migrations/apply.ts, text taken from developers.cloudflare.com/d1/
wrangler-commands; buildMigrationQuery in helpers.ts). So a failure leaves the failing migration
unapplied and the earlier ones of the run applied and recorded. The database is never restored
automatically: a Time Travel restore rewinds every booking written since the bookmark while the
serving version kept taking them. The error prints the bookmark, what a restore would erase and the
command; `restore_on_failure=True` (`migrate apply --restore-on-failure`) opts in.

Migrations `migrate check` calls unsafe are applied only with an override (`Override`), recorded in
`d1_migrations_unsafe` in the same unit of work as the migration and its `d1_migrations` row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from booking_shared.errors import InputError, OperationFailed
from booking_shared.wrangler_config import MigrationSettings, files
from ops.database import migration_asserts
from ops.database.migration_asserts import Check
from ops.database.sqlscript import (
    Statement,
    is_transaction_control,
    quote_ident,
    quote_literal,
    split_statements,
    strip_comments,
    terminated,
)
from ops.targets import AnswerLost, Database, LocalDatabase, RemoteDatabase

TABLE = "d1_migrations"  # wrangler's default; a wrangler file's `migrations_table` may rename it


def create_table_sql(table: str = TABLE) -> str:
    """wrangler's own CREATE TABLE for the tracking table, byte for byte (quoted name, tab indents), so
    `sqlite_schema` reads the same whichever tool made it (workers-sdk f8308360
    packages/wrangler/src/d1/migrations/helpers.ts `getCreateMigrationsTableQuery`)."""
    return (f"CREATE TABLE IF NOT EXISTS {quote_ident(table)}(\n"
            "\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n"
            "\t\tname       TEXT UNIQUE,\n"
            "\t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n"
            ");")


CREATE_TABLE = create_table_sql()
# The names wrangler applies, in its order: a number, "_", a description (`wrangler d1 migrations create
# DB "Add Staff Table"` writes 0002_Add_Staff_Table.sql: its message with spaces as "_", the number
# padded to four digits), ordered by the number of the first path segment (workers-sdk f8308360
# packages/wrangler/src/d1/migrations/create.ts, helpers.ts `compareMigrationPaths`). Unnumbered files,
# which wrangler applies last, and control characters are refused here.
_FILE = re.compile(r"^(\d+)_[^/\x00-\x1f\x7f]*(/[^/\x00-\x1f\x7f]+)*$")
NAMES_ACCEPTED = ("NNNN_description.sql: a number, '_', then any description without control characters "
                  "(wrangler's `d1 migrations create` names, such as 0002_Add_Staff_Table.sql, included)")

Log = Callable[[str], None]


class MigrationError(OperationFailed):
    """A migration could not be applied; `str()` says which, where, and the state left."""


class MigrationFileError(MigrationError, InputError):
    """The migration files themselves are unusable (bad name, number, encoding): fix the files."""


@dataclass(frozen=True)
class Migration:
    name: str  # the file name, as recorded in d1_migrations
    path: Path
    statements: tuple[Statement, ...]
    sha256: str
    checks: tuple[Check, ...] = ()  # its `-- check:` assertions (ops/database/migration_asserts.py)


@dataclass(frozen=True)
class MigrationState:
    name: str
    applied_at: str | None

    @property
    def applied(self) -> bool:
        return self.applied_at is not None


# The companion log of overrides: which unsafe migration was applied anyway, why, and on whose word.
UNSAFE_TABLE = f"{TABLE}_unsafe"
CREATE_UNSAFE_TABLE = (f"CREATE TABLE IF NOT EXISTS {UNSAFE_TABLE}(\n"
                       "    id           INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                       "    name         TEXT NOT NULL,\n"
                       "    reason       TEXT NOT NULL,\n"
                       "    findings     TEXT NOT NULL,\n"
                       "    approved_via TEXT NOT NULL,\n"
                       "    applied_at   TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n"
                       ");")
# Columns that say when a row was written, as migrations/0001 names them: what a restore to an
# earlier bookmark would erase is counted through these.
WRITE_TIME_COLUMNS = ("created_at", "updated_at", "timestamp", "granted_at", "last_login", "last_used")


@dataclass(frozen=True)
class Override:
    """Why an unsafe migration is applied anyway: recorded beside its d1_migrations row."""

    reason: str
    findings: str  # the check's error findings, one line
    approved_via: str  # "bookingctl migrate apply --allow-unsafe" or "booking:approvedUnsafeMigrations"


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    bookmark: str | None = None  # remote: where the database was before, restorable


def discover(folder: Path, *, strict: bool = True, pattern: str = "*.sql") -> list[Migration]:
    """Read every migration file matching `pattern` under `folder`, ordered by number; refuse stray or
    duplicate numbers. A file's name, as recorded, is its path relative to `folder` (as wrangler's).

    `strict=False` (for `migrate check`, which reports them as findings with their line instead)
    lets transaction control through; nothing that applies migrations reads files that way.
    """
    if not folder.is_dir():
        raise MigrationFileError(f"no migrations folder at {folder}; pass --dir FOLDER, or run from the project "
                                 "(or pass --project-dir)")
    found: dict[int, str] = {}
    for name in files(MigrationSettings(folder, pattern)):
        match = _FILE.match(name)
        if not match:
            raise MigrationFileError(f"{folder / name}: migration files are named {NAMES_ACCEPTED}; rename it")
        number = int(match.group(1))
        if number in found:
            raise MigrationFileError(f"{name} and {found[number]} share number {number:04d}")
        found[number] = name
    return [_read(folder / found[n], strict, found[n]) for n in sorted(found)]


def _read(path: Path, strict: bool = True, name: str | None = None) -> Migration:
    name = name or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationFileError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    except OSError as exc:  # a folder (or a dangling link) named like a migration
        raise MigrationFileError(f"{path}: not a file that can be read ({exc.strerror or exc}); a migration is a "
                                 "file NNNN_description.sql: rename or remove it") from None
    statements = split_statements(text)
    # The guide's template wraps migrations in BEGIN/COMMIT. D1 rejects transaction control, and
    # locally a COMMIT would end the runner's own transaction halfway, so "all or none" would be
    # a lie: refuse the file, wherever the statement hides (between comments, on a shared line).
    control = [s for s in statements if is_transaction_control(s)]
    if control and strict:
        where = ", ".join(f"{name}:{s.line} `{strip_comments(s.sql).strip().splitlines()[0].rstrip(';')}`"
                          for s in control)
        raise MigrationFileError(
            f"{where}: transaction control is not allowed in a migration; remove it. Each migration already "
            "runs as one transaction: locally in the runner's, on D1 in its request's (D1 answers \"cannot "
            "start a transaction within a transaction\" and tells you to remove BEGIN TRANSACTION and COMMIT: "
            "developers.cloudflare.com/d1/best-practices/import-export-data). wrangler takes the file because "
            "it quietly deletes the first `BEGIN TRANSACTION;` and `COMMIT;` of it before sending "
            "(workers-sdk packages/wrangler/src/d1/trimmer.ts); bookingctl does not rewrite your file.")
    if not statements:
        raise MigrationFileError(f"{name} contains no SQL statements")
    return Migration(name, path, tuple(statements), hashlib.sha256(text.encode()).hexdigest(),
                     migration_asserts.parse(text, name))


def applied_names(db: Database, table: str = TABLE) -> dict[str, str]:
    """name -> applied_at of every recorded migration; empty when the table does not exist yet."""
    exists = db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
    if not exists:
        return {}
    return {str(r["name"]): str(r["applied_at"])
            for r in db.query(f"SELECT name, applied_at FROM {quote_ident(table)} ORDER BY id")}


def status(db: Database, migrations: list[Migration],
           table: str = TABLE) -> tuple[list[MigrationState], list[str]]:
    """Each file's state, and names recorded in the database that no file has any more."""
    done = applied_names(db, table)
    states = [MigrationState(m.name, done.get(m.name)) for m in migrations]
    unknown = [name for name in done if name not in {m.name for m in migrations}]
    return states, unknown


def pending(db: Database, migrations: list[Migration], table: str = TABLE) -> list[Migration]:
    """The migrations `table` does not record, in order."""
    done = applied_names(db, table)
    return [m for m in migrations if m.name not in done]


def _record(name: str, table: str = TABLE) -> str:
    # Inlined because D1 multi-statement requests take no parameters, exactly as wrangler appends it
    # (a quote in a name doubled, as wrangler's buildMigrationQuery does; _FILE allows no control characters).
    return f"INSERT INTO {quote_ident(table)} (name) VALUES ('{name.replace(chr(39), chr(39) * 2)}');"


def apply(db: Database, migrations: list[Migration], log: Log = lambda _: None, *,
          overrides: Mapping[str, Override] | None = None, restore_on_failure: bool = False,
          table: str = TABLE) -> ApplyResult:
    """Apply the pending migrations in order. Locally all or none; remotely each one whole or not at all.

    `overrides` (name -> Override) are recorded in d1_migrations_unsafe with their migrations. A remote
    failure is never restored unless `restore_on_failure`: the error says what a restore would erase.
    `table` is the tracking table (a wrangler file's `migrations_table`).
    """
    try:
        todo = pending(db, migrations, table)
    except Exception as exc:
        raise MigrationError(f"could not read {table} from {db.label}: {exc}. Nothing was changed.") from exc
    if not todo:
        return ApplyResult()
    if isinstance(db, LocalDatabase):
        return _apply_local(db, todo, log, overrides or {}, table)
    return _apply_remote(db, todo, log, overrides or {}, restore_on_failure, table)


def override_sql(name: str, override: Override) -> list[str]:
    return [CREATE_UNSAFE_TABLE,
            f"INSERT INTO {UNSAFE_TABLE} (name, reason, findings, approved_via) VALUES ({quote_literal(name)}, "
            f"{quote_literal(override.reason)}, {quote_literal(override.findings)}, "
            f"{quote_literal(override.approved_via)});"]


def _apply_local(db: LocalDatabase, todo: list[Migration], log: Log,
                 overrides: Mapping[str, Override] | None = None, table: str = TABLE) -> ApplyResult:
    overrides = overrides or {}
    result = ApplyResult()
    current: tuple[Migration, Statement] | None = None
    try:
        with db.transaction() as conn:
            # Decided again under the write lock: a run that waited for another one's lock must not
            # apply what that one has applied meanwhile.
            done = set(applied_names(db, table))
            todo = [m for m in todo if m.name not in done]
            conn.execute(create_table_sql(table))
            for migration in todo:
                log(f"applying {migration.name}")
                for check in migration.checks:
                    migration_asserts.run(conn, check, migration.name, "before")
                for statement in migration.statements:
                    current = (migration, statement)
                    conn.execute(statement.sql)
                    if not conn.in_transaction:
                        # Nothing the splitter lets through should end a transaction; if something
                        # does, say so instead of claiming a rollback that cannot happen.
                        raise _TransactionEnded(f"{migration.name}:{statement.line} ended the runner's "
                                                "transaction: what ran before it is committed")
                for check in migration.checks:
                    migration_asserts.run(conn, check, migration.name, "after")
                conn.execute(_record(migration.name, table))
                if migration.name in overrides:
                    for sql in override_sql(migration.name, overrides[migration.name]):
                        conn.execute(sql)
                result.applied.append(migration.name)
    except _TransactionEnded as exc:
        raise MigrationError(f"{exc}. {db.label} is NOT as before; check it with `bookingctl migrate status`.") from exc
    except sqlite3.IntegrityError as exc:
        if f"{table}.name" not in str(exc):
            raise _rolled_back(db, todo, current, exc) from exc
        # The unique name in d1_migrations: another run applied one of these meanwhile.
        raise MigrationError(f"another run recorded {current[0].name if current else 'a migration'} in {table} "
                             f"while this one ran; this run changed nothing. See `bookingctl migrate status "
                             f"{db.fix_target}`.") from exc
    except migration_asserts.CheckFailed as exc:
        raise MigrationError(f"{exc}. Rolled back: {db.label} is exactly as before (none of "
                             f"{', '.join(m.name for m in todo)} applied).") from exc
    except Exception as exc:
        raise _rolled_back(db, todo, current, exc) from exc
    return result


class _TransactionEnded(Exception):
    pass


def _rolled_back(db: LocalDatabase, todo: list[Migration], current: tuple[Migration, Statement] | None,
                 exc: Exception) -> MigrationError:
    where = f"{current[0].name}:{current[1].line}" if current else "setup"
    return MigrationError(f"{where}: {exc}. Rolled back: {db.label} is exactly as before "
                          f"(none of {', '.join(m.name for m in todo)} applied).")


def _apply_remote(db: RemoteDatabase, todo: list[Migration], log: Log, overrides: Mapping[str, Override],
                  restore_on_failure: bool, table: str = TABLE) -> ApplyResult:
    bookmark = db.bookmark()
    # When the bookmark was taken, as the tables' datetime('now') defaults write times (UTC, to the
    # second), to say later what a restore to it would erase. This machine's clock: reading D1's
    # would cost a request, and rows of the same second count (>=), which covers a small skew.
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    log(f"Time Travel bookmark before migrating: {bookmark} (at {since} UTC)")
    result = ApplyResult(bookmark=bookmark)
    migration: Migration | None = None
    try:
        _write(db, create_table_sql(table), None, log, table)
        for migration in todo:
            log(f"applying {migration.name}")
            # One request per migration: its statements, its d1_migrations row (and its override, if
            # any) together; D1 runs them as one transaction.
            extra = override_sql(migration.name, overrides[migration.name]) if migration.name in overrides else []
            # Each statement ends in its own `;` first: a last one without it, or ending in an unclosed
            # comment, would otherwise take the record along and the migration would apply unrecorded.
            _check_remote(db, migration)
            script = [terminated(s) for s in migration.statements] + [
                *(migration_asserts.guard_sql(c) for c in migration.checks), _record(migration.name, table), *extra]
            try:
                _write(db, "\n".join(script), migration.name, log, table)
            except Exception as exc:
                if migration.checks and "malformed JSON" in str(exc):
                    raise MigrationError(f"{exc}: a `-- check:` of {migration.name} answered false after its "
                                         f"statements ({'; '.join(c.message for c in migration.checks)}), so D1 "
                                         "kept none of it") from exc
                raise
            result.applied.append(migration.name)
    except Exception as exc:
        where = migration.name if migration else f"creating {table}"
        kept = (f"{', '.join(result.applied)} stay applied and recorded" if result.applied
                else "no migration of this run was applied")
        if not restore_on_failure:
            raise MigrationError(
                f"{where} failed: {exc}. D1 ran it as one transaction, so none of it was applied; {kept}. "
                f"{db.label} was NOT restored: the serving version kept taking bookings. "
                f"{restore_advice(db, bookmark, since)}") from exc
        try:
            db.restore(bookmark=bookmark)
        except Exception as restore_exc:
            raise MigrationError(f"{where} failed: {exc}. Restoring {db.label} to bookmark {bookmark} ALSO "
                                 f"failed: {restore_exc}. Restore it by hand: `bookingctl backup restore "
                                 f"{db.fix_target} --bookmark {bookmark}`.") from exc
        raise MigrationError(f"{where} failed: {exc}. {db.label} was restored to bookmark {bookmark} "
                             f"(--restore-on-failure), its state before this run, erasing every write since "
                             f"{since} UTC.") from exc
    return result


def _check_remote(db: RemoteDatabase, migration: Migration) -> None:
    """The migration's checks on D1 before it runs: each a read through the query API."""
    for check in migration.checks:
        # A subquery (SQLite refuses any write inside it), judged by SQLite as the after-check is.
        row = db.query(migration_asserts.answer_sql(check))[0]
        if not row["holds"]:
            raise MigrationError(f"{check.where(migration.name)}: check failed before the migration ({check.sql} "
                                 f"answered {migration_asserts.shown(row['answer'])}): {check.message}")


def writes_since(db: Database, since: str) -> dict[str, int]:
    """table.column -> rows whose write-time column is later than `since` (the database's UTC clock)."""
    found: dict[str, int] = {}
    tables = [str(r["name"]) for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT "
                                                "LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE ?",
                                                [f"{TABLE}%"])]
    for table in tables:
        columns = [str(r["name"]) for r in db.query("SELECT name FROM pragma_table_info(?)", [table])]
        for column in (c for c in columns if c.lower() in WRITE_TIME_COLUMNS):
            count = int(db.query(f"SELECT COUNT(*) AS n FROM {quote_ident(table)} WHERE {quote_ident(column)} >= ?",
                                 [since])[0]["n"])
            if count:
                found[f"{table}.{column}"] = count
    return found


def restore_advice(db: Database, bookmark: str, since: str) -> str:
    """What a restore to `bookmark` (taken at `since`) would erase, and the command, for people to decide."""
    try:
        counts = writes_since(db, since)
        erased = (", ".join(f"{n} row(s) by {where}" for where, n in counts.items()) if counts
                  else "no row with a newer write time")
        what = (f"a restore would erase every write since {since} UTC: now {erased} (rows changed in place, "
                "such as an appointment's status, are not counted: the tables have no updated_at)")
    except Exception as exc:  # the advice must never hide the failure it explains
        what = f"a restore would erase every write since {since} UTC (counting them failed: {exc})"
    return (f"Restore point: Time Travel bookmark {bookmark}; {what}. Only if that is acceptable: "
            f"`bookingctl backup restore {db.fix_target} --bookmark {bookmark}`.")


def _write(db: RemoteDatabase, sql: str, name: str | None, log: Log, table: str = TABLE) -> None:
    """Send one write request, once (`RemoteDatabase.write_once`: a 429 is sent once more). When its
    answer is lost, d1_migrations says whether the migration landed; an idempotent request (`name`
    None) is simply sent again."""
    try:
        db.write_once(sql, log)
    except AnswerLost as exc:
        if name is None:
            db.write_once(sql, log)  # CREATE TABLE IF NOT EXISTS: safe to repeat
            return
        if name in applied_names(db, table):  # a read: the SDK may retry it
            lost = type(exc.__cause__).__name__
            log(f"{name}: the answer was lost ({lost}), but {table} records it: applied")
            return
        raise MigrationError(f"{name} got no answer ({exc.__cause__}) and d1_migrations does not record it: D1 runs "
                             "the migration and its record as one transaction, so it was not applied as of that read; "
                             f"check with `bookingctl migrate status {db.fix_target}` before applying again") from exc
