"""`migrate check`: is each pending migration safe to roll a Worker back over, and will D1 take it?

A Worker rollback never touches D1 and a Time Travel restore rewinds every booking since its
bookmark, so what protects a rollback (or a canary, where two versions share the database) is the
shape of the migration. The check never writes to the target: it copies the target's schema
(`sqlite_schema`, read from a local file opened read-only or through D1's query API) into an
in-memory SQLite holding a few sample rows per table (ops/database/migration_rows.py), applies the pending
migrations there one statement at a time, and reports per migration, from what SQLite shows rather
than the words of the SQL (rows a statement removed, tables emptied or swapped away, constraints
and DEFAULTs lost, the serving version's writes refused or undone by a trigger):

- its class, from the schema before and after (tables, `table_xinfo` columns, index lists,
  foreign keys, CHECK clauses, triggers and views) and from what its statements touch (SQLite's
  authorizer), not from regular expressions alone: `contract` (drops or renames a table, column,
  index, view or trigger that existed, or tightens a constraint), `data` (rewrites rows of tables
  that existed), `expand` (adds tables, columns, indexes, views or triggers), else `none`;
- findings `{rule, severity, file, line, message}`, with the line of the statement in its file.
  `error` findings make the verdict unsafe: a serving query (ops/database/serving.py) that no longer
  prepares, naming what it misses; what D1 rejects (transaction control, ATTACH/DETACH, PRAGMAs
  other than the few D1 allows, VACUUM, virtual tables that break D1's export, statements over
  100 KB or with more than 100 bound parameters); DELETE without WHERE; a statement that fails to
  apply. `warning`: UPDATE without WHERE (a backfill, for review) and a tighter constraint (the
  old version's writes may be refused; no prepare can tell). `info`: what a contract removes.

A contract migration is safe when nothing serving reads what it removes: the serving queries are
the judge, so the same migration passes once the corpus no longer reads the column.

This module reads the target, builds the scratch copy, runs the check under its deadlines and
holds the gate; beside it: migration_findings.py (the rules and the report), migration_lint.py
(what a statement's text says), migration_schema.py (the schema before and after, compared),
migration_judge.py (one migration applied and judged).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from booking_shared.deploy import migrations_checksum
from booking_shared.errors import InputError
from ops.database import migration_rows as mr
from ops.database.bounded import DeadlineExceeded, Reporter, run_bounded
from ops.database.migration_findings import ERROR, RULES, WARNING, CheckReport, Finding, MigrationResult
from ops.database.migration_judge import Run, check_one, serving_probes
from ops.database.migration_lint import VIRTUAL, code_of
from ops.database.migration_schema import skipped, snapshot
from ops.database.migrations import TABLE as MIGRATIONS_TABLE
from ops.database.migrations import Migration, MigrationError, Override
from ops.database.serving import ServingQuery
from ops.database.sqlite_callbacks import reraise_pending, shielded
from ops.database.sqlscript import quote_ident
from ops.targets import LocalDatabase

# The rules' catalogue is part of what `migrate check` is (CI output, the policy and the README name
# the rules), so it is importable from here beside the report it fills.
__all__ = ["RULES", "CheckError", "CheckReport", "MigrationResult", "UnsafeMigrationError", "bounded_check", "check",
           "check_database", "check_local", "check_remote", "errors_of", "overrides_for", "read_local",
           "read_remote", "refusal", "scratch_copy"]

# D1 stops a query after 30 s (same page). The scratch copy has no rows, so only a statement that
# loops by itself (a recursive CTE without a LIMIT) gets near it; stopped, it cannot hang the check.
STATEMENT_SECONDS = 30.0
# SQLite does not look at that deadline while it compiles a statement (a few KB of nested views
# compile for minutes), so the check runs in a child process killed when one statement (its
# compilation, its run and the serving queries' prepares after it) takes this much longer, or the
# whole check takes CHECK_SECONDS (ops/database/bounded.py).
STEP_GRACE_SECONDS = 5.0
CHECK_SECONDS = 300.0

# What the schema copy is read with, locally and through D1 (D1 answers SELECTs on sqlite_schema).
SCHEMA_QUERY = "SELECT type, name, tbl_name, sql FROM sqlite_schema"

# The statement a sqlite_schema row's `sql` holds, by its type (sqlite.org/schematab.html).
_CREATED = re.compile(r"^\s*CREATE\s+(?:(?:UNIQUE|VIRTUAL)\s+)?(TABLE|INDEX|VIEW|TRIGGER)\b", re.IGNORECASE)
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+QUERY\s+PLAN)?\s+", re.IGNORECASE)

Log = Callable[[str], None]


class CheckError(InputError):
    """The target's schema cannot be read; the message says why and what to check."""


