"""The Worker's health contract: what an answer of /api/health says, read one way for every check.

verify, monitor health, the daily report and the post-deploy watch all GET /api/health through
ops/http.py's client (an overall deadline, a capped body, redirects only within the site) and read
the answer here. The JSON is read with a nesting limit, so a hostile body cannot raise
RecursionError; every value shown is passed through `printable` first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from booking_shared.text import printable
from ops.http import Answer, Client

# The health contract is a few hundred bytes of JSON.
HEALTH_MAX_BODY = 64 * 1024
# The contract's deepest value is database.status (2 levels); anything near this limit is not it.
MAX_JSON_DEPTH = 32


def _too_deep(body: bytes, limit: int) -> bool:
    """True when brackets nest deeper than `limit` outside strings: checked before json.loads,
    whose C parser recurses once per level and raises RecursionError on deep input."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def json_object(body: bytes) -> dict[str, Any] | str:
    """The body as a JSON object, or why it is not a usable one."""
    if _too_deep(body, MAX_JSON_DEPTH):
        return f"body is not a usable JSON object (nested deeper than {MAX_JSON_DEPTH} levels)"
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError too: the scan above is byte-based, json.loads is not
        return "body is not JSON"
    if not isinstance(value, dict):
        return "body is not a JSON object"
    return value


def _shown(value: Any) -> str:
    return printable(repr(value), 80)


@dataclass(frozen=True)
class HealthBody:
    """What an answer of /api/health says (the Worker's health contract), read one way for verify,
    monitor health and the post-deploy watch."""

    http_code: int
    json_object: bool  # False: the body is not a JSON object (an error page, a proxy's answer)
    status: Any = None
    database: Any = None
    version: Any = None
    problem: str = ""  # why the body is not usable, when json_object is False

    @property
    def healthy(self) -> bool:
        return self.http_code == 200 and self.status == "ok" and self.database == "ok"

    def describe(self) -> str:
        """The HTTP code and the contract's fields, escaped and shortened, for a check's detail."""
        if not self.json_object:
            return f"HTTP {self.http_code}, {self.problem}"
        return (f"HTTP {self.http_code}, status={_shown(self.status)}, database={_shown(self.database)}, "
                f"version={_shown(self.version)}")


def read_health(http_code: int, body: bytes) -> HealthBody:
    parsed = json_object(body)
    if isinstance(parsed, str):
        return HealthBody(http_code, False, problem=parsed)
    database = parsed.get("database")
    return HealthBody(http_code, True, parsed.get("status"),
                      database.get("status") if isinstance(database, dict) else None, parsed.get("version"))


def get_health(client: Client, url: str, *, timeout: float | None = None) -> tuple[Answer, HealthBody]:
    """GET /api/health and read its contract. Raises HttpError when no answer came."""
    answer = client.get(url, timeout=timeout, max_body=HEALTH_MAX_BODY, body="keep")
    return answer, read_health(answer.status, answer.body)
