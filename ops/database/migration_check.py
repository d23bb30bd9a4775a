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
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from booking_shared.deploy import migrations_checksum
from booking_shared.errors import InputError
from booking_shared.limits import D1_STATEMENT_BYTES
from ops.database import migration_rows as mr
from ops.database import schema
from ops.database.bounded import DeadlineExceeded, Reporter, run_bounded
from ops.database.migrations import CREATE_TABLE as CREATE_MIGRATIONS_TABLE
from ops.database.migrations import TABLE as MIGRATIONS_TABLE
from ops.database.migrations import Migration, MigrationError, Override
from ops.database.serving import ServingQuery
from ops.database.sqlite_callbacks import reraise_pending, shielded
from ops.database.sqlscript import Statement, is_transaction_control, quote_ident, strip_comments

ERROR, WARNING, INFO = "error", "warning", "info"

# Rule name -> severity. Stable names: CI output, the policy and the README refer to them.
RULES: dict[str, str] = {
    "serving-query-breaks": ERROR,
    "apply-failed": ERROR,
    "d1-transaction-control": ERROR,
    "d1-attach": ERROR,
    "d1-pragma": ERROR,
    "d1-vacuum": ERROR,
    "d1-virtual-table": ERROR,
    "d1-statement-too-large": ERROR,
    "d1-too-many-parameters": ERROR,
    "delete-without-where": ERROR,
    "rows-lost": ERROR,
    "constraint-lost": ERROR,
    "serving-writes-break": ERROR,
    "migrations-table": ERROR,
    "contract-with-its-expand": ERROR,
    "corpus-query-unprepared": ERROR,
    "constraint-loosened": WARNING,
    "update-without-where": WARNING,
    "tighter-constraint": WARNING,
    "contract": INFO,
}

CLASSES = ("contract", "data", "expand", "none")

# D1's statement limit (booking_shared.limits, with its source).
MAX_STATEMENT_BYTES = D1_STATEMENT_BYTES
MAX_PARAMETERS = 100
# D1 stops a query after 30 s (same page). The scratch copy has no rows, so only a statement that
# loops by itself (a recursive CTE without a LIMIT) gets near it; stopped, it cannot hang the check.
STATEMENT_SECONDS = 30.0
# SQLite does not look at that deadline while it compiles a statement (a few KB of nested views
# compile for minutes), so the check runs in a child process killed when one statement (its
# compilation, its run and the serving queries' prepares after it) takes this much longer, or the
# whole check takes CHECK_SECONDS (ops/database/bounded.py).
STEP_GRACE_SECONDS = 5.0
CHECK_SECONDS = 300.0
# The PRAGMAs D1 documents as supported (developers.cloudflare.com/d1/sql-api/sql-statements/);
# anything else is rejected by D1 (or silently does nothing there).
D1_PRAGMAS = frozenset({
    "table_list", "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "quick_check",
    "foreign_key_check", "foreign_key_list", "case_sensitive_like", "ignore_check_constraints",
    "legacy_alter_table", "recursive_triggers", "reverse_unordered_selects", "foreign_keys", "defer_foreign_keys",
    "optimize",
})

# What the schema copy is read with, locally and through D1 (D1 answers SELECTs on sqlite_schema).
SCHEMA_QUERY = "SELECT type, name, tbl_name, sql FROM sqlite_schema"

_KEYWORD = re.compile(r"^\s*(\w+)", re.ASCII)
_PRAGMA = re.compile(r"^\s*PRAGMA\s+(?:\w+\s*\.\s*)?(\w+)", re.IGNORECASE | re.ASCII)
_VIRTUAL = re.compile(r"^\s*CREATE\s+VIRTUAL\s+TABLE\b", re.IGNORECASE)
_WHERE = re.compile(r"\bWHERE\b", re.IGNORECASE)
_STRING = re.compile(r"'(?:[^']|'')*'")
_IDENT = re.compile(r'"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]')
_PARAM = re.compile(r"\?\d*|[:@$][A-Za-z_]\w*")
_PAREN = re.compile(r"[()]")
_CHECK = re.compile(r"\bCHECK\s*\(", re.IGNORECASE)
# The statement a sqlite_schema row's `sql` holds, by its type (sqlite.org/schematab.html).
_CREATED = re.compile(r"^\s*CREATE\s+(?:(?:UNIQUE|VIRTUAL)\s+)?(TABLE|INDEX|VIEW|TRIGGER)\b", re.IGNORECASE)
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+QUERY\s+PLAN)?\s+", re.IGNORECASE)
# How an index's expression term (cid -2: no column name) is named in Table.unique.
_EXPRESSION = "an expression"
# SQLite's authorizer action codes for row writes (sqlite3.h).
_ROW_WRITES = {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}

