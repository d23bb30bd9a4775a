"""What a tenant restore changes, table by table, and what it refuses before writing: the plan's
changes in an order D1 accepts (parents first; within a table, referenced rows first), the conflicts
that stop it (another tenant's key or unique value, a reference to a row that is gone, a deletion
leaving a row pointing nowhere, an upsert longer than D1 takes), and its SQL in batches.

Apart from ops/tenants/tenant_restore.py, which decides whose rows these are, builds the plan and
applies it: this is the plan's content and its checks, which write nothing.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from booking_shared.limits import D1_STATEMENT_BYTES
from ops.database import schema
from ops.database.sqlscript import quote_ident
from ops.targets import Database
from ops.tenants.tenant_rows import (
    Row,
    ScopedTable,
    lookup,
    mine_where,
    read_rows,
    references,
    table_columns,
    table_names,
)

# D1 takes statements of up to 100 KB and requests of a few MB; batches stay well below.
BATCH_ROWS = 100
BATCH_BYTES = 90_000
# D1 takes statements of D1_STATEMENT_BYTES and rows of D1_ROW_BYTES (booking_shared.limits, with the
# source), so a restored row can need a longer upsert than D1 takes: the plan refuses it, before any write.


# --- the plan ------------------------------------------------------------------------------

@dataclass
class TableChange:
    """What the restore does to one table."""

    table: str
    insert: int = 0
    update: int = 0
    unchanged: int = 0
    only_now: int = 0  # this tenant's rows the backup lacks: kept, or deleted with delete_missing
    shared: int = 0  # rows of the backup this tenant shares with another one: left alone
    log: bool = False  # one of LOG_TABLES: rows the backup lacks are kept even with delete_missing
    upserts: list[Row] = field(default_factory=list, repr=False)
    deletes: list[Row] = field(default_factory=list, repr=False)

    def to_dict(self, delete_missing: bool) -> dict[str, Any]:
        return {"table": self.table, "insert": self.insert, "update": self.update, "unchanged": self.unchanged,
                ("delete" if delete_missing and not self.log else "keep"): self.only_now,
                "sharedLeftAlone": self.shared}


@dataclass
class RestorePlan:
    """The preview: per table what would change, and why the restore cannot run (conflicts), if so."""

    slug: str
    tenant_id: str
    backup: str
    target: str
    delete_missing: bool
    changes: list[TableChange]
    scope: list[ScopedTable] = field(repr=False)
    conflicts: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return sum(len(c.upserts) + len(c.deletes) for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.slug, "tenantId": self.tenant_id, "backup": self.backup, "target": self.target,
                "rowsTheBackupLacks": "delete" if self.delete_missing else "keep",
                "tables": [c.to_dict(self.delete_missing) for c in self.changes],
                "conflicts": self.conflicts, "writes": self.writes}



def row_key(table: ScopedTable, row: Row) -> Row:
    return tuple(row[table.columns.index(k)] for k in table.key)


def referenced_first(table: ScopedTable, rows: list[Row], doing: str, conflicts: list[str]) -> list[Row]:
    """`rows` ordered so that a row another one references through the table's own foreign keys comes
    before it (in key order otherwise). D1 checks each statement's references as it runs (as SQLite with
    `PRAGMA foreign_keys = on` does: cloudflare-docs src/content/docs/d1/sql-api/foreign-keys.mdx), so
    key order fails on an appointment rescheduled from one whose key sorts after it. Rows that
    reference one another in a cycle have no such order: named in `conflicts`."""
    if not table.selfs or len(rows) < 2:
        return rows
    holders: dict[tuple[int, str], list[int]] = {}  # (parent column, literal) -> rows holding it
    for link in table.selfs:
        at = table.columns.index(link.parent_column)
        for i, row in enumerate(rows):
            holders.setdefault((at, row[at]), []).append(i)
    waiting_on = [0] * len(rows)
    referencing: list[list[int]] = [[] for _ in rows]
    for link in table.selfs:
        at, to = table.columns.index(link.column), table.columns.index(link.parent_column)
        for i, row in enumerate(rows):
            if row[at] == "NULL":
                continue
            for j in holders.get((to, row[at]), []):
                if j != i:  # a row referencing itself is checked once it is written: no order needed
                    waiting_on[i] += 1
                    referencing[j].append(i)
    ready = deque(i for i in range(len(rows)) if not waiting_on[i])
    order: list[int] = []
    while ready:
        i = ready.popleft()
        order.append(i)
        for child in referencing[i]:
            waiting_on[child] -= 1
            if not waiting_on[child]:
                ready.append(child)
    if len(order) < len(rows):
        stuck = [row_key(table, rows[i]) for i in range(len(rows)) if waiting_on[i]]
        columns = ", ".join(sorted({link.column for link in table.selfs}))
        conflicts.append(f"{table.name}: rows {'; '.join(_show(table.key, k) for k in stuck[:5])} reference one "
                         f"another ({columns}) in a cycle, so there is no order to {doing} them in that keeps every "
                         "reference valid; restore them by hand in one transaction with PRAGMA defer_foreign_keys = "
                         "on")
        order += [i for i in range(len(rows)) if waiting_on[i]]
    return [rows[i] for i in order]


def check_statement_sizes(plan: RestorePlan) -> None:
    """Each write must fit in one D1 statement (D1_STATEMENT_BYTES), or the restore stops half-written."""
    by_name = {t.name: t for t in plan.scope}
    for change in plan.changes:
        table = by_name[change.table]
        over = [(row, size) for row in change.upserts if (size := len(_upsert_sql(table, row).encode())) >
                D1_STATEMENT_BYTES]
        for row, size in over[:5]:
            plan.conflicts.append(
                f"{table.name} {_show(table.key, row_key(table, row))}: its upsert is {size:,} bytes, longer than "
                f"the {D1_STATEMENT_BYTES:,} bytes D1 takes in one SQL statement (developers.cloudflare.com/d1/"
                "platform/limits); write that row by hand in parts (an INSERT, then UPDATEs appending to its "
                "long column), then run the restore again, or restore it with --tables leaving this table out")


def check_target_schema(db: Database, scope: list[ScopedTable], conflicts: list[str]) -> None:
    present = set(table_names(db))
    for table in scope:
        if table.name not in present:
            conflicts.append(f"the database has no {table.name} table; apply the migrations first "
                             f"(`bookingctl migrate apply {db.fix_target}`)")
            continue
        columns, key = table_columns(db, table.name)
        lacking = [c for c in table.columns if c not in columns]
        if lacking:
            conflicts.append(f"{table.name}: the database has no column {', '.join(lacking)}, which the backup has; "
                             "a migration removed or renamed it, so the backup's rows no longer fit")
        elif key != table.key:
            conflicts.append(f"{table.name}: the primary key is ({', '.join(key)}) in the database and "
                             f"({', '.join(table.key)}) in the backup")


def check_conflicts(db: Database, backup: sqlite3.Connection, plan: RestorePlan) -> None:
    """Refuse what would touch another tenant's row or break a constraint, before anything is written."""
    by_name = {t.name: t for t in plan.scope}
    writing: dict[str, set[Row]] = {}
    for change in plan.changes:
        table = by_name[change.table]
        index = [table.columns.index(k) for k in table.key]
        keys = {tuple(row[i] for i in index) for row in change.upserts}
        writing[table.name] = keys
        # A backup row whose key another tenant's (or nobody's) row holds now.
        mine_now = {tuple(str(r[k]) for k in table.key) for r in lookup(db, table.name, table.key, keys, table.key)}
        if mine_now:
            ours = set(read_rows(db, table, mine_where(table, by_name), plan.tenant_id))
            for key in sorted(mine_now - ours)[:5]:
                plan.conflicts.append(f"{table.name} {_show(table.key, key)}: the backup has it as tenant "
                                      f"{plan.slug}'s, but the database's row with that key is not this tenant's now")
        _check_unique(db, backup, table, change, plan)
    for change in plan.changes:
        _check_parents(db, by_name[change.table], change, writing, plan)
        if change.deletes:
            _check_children(db, backup, by_name[change.table], change, plan)


