"""Applying one pending migration to the scratch copy, statement by statement, and judging it for
`migrate check`: from what SQLite shows after each statement (rows a statement removed, tables emptied
or swapped away, constraints and DEFAULTs lost, the serving version's writes refused or undone by a
trigger, serving queries that no longer prepare) rather than from the words of the SQL.

Apart from ops/database/migration_check.py, which reads the target, builds the scratch copy and runs
this per migration under its deadlines: this module is the judgement of one migration, the part a
new rule changes.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ops.database import migration_rows as mr
from ops.database.migration_findings import ERROR, INFO, WARNING, Finding, MigrationResult
from ops.database.migration_lint import code_of, dml_keyword, head, lint
from ops.database.migration_schema import Schema, compare, skipped, snapshot
from ops.database.migrations import CREATE_TABLE as CREATE_MIGRATIONS_TABLE
from ops.database.migrations import TABLE as MIGRATIONS_TABLE
from ops.database.migrations import Migration
from ops.database.serving import ServingQuery
from ops.database.sqlite_callbacks import reraise_pending, shielded
from ops.database.sqlscript import Statement

# SQLite's authorizer action codes for row writes (sqlite3.h).
_ROW_WRITES = {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}


@dataclass
class Run:
    """What the check learns across the pending migrations of one run, and how it runs them."""

    serving: Schema  # the schema the serving version runs on (before any pending migration)
    probes: dict[mr.Probe, mr.Outcome | None]  # its writes and what they do on that schema
    statement_seconds: float  # when a statement is stopped (D1 stops a query after 30 s)
    # Whether a query compiles against the scratch copy, never running it (None, or SQLite's message).
    prepare: Callable[[sqlite3.Connection, str], str | None]
    at: Callable[[str], None]  # told file:line before each statement, for the deadlines (bounded.py)
    # (table, column) of the serving schema -> the pending migration that read it (a backfill's source).
    read_by: dict[tuple[str, str], str] = field(default_factory=dict)


def serving_probes(conn: sqlite3.Connection, serving: Schema) -> dict[mr.Probe, mr.Outcome | None]:
    """The serving version's writes and what each does on the serving schema (ops/database/migration_rows.py)."""
    tables = _row_tables(serving)
    return {probe: mr.outcome(conn, probe, tables) for probe in mr.probes(conn)
            if probe.table.lower() in serving.tables}


def _row_tables(schema: Schema) -> list[str]:
    return [t.name for t in schema.tables.values()]


def _is_runners(name: str | None) -> bool:
    return bool(name) and str(name).lower().startswith(MIGRATIONS_TABLE)


