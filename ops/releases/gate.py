"""The migration gate of a release: the queries serving versions run, and the refusal of unsafe migrations.

During a canary two Worker versions read one D1, and a Worker rollback never touches it, so a
migration applied by `pulumi up` must leave every query they (and bookingctl) run preparing. This
module gathers that corpus from every room of `ops` (which is why it sits in the top room: the
database room checks a corpus it is handed and imports no room above it) and is the deploy hook's
gate before migrations apply (`ops/releases/hooks.py` `before_traffic`); `bookingctl migrate check`
gathers the same corpus.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ops.database.migration_check import Log, UnsafeMigrationError, check_remote, overrides_for, refusal
from ops.database.migration_findings import ERROR, CheckReport
from ops.database.migrations import CREATE_UNSAFE_TABLE, UNSAFE_TABLE, Override, discover, override_sql
from ops.database.serving import REFERENCE_WORKER, ServingQuery, module_queries, read_corpus, worker_queries
from ops.observation import audit, dbstats, report
from ops.tenants import tenant_changes, tenant_restore, tenant_rows, tenant_table, tenants


def own_queries() -> list[ServingQuery]:
    """bookingctl's own queries against the booking schema (read here, run where they live)."""
    named = [
        (audit, ("FAILED_LOGINS", "PRIVILEGE_ESCALATION", "ACCESS_PATTERNS", "DORMANT", "API_KEYS",
                 "SUSPICIOUS_USAGE", "ROLE_CHANGES", "API_USAGE_BY_DAY", "USERS", "USER_EXISTS", "USER_PERMISSIONS")),
        (dbstats, ("TENANT_APPOINTMENTS",)),
        (report, ("BOOKINGS", "PER_DAY", "ERRORS")),
    ]
    return [ServingQuery(f"{module.__name__.replace('.', '/')}.py {name}", str(getattr(module, name)), True)
            for module, names in named for name in names] + [
        query for module in (tenant_table, tenants, tenant_restore, tenant_rows, tenant_changes)
        for query in module_queries(module)]


def gather(corpus_files: Iterable[tuple[Path, str]] = (), *, own: bool = True,
           worker_bundle: Path | None = None) -> list[ServingQuery]:
    """bookingctl's own queries and the Worker's (unless `own` is False: from `worker_bundle`, default the
    reference Worker), and every statement of each (path, label) file."""
    queries = own_queries() if own else []
    if own and (worker_bundle is not None or REFERENCE_WORKER.is_file()):
        queries.extend(worker_queries(worker_bundle or REFERENCE_WORKER))
    for path, label in corpus_files:
        queries.extend(read_corpus(path, label))
    return queries


def refuse_unsafe(db: Any, ctx: Any, log: Log) -> None:
    """The deploy hook's gate, run just before it applies migrations (ops/releases/hooks.py `before_traffic`).

    Checks the pending migrations of the stack's D1 against bookingctl's queries and the stack's
    booking:servingQueries corpus. Raises UnsafeMigrationError (a MigrationError: the hook stops
    before traffic moves and nothing is applied) for each unsafe migration that the stack config's
    booking:approvedUnsafeMigrations does not name. Approved ones are logged and recorded in
    d1_migrations_unsafe, in one request written just before the migrations are applied (a row whose
    migration is missing from d1_migrations was approved but did not apply).
    """
    queries = gather(((path, str(path)) for path in ctx.serving_queries),
                     worker_bundle=ctx.worker_bundle)
    report = check_remote(db, discover(ctx.migrations_dir, strict=False, pattern=ctx.migrations_pattern), queries,
                          log, table=ctx.migrations_table)
    # name -> (reason, sha256): an approval is of one content of the file; one without a sha256 approves nothing.
    approved = {a[0]: (a[1], a[2].lower() if len(a) > 2 else "") for a in ctx.approved_unsafe_migrations}
    refused = [m for m in report.unsafe if approved.get(m.name, ("", None))[1] != m.sha256]
    log(f"migrate check of {report.target}: {report.verdict} ({len(report.migrations)} pending, "
        f"{report.queries} serving queries)")
    if any(f.severity == ERROR for f in report.corpus):
        # No approval covers a corpus that judges nothing: a Worker query that never prepares fails
        # in the new version whatever the migrations are.
        raise UnsafeMigrationError(refusal(
            CheckReport(report.target, report.queries, [], report.corpus),
            "Nothing was applied. Fix the queries named (the Worker's, or the booking:servingQueries files)."))
    stale = "".join(f" booking:approvedUnsafeMigrations approves {m.name} with sha256 "
                    f"{approved[m.name][1][:12] or '(none)'}, another version of the file (now {m.sha256}): review "
                    "it again." for m in refused if m.name in approved)
    if refused:
        raise UnsafeMigrationError(refusal(
            CheckReport(report.target, report.queries, refused), stale +
            f"Nothing was applied. Make the migration safe (expand first; contract in a later release once no "
            f"serving version reads what it removes), or approve it in Pulumi.{ctx.stack}.yaml: "
            f"booking:approvedUnsafeMigrations: [{{name: {refused[0].name}, sha256: {refused[0].sha256}, "
            "reason: <why it is safe anyway>}]"))
    overrides = overrides_for(report, "", "booking:approvedUnsafeMigrations (pulumi up)", approved)
    if not overrides:
        return
    sql = [CREATE_UNSAFE_TABLE]
    for name, override in overrides.items():
        log(f"UNSAFE migration {name} applied on approval (booking:approvedUnsafeMigrations): {approved[name][0]}")
        sql += override_sql(name, Override(approved[name][0], override.findings, override.approved_via))[1:]
    db.execute("\n".join(sql))
    log(f"approvals recorded in {UNSAFE_TABLE}")