def _check_unique(db: Database, backup: sqlite3.Connection, table: ScopedTable, change: TableChange,
                  plan: RestorePlan) -> None:
    if not change.upserts:
        return
    for index in schema.indexes(backup, table.name):
        if not index.unique or index.origin == "pk":
            continue
        columns = [c for c in index.columns if c is not None]
        if not columns or len(columns) < len(index.columns) or any(c not in table.columns for c in columns):
            continue  # an index on an expression: not checked here (the schema has none)
        at = [table.columns.index(c) for c in columns]
        key_at = [table.columns.index(k) for k in table.key]
        values = {tuple(row[i] for i in at): tuple(row[i] for i in key_at) for row in change.upserts
                  if all(row[i] != "NULL" for i in at)}  # NULLs never collide
        for row in lookup(db, table.name, columns, values, [*columns, *table.key]):
            value = tuple(str(row[c]) for c in columns)
            holder = tuple(str(row[k]) for k in table.key)
            if values.get(value) not in (None, holder):
                plan.conflicts.append(f"{table.name}: the backup's row {_show(table.key, values[value])} has "
                                      f"{_show(tuple(columns), value)}, which row {_show(table.key, holder)} holds now "
                                      "(unique)")


def _check_parents(db: Database, table: ScopedTable, change: TableChange, writing: dict[str, set[Row]],
                   plan: RestorePlan) -> None:
    """Each restored row's foreign keys point to a row the database has or this restore writes."""
    for link in references(db, table.name, lambda parent: table_columns(db, parent)[1]):
        at = table.columns.index(link.column)
        wanted = {(row[at],) for row in change.upserts if row[at] != "NULL"}
        if not wanted:
            continue
        parent_keys = {k for k in writing.get(link.parent, set()) if len(k) == 1}
        wanted -= parent_keys
        found = {(str(r[link.parent_column]),) for r in lookup(db, link.parent, [link.parent_column], wanted,
                                                                [link.parent_column])}
        for value in sorted(wanted - found)[:5]:
            plan.conflicts.append(f"{table.name}.{link.column} = {value[0]} in the backup, but {link.parent} has no "
                                  f"such row now and this restore does not bring it back (it is not tenant "
                                  f"{plan.slug}'s, or its table was left out by --tables)")


