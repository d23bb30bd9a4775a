"""The route table: (method, path template) -> handler, matched in one place instead of if/regex chains.

A template is an API path below /client/v4 with `{name}` for one path segment and `{name:path}`
for the rest of the path (an R2 object key). `{account}` must be the double's account: another
account answers 404 code 7003, as the API answers an account the token cannot route to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.helpers.cf_double.envelope import Refusal, Response, error

API_PREFIX = "/client/v4"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # below /client/v4
    query: dict[str, list[str]]
    raw: bytes
    params: dict[str, str] = field(default_factory=dict)  # the template's {names}
    authorization: str | None = None  # the Authorization header (token routes answer about the caller)

    def arg(self, name: str, default: str) -> str:
        """The first value of query parameter `name`, or `default`."""
        return (self.query.get(name) or [default])[0]

    def optional(self, name: str) -> str | None:
        """The first value of query parameter `name`, or None when it was not sent."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else {}


@dataclass(frozen=True)
class Bytes:
    """A non-JSON answer: an object's bytes (R2) or plain text (Analytics Engine's SQL errors)."""

    status: int
    data: bytes
    content_type: str


Reply = Response | Bytes
Handler = Callable[[Any, Request], Reply]  # (the double, the request)


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    # Answers checked against the OpenAPI subset (tests/helpers/cf_openapi.py); GraphQL and
    # Analytics Engine answer in their own shapes, checked by their own models.
    checked: bool = True
    pattern: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)(:path)?\}", lambda m: f"(?P<{m[1]}>{'.+' if m[2] else '[^/]+'})",
                       self.template)
        object.__setattr__(self, "pattern", re.compile(regex))


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)

    def find(self, method: str, path: str, account_id: str) -> tuple[Route, dict[str, str]]:
        """The route and its path parameters; Refusal: the API's 404 answer."""
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match is None or route.method != method:
                continue
            params = match.groupdict()
            if params.get("account", account_id) != account_id:
                raise Refusal(404, error(7003, "Could not route to this account"))
            return route, params
        if path.startswith("/accounts/") and not path.startswith(f"/accounts/{account_id}/"):
            raise Refusal(404, error(7003, "Could not route to this account"))
        raise Refusal(404, error(7000, f"No route for {method} {path}"))
