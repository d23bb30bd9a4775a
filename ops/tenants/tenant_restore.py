"""Restoring one tenant's rows from a backup, leaving every other tenant's rows as they are.

A Time Travel restore rewinds the whole shared database; undoing one salon's mistake that way
would also undo every other salon's bookings since. This restores only the rows that belong to
one tenant, read from one of our backups (`ops.backups.backups`: checked against its manifest and loaded
under the dump authorizer into a scratch SQLite).

**Which rows are a tenant's** is derived from the schema, not listed by hand. The root is the
`tenants` row with the slug. A table with a column that references `tenants` (a declared foreign
key, or a column named `tenant_id`, which `audit_logs` has without declaring one) belongs to the
tenant its value names: that link decides, whatever else the row references (an appointment of
salon A by a customer registered at salon B is A's). A table without such a column belongs to a
tenant through its foreign keys into tables already in scope (sessions through users,
api_usage_logs through api_keys and users), transitively. A row reached from this tenant *and*
from another one (a role change of an A user made by a B admin) is shared: it is left alone and
counted. Tables nothing leads to from `tenants` (permissions, auth_attempts) are global and never
touched.

**What changes.** Rows of the tenant in the backup are upserted by primary key: inserted when
absent, updated when different, in foreign-key order (parents first; within a table that references
itself, referenced rows first), in batches. Rows the tenant has now that the backup lacks (bookings
made since the backup) are **kept** by default; with `delete_missing` they are deleted (children
first), except in the log tables (LOG_TABLES: what happened since the backup stays on record).
Nothing else is written: before any write the plan is refused when a backup row's key is held now by
a row that is not this tenant's, when a restored row would repeat a unique value (an email, a
hostname) another row holds, when a row's foreign key would point to a row the database no longer has
and this restore does not bring back, when a deletion would leave another row pointing nowhere, when
rows of one table reference one another in a cycle, or (into a D1) when a row's upsert is longer than
one D1 statement may be or the backup is of a local file (unless allowed). So every other tenant's
rows stay byte-identical, and a plan that passes does not fail half-written.

**A bookmark first.** On a remote D1 a Time Travel bookmark is taken before the first write (the
whole database's restore point); on a local file a full backup (`pre-tenant-restore-...`) is made.
Locally every write runs in one SQLite transaction. Remotely each batch is one request, sent once
(`ops.targets.writer()`): a batch whose answer is lost stops the restore and says so; the restore
is idempotent (upserts of the same rows), so running it again completes it.

Values travel as SQLite's own literals (`quote()` of each column, read locally or through D1), so
comparison is exact (an integer 1 is not the text '1') and the statements carry no parameters.
"""

from __future__ import annotations

import re
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from booking_shared.errors import InputError, OperationFailed
from booking_shared.limits import D1_STATEMENT_BYTES
from ops.database import schema
from ops.database.sqlscript import quote_ident
from ops.targets import AnswerLost, Database, LocalDatabase, RemoteDatabase, UncertainWriteError

ROOT = "tenants"
# A column of this name references tenants(id) even where the schema declares no foreign key.
TENANT_COLUMN = "tenant_id"
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# D1 takes statements of up to 100 KB and requests of a few MB; batches stay well below.
BATCH_ROWS = 100
BATCH_BYTES = 90_000
# D1 takes statements of D1_STATEMENT_BYTES and rows of D1_ROW_BYTES (booking_shared.limits, with the
# source), so a restored row can need a longer upsert than D1 takes: the plan refuses it, before any write.
# Tables that record what happened (who changed a role, what an admin did, which API key was used):
# `delete_missing` never deletes their rows, the record of what happened since the backup included
# (a forced removal, an elevation to admin). Rows the backup has are still restored.
LOG_TABLES = frozenset({"audit_logs", "role_audit_log", "api_usage_logs", "auth_attempts"})
_LOOKUP_BYTES = 50_000  # the SQL text of one key lookup (keys are spelled out as literals)

Log = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


class TenantRestoreError(OperationFailed):
    """The restore was refused or failed; the message says what was left and what to do."""


