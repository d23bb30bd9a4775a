"""What `migrate rehearse` reports: per migration, per table, what the migration did to the rows.

Apart from the rehearsal itself (ops/database/rehearsal.py) because the CLI's renderers, the
policy pack's evidence and the tests read these and nothing else of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ERROR, WARNING, INFO = "error", "warning", "info"

# Rule name -> severity. Stable names: the JSON evidence, the policy and the docs refer to them.
RULES: dict[str, str] = {
    "rows-deleted-unnamed": ERROR,  # rows of a table no DELETE of the migration names (cascade, trigger, DROP)
    # a foreign key set to NULL (or its default) by ON DELETE SET NULL/SET DEFAULT, in a table no
    # statement of the migration names: a parent's DROP or DELETE emptied its children's references
    "references-nulled": ERROR,
    "constraint-failed": ERROR,  # UNIQUE, CHECK, NOT NULL or FOREIGN KEY refused the migration's rows
    "nulls-before-not-null": ERROR,  # the migration makes a column NOT NULL that still holds NULLs
    "orphans": ERROR,  # rows whose foreign key points nowhere once the migration is done
    "check-failed": ERROR,  # a `-- check:` of the migration answered false
    "apply-failed": ERROR,  # any other error of a statement
    "slow-statement": WARNING,  # longer than --slow-seconds here: D1 stops a query at 30 s
    "full-scan": WARNING,  # a serving query that used an index now reads the whole table
    "values-dropped": WARNING,  # non-NULL values of a column the migration drops (what it names, sized)
    "orphans-before": INFO,  # rows of the backup that pointed nowhere already
}


@dataclass(frozen=True)
class Problem:
    rule: str
    message: str
    file: str  # the migration's file name ("" for the backup itself)
    line: int  # the statement's first line (0: the migration as a whole)
    table: str | None = None
    rows: int | None = None  # how many rows it is about
    sample: tuple[dict[str, Any], ...] = ()  # a few of them: keys, personal columns masked

    @property
    def severity(self) -> str:
        return RULES[self.rule]

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "file": self.file, "line": self.line,
                "table": self.table, "rows": self.rows, "sample": list(self.sample), "message": self.message}


@dataclass(frozen=True)
class TableRows:
    table: str
    before: int | None  # None: the table did not exist before the migration
    after: int | None  # None: it does not exist after it

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "before": self.before, "after": self.after}


@dataclass
class MigrationRehearsal:
    name: str
    sha256: str = ""  # of the file rehearsed: the policy binds the evidence to the tree's files
    status: Literal["applied", "failed", "not run"] = "not run"
    seconds: float = 0.0
    statements: int = 0
    tables: list[TableRows] = field(default_factory=list)  # tables whose row count or existence changed
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "status": self.status, "seconds": round(self.seconds, 3),
                "statements": self.statements, "tables": [t.to_dict() for t in self.tables],
                "problems": [p.to_dict() for p in self.problems]}


@dataclass
class RehearsalReport:
    source: str  # what the data came from: a backup's name or a local file
    rows: int = 0
    # What the evidence is bound to (policies/rehearsal.py): the D1 database the backup was taken of
    # (None for a local file), when it was taken, and the checksum of the migration files read.
    database: str | None = None
    backup_created_at: str | None = None
    migrations_checksum: str = ""  # rows of the copy before the first migration
    migrations: list[MigrationRehearsal] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # of the data itself (orphans already there)
    seconds: float = 0.0

    @property
    def findings(self) -> list[Problem]:
        return [*self.problems, *(p for m in self.migrations for p in m.problems)]

    @property
    def verdict(self) -> Literal["safe", "unsafe"]:
        return "unsafe" if any(p.severity == ERROR for p in self.findings) else "safe"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "migration-rehearsal", "source": self.source, "database": self.database,
                "backupCreatedAt": self.backup_created_at, "migrationsChecksum": self.migrations_checksum,
                "rows": self.rows, "verdict": self.verdict, "seconds": round(self.seconds, 3),
                "migrations": [m.to_dict() for m in self.migrations],
                "problems": [p.to_dict() for p in self.problems]}