Log = Callable[[str], None]


class CheckError(InputError):
    """The target's schema cannot be read; the message says why and what to check."""


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    file: str
    line: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "file": self.file, "line": self.line,
                "message": self.message}


@dataclass
class MigrationResult:
    name: str
    cls: str = "none"
    findings: list[Finding] = field(default_factory=list)
    sha256: str = ""  # of the file judged: evidence and approvals name this content, not only the name

    @property
    def unsafe(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "class": self.cls, "unsafe": self.unsafe,
                "findings": [f.to_dict() for f in self.findings]}


@dataclass
class CheckReport:
    target: str
    queries: int  # how many serving queries were prepared against each schema
    migrations: list[MigrationResult] = field(default_factory=list)
    # Findings about the corpus itself (a query that prepares on neither schema), not one migration.
    corpus: list[Finding] = field(default_factory=list)
    migrations_checksum: str = ""  # booking_shared.deploy.migrations_checksum of the folder the check read

    @property
    def verdict(self) -> str:
        broken_corpus = any(f.severity == ERROR for f in self.corpus)
        return "unsafe" if broken_corpus or any(m.unsafe for m in self.migrations) else "safe"

    @property
    def unsafe(self) -> list[MigrationResult]:
        return [m for m in self.migrations if m.unsafe]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "target": self.target, "servingQueries": self.queries,
                "migrationsChecksum": self.migrations_checksum, "migrations": [m.to_dict() for m in self.migrations],
                "corpus": [f.to_dict() for f in self.corpus]}


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


def _skipped(name: str) -> bool:
    # SQLite's own tables (sqlite_sequence appears with the first AUTOINCREMENT) and D1's (_cf_KV).
    return name.startswith(("sqlite_", "_cf_"))


def scratch_copy(rows: Sequence[SchemaRow], *, sample_rows: bool = False) -> sqlite3.Connection:
    """An in-memory SQLite with the schema `rows` describe: tables, indexes, views, triggers; with
    `sample_rows`, a few rows in each table (ops/database/migration_rows.py), put there before any trigger exists."""
    # No statement cache: a cached statement skips the fresh prepare a schema change must be seen by.
    conn = sqlite3.connect(":memory:", isolation_level=None, cached_statements=0)
    conn.execute("PRAGMA foreign_keys = ON")  # as on D1
    virtual = [n for t, n, _, s in rows if t == "table" and s and _VIRTUAL.match(s)]
    order = {"table": 0, "index": 1, "view": 2, "trigger": 3}
    wanted = [r for r in rows if r[3] and not _skipped(r[1]) and r[0] in order
              and not any(r[0] == "table" and r[1].startswith(f"{v}_") for v in virtual)]  # FTS shadow tables
    # The rows are an answer from outside (a file, or D1 over HTTP): only the CREATE statement of the
    # row's own type is run, and it may not ATTACH, DETACH or set a PRAGMA. VACUUM INTO or ATTACH
    # as a row's `sql` would otherwise write files on the machine running the check.
    seeded = not sample_rows
    for kind, name, _, sql in sorted(wanted, key=lambda r: order[r[0]]):
        if kind == "trigger" and not seeded:
            mr.seed(conn)  # our own sample rows, before any trigger exists (seeding sets PRAGMAs itself)
            seeded = True
        created = _CREATED.match(_code(str(sql)))
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


# --- the schema, as compared before and after a migration -------------------------------------

@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, tuple[str, int, str | None, int]]  # lower name -> (type, notnull, default, hidden)
    unique: frozenset[tuple[str, ...]]  # column sets an index or constraint keeps unique
    foreign_keys: frozenset[tuple[str, str, str]]  # (from, table, to)
    checks: frozenset[str]
    primary_key: tuple[str, ...] = ()  # its columns in key order; () for rowid only


@dataclass(frozen=True)
class Schema:
    tables: dict[str, Table]
    indexes: dict[str, str]  # explicit (CREATE INDEX) index -> its table
    views: frozenset[str]
    triggers: frozenset[str]


