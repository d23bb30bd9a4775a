"""The project's exceptions: one base, two kinds, and the error shape config checks share.

Every error the project defines descends from `BookingError`, through one of two children the CLI
maps to an exit code (bookingctl/errors.py: `classify`):

- `InputError` (exit 2): the input is wrong (arguments, project or stack file, config, a name that
  does not exist); the message says what was found and how to fix it.
- `OperationFailed` (exit 1): an operation ran and failed; the message says what was left and what
  to do.

A family may hold both: `BackupInputError` is a `BackupError` (so `except BackupError` still
catches it) and an `InputError`; input errors are classified first, so it exits 2.

This module imports nothing of the project (tests/unit/test_errors_hierarchy.py), so any layer can
raise these without loading another, and the CLI classifies without importing the operations.
"""

from __future__ import annotations


class BookingError(Exception):
    """Base of every exception the project raises to its caller."""


class InputError(BookingError):
    """Bad input (exit 2); the message names the bad value and the fix."""


class OperationFailed(BookingError):
    """An operation ran and failed (exit 1); the message says what was left and what to do."""


class KeyedValueError(InputError, ValueError):
    """A bad value for config key `key` (e.g. `errorRatePercent`, `tenants[0].hostname`), what was
    found and what is allowed; config errors render it as one line naming the key.

    A ValueError too: pydantic turns a ValueError raised in a validator into a validation error."""

    def __init__(self, key: str, found: object, allowed: str) -> None:
        super().__init__(allowed)
        self.key, self.found, self.allowed = key, found, allowed
