"""Every column the migrations create is classified for the preview scrubber.

A preview environment gets a copy of real data with every personal value replaced
(ops/database/scrub.py), by the classification in migrations/columns.yaml. A migration that adds a
column nobody classified would make the scrubber refuse (or, were it lenient, leak the column), so
the gate catches it in the pull request that adds the column, where the classification belongs: the
schema is built from this tree's migration files in memory and every stored column must be listed,
whatever its declared type (a phone number in an INTEGER column is stored as an integer, and is as
personal; generated columns are computed from classified ones and left out). The id keeps its first
name, `text-columns-classified`, as ids are stable. Mandatory on every stack: a preview is
derived from staging, and its data from staging's or production's backups.
"""

from __future__ import annotations

import sqlite3

from pulumi_policy import EnforcementLevel, Severity, StackValidationArgs

from booking_shared import columns
from booking_shared.errors import InputError
from policies.common import Report, make_stack_policy, message, project_root

NAME = "text-columns-classified"


def check_columns(_args: StackValidationArgs, report: Report) -> None:
    """Each stored column of this tree's schema has a class in migrations/columns.yaml."""
    folder = project_root() / "migrations"
    try:
        classification = columns.load(folder)
    except InputError as exc:
        report(message(f"The column classification cannot be read: {exc}.",
                       "without it no preview can get a scrubbed copy of the data, and nobody has said which "
                       "columns hold personal data",
                       f"fix {folder / columns.FILE} (table -> column -> class)"))
        return
    try:
        schema = columns.schema_of(folder)
    except sqlite3.Error as exc:
        report(message(f"This tree's migrations do not build a schema in SQLite: {exc}.",
                       "the classification cannot be checked against columns that do not exist",
                       "run `bookingctl migrate check --local FILE` to see which migration fails"))
        return
    try:
        missing = columns.unclassified(columns.text_columns(schema), classification)
    finally:
        schema.close()
    if missing:
        report(message(f"{len(missing)} column(s) of the schema have no class in "
                       f"migrations/{columns.FILE}: {', '.join(missing)}.",
                       "a preview's copy of real data is scrubbed by that file: an unclassified column would stop "
                       "the scrubber, and a personal one must never reach a preview as it is",
                       f"add each under its table in migrations/{columns.FILE} with one of: "
                       f"{', '.join(columns.CLASSES)} (when in doubt it is personal), in the pull request that "
                       "adds the column"))


text_columns_classified = make_stack_policy(
    NAME,
    "Every column the migrations create is classified in migrations/columns.yaml (the preview scrubber's input), "
    "whatever its type.",
    check_columns,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation="Classify each new column in migrations/columns.yaml in the pull request that adds it.",
    suppressible=False,
    locked=False,
)