class TenantRestoreInputError(TenantRestoreError, InputError):
    """A slug, table name or option that cannot be used (bad input, exit 2)."""


# --- the tenant's scope, from the schema ------------------------------------------------------

@dataclass(frozen=True)
class Link:
    """A single-column reference from a table to a parent table's column."""

    column: str
    parent: str
    parent_column: str


@dataclass(frozen=True)
class ScopedTable:
    """A table holding tenant rows: its columns, primary key and the links that make rows a tenant's."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    direct: tuple[str, ...]  # columns that name the tenant (reference tenants)
    through: tuple[Link, ...]  # references into other scoped tables (used when `direct` is empty)
    # References into the table itself (an appointment rescheduled from another): its rows are
    # written referenced-first and deleted referencing-first.
    selfs: tuple[Link, ...] = ()


def _tables(conn: Any) -> list[str]:
    rows = _rows(conn, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                       "AND name NOT LIKE '_cf_%' AND name <> 'd1_migrations' ORDER BY name")
    return [str(r["name"]) for r in rows]


def _rows(conn: Any, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Rows as dicts from a sqlite3 connection or a Database (local or remote)."""
    if isinstance(conn, sqlite3.Connection):
        cursor = conn.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    result: list[dict[str, Any]] = conn.query(sql, params)
    return result


