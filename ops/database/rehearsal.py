"""`migrate rehearse`: the pending migrations applied to a copy of real data, and what they did to the rows.

`migrate check` proves a migration's shape on an empty copy of the schema with a few sample rows.
What breaks in production is the rows: a table rebuild whose DROP cascades into every child
(workers-sdk#5438), a unique index over duplicates only production has, a NOT NULL over rows a
backfill missed, a statement instant on an empty table and past D1's 30 s on a million rows. So this
runs the migrations on a scratch copy of a verified backup (or of a local file; the caller makes
the copy and removes it) with D1's semantics, one statement at a time, and reports per migration
and per table:

- rows before and after; rows a statement deleted from a table it does not name in a DELETE
  (a cascade, a trigger, a DROP's implicit delete), with the statement;
- a statement refused by a constraint (UNIQUE, CHECK, NOT NULL, FOREIGN KEY), with a sample of the
  offending keys; NULLs in a column the migration makes NOT NULL (found by applying it first to an
  empty copy of the schema); rows whose foreign key points nowhere when the migration commits;
- statements slower than `slow_seconds` here (D1 stops a query at 30 s: developers.cloudflare.com/
  d1/platform/limits/, "Maximum SQL query duration"), and any past `statement_timeout` is stopped;
- serving queries whose plan turned from an index search into a full scan of a table of at least
  query_plans.FULL_SCAN_ROWS rows; the migration's `-- check:` assertions, before and after.

D1's semantics: foreign keys are on and `PRAGMA foreign_keys = OFF` changes nothing (D1 ignores it;
inside the migration's transaction SQLite does too), `PRAGMA defer_foreign_keys` is honoured until
the migration's end, and each migration is one transaction, as D1 runs one request: its deferred
foreign keys are checked when it commits. The first migration that fails stops the rehearsal, as
it would stop `migrate apply`. Sampled values of personal columns are masked (ops/database/personal.py).
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from collections.abc import Callable, Sequence

from booking_shared.errors import OperationFailed
from ops.database import migration_asserts, migration_rows, query_plans, row_losses, schema
from ops.database.bounded import DeadlineExceeded, Reporter, WorkerDied, run_bounded
from ops.database.migration_asserts import CheckFailed
from ops.database.migration_lint import D1_PRAGMAS, lint
from ops.database.migrations import TABLE, Migration
from ops.database.orphans import Orphans, children, orphan_rows, report_orphans, sample_rows
from ops.database.rehearsal_model import MigrationRehearsal, Problem, RehearsalReport, TableRows
from ops.database.serving import ServingQuery
from ops.database.sqlite_callbacks import reraise_pending, shielded
from ops.database.sqlscript import Statement, quote_ident, strip_comments

Log = Callable[[str], None]

DEFAULT_SLOW_SECONDS = 10.0  # a third of D1's 30 s: its machines and a busy database are not this one
DEFAULT_STATEMENT_TIMEOUT = 300.0
# Applying a migration to an empty copy of the schema, to see what it makes NOT NULL.
LOOKAHEAD_SECONDS = 5.0

_SCHEMA_CHANGE = re.compile(r"^\s*(DROP|ALTER|CREATE\s+(TEMP\w*\s+)?TABLE)\b", re.I)
_CONSTRAINT = re.compile(r"(UNIQUE|NOT NULL) constraint failed: (.+)$")


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table of the data (the migration runner's own tables left out), in one query."""
    tables = [t for t in schema.ordinary_tables(conn) if not t.startswith(TABLE)]
    return {t: n for t, n in migration_rows.counts(conn, tables).items() if n is not None}


def _keys(conn: sqlite3.Connection, table: str) -> list[str]:
    key = list(schema.table(conn, table).primary_key)
    return key or (["rowid"] if schema.has_rowid(conn, table) else [c.name for c in schema.columns(conn, table)])


