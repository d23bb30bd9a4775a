"""Which values are personal data, so that a report can show a row's keys without its people.

`migrate rehearse` samples offending rows (duplicates under a new unique index, NULLs a migration
makes NOT NULL, rows left pointing nowhere) from a copy of real data; the sample goes to a terminal,
a CI log or a pull-request comment. The rule errs towards masking (a salon's `name` is masked too);
a value is masked when either holds:

- its column's name is personal: a word of it (split at non-alphanumerics and camelCase, so
  `customerEmail`, `e_mail`, `phoneNumber` are three words each) is one of PERSONAL_WORDS, or
  contains one of PERSONAL_STEMS (`fullname`, `billingaddress`). Keys (`id`, `*_id`, `customerId`)
  are not personal by name: they are what a sample is for; but a person's document number is
  (`passport_id`, `national_id`, `taxId`, `id_number`: South Africa's ID number is the usual one);
- the value itself reads as an e-mail address or a phone number, whatever its column is called
  (a key that is an e-mail address, a column named `contact1`).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

# Whole words only: short ones would match inside unrelated words ("ip" in "description").
PERSONAL_WORDS = frozenset({
    "name", "names", "first", "last", "email", "mail", "phone", "tel", "fax", "sms", "mobile", "cell",
    "address", "street", "city", "postcode", "zip", "birth", "birthday", "dob", "note", "notes", "comment",
    "comments", "message", "password", "hash", "salt", "secret", "token", "key", "ip", "agent", "payment",
    "reference", "ref", "card", "iban", "account", "details", "description", "ssn", "passport", "vat",
})
# Also inside a longer word: long enough not to occur by chance in a non-personal name.
PERSONAL_STEMS = ("name", "mail", "phone", "address", "street", "birth", "note", "comment", "message",
                  "passw", "secret", "token", "payment", "card", "iban", "mobile", "contact", "passport",
                  "whatsapp", "msisdn", "descr", "detail", "reference", "account", "postcode", "identity")
# A `*_id` column holding a person's document number, not a row's key.
DOCUMENT_WORDS = frozenset({"passport", "national", "tax", "ssn", "vat", "identity", "licence", "license",
                            "driver", "drivers", "social", "insurance", "citizen", "nin", "tin", "pin"})
_NUMBER_WORDS = frozenset({"number", "num", "no", "nr"})
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]{2,}")
# A phone number: digits with the usual separators, nine digits or more (a date has eight).
_PHONE = re.compile(r"\+?[\d\s().-]+")


def _words(column: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(column)]


def is_personal(column: str) -> bool:
    """True when the column's name says it holds personal data."""
    words = _words(column)
    if not words:
        return False
    if any(a in ("id", "ids") and b in _NUMBER_WORDS for a, b in itertools.pairwise(words)):
        return True  # id_number, idNo: an identity document's number
    if words[-1] in ("id", "ids"):
        return bool(DOCUMENT_WORDS.intersection(words))
    return any(word in PERSONAL_WORDS or any(stem in word for stem in PERSONAL_STEMS) for word in words)


def looks_personal(value: str) -> bool:
    """True when the text reads as an e-mail address or a phone number."""
    text = value.strip()
    return bool(_EMAIL.fullmatch(text) or (_PHONE.fullmatch(text) and sum(c.isdigit() for c in text) >= 9))


def masked(column: str, value: Any) -> Any:
    """The value as a report may show it: a personal one as its kind and length only."""
    if value is None:
        return value
    if isinstance(value, str) and looks_personal(value):
        return f"<masked, {len(value)} characters>"
    if not is_personal(column):
        return value
    if isinstance(value, (str, bytes)):
        return f"<masked, {len(value)} {'characters' if isinstance(value, str) else 'bytes'}>"
    return "<masked>"