def snapshot(conn: sqlite3.Connection) -> Schema:
    """The parts of the schema a rollback depends on, read through SQLite's own pragmas."""
    tables: dict[str, Table] = {}
    indexes: dict[str, str] = {}
    views: set[str] = set()
    triggers: set[str] = set()
    for kind, name, tbl, sql in ((o.type, o.name, o.tbl_name, o.sql) for o in schema.objects(conn)):
        if _skipped(name) or name == MIGRATIONS_TABLE or name.startswith(f"{MIGRATIONS_TABLE}_"):
            continue
        if kind == "table":
            tables[name.lower()] = _table(conn, name, sql or "")
        elif kind == "index" and sql:
            indexes[name.lower()] = tbl.lower()
        elif kind == "view":
            views.add(name.lower())
        elif kind == "trigger":
            triggers.add(name.lower())
    return Schema(tables, indexes, frozenset(views), frozenset(triggers))


def _table(conn: sqlite3.Connection, name: str, sql: str) -> Table:
    read = schema.table(conn, name)
    columns = {c.name.lower(): (c.type.upper(), int(c.notnull), c.default, c.hidden) for c in read.columns}
    # An expression has no column name: it is named after its index, so a new unique index on
    # lower(email) is still a tighter constraint on rows that exist.
    unique = frozenset(
        tuple("rowid" if cid == schema.ROWID_CID else f"{_EXPRESSION} in {index.name}"
              if cid == schema.EXPRESSION_CID else str(col).lower() for cid, col in zip(index.cids, index.columns,
                                                                                        strict=True))
        for index in read.indexes if index.unique)
    fks = frozenset((column.lower(), fk.parent.lower(), (to or "").lower()) for fk in read.foreign_keys
                    for column, to in zip(fk.columns, fk.parent_columns, strict=True))
    primary_key = tuple(c.lower() for c in read.primary_key)
    return Table(name, columns, unique, fks, frozenset(_checks(sql)), primary_key)


def _checks(sql: str) -> list[str]:
    """The CHECK (...) clauses of a CREATE TABLE, normalised for comparison."""
    code = strip_comments(sql)
    found = []
    for match in _CHECK.finditer(code):
        depth, position = 1, match.end()
        while position < len(code) and depth:
            depth += {"(": 1, ")": -1}.get(code[position], 0)
            position += 1
        found.append(" ".join(code[match.end():position - 1].split()).lower())
    return found


@dataclass
class Changes:
    removed: list[str] = field(default_factory=list)
    tightened: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    # NOT NULL columns without a default added to tables that existed: SQLite refuses that on a
    # table with rows (D1's), and where the table is empty the serving version's INSERTs, which do
    # not name the column, are refused.
    unfillable: list[str] = field(default_factory=list)
    # What the serving version relies on and a rebuild dropped: its PRIMARY KEY (ids stop being
    # unique), a DEFAULT (its INSERTs that leave the column out get NULL, or fail on NOT NULL).
    lost: list[str] = field(default_factory=list)
    # Constraints removed or widened (UNIQUE, NOT NULL, FOREIGN KEY, CHECK, a changed DEFAULT): the
    # serving version's writes still work, but what it may assume of the rows no longer holds.
    loosened: list[str] = field(default_factory=list)