def _not_null_tightened(conn: sqlite3.Connection, migration: Migration, clock: _Clock) -> list[tuple[str, str]]:
    """(table, column) pairs nullable now that the migration makes NOT NULL: it applied first to an
    empty in-memory copy of the schema (nothing when it does not apply there)."""
    empty = sqlite3.connect(":memory:", isolation_level=None)
    empty.set_authorizer(shielded(_d1_only, sqlite3.SQLITE_DENY))
    # Statements that need no rows (a recursive CTE) take as long here: a bound of their own.
    clock.watch(empty)
    clock.start(f"{migration.name} (applied to an empty copy of the schema)", min(clock.seconds, LOOKAHEAD_SECONDS))
    try:
        for obj in schema.objects(conn):
            if obj.sql and not obj.name.startswith("sqlite_"):
                try:
                    empty.execute(obj.sql)
                except sqlite3.Error:
                    reraise_pending()
                    continue  # a virtual table's shadow tables: its own CREATE made them
        for statement in migration.statements:
            empty.execute(statement.sql)
        tightened = []
        for table in schema.ordinary_tables(empty):
            if table not in schema.ordinary_tables(conn):
                continue
            before = {c.name.lower(): c.notnull for c in schema.columns(conn, table)}
            tightened += [(table, c.name) for c in schema.columns(empty, table)
                          if c.notnull and before.get(c.name.lower()) is False]
        return tightened
    except sqlite3.Error:
        reraise_pending()
        return []
    finally:
        clock.stop()
        empty.close()


def _refused(conn: sqlite3.Connection, exc: sqlite3.Error, migration: Migration, statement: Statement) -> Problem:
    """The problem a failed statement is: a constraint's, with a sample of the offending keys, or a plain error."""
    text = str(exc)
    file, line = migration.name, statement.line
    match = _CONSTRAINT.search(text)
    target = schema.constraint_columns(conn, match.group(2)) if match else None
    if match and target is not None:
        kind, (table, columns) = match.group(1), target
        names = ", ".join(quote_ident(c) for c in columns)
        if kind == "UNIQUE":
            sql = f"SELECT {names}, count(*) AS rows FROM {quote_ident(table)} GROUP BY {names} HAVING count(*) > 1"
            total = conn.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
            if total:
                return Problem("constraint-failed", f"{text}: {total:,} values of ({', '.join(columns)}) are held "
                               f"by more than one row of {table}", file, line, table=table, rows=total,
                               sample=sample_rows(conn, sql))
        else:
            keys = ", ".join(quote_ident(k) for k in _keys(conn, table))
            sql = f"SELECT {keys} FROM {quote_ident(table)} WHERE {names} IS NULL"
            total = conn.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
            if total:
                return Problem("constraint-failed", f"{text}: {total:,} rows of {table} hold NULL", file, line,
                               table=table, rows=total, sample=sample_rows(conn, sql))
        return Problem("constraint-failed", text, file, line, table=table)
    if "FOREIGN KEY constraint failed" in text:
        # Immediate: run it again with the check deferred, read which rows it leaves pointing nowhere, undo.
        conn.execute("SAVEPOINT probe")
        try:
            conn.execute("PRAGMA defer_foreign_keys = ON")
            conn.execute(statement.sql)
            orphans = report_orphans(conn, orphan_rows(conn), migration.name, "constraint-failed")
        except sqlite3.Error:
            orphans = []
        finally:
            conn.execute("ROLLBACK TO probe")
            conn.execute("RELEASE probe")
        if orphans:
            first = orphans[0]
            return Problem("constraint-failed", f"{text}: {first.message}", file, line, table=first.table,
                           rows=first.rows, sample=first.sample)
        return Problem("constraint-failed", text, file, line)
    if isinstance(exc, sqlite3.IntegrityError):
        return Problem("constraint-failed", text, file, line)
    return Problem("apply-failed", text, file, line)


def _d1_only(action: int, name: str | None, *_: object) -> int:
    """The authorizer while a migration (or a schema copy) runs: what D1 refuses is refused here too,
    and a migration file or a crafted schema cannot ATTACH (write) a file on this machine."""
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (name or "").lower() not in D1_PRAGMAS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


