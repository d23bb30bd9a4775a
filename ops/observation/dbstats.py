"""Database analysis: the guide's performance queries, corrected and as data.

The guide counted indexes with `sqlite_master.tblname`, a column that does not exist (SQLite
calls it `tbl_name`), so its query failed outright.
"""

from __future__ import annotations

from typing import Any

from ops.database.sqlscript import quote_ident
from ops.targets import Database, require_tables

TABLES = """
SELECT m.name AS table_name,
       (SELECT COUNT(*) FROM sqlite_master i WHERE i.type = 'index' AND i.tbl_name = m.name) AS index_count,
       (SELECT COUNT(*) FROM pragma_table_info(m.name)) AS column_count
FROM sqlite_master m
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_cf_%'
ORDER BY m.name"""

INDEXES = """
SELECT name AS index_name, tbl_name AS table_name, sql AS index_sql
FROM sqlite_master
WHERE type = 'index' AND name NOT LIKE 'sqlite_%'
ORDER BY tbl_name, name"""

SIZE = "SELECT page_count * page_size AS size_bytes, page_count, page_size FROM pragma_page_count(), pragma_page_size()"

# The guide's "appointments of a tenant in the last 7 days" query, whose plan should use an index.
TENANT_APPOINTMENTS = """
SELECT a.*, s.name AS service_name, u.name AS user_name
FROM appointments a
JOIN services s ON a.service_id = s.id
JOIN users u ON a.user_id = u.id
WHERE a.tenant_id = ? AND a.created_at > datetime('now', '-7 days')
ORDER BY a.created_at DESC
LIMIT 100"""


def stats(db: Database) -> dict[str, Any]:
    """Tables (rows, indexes, columns), indexes, size, and the tenant query's plan."""
    require_tables(db, ("appointments", "services", "users"))
    tables = db.query(TABLES)
    for table in tables:
        table["row_count"] = db.query(f"SELECT COUNT(*) AS n FROM {quote_ident(str(table['table_name']))}")[0]["n"]
    try:
        size: dict[str, Any] | None = db.query(SIZE)[0]
    except Exception as exc:  # D1 may refuse page pragmas; the rest of the report still stands
        size = {"error": str(exc)}
    plan = db.query("EXPLAIN QUERY PLAN " + TENANT_APPOINTMENTS, ["tenant"])
    details = [str(row.get("detail")) for row in plan]
    on_appointments = [d for d in details if d.startswith(("SEARCH a", "SCAN a"))]
    return {
        "database": db.label,
        "tables": tables,
        "indexes": db.query(INDEXES),
        "size": size,
        "tenant_query_plan": details,
        "tenant_query_uses_index": bool(on_appointments) and all("INDEX" in d for d in on_appointments),
    }
