"""Which columns of the schema hold what: the classification a scrubbed copy of the data is made by.

A preview environment (issue #26) gets a copy of a real backup in which every personal value is
replaced (ops/database/scrub.py). What is personal is not guessed from names at run time: every
column that can hold text is listed in `migrations/columns.yaml`, beside the migrations that add
them, and reviewed in the same pull request. A column nobody classified fails the policy
`text-columns-classified` (policies/columns.py) and makes the scrubber refuse to run.

    appointments:
      id: key             # kept: identifies a row, joins tables
      notes: free_text    # replaced by a deterministic fake of its kind

This module imports only the standard library and booking_shared: the policy pack uses it too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from booking_shared import safeyaml
from booking_shared.errors import InputError
from booking_shared.sqlite_tables import ordinary_tables

FILE = "columns.yaml"  # in the migrations folder
MAX_BYTES = 256 * 1024

# Kept as they are: what joins rows, and what says nothing about a person.
KEPT = {
    "key": "an identifier or a reference to another row (ids, foreign keys): kept, so joins hold",
    "keep": "nothing personal (a status, a time, a slug, an endpoint, a role): kept",
}
# Replaced by a deterministic fake of the same kind, keyed by the preview's salt.
REPLACED = {
    "name": "a person's name",
    "organisation": "a salon's name",
    "email": "an e-mail address",
    "phone": "a phone number",
    "free_text": "notes, messages, audit values: anything a person typed or that quotes personal data",
    "reference": "a payment or external reference",
    "secret": "a password or API key hash, a token",
    "ip": "an IP address",
    "user_agent": "a browser's user agent",
    "hostname": "a salon's own hostname",
}
CLASSES = {**KEPT, **REPLACED}

Classification = dict[tuple[str, str], str]  # (table, column), lower-cased -> class


class ColumnsFileError(InputError):
    """migrations/columns.yaml cannot be read as a classification; the message names the entry."""


def load(folder: Path) -> Classification:
    """The classification in `folder`/columns.yaml; ColumnsFileError naming the file and entry."""
    return load_file(folder / FILE)


def load_file(path: Path) -> Classification:
    """The classification in the file at `path` (a columns.yaml, e.g. the base branch's)."""
    if not path.is_file():
        raise ColumnsFileError(f"{path}: no column classification; list every text column of the schema there "
                               f"(one of: {', '.join(CLASSES)})")
    try:
        data = safeyaml.load(path, max_bytes=MAX_BYTES).data
    except safeyaml.YamlError as exc:
        raise ColumnsFileError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ColumnsFileError(f"{path}: a mapping of table -> column -> class, e.g. `users: {{email: email}}`")
    found: Classification = {}
    for table, columns in data.items():
        if not isinstance(columns, dict):
            raise ColumnsFileError(f"{path}: {table}: a mapping of column -> class")
        for column, kind in columns.items():
            if kind not in CLASSES:
                raise ColumnsFileError(f"{path}: {table}.{column}: {kind!r} is not a class; use one of: "
                                       f"{', '.join(CLASSES)}")
            found[(str(table).lower(), str(column).lower())] = str(kind)
    return found


def text_columns(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(table, column) of every stored column of an ordinary table: every one needs a class.

    Not only those whose declared type holds text: SQLite stores '27821000001' in an INTEGER column
    as an integer, so a phone number added as INTEGER is as personal as one in TEXT. Generated columns
    (pragma_table_xinfo's hidden 2 and 3) are left out: their values come from the columns they are
    computed from, which are classified, and an UPDATE cannot set them. (The name is the policy's,
    `text-columns-classified`, a stable id.)
    """
    found = []
    # Virtual tables and their shadow tables hold copies of classified columns (an FTS index of
    # services.name), not data of their own: not classified (booking_shared/sqlite_tables.py).
    for table in ordinary_tables(conn):
        for name, hidden in conn.execute("SELECT name, hidden FROM pragma_table_xinfo(?)", (table,)):
            if hidden in (0, 1):  # 1: a virtual table's hidden column (not reached here); 2, 3: generated
                found.append((table, str(name)))
    return found


def unclassified(columns: Iterable[tuple[str, str]], classification: Classification,
                 ignore_tables: Iterable[str] = ()) -> list[str]:
    """`table.column` of each column the classification does not list."""
    ignored = {t.lower() for t in ignore_tables}
    return [f"{t}.{c}" for t, c in columns
            if t.lower() not in ignored and (t.lower(), c.lower()) not in classification]


def schema_of(folder: Path) -> sqlite3.Connection:
    """An in-memory SQLite holding the schema the migration files in `folder` build, in order.

    For the policy, which has no database to read: the files are the repository's own, reviewed,
    and each runs on an empty in-memory database (no ATTACH: SQLite's authorizer refuses it).
    """
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.set_authorizer(lambda action, *_: sqlite3.SQLITE_DENY if action in (sqlite3.SQLITE_ATTACH,
                                                                             sqlite3.SQLITE_DETACH)
                        else sqlite3.SQLITE_OK)
    for path in sorted(folder.glob("*.sql")):
        conn.executescript(path.read_text(encoding="utf-8"))
    return conn
