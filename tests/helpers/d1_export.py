"""D1's SQL export format, for the API double's export job and for tests that feed the loader a real one.

Modelled on the published behaviour of D1's exporter, which workers-sdk ships as miniflare's local
export and says is kept in step with D1's own ("this file is duplicated between miniflare and
d1-workers"): cloudflare/workers-sdk f8308360 packages/miniflare/src/workers/d1/dumpSql.ts, and
wrangler's local export joining its statements with "\n" (packages/wrangler/src/d1/export.ts). Its
features, each of which differs from Python's `iterdump()`:

- the first statement is `PRAGMA defer_foreign_keys=TRUE;`; there is no BEGIN/COMMIT;
- tables in `sqlite_schema` rowid order, `sqlite_sequence` last; a table whose CREATE statement
  quotes its name is written `CREATE TABLE IF NOT EXISTS "name"...` (as SQLite's shell does);
  `_cf_*` and other `sqlite_*` tables are left out, schema and rows;
- `sqlite_sequence` is written as `DELETE FROM sqlite_sequence;` and then its rows;
  `sqlite_stat1`/`4` as `ANALYZE sqlite_schema;` and then their rows;
- one `INSERT INTO "t" ("a","b") VALUES(...);` per row, columns from `PRAGMA table_info` (so
  generated columns are not written);
- a number is printed as a JavaScript number: an integer past 2^53 arrives rounded (the docs' "52-bit
  precision" limitation), a REAL with no fraction loses its ".0", and exponents read `1e+21`;
- text in single quotes (`'` doubled); a newline or carriage return is written as the two characters
  `\n`/`\r` and the literal wrapped in `replace(...,'\n',char(10))` (`'\r'`, `char(13)`), so a text
  that already holds a backslash followed by `n` comes back changed, as from D1;
- a BLOB as `X'..'` in lowercase hex;
- indexes, triggers and views after all rows, grouped by type;
- a virtual table (FTS5) fails the export: "cannot export databases with Virtual Tables (fts5)"
  (also the D1 docs' "Export is not supported for virtual tables").
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from decimal import Decimal

MAX_EXACT = 2**53


class D1ExportError(Exception):
    """What D1's exporter throws, with its message."""


def export_statements(conn: sqlite3.Connection, *, column_names: bool = True) -> Iterator[str]:
    """The statements of D1's export of the database open as `conn`, in D1's order.

    `column_names=False`: INSERTs without the column list, as older exporters wrote them (miniflare
    in wrangler 4.86 still does; the source above has added the list).
    """
    yield "PRAGMA defer_foreign_keys=TRUE;"
    tables = conn.execute("SELECT name, type, sql FROM sqlite_schema WHERE type = 'table' AND sql NOT NULL "
                          "ORDER BY tbl_name = 'sqlite_sequence', rowid").fetchall()
    for name, _, sql in tables:
        if name == "sqlite_sequence":
            yield "DELETE FROM sqlite_sequence;"
        elif re.match(r"sqlite_stat.", name):
            yield "ANALYZE sqlite_schema;"
        elif sql.startswith("CREATE VIRTUAL TABLE"):
            raise D1ExportError("D1 Export error: cannot export databases with Virtual Tables (fts5)")
        elif name.startswith(("_cf_", "sqlite_")):
            continue
        elif re.search(r"CREATE TABLE ['\"]", sql):
            yield f"CREATE TABLE IF NOT EXISTS {sql[13:]};"
        else:
            yield f"{sql};"
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info={_quote(name)}")]
        listed = f" ({','.join(_quote(c) for c in columns)})" if column_names else ""
        for row in conn.execute(f"SELECT {', '.join(_quote(c) for c in columns)} FROM {_quote(name)}"):
            yield f"INSERT INTO {_quote(name)}{listed} VALUES({','.join(_cell(v) for v in row)});"
    for (sql,) in conn.execute("SELECT sql FROM sqlite_schema WHERE sql NOT NULL AND type IN "
                               "('index', 'trigger', 'view') ORDER BY type COLLATE NOCASE"):
        yield f"{sql};"


def export_text(conn: sqlite3.Connection, *, column_names: bool = True) -> str:
    """The export file: its statements joined by newlines, as wrangler writes it."""
    return "\n".join(export_statements(conn, column_names=column_names))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "X'" + value.hex() + "'"
    if isinstance(value, int | float):
        return js_number(value)
    return _text(str(value))


def _text(text: str) -> str:
    literal = "'" + text.replace("'", "''").replace("\n", "\\n").replace("\r", "\\r") + "'"
    if "\r" in text:
        literal = f"replace({literal},'\\r',char(13))"
    if "\n" in text:
        literal = f"replace({literal},'\\n',char(10))"
    return literal


def js_number(value: int | float) -> str:
    """`String(x)` in JavaScript of the double nearest `value` (ECMAScript Number::toString)."""
    if isinstance(value, int) and abs(value) <= MAX_EXACT:
        return str(value)
    number = float(value)
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    # repr() gives the shortest digits that read back as the same double, as JavaScript chooses them.
    _, digit_tuple, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k, n = len(digits), len(digits) + int(exponent)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
