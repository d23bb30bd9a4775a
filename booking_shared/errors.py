"""The one error shape config checks share: a bad value that belongs to one config key."""

from __future__ import annotations


class KeyedValueError(ValueError):
    """A bad value for config key `key` (e.g. `errorRatePercent`, `tenants[0].hostname`), what was
    found and what is allowed; config errors render it as one line naming the key."""

    def __init__(self, key: str, found: object, allowed: str) -> None:
        super().__init__(allowed)
        self.key, self.found, self.allowed = key, found, allowed
