"""The serving queries: what must keep preparing against the schema while a migration rolls out.

A Worker rollback never touches D1, and during a canary two versions read the same database, so
every query the serving version (and operations) runs must still prepare once a migration has
been applied. The sources, read here and gathered into one list by `ops/releases/gate.py`:

- bookingctl's own queries (audit, users, API keys, database stats, the daily report, tenants and
  tenant restores), read from the modules that run them (`module_queries`), so a contract migration
  that breaks operations is caught;
- the Worker's own statements, read from the bundle the stack deploys (`booking:workerBundle`;
  default the reference Worker, worker/src/index.js): every `.prepare("...")` whose SQL is written
  as string literals, so a migration that breaks the deployed Worker is caught without a corpus;
- each `--queries FILE`: the booking application's query corpus, SQL statements separated by `;`
  with `?` parameters (comments allowed; a `;` inside a string or a comment ends nothing);
- the files the stack config key `booking:servingQueries` names, so CI and the deploy hook check
  against the same corpus.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from booking_shared import CHECKOUT
from booking_shared.errors import InputError
from ops.database.sqlscript import split_statements, strip_comments

# A corpus is SQL text someone wrote by hand; a file far larger than that is a mistake.
MAX_CORPUS_BYTES = 4 * 1024 * 1024
# The project folder, where the reference Worker lives; labels are relative to it.
PROJECT = CHECKOUT
REFERENCE_WORKER = PROJECT / "worker" / "src" / "index.js"
# Cloudflare's limit for one Worker (10 MB compressed, Workers Paid; stackconfig/files.py refuses a larger
# bundle): a bigger file is not a bundle the stack can deploy.
MAX_BUNDLE_BYTES = 10 * 1024 * 1024
_SQL = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH)\b", re.IGNORECASE)
# D1's Worker API: `env.DB.prepare(sql)` (developers.cloudflare.com/d1/worker-api/d1-database/#prepare).
_PREPARE = re.compile(r"\.prepare\s*\(")
_JS_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


class CorpusError(InputError):
    """A query corpus file cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class ServingQuery:
    source: str  # where it comes from: "ops/observation/audit.py FAILED_LOGINS" or "queries.sql:12"
    sql: str
    # bookingctl's own or the Worker's: code of this project, tested against the committed schema
    # (one that does not prepare means the target is not the booking schema, and is only reported).
    built_in: bool = False


def module_queries(module: ModuleType) -> list[ServingQuery]:
    """The fixed SQL a module runs: each call argument that is SQL text known without running it
    (literals, and f-strings or `+` of literals and the module's own string constants).

    Read from the module's source, so the corpus follows the code as it changes; SQL built from
    run-time values (table names of a restore) is left out: it follows the schema by design.
    """
    path = Path(str(module.__file__))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}
    label = module.__name__.replace(".", "/") + ".py"
    found: dict[str, ServingQuery] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for arg in node.args[:2]:
                text = _static_text(arg, constants)
                if text is not None and _SQL.match(text) and text not in found:
                    found[text] = ServingQuery(f"{label}:{arg.lineno}", text, True)
    return sorted(found.values(), key=lambda q: int(q.source.rsplit(":", 1)[1]))


def _static_text(node: ast.expr, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.IfExp):  # `", col" if with_col else ""`: the plainer form, as old rows have it
        return _static_text(node.orelse, constants)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _static_text(node.left, constants), _static_text(node.right, constants)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            inner: ast.expr = value
            if isinstance(value, ast.FormattedValue):
                if value.conversion != -1 or value.format_spec is not None:
                    return None
                inner = value.value
            part = _static_text(inner, constants)
            if part is None:
                return None
            parts.append(part)
        return "".join(parts)
    return None


def worker_queries(bundle: Path, shown_as: str | None = None) -> list[ServingQuery]:
    """The SQL of each `.prepare(...)` in a Worker bundle whose argument is string literals (joined
    with `+`), each with its `file:line`; a template literal with `${...}` is built at run time and left out."""
    label = shown_as or _shown(bundle)
    try:
        if bundle.stat().st_size > MAX_BUNDLE_BYTES:
            raise CorpusError(f"{label}: larger than 10 MiB, so not a Worker bundle Cloudflare deploys")
        with bundle.open("rb") as f:
            text = f.read(MAX_BUNDLE_BYTES + 1).decode("utf-8")
    except FileNotFoundError:
        raise CorpusError(f"{label}: no Worker bundle there; check booking:workerBundle") from None
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{label}: not UTF-8 text (byte {exc.start}); a Worker bundle is JavaScript") from None
    except OSError as exc:
        raise CorpusError(f"{label}: cannot read it ({exc.strerror or exc})") from None
    queries = []
    for match in _PREPARE.finditer(text):
        sql = _js_strings(text, match.end())
        if sql is not None and _SQL.match(sql):
            queries.append(ServingQuery(f"{label}:{text.count(chr(10), 0, match.start()) + 1}", sql, True))
    return queries


def _shown(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(PROJECT)) if resolved.is_relative_to(PROJECT) else str(path)


def _js_strings(text: str, position: int) -> str | None:
    """The value of `"a" + 'b' + `c`` starting at `position` (up to the closing parenthesis or a
    comma), or None when anything but string literals and `+` is there."""
    parts: list[str] = []
    expect_literal = True
    for kind, value in _js_tokens(text, position):
        if kind == "end":
            return "".join(parts) if parts and not expect_literal else None
        if expect_literal and kind == "string":
            parts.append(value)
            expect_literal = False
        elif not expect_literal and kind == "plus":
            expect_literal = True
        else:
            return None
    return None


def _js_tokens(text: str, position: int) -> Iterator[tuple[str, str]]:
    while position < len(text):
        ch = text[position]
        if ch.isspace():
            position += 1
        elif text.startswith("//", position):
            end = text.find("\n", position)
            position = len(text) if end < 0 else end
        elif text.startswith("/*", position):
            end = text.find("*/", position + 2)
            position = len(text) if end < 0 else end + 2
        elif ch in "\"'`":
            value, position = _js_literal(text, position)
            if value is None:
                yield "other", ""
                return
            yield "string", value
        elif ch == "+":
            position += 1
            yield "plus", "+"
        elif ch in "),":
            yield "end", ""
            return
        else:
            yield "other", ch
            return


def _js_literal(text: str, position: int) -> tuple[str | None, int]:
    quote, position, out = text[position], position + 1, list[str]()
    while position < len(text):
        ch = text[position]
        if ch == quote:
            return "".join(out), position + 1
        if ch == "\\":
            nxt = text[position + 1:position + 2]
            if nxt == "u" and text[position + 2:position + 3] != "{":
                out.append(chr(int(text[position + 2:position + 6], 16)))
                position += 6
            elif nxt == "x":
                out.append(chr(int(text[position + 2:position + 4], 16)))
                position += 4
            elif nxt == "\n":  # a line continuation
                position += 2
            elif nxt == "u":
                return None, position
            else:
                out.append(_JS_ESCAPES.get(nxt, nxt))
                position += 2
            continue
        if ch == "\n" and quote != "`":
            return None, position
        if quote == "`" and text.startswith("${", position):
            return None, position
        out.append(ch)
        position += 1
    return None, position


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