def check_one(conn: sqlite3.Connection, migration: Migration, queries: Sequence[ServingQuery], before: Schema,
               preparing: set[ServingQuery], run: Run) -> tuple[MigrationResult, Schema, set[ServingQuery]]:
    result = MigrationResult(migration.name)
    # Per query that prepared before this migration: the statement after which it stopped preparing
    # (a table rebuilt within the migration breaks queries for a moment, then mends them).
    broken: dict[ServingQuery, tuple[Statement, str]] = {}
    rewrites: list[str] = []
    writes: set[str] = set()
    targets: dict[str, str] = {}  # DELETE/UPDATE -> the table the statement itself (not a trigger) writes
    replaced: set[str] = set()  # tables of the serving schema dropped or renamed by this migration
    runners: list[str] = []  # what the statement does to the runner's own tables
    reads: set[tuple[str, str]] = set()
    updated: set[tuple[str, str]] = set()  # (table, column) the statement itself SETs
    tables = _row_tables(before)

    def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, trigger: str | None) -> int:
        if action in _ROW_WRITES and arg1 and not skipped(arg1) and not _is_runners(arg1):
            writes.add(arg1.lower())
            if trigger is None:
                targets.setdefault({sqlite3.SQLITE_DELETE: "DELETE", sqlite3.SQLITE_INSERT: "INSERT"}.get(
                    action, "UPDATE"), arg1.lower())
        if action == sqlite3.SQLITE_READ and arg1 and arg2:
            reads.add((arg1.lower(), arg2.lower()))
        if action == sqlite3.SQLITE_UPDATE and trigger is None and arg1 and arg2:
            updated.add((arg1.lower(), arg2.lower()))
        touched = (arg2 if action in (sqlite3.SQLITE_ALTER_TABLE, sqlite3.SQLITE_CREATE_TRIGGER,
                                      sqlite3.SQLITE_CREATE_TEMP_TRIGGER) else
                   arg1 if action in (*_ROW_WRITES, sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_CREATE_TABLE) else None)
        if _is_runners(touched) and trigger is None:
            runners.append(str(touched))
        if action == sqlite3.SQLITE_DROP_TABLE and arg1:
            replaced.add(arg1.lower())
        elif action == sqlite3.SQLITE_ALTER_TABLE and arg2:
            replaced.add(arg2.lower())
        return sqlite3.SQLITE_OK

    # What the migration has removed or tightened so far -> the line of the statement after which it
    # was so (and stayed so): a reviewer needs the statement, not the migration's first line.
    changed_at: dict[str, int] = {}
    baseline = mr.counts(conn, tables)
    lost_at: dict[str, int] = {}  # table of the serving schema -> line after which it held none of its rows
    deletes_all: set[tuple[str, int]] = set()
    probe_bad: dict[tuple[mr.Probe, str], int] = {}
    runner_trigger_line: int | None = None
    shapes = _shapes(conn)

    def track_rows(line: int) -> None:
        now = mr.counts(conn, tables)
        for table, had in baseline.items():
            if had and not now.get(table):
                lost_at.setdefault(table, line)
            else:
                lost_at.pop(table, None)

    conn.execute("SAVEPOINT migration_check")
    failed = False
    for statement in migration.statements:
        found, run_it = lint(migration, statement)
        result.findings += found
        if not run_it or failed:  # after a failure the rest is still read, never run
            continue
        run.at(f"{migration.name}:{statement.line}")
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        writes.clear()
        targets.clear()
        runners.clear()
        reads.clear()
        updated.clear()
        rows_before = mr.counts(conn, tables)
        dml = dml_keyword(code_of(statement.sql))
        # Rows can stay while their values go (REPLACE rewrites a row from what it names; an upsert or
        # an UPDATE sets every row's value): for writes, what each column holds before and after.
        values_before = mr.filled(conn, tables) if dml in ("INSERT", "REPLACE", "UPDATE") else {}
        # How many values each column held: a write after which one column of every row holds one value
        # overwrote them all, even when it skipped the rows holding that value already (a no-op guard).
        distinct_before = mr.distinct(conn, tables) if dml in ("INSERT", "REPLACE", "UPDATE") else {}
        conn.set_authorizer(shielded(authorize, sqlite3.SQLITE_DENY))
        deadline = time.monotonic() + run.statement_seconds
        conn.set_progress_handler(shielded(_past(deadline), 1), 10_000)
        try:
            cursor = conn.execute(statement.sql)
            changed = cursor.rowcount
        except sqlite3.Error as exc:
            reraise_pending()
            message = (f"still running after {run.statement_seconds:g} s against a copy without rows, so stopped; D1 "
                       "stops a query after 30 s: bound it (a recursive CTE needs a LIMIT or a WHERE that ends it)"
                       if time.monotonic() > deadline else f"SQLite refuses `{head(statement.sql)}`: {exc}")
            result.findings.append(Finding("apply-failed", ERROR, migration.name, statement.line, message))
            failed = True
            continue
        finally:
            conn.set_authorizer(None)
            conn.set_progress_handler(None, 0)
        for table, column in reads:
            if table in run.serving.tables and column in run.serving.tables[table].columns:
                run.read_by.setdefault((table, column), migration.name)
        if runners:
            result.findings.append(Finding(
                "migrations-table", ERROR, migration.name, statement.line,
                f"`{head(statement.sql)}` changes {', '.join(sorted(set(runners)))}, the migration runner's own "
                "record of what was applied and approved: a trigger there runs with every later migration, and "
                "without the record migrations run twice or approvals vanish. Leave those tables to the runner"))
            if "TRIGGER" in code_of(statement.sql).upper():
                runner_trigger_line = statement.line
        if dml and writes & before.tables.keys():
            rewrites.append(f"rows of {', '.join(sorted(writes & before.tables.keys()))} (line {statement.line})")
        rows_after = mr.counts(conn, tables)
        target = targets.get(dml or "")
        named = next((t for t in tables if t.lower() == target), None)
        had = rows_before.get(named or "") or 0
        flagged = {f.rule for f in found}
        if dml == "DELETE" and named and had and not rows_after.get(named):
            deletes_all.add((named, statement.line))
            if "delete-without-where" not in flagged:
                result.findings.append(Finding(
                    "delete-without-where", ERROR, migration.name, statement.line,
                    f"`{head(statement.sql)}` deletes every row of {named}: its WHERE holds for every row the check "
                    "tried (a condition always true, or true of every value the column can hold), so it is no "
                    "WHERE; no Worker rollback brings the rows back. Name the rows to delete"))
        elif ((dml in ("UPDATE", "INSERT", "REPLACE") and changed
               and _made_uniform(conn, updated, distinct_before, rows_before, rows_after))
              or (dml == "UPDATE" and ("update-without-where" in flagged or (named and had and changed >= had)))):
            _every_row_updated(result, migration, statement, named or target or "", updated, before,
                               flagged="update-without-where" in flagged)
        elif dml in ("INSERT", "REPLACE"):
            into = next((t for t in tables if t.lower() == targets.get("INSERT")), None)
            had_rows = rows_before.get(into or "") or 0
            added = max((rows_after.get(into or "") or 0) - had_rows, 0)
            # Every row that was there met a conflict and was rewritten (the changes beyond the rows it
            # added): an upsert's DO UPDATE or a REPLACE over all of them, from rows a query selects
            # (INSERT ... SELECT). A seed naming its keys (VALUES) is not judged: on this copy's few
            # sample rows it would meet "every row" by chance. (An upsert's conflict target is read from
            # the table either way, so SQLite's reads cannot tell the two apart; the SELECT can.)
            selects = re.search(r"\bSELECT\b", code_of(statement.sql), re.I) is not None
            if into and had_rows and selects and changed - added >= had_rows:
                shape = before.tables.get(into)
                rewritten = updated or {(into.lower(), c.lower()) for c in (shape.columns if shape else ())
                                        if c.lower() not in {k.lower() for k in (shape.primary_key if shape else ())}}
                _every_row_updated(result, migration, statement, into, rewritten, before, flagged=False)
        if values_before:
            values_after = mr.filled(conn, list(values_before))
            for table, held in values_before.items():
                if not rows_after.get(table):
                    continue  # rows gone: rows-lost says so
                gone = [c for c, n in held.items() if n and values_after.get(table, {}).get(c) == 0]
                if gone:
                    result.findings.append(Finding(
                        "values-wiped", ERROR, migration.name, statement.line,
                        f"after `{head(statement.sql)}` no row of {table} holds a value in "
                        f"{', '.join(f'{table}.{c}' for c in gone)} (rows of the check had one): the values the "
                        "serving version stored there are gone (REPLACE rewrites a row from the columns it names, an "
                        "upsert or UPDATE sets them in every row), and no Worker rollback brings them back. Name "
                        "the rows, or set only columns that hold nothing yet"))
        track_rows(statement.line)
        if conn.execute("PRAGMA schema_version").fetchone()[0] != version:
            now = compare(before, snapshot(conn), orphaned_indexes=True)
            current = set(now.removed + now.tightened + now.unfillable + now.lost + now.loosened)
            for what in current:
                changed_at.setdefault(what, statement.line)
            for what in changed_at.keys() - current:  # mended again (a rebuild)
                del changed_at[what]
            for query in preparing:
                error = run.prepare(conn, query.sql)
                if error is None:
                    broken.pop(query, None)
                elif query not in broken:
                    broken[query] = (statement, error)
            # Probing rolls back to a savepoint, which makes SQLite reread the whole schema once it has
            # changed in the transaction: probe only the tables whose definitions (their own SQL, their
            # indexes' and triggers') this statement changed, and those found broken so far.
            now_shapes = _shapes(conn)
            changed_tables = {t for t in shapes.keys() | now_shapes.keys() if shapes.get(t) != now_shapes.get(t)}
            shapes = now_shapes
            suspects = {p for p, _ in probe_bad}
            chosen = {p: o for p, o in run.probes.items() if p.table.lower() in changed_tables or p in suspects}
            bad = set(mr.judge(conn, chosen, tables))
            for key in bad:
                probe_bad.setdefault(key, statement.line)
            for key in [k for k in probe_bad if k[0] in chosen and k not in bad]:
                del probe_bad[key]
    last_line = migration.statements[-1].line if migration.statements else 1
    if not failed:
        # The runner records the migration in the same request (ops/database/migrations.py): a trigger on
        # d1_migrations runs then, and with every later migration.
        try:
            conn.execute(CREATE_MIGRATIONS_TABLE)
            conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (?)", (migration.name,))
        except sqlite3.Error as exc:
            result.findings.append(Finding("apply-failed", ERROR, migration.name, runner_trigger_line or last_line,
                                           f"recording the migration in {MIGRATIONS_TABLE} fails: {exc}"))
            failed = True
        else:
            track_rows(runner_trigger_line or last_line)
    after = snapshot(conn)
    changes = compare(before, after)
    first_line = migration.statements[0].line if migration.statements else 1
    emptied = {table: line for table, line in lost_at.items() if table.lower() in after.tables}
    for table, line in sorted(emptied.items(), key=lambda item: item[1]):
        if (table, line) in deletes_all:
            continue  # reported as a delete-without-where at its line
        how = ("dropped or renamed away, and an empty table put in its place" if table.lower() in replaced
               else "deleted by the statement, a trigger it fired, REPLACE or ON DELETE CASCADE")
        if table.lower() in replaced:
            changes.removed.append(f"the rows of table {table} ({how})")
        result.findings.append(Finding(
            "rows-lost", ERROR, migration.name, line,
            f"after this statement {table} holds none of the rows it had ({how}): every row the serving version "
            "wrote there is gone, and no Worker rollback brings them back. Copy the rows before the old table "
            "goes (INSERT INTO new SELECT ... FROM old), or name the rows to delete"))
    result.cls = ("contract" if changes.removed or changes.tightened or changes.unfillable or changes.lost
                  or changes.loosened else "data" if rewrites or emptied else "expand" if changes.added
                  else "none")
    if runner_trigger_line is not None or any(f.rule == "migrations-table" for f in result.findings):
        result.cls = "contract" if result.cls in ("none", "expand") else result.cls
    for what in changes.removed:
        result.findings.append(Finding("contract", INFO, migration.name, changed_at.get(what, first_line),
                                       f"removes {what}: safe only while no serving version reads it"))
        table, _, column = what.partition(" ")[2].partition(" ")[0].partition(".")
        source = run.read_by.get((table, column)) if what.startswith("column ") else None
        if source and source != migration.name:
            result.findings.append(Finding(
                "contract-with-its-expand", ERROR, migration.name, changed_at.get(what, first_line),
                f"removes {what}, which {source}, pending in the same run, reads (a backfill's source): expand and "
                "contract would ship in one release, so the version serving now, which still reads it, breaks "
                "the moment this applies, and a rollback has nothing to return to. Ship the contract in a later "
                "release, once no serving version reads it (docs/releases.md: expand, deploy, contract)"))
    for what in changes.lost:
        result.findings.append(Finding(
            "constraint-lost", ERROR, migration.name, changed_at.get(what, first_line),
            f"{what}: the serving version relies on it (its INSERTs leave defaulted columns out; ids stay "
            "unique); rebuild the table with every constraint and DEFAULT of the old one"))
    for what in changes.loosened:
        result.findings.append(Finding("constraint-loosened", WARNING, migration.name,
                                       changed_at.get(what, first_line),
                                       f"{what}: what the serving version may assume of its rows no longer holds"))
    for what in changes.tightened:
        result.findings.append(Finding("tighter-constraint", WARNING, migration.name, changed_at.get(what, first_line),
                                       f"{what}: writes of the version serving now may be refused"))
    for what in changes.unfillable:
        result.findings.append(Finding(
            "apply-failed", ERROR, migration.name, changed_at.get(what, first_line),
            f"adds {what} NOT NULL without a DEFAULT: SQLite (D1) refuses that on a table that has rows (\"Cannot "
            "add a NOT NULL column with default value NULL\"), and on an empty one the serving version's INSERTs "
            "are refused; give it a DEFAULT (ADD COLUMN ... NOT NULL DEFAULT ...), or add it nullable"))
    for (probe, why), line in sorted(probe_bad.items(), key=lambda item: (item[1], item[0][0].table)):
        result.findings.append(Finding(
            "serving-writes-break", ERROR, migration.name, line,
            f"after this statement {probe.describe()} {why}; it worked before the migration. The serving version "
            "(and a Worker rolled back to it) loses or is refused its writes"))
    for query, (statement, error) in sorted(broken.items(), key=lambda item: item[1][0].line):
        result.findings.append(Finding(
            "serving-query-breaks", ERROR, migration.name, statement.line,
            f"{query.source} no longer prepares after this statement ({error}): the serving version, or a Worker "
            "rolled back to it, fails there. Expand first (add the new, keep the old), deploy the code that stops "
            "reading it, then remove it in a later migration"))
    if failed:
        after = before  # as D1 leaves it: the failed migration's request applies nothing
        # An interrupted statement (the deadline) has already rolled the whole transaction back,
        # savepoint included; it held this migration only.
        if conn.in_transaction:
            conn.execute("ROLLBACK TO migration_check")
    if conn.in_transaction:
        try:
            conn.execute("RELEASE migration_check")
        except sqlite3.IntegrityError as exc:
            # Deferred foreign keys (PRAGMA defer_foreign_keys) are checked at the end, as D1 does.
            result.findings.append(Finding(
                "apply-failed", ERROR, migration.name, last_line,
                f"at the end of the migration SQLite refuses it ({exc}): rows still reference rows it removed, so "
                "D1 rolls the whole migration back"))
            conn.execute("ROLLBACK TO migration_check")
            conn.execute("RELEASE migration_check")
            after = before
    result.findings.sort(key=lambda f: (f.line, f.rule))
    preparing = {q for q in queries if run.prepare(conn, q.sql) is None}
    return result, after, preparing