def compare(before: Schema, after: Schema, *, orphaned_indexes: bool = False) -> Changes:
    """What a migration removed, tightened and added, in words a reviewer reads.

    `orphaned_indexes` also lists the indexes of a removed table: a rebuild (drop, then rename a new
    table into its place) loses them at the DROP, which is the line to show.
    """
    changes = Changes()
    for key, old in before.tables.items():
        new = after.tables.get(key)
        if new is None:
            changes.removed.append(f"table {old.name}")
            continue
        renamed = _renamed_columns(old, new)
        for column, (ctype, notnull, default, _hidden) in old.columns.items():
            now = new.columns.get(column)
            if now is None:
                changes.removed.append(f"column {old.name}.{column}" + (
                    f" (renames column {old.name}.{column} to {renamed[column]})" if column in renamed else ""))
                continue
            if default is not None and now[2] is None:
                changes.lost.append(f"column {old.name}.{column} lost its DEFAULT {default}")
            elif default is not None and now[2] != default:
                changes.loosened.append(f"column {old.name}.{column}'s DEFAULT changed from {default} to {now[2]}")
            if notnull and not now[1]:
                changes.loosened.append(f"column {old.name}.{column} is no longer NOT NULL")
            if now[1] > notnull:
                changes.tightened.append(f"column {old.name}.{column} became NOT NULL")
            elif now[0] != ctype:
                changes.tightened.append(f"column {old.name}.{column} changed type from {ctype or 'none'} to "
                                         f"{now[0] or 'none'}")
        if old.primary_key and new.primary_key != old.primary_key and all(c in new.columns for c in old.primary_key):
            changes.lost.append(f"{old.name} lost its PRIMARY KEY ({', '.join(old.primary_key)})")
        for cols in sorted(old.unique - new.unique):
            if all(c in new.columns for c in cols if c != "rowid" and not c.startswith(_EXPRESSION)):
                changes.loosened.append(f"{old.name}({', '.join(cols)}) is no longer unique")
        for fk in sorted(old.foreign_keys - new.foreign_keys):
            if fk[0] in new.columns:
                changes.loosened.append(f"{old.name}.{fk[0]} no longer references {fk[1]}({fk[2] or 'its key'})")
        for check in sorted(old.checks - new.checks):
            changes.loosened.append(f"{old.name} lost its CHECK ({check})")
        for cols in sorted(new.unique - old.unique):
            if all(c in old.columns or c == "rowid" or c.startswith(_EXPRESSION) for c in cols):
                changes.tightened.append(f"{old.name}({', '.join(cols)}) must now be unique")
        for fk in sorted(new.foreign_keys - old.foreign_keys):
            if fk[0] in old.columns:
                changes.tightened.append(f"{old.name}.{fk[0]} now references {fk[1]}({fk[2] or 'its key'})")
        for check in sorted(new.checks - old.checks):
            changes.tightened.append(f"{old.name} has a new CHECK ({check})")
        for column in new.columns.keys() - old.columns.keys():
            _type, notnull, default, hidden = new.columns[column]
            if column in renamed.values():
                continue  # the other half of a rename, reported as such
            if notnull and hidden == 0 and (default is None or str(default).upper() == "NULL"):
                changes.unfillable.append(f"column {old.name}.{column}")
            else:
                changes.added.append(f"column {old.name}.{column}")
    changes.added += [f"table {t.name}" for k, t in after.tables.items() if k not in before.tables]
    for index, table in before.indexes.items():
        # A dropped table takes its indexes along: only its own removal is news.
        if index not in after.indexes and (table in after.tables or orphaned_indexes):
            changes.removed.append(f"index {index}")
    changes.added += [f"index {i}" for i in after.indexes.keys() - before.indexes.keys()]
    changes.removed += [f"view {v}" for v in sorted(before.views - after.views)]
    changes.removed += [f"trigger {t}" for t in sorted(before.triggers - after.triggers)]
    changes.added += [f"view {v}" for v in sorted(after.views - before.views)]
    changes.added += [f"trigger {t}" for t in sorted(after.triggers - before.triggers)]
    return changes


def _renamed_columns(old: Table, new: Table) -> dict[str, str]:
    """old name -> new name of the columns `ALTER TABLE ... RENAME COLUMN` renamed: gone from `old`,
    and a column of the same position, type, NOT NULL and DEFAULT that `old` did not have in its place."""
    before, after = list(old.columns.items()), list(new.columns.items())
    found = {}
    for position, (name, spec) in enumerate(before):
        if name not in new.columns and position < len(after):
            other, other_spec = after[position]
            if other not in old.columns and other_spec == spec:
                found[name] = other
    return found


# --- statements ---------------------------------------------------------------------------------

def _code(sql: str) -> str:
    """The statement without comments, strings and quoted names: only what SQLite reads as keywords."""
    return _IDENT.sub("x", _STRING.sub("''", strip_comments(sql)))


