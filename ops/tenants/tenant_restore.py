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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from booking_shared.errors import InputError, OperationFailed
from ops.backups import backups
from ops.targets import AnswerLost, Database, LocalDatabase, RemoteDatabase, UncertainWriteError
from ops.tenants.tenant_changes import (
    RestorePlan,
    TableChange,
    batches,
    check_conflicts,
    check_statement_sizes,
    check_target_schema,
    referenced_first,
    row_key,
    statements,
)
from ops.tenants.tenant_rows import (
    ROOT,
    Link,
    ScopedTable,
    count_rows,
    known_slugs,
    mine_where,
    reached_where,
    read_rows,
    references,
    table_columns,
    table_names,
    tenant_id_of,
    theirs_where,
)

# A column of this name references tenants(id) even where the schema declares no foreign key.
TENANT_COLUMN = "tenant_id"
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Tables that record what happened (who changed a role, what an admin did, which API key was used):
# `delete_missing` never deletes their rows, the record of what happened since the backup included
# (a forced removal, an elevation to admin). Rows the backup has are still restored.
LOG_TABLES = frozenset({"audit_logs", "role_audit_log", "api_usage_logs", "auth_attempts"})

Log = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


class TenantRestoreError(OperationFailed):
    """The restore was refused or failed; the message says what was left and what to do."""


class TenantRestoreInputError(TenantRestoreError, InputError):
    """A slug, table name or option that cannot be used (bad input, exit 2)."""


def tenant_scope(conn: Any) -> list[ScopedTable]:
    """The tables holding a tenant's rows, parents before children, derived from `conn`'s schema."""
    names = table_names(conn)
    if ROOT not in names:
        raise TenantRestoreError(f"the database has no {ROOT} table: it is not this platform's schema")
    shapes = {name: table_columns(conn, name) for name in names}

    def key_of(table: str) -> tuple[str, ...]:
        return shapes.get(table, ((), ()))[1]

    links = {name: references(conn, name, key_of) for name in names}
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
    found = tenant_id_of(backup, slug) if ROOT in table_names(backup) else None
    if found is None:
        known = known_slugs(backup) if ROOT in table_names(backup) else []
        raise TenantRestoreInputError(
            f"backup {backup_name} has no tenant with slug {slug!r}"
            + (f"; its tenants: {', '.join(known)}" if known else "; it holds no tenants"))
    tenant_id = found
    scope = tenant_scope(backup)
    by_name = {t.name: t for t in scope}
    chosen = _chosen(scope, tables)
    conflicts: list[str] = []
    now = tenant_id_of(db, slug)
    if now is not None and now != tenant_id:
        conflicts.append(f"the database's tenant {slug!r} has id {now}, the backup's has id {tenant_id}: "
                         "the slug was given to another tenant since; this restore would mix the two")
    check_target_schema(db, scope, conflicts)
    if conflicts:
        return RestorePlan(slug, tenant_id, backup_name, db.label, delete_missing, [], scope, conflicts)

    changes = []
    cycles: list[str] = []
    for table in scope:
        if table.name not in chosen:
            continue
        mine = mine_where(table, by_name)
        then = read_rows(backup, table, mine, tenant_id)
        current = read_rows(db, table, mine, tenant_id)
        change = TableChange(table.name, shared=count_rows(backup, table, f"({reached_where(table, by_name)}) AND "
                                                                      f"({theirs_where(table, by_name)})", tenant_id),
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
        change.upserts = referenced_first(table, change.upserts, "write", cycles)
        if delete_missing and not change.log:
            # Referencing rows first: the reverse of the order in which they could be written.
            doomed = referenced_first(table, [current[key] for key in missing], "delete", cycles)
            change.deletes = [row_key(table, row) for row in reversed(doomed)]
        changes.append(change)
    plan = RestorePlan(slug, tenant_id, backup_name, db.label, delete_missing, changes, scope, cycles)
    check_conflicts(db, backup, plan)
    if isinstance(db, RemoteDatabase):
        check_statement_sizes(plan)
    return plan


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