# --- the target's schema, read without writing ------------------------------------------------

SchemaRow = tuple[str, str, str, str | None]  # type, name, tbl_name, sql


def _wal_mode(path: Path) -> bool:
    """Whether the file's header says WAL (read and write format versions 2, bytes 18-19)."""
    with path.open("rb") as f:
        header = f.read(20)
    return len(header) == 20 and header[18:20] == b"\x02\x02"


def read_local(path: Path, table: str = MIGRATIONS_TABLE) -> tuple[list[SchemaRow], set[str]]:
    """(schema rows, applied migration names) of a SQLite file opened read-only: its bytes never change,
    and nothing is created beside it."""
    if not path.is_file():
        raise CheckError(f"no SQLite database at {path}")
    if _wal_mode(path) and not Path(f"{path}-wal").exists():
        # Opening a WAL database, even read-only, creates -wal and -shm beside it, which a read-only
        # connection cannot remove again. With no -wal there, every committed page is in the file
        # itself (writers append to the -wal; the file changes only at a checkpoint): read a copy.
        with tempfile.TemporaryDirectory(prefix="migrate-check-") as scratch:
            copy = Path(scratch) / "target.sqlite"
            shutil.copyfile(path, copy)
            return _read_schema(copy, path, table)
    return _read_schema(path, path, table)


def _read_schema(path: Path, shown: Path, table: str = MIGRATIONS_TABLE) -> tuple[list[SchemaRow], set[str]]:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise CheckError(f"cannot open {shown} read-only: {exc}") from exc
    path = shown
    try:
        rows = [(str(t), str(n), str(tn), s) for t, n, tn, s in conn.execute(SCHEMA_QUERY)]
        applied: set[str] = set()
        if any(r[0] == "table" and r[1] == table for r in rows):
            applied = {str(n) for (n,) in conn.execute(f"SELECT name FROM {quote_ident(table)}")}
        return rows, applied
    except sqlite3.DatabaseError as exc:
        raise CheckError(f"{path} is not a readable SQLite database: {exc}") from exc
    finally:
        conn.close()


def read_remote(db: Any, table: str = MIGRATIONS_TABLE) -> tuple[list[SchemaRow], set[str]]:
    """(schema rows, applied migration names) of a remote D1, through reads only (`db.query`)."""
    rows = [(str(r.get("type")), str(r.get("name")), str(r.get("tbl_name")),
             None if r.get("sql") is None else str(r.get("sql"))) for r in db.query(SCHEMA_QUERY)]
    applied: set[str] = set()
    if any(r[0] == "table" and r[1] == table for r in rows):
        applied = {str(r["name"]) for r in db.query(f"SELECT name FROM {quote_ident(table)}")}
    return rows, applied


def scratch_copy(rows: Sequence[SchemaRow], *, sample_rows: bool = False) -> sqlite3.Connection:
    """An in-memory SQLite with the schema `rows` describe: tables, indexes, views, triggers; with
    `sample_rows`, a few rows in each table (ops/database/migration_rows.py), put there before any trigger exists."""
    # No statement cache: a cached statement skips the fresh prepare a schema change must be seen by.
    conn = sqlite3.connect(":memory:", isolation_level=None, cached_statements=0)
    conn.execute("PRAGMA foreign_keys = ON")  # as on D1
    virtual = [n for t, n, _, s in rows if t == "table" and s and VIRTUAL.match(s)]
    order = {"table": 0, "index": 1, "view": 2, "trigger": 3}
    wanted = [r for r in rows if r[3] and not skipped(r[1]) and r[0] in order
              and not any(r[0] == "table" and r[1].startswith(f"{v}_") for v in virtual)]  # FTS shadow tables
    # The rows are an answer from outside (a file, or D1 over HTTP): only the CREATE statement of the
    # row's own type is run, and it may not ATTACH, DETACH or set a PRAGMA. VACUUM INTO or ATTACH
    # as a row's `sql` would otherwise write files on the machine running the check.
    seeded = not sample_rows
    for kind, name, _, sql in sorted(wanted, key=lambda r: order[r[0]]):
        if kind == "trigger" and not seeded:
            mr.seed(conn)  # our own sample rows, before any trigger exists (seeding sets PRAGMAs itself)
            seeded = True
        created = _CREATED.match(code_of(str(sql)))
        problem = None
        if created is None or created.group(1).lower() != kind:
            problem = (f"is not a CREATE {kind.upper()} statement ({' '.join(str(sql).split())[:60]!r}); a schema "
                       "answer SQLite never writes is not run: check what answered for the database")
        else:
            conn.set_authorizer(shielded(_compile_only, sqlite3.SQLITE_DENY))
            try:
                conn.execute(str(sql))
            except sqlite3.Error as exc:
                reraise_pending()
                problem = f"cannot be copied into a scratch SQLite: {exc}"
            finally:
                conn.set_authorizer(None)
        if problem:
            conn.close()
            raise CheckError(f"the target's {kind} {name} {problem}")
    if not seeded:
        mr.seed(conn)
    return conn


