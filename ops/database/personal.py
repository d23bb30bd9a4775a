"""Which columns hold personal data, so that a report can show a row's keys without its people.

`migrate rehearse` samples offending rows (duplicates under a new unique index, NULLs a migration
makes NOT NULL, rows left pointing nowhere) from a copy of real data; the sample goes to a terminal,
a CI log or a pull-request comment. A column is personal when a word of its name (split at `_`) is
one of PERSONAL_WORDS: names, contact details, free text, secrets and payment references. Keys
(`id`, `*_id`) are never personal: they are what a sample is for. The rule errs towards masking: a
salon's `name` is masked too.
"""

from __future__ import annotations

import re
from typing import Any

PERSONAL_WORDS = frozenset({
    "name", "names", "first", "last", "surname", "email", "phone", "mobile", "cell", "address", "street",
    "city", "postcode", "zip", "birth", "birthday", "dob", "note", "notes", "comment", "comments", "message",
    "password", "hash", "secret", "token", "key", "ip", "agent", "payment", "reference", "card", "iban",
    "account", "details", "description",
})


def is_personal(column: str) -> bool:
    words = [w for w in re.split(r"[^a-z0-9]+", column.lower()) if w]
    if not words or words[-1] == "id" or column.lower() == "id":
        return False
    return any(word in PERSONAL_WORDS for word in words)


def masked(column: str, value: Any) -> Any:
    """The value as a report may show it: a personal column's as its kind and length only."""
    if value is None or not is_personal(column):
        return value
    if isinstance(value, (str, bytes)):
        return f"<masked, {len(value)} {'characters' if isinstance(value, str) else 'bytes'}>"
    return "<masked>"
