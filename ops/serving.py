"""The serving queries: what must keep preparing against the schema while a migration rolls out.

A Worker rollback never touches D1, and during a canary two versions read the same database, so
every query the serving version (and operations) runs must still prepare once a migration has
been applied. Three sources, one list:

- bookingctl's own queries (audit, users, API keys, database stats, the daily report), gathered
  here from the modules that run them, so a contract migration that breaks operations is caught;
- each `--queries FILE`: the booking application's query corpus, SQL statements separated by `;`
  with `?` parameters (comments allowed; a `;` inside a string or a comment ends nothing);
- the files the stack config key `booking:servingQueries` names, so CI and the deploy hook check
  against the same corpus.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ops.sqlscript import split_statements, strip_comments

# A corpus is SQL text someone wrote by hand; a file far larger than that is a mistake.
MAX_CORPUS_BYTES = 4 * 1024 * 1024


class CorpusError(Exception):
    """A query corpus file cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class ServingQuery:
    source: str  # where it comes from: "ops/audit.py FAILED_LOGINS" or "queries.sql:12"
    sql: str


def own_queries() -> list[ServingQuery]:
    """bookingctl's own queries against the booking schema (imported here, run where they live)."""
    from ops import audit, dbstats, report

    named = [
        (audit, ("FAILED_LOGINS", "PRIVILEGE_ESCALATION", "ACCESS_PATTERNS", "DORMANT", "API_KEYS",
                 "SUSPICIOUS_USAGE", "ROLE_CHANGES", "API_USAGE_BY_DAY", "USERS", "USER_EXISTS", "USER_PERMISSIONS")),
        (dbstats, ("TENANT_APPOINTMENTS",)),
        (report, ("BOOKINGS", "PER_DAY", "ERRORS")),
    ]
    return [ServingQuery(f"{module.__name__.replace('.', '/')}.py {name}", str(getattr(module, name)))
            for module, names in named for name in names]


def read_corpus(path: Path, shown_as: str | None = None) -> list[ServingQuery]:
    """The statements of one corpus file, each with its `file:line`."""
    label = shown_as or str(path)
    try:
        # Read at most one byte past the limit: st_size says nothing of /dev/zero, pipes or growing files.
        with path.open("rb") as f:
            raw = f.read(MAX_CORPUS_BYTES + 1)
        if len(raw) > MAX_CORPUS_BYTES:
            raise CorpusError(f"{label}: larger than {MAX_CORPUS_BYTES // (1024 * 1024)} MiB; a query corpus is "
                              "SQL statements separated by ';'")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise CorpusError(f"{label}: no such query corpus file; check the path (booking:servingQueries paths are "
                          "relative to the project folder)") from None
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{label}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise CorpusError(f"{label}: cannot read it ({exc.strerror or exc})") from None
    queries = [ServingQuery(f"{label}:{s.line}", s.sql) for s in split_statements(text)
               if strip_comments(s.sql).strip().strip(";").strip()]
    if not queries:
        raise CorpusError(f"{label}: holds no SQL statement; a query corpus is statements separated by ';'")
    return queries


def gather(corpus_files: Iterable[tuple[Path, str]] = (), *, own: bool = True) -> list[ServingQuery]:
    """bookingctl's own queries (unless `own` is False) and every statement of each (path, label) file."""
    queries = own_queries() if own else []
    for path, label in corpus_files:
        queries.extend(read_corpus(path, label))
    return queries