_GUARD = shielded(_d1_only, sqlite3.SQLITE_DENY)


def _guard(conn: sqlite3.Connection) -> None:
    conn.set_authorizer(_GUARD)


class _Clock:
    """The deadline of what runs now (the look-ahead, a check, a statement), checked by SQLite's
    progress handler, which stops it with a finding.

    SQLite calls no progress handler, and looks at no interrupt, while it compiles a statement or
    runs a straight stretch of instructions without a jump (a nest of views: measured 5 s and more
    without one call). So the rehearsal runs in a child process (ops/database/bounded.py, as `migrate
    check` does) that the parent kills GRACE_SECONDS past the deadline, told by `reporter` when a
    bounded step starts and ends.
    """

    def __init__(self, seconds: float, reporter: Reporter | None = None) -> None:
        self.seconds, self.until = seconds, float("inf")
        self.reporter = reporter

    def watch(self, conn: sqlite3.Connection) -> None:
        # Shielded: Ctrl-C (or SIGTERM) lands while SQLite runs this handler, and must surface as itself.
        conn.set_progress_handler(shielded(lambda: int(time.monotonic() > self.until), 1), 10_000)

    def start(self, what: str, seconds: float | None = None) -> float:
        now = time.monotonic()
        self.until = now + (self.seconds if seconds is None else seconds)
        if self.reporter is not None:
            self.reporter.at(what)
        return now

    def stop(self) -> None:
        self.until = float("inf")
        if self.reporter is not None:
            self.reporter.free()


GRACE_SECONDS = 1.0


class RehearsalStopped(OperationFailed):
    """A statement ran past the statement timeout where SQLite could not stop it; the rehearsal was given up."""


def _file_of(conn: sqlite3.Connection) -> str | None:
    """The file of `conn`'s main database; None for one in memory."""
    row = conn.execute("SELECT file FROM pragma_database_list WHERE name = 'main'").fetchone()
    return str(row[0]) if row and row[0] else None


def rehearse(conn: sqlite3.Connection, migrations: Sequence[Migration], queries: Sequence[ServingQuery] = (), *,
             source: str, slow_seconds: float = DEFAULT_SLOW_SECONDS,
             statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT, log: Log = lambda _: None,
             table: str = TABLE) -> RehearsalReport:
    """Apply the migrations `conn` has not recorded in `table`, on `conn`'s database (a scratch copy: it
    is changed). On a file, the work runs in a child process on a connection of its own (`_Clock`),
    and `conn` must not be inside a transaction; in memory, on `conn` here, bounded only by the
    progress handler."""
    path = _file_of(conn)
    if path is None:
        return _rehearse(conn, migrations, queries, source, slow_seconds, _Clock(statement_timeout), log, table)
    if conn.in_transaction:
        raise ValueError("rehearse(): commit the copy first; another connection cannot see an open transaction")

    def work(reporter: Reporter) -> RehearsalReport:
        reporter.free()
        own = sqlite3.connect(path, isolation_level=None)  # the parent's connection does not cross a fork
        try:
            return _rehearse(own, migrations, queries, source, slow_seconds, _Clock(statement_timeout, reporter),
                             reporter.log, table)
        finally:
            own.close()

    try:
        return run_bounded(work, seconds=math.inf, step_seconds=statement_timeout + GRACE_SECONDS, log=log)
    except DeadlineExceeded as exc:
        raise RehearsalStopped(
            f"{exc.where or 'the rehearsal'} ran past the statement timeout ({statement_timeout:g} s) where SQLite "
            "cannot interrupt it (it was compiling, or running without a check), and was stopped. A statement "
            "this slow here is likely past D1's 30 s: make it cheaper, or raise --statement-timeout to see it "
            "end") from None
    except WorkerDied as exc:  # nothing was written to the target; the caller removes the scratch copy
        raise RehearsalStopped(f"the rehearsal's process {str(exc).removeprefix('the worker process ')}: nothing was "
                               "written; a statement there may need more memory than this machine has") from None


