"""A scrubbed copy of real data: every personal value replaced, the rows, joins and times kept.

A preview environment (issue #26) is only useful with realistic data and only safe without real
customers. The scrubber runs on a scratch copy of a verified backup (never the backup itself) and,
by the classification in migrations/columns.yaml (booking_shared/columns.py):

- keeps `key` and `keep` columns as they are: ids and foreign keys (so every join still holds),
  statuses, times (so the distribution of bookings over days and hours stays real);
- replaces each value of every other class with a fake of its kind derived from HMAC-SHA256 of the
  value under the preview's salt: the same value gets the same fake everywhere in the copy (an
  e-mail in `users` and in `auth_attempts` still match; a UNIQUE column stays unique), another salt
  gives other fakes, and nothing of the value can be read back from its fake; NULL stays NULL;
- refuses, changing nothing, when any column it has no class for holds a value in this copy (a
  column added since columns.yaml was written; a phone number in an INTEGER column is personal too).

Row counts do not change: only UPDATEs run, with the copy's triggers set aside meanwhile (an
audit trigger would add rows, or copy the originals elsewhere) and restored after.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from booking_shared import columns
from booking_shared.errors import InputError
from ops.database import schema
from ops.database.migrations import TABLE
from ops.database.sqlscript import quote_ident

Fake = Callable[[bytes], str]


def _hex(digest: bytes, n: int) -> str:
    return digest.hex()[:n]


def _digits(digest: bytes, n: int) -> str:
    return str(int.from_bytes(digest[:12], "big")).zfill(n)[-n:]


def _ip(digest: bytes) -> str:
    # In IPv6's documentation prefix 2001:db8::/32 (RFC 3849): never a real host, and 96 bits of room.
    return str(ipaddress.IPv6Address((0x20010DB8 << 96) | int.from_bytes(digest[:12], "big")))


FAKES: dict[str, Fake] = {
    "name": lambda d: f"Client {_hex(d, 8)}",
    "organisation": lambda d: f"Salon {_hex(d, 6)}",
    # example.invalid (RFC 2606): an address no mail can ever reach.
    "email": lambda d: f"user-{_hex(d, 16)}@example.invalid",
    # +999 is a country code the ITU holds in reserve: no real subscriber has one.
    "phone": lambda d: f"+999{_digits(d, 12)}",
    "free_text": lambda d: f"text {_hex(d, 12)}",
    "reference": lambda d: f"ref_{_hex(d, 20)}",
    "secret": lambda d: _hex(d, 64),
    "ip": _ip,
    "user_agent": lambda d: f"Mozilla/5.0 (scrubbed {_hex(d, 8)})",
    "hostname": lambda d: f"salon-{_hex(d, 10)}.preview.invalid",
}


class ScrubRefused(InputError):
    """The copy holds text the classification does not cover; nothing was changed."""


@dataclass
class ScrubReport:
    salt_id: str  # sha256 of the salt, shortened: which salt, without the salt
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows (unchanged by the scrub)
    replaced: dict[str, int] = field(default_factory=dict)  # "table.column" -> values replaced


def _fake(salt: bytes, kind: str) -> Callable[[object], str | None]:
    make = FAKES[kind]

    def fake(value: object) -> str | None:
        if value is None:
            return None
        raw = value if isinstance(value, bytes) else str(value).encode()
        return make(hmac.new(salt, kind.encode() + b"\0" + raw, hashlib.sha256).digest())
    return fake


def _holding_text(conn: sqlite3.Connection, classification: columns.Classification) -> list[str]:
    """`table.column` of each stored column without a class that holds any value in this copy (not
    only text: an INTEGER column stores a phone number as an integer)."""
    found = []
    for table in schema.ordinary_tables(conn):
        if table.startswith(TABLE):
            continue  # the migration runner's own records: names and reasons of migrations
        for column in schema.columns(conn, table):
            if (table.lower(), column.name.lower()) in classification or column.hidden in (2, 3):
                continue  # classified, or generated from columns that are
            held = conn.execute(f"SELECT 1 FROM {quote_ident(table)} WHERE {quote_ident(column.name)} IS NOT NULL "
                                "LIMIT 1").fetchone()
            if held:
                found.append(f"{table}.{column.name}")
    return found


def scrub(conn: sqlite3.Connection, classification: columns.Classification, salt: bytes,
          folder: Path | None = None) -> ScrubReport:
    """Replace every classified personal value of `conn` (a scratch copy) in one transaction."""
    if len(salt) < 16:
        raise InputError("the scrub salt must be at least 16 bytes (a preview's own random secret)")
    where = folder / columns.FILE if folder else columns.FILE
    missing = _holding_text(conn, classification)
    if missing:
        raise ScrubRefused(f"the data holds text in {len(missing)} column(s) {where} does not classify: "
                           f"{', '.join(missing)}; classify each there (one of: {', '.join(columns.CLASSES)}) "
                           "and review it like code; nothing was changed")
    report = ScrubReport(hashlib.sha256(salt).hexdigest()[:12])
    tables = {t.lower(): t for t in schema.ordinary_tables(conn)}
    for kind in columns.REPLACED:
        conn.create_function(f"scrub_{kind}", 1, _fake(salt, kind), deterministic=True)
    triggers = [(str(name), str(sql)) for name, sql in
                conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL")]
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {quote_ident(name)}")
        for (table_key, column_key), kind in sorted(classification.items()):
            table = tables.get(table_key)
            if kind in columns.KEPT or table is None:
                continue
            # A generated column is computed from the others (replaced already); an UPDATE cannot set it.
            column = next((c.name for c in schema.columns(conn, table)
                           if c.name.lower() == column_key and c.hidden not in (2, 3)), None)
            if column is None:
                continue
            quoted = quote_ident(column)
            changed = conn.execute(f"UPDATE {quote_ident(table)} SET {quoted} = scrub_{kind}({quoted}) "
                                   f"WHERE {quoted} IS NOT NULL").rowcount
            report.replaced[f"{table}.{column}"] = changed
        for _, sql in triggers:
            conn.execute(sql)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    report.rows = {t: int(conn.execute(f"SELECT count(*) FROM {quote_ident(t)}").fetchone()[0])
                   for t in schema.ordinary_tables(conn)}
    return report
