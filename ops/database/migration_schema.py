"""The schema as `migrate check` compares it before and after a migration: tables with their columns,
unique column sets, foreign keys, CHECK clauses and primary key; explicit indexes, views and triggers
(read through ops/database/schema.py), and what changed between two of them, in a reviewer's words.

Apart from the check because the comparison is pure: two snapshots in, the removed, tightened,
loosened and added parts out; the judge (ops/database/migration_judge.py) decides what each means
for a rollback.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

from ops.database import schema
from ops.database.migrations import TABLE as MIGRATIONS_TABLE
from ops.database.sqlscript import strip_comments

_CHECK = re.compile(r"\bCHECK\s*\(", re.IGNORECASE)
# How an index's expression term (cid -2: no column name) is named in Table.unique.
_EXPRESSION = "an expression"


def skipped(name: str) -> bool:
    """SQLite's own tables (sqlite_sequence appears with the first AUTOINCREMENT) and D1's (_cf_KV)."""
    return name.startswith(("sqlite_", "_cf_"))


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
        if skipped(name) or name == MIGRATIONS_TABLE or name.startswith(f"{MIGRATIONS_TABLE}_"):
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