def _rehearse(conn: sqlite3.Connection, migrations: Sequence[Migration], queries: Sequence[ServingQuery],
              source: str, slow_seconds: float, clock: _Clock, log: Log, table: str) -> RehearsalReport:
    started = time.monotonic()
    conn.isolation_level = None
    conn.execute("PRAGMA foreign_keys = ON")
    done = set()
    if table in schema.table_names(conn):
        done = {str(n) for n, in conn.execute(f"SELECT name FROM {quote_ident(table)}")}
    todo = [m for m in migrations if m.name not in done]
    report = RehearsalReport(source, migrations=[MigrationRehearsal(m.name, m.sha256) for m in todo])
    counts = _counts(conn)
    first, run_explained = dict(counts), dict[str, int]()
    report.rows = sum(counts.values())
    known = orphan_rows(conn)
    report.problems += report_orphans(conn, known, "", "orphans-before")
    clock.watch(conn)
    _guard(conn)
    try:
        for number, (migration, result) in enumerate(zip(todo, report.migrations, strict=True), start=1):
            log(f"rehearsing {migration.name} ({number} of {len(todo)})")
            counts = _one(conn, migration, result, counts, queries, clock, slow_seconds, known, run_explained)
            log(f"  {migration.name}: {result.status} in {result.seconds:.1f} s, "
                f"{sum(p.severity == 'error' for p in result.problems)} error(s)")
            if result.status == "failed":
                break
    finally:
        conn.set_progress_handler(None, 0)
        conn.set_authorizer(None)
    # A rebuild split over migrations (copy; DROP; RENAME) loses rows no single migration shows.
    row_losses.unexplained_losses(first, counts, run_explained, "", report.problems, where="all the migrations")
    report.seconds = time.monotonic() - started
    return report


