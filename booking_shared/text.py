"""Text from outside (a site's answer, an API error, a manifest's reason) made safe to print."""

from __future__ import annotations


def printable(text: str, limit: int | None = 200) -> str:
    """`text` with every non-printable character spelled out (`\\x1b`, `\\r`, `\\u202e`), shortened
    to `limit` characters (None: whole).

    An ANSI escape sequence, a carriage return or a bidirectional override could otherwise recolour,
    move or rewrite what the terminal shows.
    """
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