def _lint(migration: Migration, statement: Statement) -> tuple[list[Finding], bool]:
    """(findings about one statement's text, whether to run it in the scratch copy at all)."""
    code = _code(statement.sql)
    leading = _KEYWORD.match(code)
    keyword = leading.group(1).upper() if leading else ""
    first = " ".join(strip_comments(statement.sql).split())[:80]
    found: list[Finding] = []

    def add(rule: str, message: str) -> None:
        found.append(Finding(rule, RULES[rule], migration.name, statement.line, message))

    run = True
    if is_transaction_control(statement):
        add("d1-transaction-control", f"`{first}`: D1 rejects transaction control (BEGIN, COMMIT, SAVEPOINT, ...); "
                                      "remove it, each migration is already applied as one unit")
        run = False
    elif keyword in ("ATTACH", "DETACH"):
        add("d1-attach", f"`{first}`: D1 has one database per binding and rejects {keyword}; remove it")
        run = False
    elif keyword == "VACUUM":
        add("d1-vacuum", "`VACUUM`: D1 manages storage itself and rejects it; remove it")
        run = False
    elif keyword == "PRAGMA":
        match = _PRAGMA.match(code)
        pragma = match.group(1).lower() if match else "?"
        if pragma not in D1_PRAGMAS:
            add("d1-pragma", f"`PRAGMA {pragma}` is not one D1 supports (it allows {', '.join(sorted(D1_PRAGMAS))}); "
                             "remove it")
            run = False
    if _VIRTUAL.match(code):
        add("d1-virtual-table", f"`{first}`: a virtual table (FTS5 and others) breaks D1's export, and with it "
                                "the daily backup; keep the data in ordinary tables")
    size = len(statement.sql.encode())
    if size > MAX_STATEMENT_BYTES:
        add("d1-statement-too-large", f"the statement is {size:,} bytes; D1 accepts at most {MAX_STATEMENT_BYTES:,} "
                                      "per statement: split it (e.g. one INSERT per batch of rows)")
        # Never run: D1 refuses it anyway, and SQLite compiles a long multi-row VALUES in quadratic
        # time (a 9 MB seed INSERT took minutes).
        run = False
    parameters = len(_PARAM.findall(code))
    if parameters > MAX_PARAMETERS:
        add("d1-too-many-parameters", f"the statement has {parameters} bound parameters; D1 allows at most "
                                      f"{MAX_PARAMETERS}")
    dml = _dml_keyword(code)
    if dml in ("UPDATE", "DELETE") and not _WHERE.search(_top_level(code)):
        if dml == "DELETE":
            add("delete-without-where", f"`{first}` deletes every row, which no Worker rollback brings back and "
                                        "only a Time Travel restore (rewinding every booking) could; add a WHERE "
                                        "clause, or move the table out of use first and drop it in a later release")
        else:
            add("update-without-where", f"`{first}` rewrites every row: fine for a backfill of a new column, but "
                                        "the serving version's values are overwritten too; add a WHERE clause "
                                        "(e.g. WHERE new_column IS NULL) if that is not intended")
    return found, run


def _top_level(code: str) -> str:
    """`code` without what is inside parentheses: a WHERE in a subquery or a CTE limits nothing.

    `code` has no strings, quoted names or comments left (`_code`), so every parenthesis is SQL's.
    """
    kept: list[str] = []
    depth, start = 0, 0
    for match in _PAREN.finditer(code):
        if match.group() == "(":
            if depth == 0:
                kept.append(code[start:match.start()])
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0:
                start = match.end()
    if depth == 0:
        kept.append(code[start:])
    return " ".join(kept)


def _dml_keyword(code: str) -> str | None:
    """INSERT/REPLACE/UPDATE/DELETE when the statement is one (a leading WITH ... included)."""
    text = code.lstrip()
    match = _KEYWORD.match(text)
    if not match:
        return None
    word = match.group(1).upper()
    if word == "WITH":
        found = re.search(r"\)\s*(INSERT|REPLACE|UPDATE|DELETE)\b", text, re.IGNORECASE)
        return found.group(1).upper() if found else None
    return word if word in ("INSERT", "REPLACE", "UPDATE", "DELETE") else None


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
        run = _Run(before, _serving_probes(conn, before))
        for migration in pending:
            log(f"checking {migration.name}")
            result, before, preparing = _check_one(conn, migration, queries, before, preparing, run)
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


@dataclass
class _Run:
    """What the check learns across the pending migrations of one run."""

    serving: Schema  # the schema the serving version runs on (before any pending migration)
    probes: dict[mr.Probe, mr.Outcome | None]  # its writes and what they do on that schema
    # (table, column) of the serving schema -> the pending migration that read it (a backfill's source).
    read_by: dict[tuple[str, str], str] = field(default_factory=dict)


def _serving_probes(conn: sqlite3.Connection, serving: Schema) -> dict[mr.Probe, mr.Outcome | None]:
    tables = _row_tables(serving)
    return {probe: mr.outcome(conn, probe, tables) for probe in mr.probes(conn)
            if probe.table.lower() in serving.tables}


def _row_tables(schema: Schema) -> list[str]:
    return [t.name for t in schema.tables.values()]


def _is_runners(name: str | None) -> bool:
    return bool(name) and str(name).lower().startswith(MIGRATIONS_TABLE)


