"""D1: databases (listed, queried), Time Travel (bookmarks, restores) and the polled export.

Real SQLite per database. Time Travel bookmarks are snapshots, one taken before every write, so
restore-by-timestamp has history. Export is a polling job whose dump is served from a signed URL.

Statements are found by SQLite itself, not by the project's splitter (ops.database.sqlscript, which the
code under test uses): a bug there must show up against the double, not be mirrored by it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from booking_shared.limits import D1_BOUND_PARAMETERS, D1_ROW_BYTES, D1_STATEMENT_BYTES
from tests.helpers.cf_double.base import Service
from tests.helpers.cf_double.envelope import Refusal, Response, error, ok, page_info
from tests.helpers.cf_double.routes import Request, Route
from tests.helpers.d1_export import D1ExportError, export_text


@dataclass
class D1State:
    uuid: str
    name: str
    path: Path
    snapshots: list[tuple[float, str, Path]] = field(default_factory=list)  # (time, bookmark, file)
    exports: dict[str, int] = field(default_factory=dict)  # at_bookmark -> polls so far
    created_at: str = ""


# --- statements, as SQLite sees them -------------------------------------------------------------

_PROBE = sqlite3.connect(":memory:", check_same_thread=False)


def _has_code(text: str) -> bool:
    """Whether `text` holds more than whitespace and comments, by SQLite's C tokenizer: Python's
    sqlite3 refuses a second statement after `SELECT 1;` unless what follows is only that."""
    try:
        _PROBE.execute("SELECT 1;" + text)
    except sqlite3.ProgrammingError:
        return True
    return False


def statements(sql: str) -> list[str]:
    """The statements of one /query request, in order, as SQLite ends them.

    `sqlite3.complete_statement` (sqlite3_complete) decides where each one ends: a `;` in a string,
    a quoted name or a comment, or inside a trigger's BEGIN ... END, ends nothing. The prefix is only
    tested again at the next `;`. A last statement without its `;` is still a statement; fragments of
    only comments are none.
    """
    found: list[str] = []
    start = position = 0
    while (semicolon := sql.find(";", position)) >= 0:
        position = semicolon + 1
        if sqlite3.complete_statement(sql[start:position]):
            if _has_code(sql[start:semicolon]):
                found.append(sql[start:position].strip())
            start = position
    if _has_code(sql[start:]):
        found.append(sql[start:].strip())
    return found


def is_transaction_control(statement: str) -> bool:
    """Whether SQLite's parser sees BEGIN/COMMIT/END/ROLLBACK or SAVEPOINT/RELEASE: its authorizer
    names them while EXPLAIN compiles the statement on a scratch database (nothing runs)."""
    seen: list[int] = []

    def authorize(action: int, *_: Any) -> int:
        seen.append(action)
        return sqlite3.SQLITE_OK

    scratch = sqlite3.connect(":memory:")
    scratch.set_authorizer(authorize)
    try:
        scratch.execute("EXPLAIN " + statement)
    except sqlite3.Error:
        pass  # a statement about tables the scratch lacks: not transaction control either way
    finally:
        scratch.close()
    return bool({sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT} & set(seen))


class D1(Service):
    databases: dict[str, D1State]
    sql: list[str]  # the SQL of every /query request, in order (applied or not)
    restores: list[float]
    downloads: dict[str, Path]
    export_polls_needed: int
    export_fails: bool

    def _init_d1(self) -> None:
        self.databases = {}
        self.sql = []
        self.restores = []
        self.downloads = {}
        self.export_polls_needed = 2
        self.export_fails = False

    def add_database(self, name: str, source: Path | None = None) -> D1State:
        db_id = str(uuid.uuid4())
        path = self.root / f"{db_id}.sqlite"
        if source is not None:
            shutil.copy(source, path)
        else:
            sqlite3.connect(path).close()
        state = D1State(db_id, name, path, created_at=self.clock.stamp())
        self.databases[db_id] = state
        return state

    def snapshot(self, db: D1State) -> str:
        with self.lock:
            bookmark = f"{self.next_seq():08d}-{uuid.uuid4().hex[:8]}"
            copy = self.root / f"{db.uuid}.{bookmark}.snapshot"
            src, dst = sqlite3.connect(db.path), sqlite3.connect(copy)
            src.backup(dst)
            src.close()
            dst.close()
            db.snapshots.append((self.clock.seconds(), bookmark, copy))
            return bookmark

    # --- routes ---------------------------------------------------------------------------------

    def list_databases(self, req: Request) -> Response:
        # `name` is "a database name to search for" (the SDK's DatabaseListParams): read as a
        # substring search, the harder answer for a caller, who must match the exact name.
        # `page`/`per_page` page the list; the SDK asks for page n+1 until a page is empty
        # (V4PagePaginationArray). The default page size is not published: any one pages alike.
        name = req.arg("name", "")
        page, per_page = int(float(req.arg("page", "1"))), int(float(req.arg("per_page", "100")))
        if page < 1 or per_page < 1:
            return 400, error(7400, "page and per_page must be positive")
        everything = [{"uuid": d.uuid, "name": d.name, "version": "production", "created_at": d.created_at}
                      for d in self.databases.values() if name in d.name]
        found = everything[(page - 1) * per_page: page * per_page]
        return 200, ok(found, page_info(found, page, per_page, len(everything)))

    def create_database(self, req: Request) -> Response:
        """POST .../d1/database {name, primary_location_hint}: what the provider's d1_database Create
        sends (terraform-provider-cloudflare internal/services/d1_database/resource.go). A name already
        in the account is refused: the API answers code 7502 with the message "Internal error", which
        wrangler translates to "A database with that name already exists" (cloudflare/workers-sdk pull
        2143 quotes both). The status is not published; 400 (the SDK's BadRequestError) stands for it,
        so callers may rely on the code, not the status."""
        body = req.json()
        name = body.get("name")
        if not isinstance(name, str) or not name:
            return 400, error(7400, "name is required")
        with self.lock:
            if any(d.name == name for d in self.databases.values()):
                return 400, error(7502, "Internal error")
            db = self.add_database(name)
        return 200, ok({"uuid": db.uuid, "name": db.name, "version": "production", "created_at": db.created_at})

    def get_database(self, req: Request) -> Response:
        db = self._database(req)
        conn = sqlite3.connect(db.path)
        try:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                  "'sqlite_%' AND name NOT LIKE '_cf_%'").fetchone()[0]
        finally:
            conn.close()
        return 200, ok({"uuid": db.uuid, "name": db.name, "version": "production", "created_at": db.created_at,
                        "num_tables": tables, "file_size": db.path.stat().st_size})

    def delete_database(self, req: Request) -> Response:
        """DELETE .../d1/database/{id}: the database and its Time Travel history are gone."""
        with self.lock:
            db = self._database(req)
            del self.databases[db.uuid]
            db.path.unlink(missing_ok=True)
            for _, _, snapshot in db.snapshots:
                snapshot.unlink(missing_ok=True)
        return 200, ok(None)  # the document's cloudflare-d1-delete-database: `result` is null

    def _database(self, req: Request) -> D1State:
        db = self.databases.get(req.params["database"])
        if db is None:
            raise Refusal(404, error(7404, "database not found"))
        return db

    def route_query(self, req: Request) -> Response:
        return self._query(self._database(req), req.json())

    def route_bookmark(self, req: Request) -> Response:
        return self._bookmark(self._database(req), req.query)

    def route_restore(self, req: Request) -> Response:
        return self._restore(self._database(req), req.query)

    def route_export(self, req: Request) -> Response:
        return self._export(self._database(req), req.json())

    # --- what the routes do ---------------------------------------------------------------------

    def _query(self, db: D1State, body: dict[str, Any]) -> Response:
        sql, params = str(body.get("sql") or ""), list(body.get("params") or [])
        found = statements(sql)
        for statement in found:
            # "Maximum SQL statement length: 100,000 bytes (100 KB)", for each statement of a batch alike
            # (cloudflare-docs src/content/docs/d1/platform/limits.mdx @ d532f313). The wording of D1's
            # refusal is not published; the status and code are those of its other SQL errors here.
            if len(statement.encode()) > D1_STATEMENT_BYTES:
                return 400, error(7500, f"statement too long: {len(statement.encode())} bytes, D1 takes at most "
                                        f"{D1_STATEMENT_BYTES}: SQLITE_TOOBIG")
            if is_transaction_control(statement):
                return 400, error(7500, "To execute a transaction, please use the state.storage.transaction() "
                                        "or state.storage.transactionSync() APIs instead of the SQL BEGIN "
                                        "TRANSACTION or SAVEPOINT statements.")
        # Time Travel history: the state before every write. A read with a leading comment counts as a
        # write here: a snapshot more than needed, never one less.
        if any(not s.upper().startswith(("SELECT", "PRAGMA", "EXPLAIN")) for s in found):
            self.snapshot(db)
        conn = sqlite3.connect(db.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        # "Maximum bound parameters per query: 100" and "Maximum string, BLOB or table row size:
        # 2,000,000 bytes (2 MB)" (d1/platform/limits.mdx @ d532f313; booking_shared.limits): SQLite's
        # own run-time limits of those names, so SQLite refuses what D1 refuses ("too many SQL
        # variables", "string or blob too big"), answered like D1's other SQL errors below.
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, D1_BOUND_PARAMETERS)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, D1_ROW_BYTES)
        # "D1 enforces foreign key constraints by default" (developers.cloudflare.com/d1/sql-api/
        # foreign-keys/): every query runs with them on; `PRAGMA defer_foreign_keys` defers them to the
        # request's end (the same page).
        conn.execute("PRAGMA foreign_keys = ON")
        results = []
        try:
            # One request, one transaction, as on D1: wrangler sends a migration and its d1_migrations
            # row in one /query request and documents that a failing migration "will be rolled back"
            # (workers-sdk packages/wrangler/src/d1/migrations/apply.ts; see ops/database/migrations.py).
            conn.execute("BEGIN")
            for statement in found:
                started = time.perf_counter()
                cursor = conn.execute(statement, params if len(found) == 1 else [])
                rows = [dict(r) for r in cursor.fetchall()]
                results.append({"results": rows, "success": True, "meta": {
                    "changed_db": conn.total_changes > 0, "changes": cursor.rowcount if cursor.rowcount > 0 else 0,
                    "duration": round((time.perf_counter() - started) * 1000, 3),
                    "last_row_id": cursor.lastrowid or 0, "rows_read": len(rows),
                    "rows_written": max(cursor.rowcount, 0), "served_by_primary": True,
                    "served_by_region": "WEUR", "size_after": db.path.stat().st_size}})
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # nothing of a failed request stays applied
            return 400, error(7500, f"{exc}: SQLITE_ERROR")
        finally:
            conn.close()
        return 200, ok(results)

    @staticmethod
    def _at(db: D1State, timestamp: str) -> str | None:
        """The bookmark of the state at `timestamp`: the last snapshot taken at or before it."""
        at = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
        older = [b for t, b, _ in db.snapshots if t <= at]
        return older[-1] if older else None

    def _bookmark(self, db: D1State, query: dict[str, list[str]]) -> Response:
        if "timestamp" in query:
            bookmark = self._at(db, query["timestamp"][0])
            if bookmark is None:
                return 400, error(7400, "no Time Travel history at that timestamp")
            return 200, ok({"bookmark": bookmark})
        return 200, ok({"bookmark": self.snapshot(db)})

    def _restore(self, db: D1State, query: dict[str, list[str]]) -> Response:
        now = self.clock.seconds()
        with self.lock:
            self.restores = [t for t in self.restores if now - t < 600]
            if len(self.restores) >= 10:
                return 429, error(7429, "Too many restores: at most 10 per 10 minutes")
            self.restores.append(now)
        bookmark = (query.get("bookmark") or [""])[0]
        if "timestamp" in query:
            bookmark = self._at(db, query["timestamp"][0]) or ""
            if not bookmark:
                return 400, error(7400, "no Time Travel history at that timestamp")
        target = next((path for _, b, path in db.snapshots if b == bookmark), None)
        if target is None:
            return 400, error(7404, f"unknown bookmark {bookmark}")
        previous = self.snapshot(db)
        src, dst = sqlite3.connect(target), sqlite3.connect(db.path)
        src.backup(dst)
        src.close()
        dst.close()
        # `bookmark` is "the new bookmark representing the state of the database after the restore"
        # (SDK types/d1/database/time_travel_restore_response.py), not the target.
        return 200, ok({"bookmark": self.snapshot(db), "previous_bookmark": previous,
                        "message": f"Restored database {db.uuid} to bookmark {bookmark}"})

    def _export(self, db: D1State, body: dict[str, Any]) -> Response:
        if body.get("output_format") != "polling":
            return 400, error(7400, "output_format must be polling")
        at = body.get("current_bookmark") or self.snapshot(db)
        polls = db.exports.get(at, 0) + 1
        db.exports[at] = polls
        if polls < self.export_polls_needed:
            # In progress, as the API says it (wrangler's types: "active"); the SDK's model lists only
            # complete/error, so strict validation would reject this answer.
            return 200, ok({"success": True, "type": "export", "at_bookmark": at, "status": "active",
                            "messages": [f"Generating export (poll {polls})"]})
        if self.export_fails:
            return 200, ok({"success": False, "type": "export", "at_bookmark": at, "status": "error",
                            "error": "export failed: the database was busy", "messages": []})
        snapshot = next(path for _, b, path in db.snapshots if b == at)
        token = uuid.uuid4().hex
        dump = self.root / f"{token}.sql"
        conn = sqlite3.connect(snapshot)
        try:
            # D1's own export format, not iterdump()'s (tests/helpers/d1_export.py names the source).
            dump.write_text(export_text(conn), encoding="utf-8")
        except D1ExportError as exc:
            return 200, ok({"success": False, "type": "export", "at_bookmark": at, "status": "error",
                            "error": str(exc), "messages": []})
        finally:
            conn.close()
        self.downloads[token] = dump
        return 200, ok({"success": True, "type": "export", "at_bookmark": at, "status": "complete",
                        "messages": ["Export complete"],
                        "result": {"filename": f"{db.name}-{at}.sql",
                                   "signed_url": self.base_url.replace("/client/v4", f"/__downloads/{token}")}})


ROUTES = (
    Route("GET", "/accounts/{account}/d1/database", D1.list_databases),
    Route("POST", "/accounts/{account}/d1/database", D1.create_database),
    Route("GET", "/accounts/{account}/d1/database/{database}", D1.get_database),
    Route("DELETE", "/accounts/{account}/d1/database/{database}", D1.delete_database),
    Route("POST", "/accounts/{account}/d1/database/{database}/query", D1.route_query),
    Route("GET", "/accounts/{account}/d1/database/{database}/time_travel/bookmark", D1.route_bookmark),
    Route("POST", "/accounts/{account}/d1/database/{database}/time_travel/restore", D1.route_restore),
    Route("POST", "/accounts/{account}/d1/database/{database}/export", D1.route_export),
)