def _one(conn: sqlite3.Connection, migration: Migration, result: MigrationRehearsal, counts: dict[str, int],
         queries: Sequence[ServingQuery], clock: _Clock, slow_seconds: float, known: Orphans,
         run_explained: dict[str, int]) -> dict[str, int]:
    """Rehearse one migration in its own transaction; the row counts after it (before it when it failed)."""
    started = time.monotonic()
    before = dict(counts)
    for table, column in _not_null_tightened(conn, migration, clock):
        keys = ", ".join(quote_ident(k) for k in _keys(conn, table))
        sql = f"SELECT {keys} FROM {quote_ident(table)} WHERE {quote_ident(column)} IS NULL"
        nulls = conn.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
        if nulls:
            result.problems.append(Problem("nulls-before-not-null", f"{migration.name} makes {table}.{column} NOT "
                                           f"NULL, and {nulls:,} of its rows hold NULL there (backfill them first)",
                                           migration.name, 0, table, nulls, sample_rows(conn, sql)))
    plans = query_plans.plans(conn, queries)
    explained: dict[str, int] = {}
    written: set[str] = set()
    links = row_losses.links(conn, TABLE)
    conn.execute("BEGIN")
    try:
        _checks(conn, migration, clock, "before")
        for statement in migration.statements:
            result.statements += 1
            refused = [f for f in lint(migration, statement)[0] if f.rule.startswith("d1-") and f.severity == "error"]
            if refused:
                result.problems += [Problem("apply-failed", f.message, migration.name, statement.line) for f in refused]
                raise _Failed
            # Bounded too: a nest of views compiles in time doubling per level, with no progress handler call.
            clock.start(f"{migration.name}:{statement.line} (reading what it writes)")
            try:
                done = row_losses.writes(conn, statement, _GUARD)
                watch = row_losses.ReplaceWatch.before(conn, done)
                dropped = row_losses.dropped_values(conn, done)
            finally:
                clock.stop()
            written |= done.tables
            changes, start = conn.total_changes, clock.start(f"{migration.name}:{statement.line}")
            try:
                conn.execute(statement.sql)
                # Rows the statement itself changed: not its triggers', foreign-key actions' or REPLACE's.
                direct = int(conn.execute("SELECT changes()").fetchone()[0])
            except sqlite3.Error as exc:
                reraise_pending()
                elapsed = time.monotonic() - start
                if "interrupted" in str(exc):
                    result.problems.append(Problem("apply-failed", f"stopped after {elapsed:.0f} s (the statement "
                                                   "timeout); D1 stops a query at 30 s", migration.name,
                                                   statement.line))
                else:
                    result.problems.append(_refused(conn, exc, migration, statement))
                raise _Failed from exc
            finally:
                clock.stop()
            elapsed = time.monotonic() - start
            if elapsed > slow_seconds:
                result.problems.append(Problem("slow-statement", f"took {elapsed:.1f} s on {sum(counts.values()):,} "
                                               f"rows here (over {slow_seconds:g} s; D1 stops a query at 30 s)",
                                               migration.name, statement.line))
            if conn.total_changes != changes or _SCHEMA_CHANGE.match(strip_comments(statement.sql)):
                after, now = _counts(conn), row_losses.links(conn, TABLE)
                row_losses.attribute(counts, after, statement, done, direct, migration.name, result, explained)
                row_losses.nulled(links, now, statement, done, migration.name, result)
                counts, links, was = after, now, counts
            else:
                was = counts
            watch.after(conn, was, counts, statement, done, direct, migration.name, result)
            row_losses.report_dropped(dropped, statement, migration.name, result)
        _checks(conn, migration, clock, "after")
        result.problems += query_plans.full_scans(conn, queries, plans, counts, migration.name)
        try:
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            # Deferred foreign keys, checked at the end as D1 checks them at the end of its request.
            # D1 refuses the whole migration then: a failure to fix, not orphans an approval could accept.
            result.problems += (report_orphans(conn, orphan_rows(conn), migration.name, "constraint-failed",
                                         known=known) or [Problem(
                "constraint-failed", f"{exc} when the migration commits, though no row points nowhere now: a "
                "DROP TABLE of a parent under defer_foreign_keys counted its children's rows, and the table that took "
                "its name does not undo the count. End the migration with `PRAGMA defer_foreign_keys = OFF` (the "
                "pattern D1 migrations use, prisma/prisma#24208), after which this rehearsal checks for real orphans",
                migration.name, 0)])
            raise _Failed from exc
    except (_Failed, CheckFailed) as exc:
        if isinstance(exc, CheckFailed):
            result.problems.append(Problem("check-failed", str(exc), migration.name, 0))
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        result.status, result.seconds = "failed", time.monotonic() - started
        return before
    # Committed: D1 keeps it. Rows left pointing nowhere (a parent dropped under defer_foreign_keys,
    # which turning the pragma off again forgives: sqlite.org/pragma.html#pragma_defer_foreign_keys).
    written |= {row_losses.fold(t) for t in {*before, *counts} if before.get(t) != counts.get(t)}
    checked = children(conn, written)
    found = orphan_rows(conn, checked)
    result.problems += report_orphans(conn, found, migration.name, known=known)
    for key in [k for k in known if k[0] in checked]:
        known.pop(key)
    known.update(found)
    reported = row_losses.unexplained_losses(before, counts, explained, migration.name, result.problems)
    for table, rows in [*explained.items(), *reported.items()]:
        run_explained[table] = run_explained.get(table, 0) + rows
    result.tables = [TableRows(t, before.get(t), counts.get(t)) for t in sorted({*before, *counts})
                     if before.get(t) != counts.get(t)]
    result.status, result.seconds = "applied", time.monotonic() - started
    return counts


def _checks(conn: sqlite3.Connection, migration: Migration, clock: _Clock, when: str) -> None:
    """The migration's `-- check:` assertions, each under the statement timeout."""
    for check in migration.checks:
        clock.start(f"{check.where(migration.name)} (a check)")
        try:
            migration_asserts.run(conn, check, migration.name, when)
        finally:
            clock.stop()
    _guard(conn)  # a check runs under an authorizer of its own


class _Failed(Exception):
    """A statement (or the commit) failed; its problem is already recorded."""
