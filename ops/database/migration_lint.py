"""What one migration statement's text says before it runs: what D1 refuses (transaction control,
ATTACH/DETACH, PRAGMAs other than the few D1 allows, VACUUM, virtual tables, statements over its size
or parameter limits) and writes without a WHERE.

Apart from the check because it reads only the words of the SQL (comments, strings and quoted names
removed first), never a database: the judge (ops/database/migration_judge.py) runs what this lets
through and tells from SQLite what the statement did.
"""

from __future__ import annotations

import re

from booking_shared.limits import D1_STATEMENT_BYTES
from ops.database.migration_findings import RULES, Finding
from ops.database.migrations import Migration
from ops.database.sqlscript import Statement, is_transaction_control, strip_comments

# D1's statement limit (booking_shared.limits, with its source).
MAX_STATEMENT_BYTES = D1_STATEMENT_BYTES
MAX_PARAMETERS = 100
# The PRAGMAs D1 documents as supported (developers.cloudflare.com/d1/sql-api/sql-statements/);
# anything else is rejected by D1 (or silently does nothing there).
D1_PRAGMAS = frozenset({
    "table_list", "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "quick_check",
    "foreign_key_check", "foreign_key_list", "case_sensitive_like", "ignore_check_constraints",
    "legacy_alter_table", "recursive_triggers", "reverse_unordered_selects", "foreign_keys", "defer_foreign_keys",
    "optimize",
})
_KEYWORD = re.compile(r"^\s*(\w+)", re.ASCII)
_PRAGMA = re.compile(r"^\s*PRAGMA\s+(?:\w+\s*\.\s*)?(\w+)", re.IGNORECASE | re.ASCII)
VIRTUAL = re.compile(r"^\s*CREATE\s+VIRTUAL\s+TABLE\b", re.IGNORECASE)
_WHERE = re.compile(r"\bWHERE\b", re.IGNORECASE)
_STRING = re.compile(r"'(?:[^']|'')*'")
_IDENT = re.compile(r'"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]')
_PARAM = re.compile(r"\?\d*|[:@$][A-Za-z_]\w*")
_PAREN = re.compile(r"[()]")


def code_of(sql: str) -> str:
    """The statement without comments, strings and quoted names: only what SQLite reads as keywords."""
    return _IDENT.sub("x", _STRING.sub("''", strip_comments(sql)))


def lint(migration: Migration, statement: Statement) -> tuple[list[Finding], bool]:
    """(findings about one statement's text, whether to run it in the scratch copy at all)."""
    code = code_of(statement.sql)
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
    if VIRTUAL.match(code):
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
    dml = dml_keyword(code)
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

    `code` has no strings, quoted names or comments left (`code_of`), so every parenthesis is SQL's.
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


def dml_keyword(code: str) -> str | None:
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


def head(sql: str) -> str:
    """The statement's first 80 characters on one line, without comments: how a finding names it."""
    return " ".join(strip_comments(sql).split())[:80]
