"""The guide's automatic rollback triggers, as the thresholds the post-deploy watch judges by.

One model for both sides: `booking:watch` in a stack file is parsed into it (stackconfig/model.py) and
the watch (ops/watch.py) reads it. Defaults are the guide's: error rate above 5 % over 5 minutes,
response time above 2 s for 10 minutes, database connectivity failures (3 consecutive checks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from booking_shared.errors import KeyedValueError

# config key -> (field, smallest allowed, largest allowed); bounds keep every trigger able to fire
# within an hour-long watch (a window of 1e308 s would silently switch its trigger off).
_LIMITS: dict[str, tuple[str, float, float]] = {
    "intervalSeconds": ("interval_seconds", 1, 300),
    "errorRatePercent": ("error_rate_percent", 0.1, 100),
    "errorWindowSeconds": ("error_window_seconds", 30, 3600),
    "latencySeconds": ("latency_seconds", 0.1, 60),
    "latencyWindowSeconds": ("latency_window_seconds", 30, 3600),
    "databaseFailures": ("database_failures", 1, 100),
}


@dataclass(frozen=True)
class WatchThresholds:
    interval_seconds: float = 15.0
    error_rate_percent: float = 5.0
    error_window_seconds: float = 300.0
    latency_seconds: float = 2.0
    latency_window_seconds: float = 600.0
    database_failures: int = 3

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> WatchThresholds:
        """From `booking:watch`'s camelCase keys; raises KeyedValueError naming the first bad key."""
        values: dict[str, float | int] = {}
        for key, value in raw.items():
            if key not in _LIMITS:
                raise KeyedValueError(str(key), "an unknown key", f"one of: {', '.join(_LIMITS)}")
            field, low, high = _LIMITS[key]
            integer = field == "database_failures"
            number_ok = isinstance(value, int) if integer else isinstance(value, (int, float))
            if isinstance(value, bool) or not number_ok or not math.isfinite(value) or not low <= value <= high:
                kind = "a whole number" if integer else "a number"
                raise KeyedValueError(key, value, f"{kind} from {low:g} to {high:g}")
            values[field] = value
        return cls(**values)  # type: ignore[arg-type]

    def to_config(self) -> dict[str, float | int]:
        """The thresholds under their config keys (what `booking:watch` would say)."""
        by_field = {field: key for key, (field, _, _) in _LIMITS.items()}
        return {by_field[f.name]: getattr(self, f.name) for f in fields(self)}
