"""What `migrate check` reports: its rules and their severities, the findings, each migration's result
and the report as a whole.

Apart from the check itself because everything around it reads these and nothing else of it: the
statement lint and the per-migration judge produce findings, the CLI renders the report, the deploy
hook and `migrate apply` refuse on it (ops/database/migration_check.py), the policy compares its
checksums.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR, WARNING, INFO = "error", "warning", "info"

# Rule name -> severity. Stable names: CI output, the policy and the README refer to them.
RULES: dict[str, str] = {
    "serving-query-breaks": ERROR,
    "apply-failed": ERROR,
    "d1-transaction-control": ERROR,
    "d1-attach": ERROR,
    "d1-pragma": ERROR,
    "d1-vacuum": ERROR,
    "d1-virtual-table": ERROR,
    "d1-statement-too-large": ERROR,
    "d1-too-many-parameters": ERROR,
    "delete-without-where": ERROR,
    "rows-lost": ERROR,
    "constraint-lost": ERROR,
    "serving-writes-break": ERROR,
    "migrations-table": ERROR,
    "contract-with-its-expand": ERROR,
    "corpus-query-unprepared": ERROR,
    "constraint-loosened": WARNING,
    "update-overwrites": ERROR,
    "update-without-where": WARNING,
    "tighter-constraint": WARNING,
    "contract": INFO,
}

CLASSES = ("contract", "data", "expand", "none")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    file: str
    line: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "file": self.file, "line": self.line,
                "message": self.message}


@dataclass
class MigrationResult:
    name: str
    cls: str = "none"
    findings: list[Finding] = field(default_factory=list)
    sha256: str = ""  # of the file judged: evidence and approvals name this content, not only the name

    @property
    def unsafe(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "class": self.cls, "unsafe": self.unsafe,
                "findings": [f.to_dict() for f in self.findings]}


@dataclass
class CheckReport:
    target: str
    queries: int  # how many serving queries were prepared against each schema
    migrations: list[MigrationResult] = field(default_factory=list)
    # Findings about the corpus itself (a query that prepares on neither schema), not one migration.
    corpus: list[Finding] = field(default_factory=list)
    migrations_checksum: str = ""  # booking_shared.deploy.migrations_checksum of the folder the check read

    @property
    def verdict(self) -> str:
        broken_corpus = any(f.severity == ERROR for f in self.corpus)
        return "unsafe" if broken_corpus or any(m.unsafe for m in self.migrations) else "safe"

    @property
    def unsafe(self) -> list[MigrationResult]:
        return [m for m in self.migrations if m.unsafe]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "target": self.target, "servingQueries": self.queries,
                "migrationsChecksum": self.migrations_checksum, "migrations": [m.to_dict() for m in self.migrations],
                "corpus": [f.to_dict() for f in self.corpus]}