# Compiling some statements already acts: a PRAGMA that sets a flag (writable_schema) takes effect
# when prepared, and ATTACH names a file. A serving query is only ever compiled here, so these are
# refused while it is, and the corpus cannot change the scratch database or reach a file.
_ACTING_WHEN_COMPILED = {sqlite3.SQLITE_PRAGMA, sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH}


def _compile_only(action: int, *_: object) -> int:
    return sqlite3.SQLITE_DENY if action in _ACTING_WHEN_COMPILED else sqlite3.SQLITE_OK


def _prepare_error(conn: sqlite3.Connection, sql: str) -> str | None:
    """None when `sql` compiles against the connection's schema, else SQLite's message. Never runs it."""
    body = _EXPLAIN.sub("", sql, count=1)
    conn.set_authorizer(shielded(_compile_only, sqlite3.SQLITE_DENY))
    try:
        conn.execute("EXPLAIN " + body)
    except sqlite3.ProgrammingError as exc:
        # The parameters are bound only after a successful prepare: a count mismatch means it compiled.
        return None if "bindings" in str(exc) else str(exc)
    except sqlite3.Error as exc:
        reraise_pending()
        return str(exc)
    finally:
        conn.set_authorizer(None)
    return None


# --- the check ----------------------------------------------------------------------------------

def check(rows: Sequence[SchemaRow], applied: Iterable[str], migrations: Sequence[Migration],
          queries: Sequence[ServingQuery], target: str, log: Log = lambda _: None) -> CheckReport:
    """Apply the pending `migrations` to a scratch copy of the schema `rows`, holding sample rows
    (ops/database/migration_rows.py); judge each one, and the corpus."""
    done = set(applied)
    pending = [m for m in migrations if m.name not in done]
    report = CheckReport(target, len(queries))
    conn = scratch_copy(rows, sample_rows=True)
    try:
        errors = {q: _prepare_error(conn, q.sql) for q in queries}
        preparing = {q for q, error in errors.items() if error is None}
        before = snapshot(conn)
        # Read here when the check runs: the deadline and the reporter are this module's to set.
        run = Run(before, serving_probes(conn, before), STATEMENT_SECONDS, _prepare_error, _at)
        for migration in pending:
            log(f"checking {migration.name}")
            result, before, preparing = check_one(conn, migration, queries, before, preparing, run)
            report.migrations.append(result)
        # A query that prepares neither on the serving schema nor on the migrated one judges
        # nothing: a typo, or `%s` placeholders, would make every migration look safe.
        report.corpus = [_unprepared(q, error, target) for q, error in errors.items()
                         if error is not None and q not in preparing]
    finally:
        conn.close()
    return report


def _unprepared(query: ServingQuery, error: str, target: str) -> Finding:
    file, _, line = query.source.rpartition(":")
    where = (file, int(line)) if file and line.isdigit() else (query.source, 0)
    # A corpus file's query is an error (it was written to judge, and judges nothing); a built-in one
    # (bookingctl's, the Worker's) failing means the target is not the booking schema: a warning.
    return Finding("corpus-query-unprepared", WARNING if query.built_in else ERROR, where[0], where[1],
                   f"{query.source} does not prepare against the schema of {target}, before or after the pending "
                   f"migrations ({error}), so it judges nothing; fix it (parameters are ?, ?NNN, :name, @name or "
                   "$name, not %s) or remove it from the corpus")