def _check_one(conn: sqlite3.Connection, migration: Migration, queries: Sequence[ServingQuery], before: Schema,
               preparing: set[ServingQuery], run: _Run) -> tuple[MigrationResult, Schema, set[ServingQuery]]:
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
    tables = _row_tables(before)

    def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, trigger: str | None) -> int:
        if action in _ROW_WRITES and arg1 and not _skipped(arg1) and not _is_runners(arg1):
            writes.add(arg1.lower())
            if trigger is None and action != sqlite3.SQLITE_INSERT:
                targets.setdefault("DELETE" if action == sqlite3.SQLITE_DELETE else "UPDATE", arg1.lower())
        if action == sqlite3.SQLITE_READ and arg1 and arg2:
            reads.add((arg1.lower(), arg2.lower()))
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
        found, run_it = _lint(migration, statement)
        result.findings += found
        if not run_it or failed:  # after a failure the rest is still read, never run
            continue
        _at(f"{migration.name}:{statement.line}")
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        writes.clear()
        targets.clear()
        runners.clear()
        reads.clear()
        rows_before = mr.counts(conn, tables)
        dml = _dml_keyword(_code(statement.sql))
        # Rows can stay while their values go (REPLACE rewrites a row from what it names; an upsert or
        # an UPDATE sets every row's value): for writes, what each column holds before and after.
        values_before = mr.filled(conn, tables) if dml in ("INSERT", "REPLACE", "UPDATE") else {}
        conn.set_authorizer(shielded(authorize, sqlite3.SQLITE_DENY))
        deadline = time.monotonic() + STATEMENT_SECONDS
        conn.set_progress_handler(shielded(_past(deadline), 1), 10_000)
        try:
            cursor = conn.execute(statement.sql)
            changed = cursor.rowcount
        except sqlite3.Error as exc:
            reraise_pending()
            message = (f"still running after {STATEMENT_SECONDS:g} s against a copy without rows, so stopped; D1 "
                       "stops a query after 30 s: bound it (a recursive CTE needs a LIMIT or a WHERE that ends it)"
                       if time.monotonic() > deadline else f"SQLite refuses `{_first(statement.sql)}`: {exc}")
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
                f"`{_first(statement.sql)}` changes {', '.join(sorted(set(runners)))}, the migration runner's own "
                "record of what was applied and approved: a trigger there runs with every later migration, and "
                "without the record migrations run twice or approvals vanish. Leave those tables to the runner"))
            if "TRIGGER" in _code(statement.sql).upper():
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
                    f"`{_first(statement.sql)}` deletes every row of {named}: its WHERE holds for every row the check "
                    "tried (a condition always true, or true of every value the column can hold), so it is no "
                    "WHERE; no Worker rollback brings the rows back. Name the rows to delete"))
        elif dml == "UPDATE" and named and had and changed >= had and "update-without-where" not in flagged:
            result.findings.append(Finding(
                "update-without-where", WARNING, migration.name, statement.line,
                f"`{_first(statement.sql)}` rewrites every row of {named}: its WHERE holds for every row the check "
                "tried; fine for a backfill of a new column, but the serving version's values are overwritten too"))
        if values_before:
            values_after = mr.filled(conn, list(values_before))
            for table, held in values_before.items():
                if not rows_after.get(table):
                    continue  # rows gone: rows-lost says so
                gone = [c for c, n in held.items() if n and values_after.get(table, {}).get(c) == 0]
                if gone:
                    result.findings.append(Finding(
                        "values-wiped", ERROR, migration.name, statement.line,
                        f"after `{_first(statement.sql)}` no row of {table} holds a value in "
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
                error = _prepare_error(conn, query.sql)
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
    preparing = {q for q in queries if _prepare_error(conn, q.sql) is None}
    return result, after, preparing


def _shapes(conn: sqlite3.Connection) -> dict[str, str]:
    """Per table (lower-case name), the SQL of it and of its indexes and triggers."""
    return {str(t).lower(): str(s) for t, s in conn.execute(
        "SELECT tbl_name, group_concat(coalesce(sql, ''), char(10)) FROM "
        "(SELECT tbl_name, sql FROM sqlite_schema ORDER BY type, name) GROUP BY tbl_name")}


def _first(sql: str) -> str:
    return " ".join(strip_comments(sql).split())[:80]


def _past(deadline: float) -> Callable[[], bool]:
    """A progress handler: true (SQLite interrupts the statement) once `deadline` has passed."""
    return lambda: time.monotonic() > deadline


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
    from ops.targets import LocalDatabase

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