def _columns(conn: Any, table: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(columns, primary-key columns in key order) of `table`."""
    info = _rows(conn, f"PRAGMA table_info({quote_ident(table)})")
    columns = tuple(str(r["name"]) for r in info)
    key = tuple(str(r["name"]) for r in sorted((r for r in info if int(r["pk"] or 0) > 0), key=lambda r: int(r["pk"])))
    return columns, key


def _references(conn: Any, table: str, key_of: Callable[[str], tuple[str, ...]]) -> list[Link]:
    """Single-column foreign keys of `table` (composite ones cannot make a row a tenant's and are skipped)."""
    found = _rows(conn, f"PRAGMA foreign_key_list({quote_ident(table)})")
    by_id: dict[int, list[dict[str, Any]]] = {}
    for row in found:
        by_id.setdefault(int(row["id"]), []).append(row)
    links = []
    for parts in by_id.values():
        if len(parts) != 1:
            continue
        row = parts[0]
        parent = str(row["table"])
        to = row["to"]
        if to is None:  # REFERENCES parent without a column: the parent's primary key
            parent_key = key_of(parent)
            if len(parent_key) != 1:
                continue
            to = parent_key[0]
        links.append(Link(str(row["from"]), parent, str(to)))
    return links


def tenant_scope(conn: Any) -> list[ScopedTable]:
    """The tables holding a tenant's rows, parents before children, derived from `conn`'s schema."""
    names = _tables(conn)
    if ROOT not in names:
        raise TenantRestoreError(f"the database has no {ROOT} table: it is not this platform's schema")
    shapes = {name: _columns(conn, name) for name in names}

    def key_of(table: str) -> tuple[str, ...]:
        return shapes.get(table, ((), ()))[1]

    links = {name: _references(conn, name, key_of) for name in names}
    for name in names:
        declared = {link.column for link in links[name]}
        if name != ROOT and TENANT_COLUMN in shapes[name][0] and TENANT_COLUMN not in declared:
            links[name].append(Link(TENANT_COLUMN, ROOT, "id"))
    scoped = {ROOT}
    grew = True
    while grew:
        grew = False
        for name in names:
            if name not in scoped and any(link.parent in scoped for link in links[name]):
                scoped.add(name)
                grew = True
    order = _parents_first(scoped, {n: {lk.parent for lk in links[n] if lk.parent in scoped and lk.parent != n}
                                    for n in scoped})
    tables = []
    for name in order:
        columns, key = shapes[name]
        if not key:
            raise TenantRestoreError(f"table {name} holds tenant rows but has no primary key, so its rows cannot be "
                                     "matched between the backup and the database")
        direct = tuple(lk.column for lk in links[name] if lk.parent == ROOT) if name != ROOT else ()
        through = tuple(lk for lk in links[name] if lk.parent in scoped and lk.parent not in (ROOT, name))
        selfs = tuple(lk for lk in links[name] if lk.parent == name)
        tables.append(ScopedTable(name, columns, key, direct, through, selfs))
    return tables


def _parents_first(tables: set[str], parents: dict[str, set[str]]) -> list[str]:
    order: list[str] = []
    waiting = dict(parents)
    while waiting:
        ready = sorted(n for n, ps in waiting.items() if not (ps - set(order)))
        if not ready:
            raise TenantRestoreError(f"the foreign keys among {', '.join(sorted(waiting))} form a cycle; there is "
                                     "no order in which to write their rows")
        order.extend(ready)
        for name in ready:
            del waiting[name]
    return order


def _mine(table: ScopedTable, scope: dict[str, ScopedTable]) -> str:
    """SQL condition: the row is this tenant's (parameter ?1, the tenant id) and no other tenant's."""
    if table.name == ROOT:
        return '"id" = ?1'
    if table.direct:
        named = " OR ".join(f"{quote_ident(c)} = ?1" for c in table.direct)
        return f"({named}) AND NOT ({_theirs(table, scope)})"
    return f"({_through(table, scope, _mine)}) AND NOT ({_theirs(table, scope)})"


def _through(table: ScopedTable, scope: dict[str, ScopedTable],
             parent_condition: Callable[[ScopedTable, dict[str, ScopedTable]], str]) -> str:
    """SQL condition: one of the table's links points at a parent row meeting `parent_condition`.
    COALESCE: a NULL reference points at nothing."""
    return " OR ".join(
        f"COALESCE({quote_ident(lk.column)} IN (SELECT {quote_ident(lk.parent_column)} FROM {quote_ident(lk.parent)} "
        f"WHERE {parent_condition(scope[lk.parent], scope)}), 0)" for lk in table.through)


def _theirs(table: ScopedTable, scope: dict[str, ScopedTable]) -> str:
    """SQL condition: another tenant reaches the row. COALESCE: a NULL reference reaches nobody."""
    if table.name == ROOT:
        return '"id" <> ?1'
    if table.direct:
        return " OR ".join(f"COALESCE({quote_ident(c)} <> ?1, 0)" for c in table.direct)
    return _through(table, scope, _theirs)


def _reached(table: ScopedTable, scope: dict[str, ScopedTable]) -> str:
    """SQL condition: this tenant reaches the row (shared rows included)."""
    if table.name == ROOT:
        return '"id" = ?1'
    if table.direct:
        return " OR ".join(f"{quote_ident(c)} = ?1" for c in table.direct)
    return _through(table, scope, _mine)


# --- reading rows as literals -----------------------------------------------------------------

Row = tuple[str, ...]  # each column as SQLite's quote() literal


def _select(table: ScopedTable, columns: Sequence[str], where: str) -> str:
    listed = ", ".join(f"quote({quote_ident(c)}) AS {quote_ident(c)}" for c in columns)
    order = ", ".join(quote_ident(c) for c in table.key)
    return f"SELECT {listed} FROM {quote_ident(table.name)} WHERE {where} ORDER BY {order}"


def _read(conn: Any, table: ScopedTable, where: str, tenant_id: str) -> dict[Row, Row]:
    """Primary key -> the whole row, as literals."""
    rows = _rows(conn, _select(table, table.columns, where), [tenant_id])
    index = [table.columns.index(k) for k in table.key]
    found = {}
    for row in rows:
        values = tuple(str(row[c]) for c in table.columns)
        found[tuple(values[i] for i in index)] = values
    return found


def _count(conn: Any, table: ScopedTable, where: str, tenant_id: str) -> int:
    rows = _rows(conn, f"SELECT COUNT(*) AS n FROM {quote_ident(table.name)} WHERE {where}", [tenant_id])
    return int(rows[0]["n"]) if rows else 0


def _lookup(db: Database, table: str, columns: Sequence[str], wanted: Iterable[Row],
            returned: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of `table` whose `columns` equal one of `wanted` (literals), in chunks; `returned` quoted."""
    chunk: list[str] = []
    size = 0
    out: list[dict[str, Any]] = []
    target = ", ".join(quote_ident(c) for c in columns)
    listed = ", ".join(f"quote({quote_ident(c)}) AS {quote_ident(c)}" for c in returned)

    def flush() -> None:
        if chunk:
            out.extend(_rows(db, f"SELECT {listed} FROM {quote_ident(table)} WHERE ({target}) IN "
                                 f"(VALUES {', '.join(chunk)})"))
            chunk.clear()

    for values in wanted:
        tuple_sql = f"({', '.join(values)})"
        if size + len(tuple_sql) > _LOOKUP_BYTES or len(chunk) >= 500:
            flush()
            size = 0
        chunk.append(tuple_sql)
        size += len(tuple_sql) + 2
    flush()
    return out


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


def check_slug(slug: str) -> str:
    if not _SLUG.fullmatch(slug):
        raise TenantRestoreInputError(
            f"tenant slug {slug!r}: use lowercase letters, digits and hyphens, as in the tenants "
            "table (e.g. instylehairboutique)")
    return slug


def plan_restore(db: Database, backup: sqlite3.Connection, slug: str, *, backup_name: str,
                 tables: Sequence[str] | None = None, delete_missing: bool = False,
                 source: Mapping[str, Any] | None = None, source_bound: bool = True,
                 allow_local_source: bool = False) -> RestorePlan:
    """Compare the tenant's rows in `backup` (a loaded scratch copy) with `db`; nothing is written.

    `tables` limits the restore to some of the tenant's tables (the scope is still worked out
    over all of them, so ownership does not change). `source` is the backup manifest's: a backup
    of another D1 (another stack's) is refused, and so is a backup of anything but a D1 (a local
    file: a dev or test copy) into a D1 unless `allow_local_source`; None: not checked (a caller
    with no manifest; the CLI always passes it). `source_bound`: the manifest binds `source` to its
    dump (`source_sha256`); an unbound one is trusted into a D1 only as a local source would be.
    """
    check_slug(slug)
    if source is not None:
        _check_source(db, source, backup_name, allow_local_source, source_bound)
    found = _rows(backup, f"SELECT id FROM {ROOT} WHERE slug = ?1", [slug]) if ROOT in _tables(backup) else []
    if not found:
        known = [str(r["slug"]) for r in _rows(backup, f"SELECT slug FROM {ROOT} ORDER BY slug LIMIT 20")] \
            if ROOT in _tables(backup) else []
        raise TenantRestoreInputError(
            f"backup {backup_name} has no tenant with slug {slug!r}"
            + (f"; its tenants: {', '.join(known)}" if known else "; it holds no tenants"))
    tenant_id = str(found[0]["id"])
    scope = tenant_scope(backup)
    by_name = {t.name: t for t in scope}
    chosen = _chosen(scope, tables)
    conflicts: list[str] = []
    now = _rows(db, f"SELECT id FROM {ROOT} WHERE slug = ?1", [slug])
    if now and str(now[0]["id"]) != tenant_id:
        conflicts.append(f"the database's tenant {slug!r} has id {now[0]['id']}, the backup's has id {tenant_id}: "
                         "the slug was given to another tenant since; this restore would mix the two")
    _check_target_schema(db, scope, conflicts)
    if conflicts:
        return RestorePlan(slug, tenant_id, backup_name, db.label, delete_missing, [], scope, conflicts)

    changes = []
    cycles: list[str] = []
    for table in scope:
        if table.name not in chosen:
            continue
        mine = _mine(table, by_name)
        then = _read(backup, table, mine, tenant_id)
        current = _read(db, table, mine, tenant_id)
        change = TableChange(table.name, shared=_count(backup, table, f"({_reached(table, by_name)}) AND "
                                                                      f"({_theirs(table, by_name)})", tenant_id),
                             log=table.name in LOG_TABLES)
        for key, row in then.items():
            if key not in current:
                change.insert += 1
                change.upserts.append(row)
            elif current[key] != row:
                change.update += 1
                change.upserts.append(row)
            else:
                change.unchanged += 1
        missing = [key for key in current if key not in then]
        change.only_now = len(missing)
        change.upserts = _referenced_first(table, change.upserts, "write", cycles)
        if delete_missing and not change.log:
            # Referencing rows first: the reverse of the order in which they could be written.
            doomed = _referenced_first(table, [current[key] for key in missing], "delete", cycles)
            change.deletes = [_key_of(table, row) for row in reversed(doomed)]
        changes.append(change)
    plan = RestorePlan(slug, tenant_id, backup_name, db.label, delete_missing, changes, scope, cycles)
    _check_conflicts(db, backup, plan)
    if isinstance(db, RemoteDatabase):
        _check_statement_sizes(plan)
    return plan


def _key_of(table: ScopedTable, row: Row) -> Row:
    return tuple(row[table.columns.index(k)] for k in table.key)


def _referenced_first(table: ScopedTable, rows: list[Row], doing: str, conflicts: list[str]) -> list[Row]:
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
        stuck = [_key_of(table, rows[i]) for i in range(len(rows)) if waiting_on[i]]
        columns = ", ".join(sorted({link.column for link in table.selfs}))
        conflicts.append(f"{table.name}: rows {'; '.join(_show(table.key, k) for k in stuck[:5])} reference one "
                         f"another ({columns}) in a cycle, so there is no order to {doing} them in that keeps every "
                         "reference valid; restore them by hand in one transaction with PRAGMA defer_foreign_keys = "
                         "on")
        order += [i for i in range(len(rows)) if waiting_on[i]]
    return [rows[i] for i in order]


def _check_statement_sizes(plan: RestorePlan) -> None:
    """Each write must fit in one D1 statement (D1_STATEMENT_BYTES), or the restore stops half-written."""
    by_name = {t.name: t for t in plan.scope}
    for change in plan.changes:
        table = by_name[change.table]
        over = [(row, size) for row in change.upserts if (size := len(_upsert_sql(table, row).encode())) >
                D1_STATEMENT_BYTES]
        for row, size in over[:5]:
            plan.conflicts.append(
                f"{table.name} {_show(table.key, _key_of(table, row))}: its upsert is {size:,} bytes, longer than "
                f"the {D1_STATEMENT_BYTES:,} bytes D1 takes in one SQL statement (developers.cloudflare.com/d1/"
                "platform/limits); write that row by hand in parts (an INSERT, then UPDATEs appending to its "
                "long column), then run the restore again, or restore it with --tables leaving this table out")


def _check_source(db: Database, source: Mapping[str, Any], backup_name: str, allow_local_source: bool,
                  source_bound: bool) -> None:
    """A backup of one D1 restores into that D1 only, matched by name (a database recreated under the same
    name after a loss keeps its backups). Where the tenant has the same slug and id in both (seeded alike,
    or one copied from the other), another database's backup passes every other check and would write
    its rows (staging's test bookings, say) into this one. A backup of a local file (a dev or test copy,
    seeded with the same ids) could be of anything, so it goes into a D1 only when asked for.
    """
    if not isinstance(db, RemoteDatabase):
        return
    taken_of = source.get("database")
    if source.get("kind") != "remote":
        if allow_local_source:
            return
        raise TenantRestoreInputError(
            f"backup {backup_name} was taken of {source.get('kind') or 'an unknown'} source "
            f"{str(taken_of)!r}, not of a D1 database, so nothing says its rows are "
            f"{db.name}'s (a dev or test copy's bookings would land in it); nothing was written. "
            f"Use a backup of {db.name} (`bookingctl backup list {db.fix_target}`), or pass "
            "--allow-local-source if this file really holds that database's rows")
    if not isinstance(taken_of, str) or not taken_of:
        raise TenantRestoreInputError(
            f"backup {backup_name}'s manifest names no source.database, so nothing says whose rows "
            f"it holds; nothing was written. Use a backup of {db.name}: `bookingctl backup list "
            f"{db.fix_target}`")
    if not source_bound and not allow_local_source:
        raise TenantRestoreInputError(
            f"backup {backup_name}'s manifest does not bind its source to its dump (it has no "
            "source_sha256), so its source.database may have been edited; nothing was written. "
            f"Use a backup taken by this bookingctl (`bookingctl backup create {db.fix_target}`), "
            f"or pass --allow-local-source if you know this backup holds {db.name}'s rows")
    if taken_of != db.name:
        raise TenantRestoreInputError(
            f"backup {backup_name} was taken of D1 {taken_of} (its manifest's source.database), "
            f"not of {db.name}, the database to restore into; nothing was written. Use a backup "
            f"of {db.name}: `bookingctl backup list {db.fix_target}`")


def _chosen(scope: list[ScopedTable], tables: Sequence[str] | None) -> set[str]:
    names = [t.name for t in scope]
    if not tables:
        return set(names)
    unknown = [t for t in tables if t not in names]
    if unknown:
        raise TenantRestoreInputError(
            f"--tables {', '.join(unknown)}: not a table holding tenant rows; the tenant's tables "
            f"are {', '.join(names)}")
    return set(tables)


def _check_target_schema(db: Database, scope: list[ScopedTable], conflicts: list[str]) -> None:
    present = set(_tables(db))
    for table in scope:
        if table.name not in present:
            conflicts.append(f"the database has no {table.name} table; apply the migrations first "
                             f"(`bookingctl migrate apply {db.fix_target}`)")
            continue
        columns, key = _columns(db, table.name)
        lacking = [c for c in table.columns if c not in columns]
        if lacking:
            conflicts.append(f"{table.name}: the database has no column {', '.join(lacking)}, which the backup has; "
                             "a migration removed or renamed it, so the backup's rows no longer fit")
        elif key != table.key:
            conflicts.append(f"{table.name}: the primary key is ({', '.join(key)}) in the database and "
                             f"({', '.join(table.key)}) in the backup")


def _check_conflicts(db: Database, backup: sqlite3.Connection, plan: RestorePlan) -> None:
    """Refuse what would touch another tenant's row or break a constraint, before anything is written."""
    by_name = {t.name: t for t in plan.scope}
    writing: dict[str, set[Row]] = {}
    for change in plan.changes:
        table = by_name[change.table]
        index = [table.columns.index(k) for k in table.key]
        keys = {tuple(row[i] for i in index) for row in change.upserts}
        writing[table.name] = keys
        # A backup row whose key another tenant's (or nobody's) row holds now.
        mine_now = {tuple(str(r[k]) for k in table.key) for r in _lookup(db, table.name, table.key, keys, table.key)}
        if mine_now:
            ours = set(_read(db, table, _mine(table, by_name), plan.tenant_id))
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
        for row in _lookup(db, table.name, columns, values, [*columns, *table.key]):
            value = tuple(str(row[c]) for c in columns)
            holder = tuple(str(row[k]) for k in table.key)
            if values.get(value) not in (None, holder):
                plan.conflicts.append(f"{table.name}: the backup's row {_show(table.key, values[value])} has "
                                      f"{_show(tuple(columns), value)}, which row {_show(table.key, holder)} holds now "
                                      "(unique)")


def _check_parents(db: Database, table: ScopedTable, change: TableChange, writing: dict[str, set[Row]],
                   plan: RestorePlan) -> None:
    """Each restored row's foreign keys point to a row the database has or this restore writes."""
    for link in _references(db, table.name, lambda parent: _columns(db, parent)[1]):
        at = table.columns.index(link.column)
        wanted = {(row[at],) for row in change.upserts if row[at] != "NULL"}
        if not wanted:
            continue
        parent_keys = {k for k in writing.get(link.parent, set()) if len(k) == 1}
        wanted -= parent_keys
        found = {(str(r[link.parent_column]),) for r in _lookup(db, link.parent, [link.parent_column], wanted,
                                                                [link.parent_column])}
        for value in sorted(wanted - found)[:5]:
            plan.conflicts.append(f"{table.name}.{link.column} = {value[0]} in the backup, but {link.parent} has no "
                                  f"such row now and this restore does not bring it back (it is not tenant "
                                  f"{plan.slug}'s, or its table was left out by --tables)")


def _check_children(db: Database, backup: sqlite3.Connection, table: ScopedTable, change: TableChange,
                    plan: RestorePlan) -> None:
    """Deleting the rows the backup lacks must not leave another tenant's (or a global) row pointing nowhere."""
    deleting = {c.table: set(c.deletes) for c in plan.changes}
    for child in _tables(db):
        child_key = _columns(db, child)[1]
        for link in _references(db, child, lambda parent: _columns(db, parent)[1]):
            if link.parent != table.name or (link.parent_column,) != table.key:
                continue
            for row in _lookup(db, child, [link.column], change.deletes, child_key):
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


@dataclass
class RestoreResult:
    plan: RestorePlan
    bookmark: str | None  # remote: the Time Travel bookmark taken first
    safety_backup: str | None  # local: the backup made first
    applied: int  # statements written

    def to_dict(self) -> dict[str, Any]:
        return {**self.plan.to_dict(), "bookmark": self.bookmark, "safetyBackup": self.safety_backup,
                "applied": self.applied}


def apply_restore(db: Database, plan: RestorePlan, *, safety_dest: Path, log: Log = _quiet) -> RestoreResult:
    """Take the bookmark (remote) or a safety backup (local), then write the plan's rows."""
    if plan.conflicts:
        raise TenantRestoreError(f"not restoring tenant {plan.slug}: {'; '.join(plan.conflicts)}")
    sql = statements(plan)
    if not sql:
        return RestoreResult(plan, None, None, 0)
    if isinstance(db, LocalDatabase):
        return _apply_local(db, plan, sql, safety_dest, log)
    return _apply_remote(db, plan, sql, log)


def _apply_local(db: LocalDatabase, plan: RestorePlan, sql: list[str], safety_dest: Path, log: Log) -> RestoreResult:
    from ops.backups import backups

    safety = backups.create(db, safety_dest, label="pre-tenant-restore",
                            reason=f"before restoring tenant {plan.slug} from backup {plan.backup}")
    log(f"safety backup of {db.label} before writing: {safety.name} in {safety_dest} (undo with "
        f"`{backups.restore_command(safety.name, safety_dest, db.path)}`)")
    try:
        with db.transaction() as conn:
            for batch in batches(sql):
                for statement in batch:
                    conn.execute(statement)
    except sqlite3.Error as exc:
        raise TenantRestoreError(f"restoring tenant {plan.slug} into {db.label} failed ({exc}); rolled back: the "
                                 "database is exactly as before") from exc
    return RestoreResult(plan, None, safety.name, len(sql))


def _apply_remote(db: RemoteDatabase, plan: RestorePlan, sql: list[str], log: Log) -> RestoreResult:

    bookmark = db.bookmark()
    log(f"Time Travel bookmark of {db.label} before writing: {bookmark}")
    undo = (f"run the same `bookingctl restore tenant` again to finish it (it upserts the same rows), or return the "
            f"WHOLE database (every tenant) to before it with `bookingctl backup restore {db.fix_target} "
            f"--bookmark {bookmark}`")
    groups = batches(sql)
    done = 0
    for number, batch in enumerate(groups, 1):
        text = "\n".join(batch)
        try:
            db.write_once(text, log)
        except AnswerLost as exc:
            raise UncertainWriteError(
                f"restoring tenant {plan.slug}: batch {number} of {len(groups)} got no clear answer ({exc}); it may or "
                f"may not have been applied, batches 1-{number - 1} were; {undo}") from exc
        except Exception as exc:
            raise TenantRestoreError(
                f"restoring tenant {plan.slug}: batch {number} of {len(groups)} failed ({exc}); batches 1-{number - 1} "
                f"({done} statements) were applied; {undo}") from exc
        done += len(batch)
        log(f"batch {number}/{len(groups)}: {len(batch)} statement(s) applied")
    return RestoreResult(plan, bookmark, None, done)
