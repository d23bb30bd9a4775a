"""What binds migration evidence and approvals to the files they judged: content hashes.

A migration file's `sha256` is that of its text as read (`Migration.sha256` in ops/database/migrations.py is
the same); the folder as a whole is `booking_shared.deploy.migrations_checksum`, the checksum the
Worker version's message already carries. `migrate check --format json` writes both, and
`booking:approvedUnsafeMigrations` entries name a file's `sha256`, so the policy
`migrations-rollback-safe` and the deploy hook refuse evidence or an approval of other files.
"""

from __future__ import annotations

import hashlib


def text_sha256(text: str) -> str:
    """sha256 of a migration's text as read (UTF-8, newlines as Python reads them)."""
    return hashlib.sha256(text.encode()).hexdigest()