def _nowhere(_: str) -> None:
    return None


# Where the check is (file:line), for the parent that enforces the deadlines; set in the child process.
_at: Callable[[str], None] = _nowhere


def bounded_check(rows: Sequence[SchemaRow], applied: Iterable[str], migrations: Sequence[Migration],
                  queries: Sequence[ServingQuery], target: str, log: Log = lambda _: None) -> CheckReport:
    """`check`, stopped when a statement or the whole check runs out of time (CheckError, naming where)."""
    def work(reporter: Reporter) -> CheckReport:
        global _at
        _at = reporter.at
        return check(rows, applied, migrations, queries, target, reporter.log)

    try:
        report = run_bounded(work, seconds=CHECK_SECONDS, step_seconds=STATEMENT_SECONDS + STEP_GRACE_SECONDS,
                             log=log)
    except DeadlineExceeded as exc:
        where = f"at {exc.where}" if exc.where else "before the first statement (copying the schema)"
        raise CheckError(f"the check of {target} {exc} {where}: SQLite was still compiling or running it against "
                         f"a copy without rows, and D1 stops a query after {30:g} s; simplify that statement "
                         "(nested views multiply when a query reads them)") from None
    # Bound to the files judged: the policy and the deploy hook compare these with the tree's.
    hashes = {m.name: m.sha256 for m in migrations}
    report.migrations_checksum = migrations_checksum(migrations[0].path.parent) if migrations else ""
    for result in report.migrations:
        result.sha256 = hashes.get(result.name, "")
    return report


def check_local(path: Path, migrations: Sequence[Migration], queries: Sequence[ServingQuery],
                log: Log = lambda _: None, *, table: str = MIGRATIONS_TABLE) -> CheckReport:
    """The check against a local SQLite file (opened read-only); `table` records what is applied."""
    rows, applied = read_local(path, table)
    return bounded_check(rows, applied, migrations, queries, f"local {path}", log)


def check_remote(db: Any, migrations: Sequence[Migration], queries: Sequence[ServingQuery],
                 log: Log = lambda _: None, *, table: str = MIGRATIONS_TABLE) -> CheckReport:
    """The check against a remote D1 (`ops.targets.RemoteDatabase`), through reads only."""
    rows, applied = read_remote(db, table)
    return bounded_check(rows, applied, migrations, queries, str(db.label), log)


def check_database(db: Any, migrations: Sequence[Migration], queries: Sequence[ServingQuery],
                   log: Log = lambda _: None, *, table: str = MIGRATIONS_TABLE) -> CheckReport:
    """The check against an open target (`ops.targets.Database`): a local file is reread read-only."""
    if isinstance(db, LocalDatabase):
        return check_local(db.path, migrations, queries, log, table=table)
    return check_remote(db, migrations, queries, log, table=table)


# --- the gate: `migrate apply` and the deploy hook refuse what the check calls unsafe -------------

class UnsafeMigrationError(MigrationError):
    """Pending migrations are unsafe and not approved; the message lists each finding and the way out."""


def errors_of(result: MigrationResult) -> str:
    """The error findings of one migration, on one line (for logs and d1_migrations_unsafe)."""
    return "; ".join(f"{f.rule} at {f.file}:{f.line}: {f.message}" for f in result.findings if f.severity == ERROR)


def refusal(report: CheckReport, how: str) -> str:
    """Why `migrate apply` or the hook refuses: each unsafe migration's errors, and a corpus that judges nothing."""
    listed = " | ".join(f"{m.name} ({m.cls}): {errors_of(m)}" for m in report.unsafe)
    corpus = " | ".join(f.message for f in report.corpus if f.severity == ERROR)
    if corpus:
        listed = "; ".join(part for part in (listed, f"the query corpus: {corpus}") if part)
    return (f"migrate check calls {len(report.unsafe)} pending migration(s) of {report.target} unsafe: {listed}. "
            f"{how}")


def overrides_for(report: CheckReport, reason: str, approved_via: str,
                  names: Iterable[str] | None = None) -> dict[str, Override]:
    """The Override of each unsafe migration (of those `names`, when given) for `migrations.apply`."""
    wanted = None if names is None else set(names)
    return {m.name: Override(reason, errors_of(m), approved_via) for m in report.unsafe
            if wanted is None or m.name in wanted}
