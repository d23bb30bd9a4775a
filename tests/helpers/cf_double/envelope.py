"""The v4 API's one answer shape, built in one place: {success, errors, messages, result[, result_info]}.

Every REST answer of the double goes through `envelope`; the SDK reads `result` (and `result_info`
when it pages), and raises on `success: false` with the first error's code and message.
"""

from __future__ import annotations

from typing import Any

Response = tuple[int, Any]  # (HTTP status, JSON body)


class Refusal(Exception):
    """Raised by a handler's lookups (no such database, zone, ...): the router answers it as is."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status, body)
        self.response: Response = (status, body)


def problem(code: int, message: str, pointer: str | None = None) -> dict[str, Any]:
    """One entry of `errors`; `pointer`: the offending field's JSON pointer, as the Rulesets API names it."""
    return {"code": code, "message": message, **({"source": {"pointer": pointer}} if pointer else {})}


def envelope(result: Any = None, *, errors: list[dict[str, Any]] | None = None,
             result_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """An answer: success exactly when there are no errors."""
    body = {"success": not errors, "errors": list(errors or []), "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return body


def ok(result: Any, result_info: dict[str, Any] | None = None) -> dict[str, Any]:
    return envelope(result, result_info=result_info)


def error(code: int, message: str, pointer: str | None = None) -> dict[str, Any]:
    return envelope(errors=[problem(code, message, pointer)])


def page_info(items: list[Any], page: int, per_page: int, total: int) -> dict[str, Any]:
    """`result_info` of a page-numbered list (the SDK's V4PagePaginationArray asks for page n+1 until one is empty)."""
    return {"count": len(items), "page": page, "per_page": per_page, "total_count": total}