def _check_children(db: Database, backup: sqlite3.Connection, table: ScopedTable, change: TableChange,
                    plan: RestorePlan) -> None:
    """Deleting the rows the backup lacks must not leave another tenant's (or a global) row pointing nowhere."""
    deleting = {c.table: set(c.deletes) for c in plan.changes}
    for child in table_names(db):
        child_key = table_columns(db, child)[1]
        for link in references(db, child, lambda parent: table_columns(db, parent)[1]):
            if link.parent != table.name or (link.parent_column,) != table.key:
                continue
            for row in lookup(db, child, [link.column], change.deletes, child_key):
                key = tuple(str(row[k]) for k in child_key)
                if key not in deleting.get(child, set()):
                    plan.conflicts.append(f"deleting {table.name} rows the backup lacks would leave {child} "
                                          f"{_show(child_key, key)} pointing nowhere (or delete it through a "
                                          "cascade); it is not among the rows this restore deletes")
                    break


def _show(columns: Sequence[str], values: Sequence[str]) -> str:
    return ", ".join(f"{c}={v}" for c, v in zip(columns, values, strict=True))


# --- applying ------------------------------------------------------------------------------

def statements(plan: RestorePlan) -> list[str]:
    """The plan's writes: upserts parents first (within a table, referenced rows first), then deletions
    children first."""
    by_name = {t.name: t for t in plan.scope}
    out: list[str] = []
    for change in plan.changes:
        table = by_name[change.table]
        out.extend(_upsert_sql(table, row) for row in change.upserts)
    for change in reversed(plan.changes):
        table = by_name[change.table]
        target = ", ".join(quote_ident(c) for c in table.key)
        for key in change.deletes:
            out.append(f"DELETE FROM {quote_ident(table.name)} WHERE ({target}) = ({', '.join(key)});")
    return out


def _upsert_sql(table: ScopedTable, row: Row) -> str:
    columns = ", ".join(quote_ident(c) for c in table.columns)
    conflict = ", ".join(quote_ident(c) for c in table.key)
    rest = [c for c in table.columns if c not in table.key]
    action = ("DO UPDATE SET " + ", ".join(f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c in rest)
              if rest else "DO NOTHING")
    # Literals from SQLite's quote(): safe to splice, exact in type and value.
    return (f"INSERT INTO {quote_ident(table.name)} ({columns}) VALUES ({', '.join(row)}) "
            f"ON CONFLICT ({conflict}) {action};")


def batches(sql: Sequence[str], *, rows: int = BATCH_ROWS, size: int = BATCH_BYTES) -> list[list[str]]:
    out: list[list[str]] = []
    current: list[str] = []
    length = 0
    for statement in sql:
        if current and (len(current) >= rows or length + len(statement) > size):
            out.append(current)
            current, length = [], 0
        current.append(statement)
        length += len(statement) + 1
    if current:
        out.append(current)
    return out