def _made_uniform(conn: sqlite3.Connection, updated: set[tuple[str, str]], before: dict[str, dict[str, int]],
                  rows_before: dict[str, int | None], rows_after: dict[str, int | None]) -> bool:
    """Whether a column the statement SETs held several values in its table's rows and holds one now,
    the rows unchanged in number: every row overwritten with one value."""
    after = mr.distinct(conn, sorted({t for t, _ in updated}))
    rows = {t.lower(): n for t, n in rows_before.items()}
    now = {t.lower(): n for t, n in rows_after.items()}
    return any(before.get(t, {}).get(c, 0) > 1 and after.get(t, {}).get(c) == 1 and (rows.get(t) or 0) >= 2
               and rows.get(t) == now.get(t) for t, c in updated)


def _every_row_updated(result: MigrationResult, migration: Migration, statement: Statement, table: str,
                       updated: set[tuple[str, str]], before: Schema, *, flagged: bool) -> None:
    """An UPDATE that sets every row (no WHERE, or one true of every row the check tried).

    Setting only columns this migration added is a backfill: nothing the serving version wrote is
    lost, so there is no finding (the lint's warning goes). Setting a column that existed before
    overwrites the serving version's values in every row: unsafe. The columns come from SQLite's
    authorizer (SQLITE_UPDATE names each column the statement sets), not from the words of the SQL.
    """
    if flagged:
        result.findings = [f for f in result.findings
                           if not (f.rule == "update-without-where" and f.line == statement.line)]
    shapes = {name.lower(): shape for name, shape in before.tables.items()}
    existing = sorted(f"{t}.{c}" for t, c in updated if t in shapes and c in shapes[t].columns)
    if existing:
        result.findings.append(Finding(
            "update-overwrites", ERROR, migration.name, statement.line,
            f"`{head(statement.sql)}` sets {', '.join(existing)} in every row: those columns existed before "
            "this migration, so the values the serving version stored there are overwritten, and no Worker "
            "rollback brings them back. Name the rows to change (WHERE ...), or backfill a new column instead"))
    elif not updated:
        result.findings.append(Finding(
            "update-without-where", WARNING, migration.name, statement.line,
            f"`{head(statement.sql)}` rewrites every row of {table or 'its table'}; which columns it sets "
            "could not be read, so whether it overwrites the serving version's values is for review"))


def _shapes(conn: sqlite3.Connection) -> dict[str, str]:
    """Per table (lower-case name), the SQL of it and of its indexes and triggers."""
    return {str(t).lower(): str(s) for t, s in conn.execute(
        "SELECT tbl_name, group_concat(coalesce(sql, ''), char(10)) FROM "
        "(SELECT tbl_name, sql FROM sqlite_schema ORDER BY type, name) GROUP BY tbl_name")}


def _past(deadline: float) -> Callable[[], bool]:
    """A progress handler: true (SQLite interrupts the statement) once `deadline` has passed."""
    return lambda: time.monotonic() > deadline
