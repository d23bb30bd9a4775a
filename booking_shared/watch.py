"""The guide's automatic rollback triggers, as the thresholds the post-deploy watch judges by.

One model for both sides: `booking:watch` in a stack file is validated into it (stackconfig/model.py)
and the watch (ops/releases/watch.py) reads it. Defaults are the guide's: error rate above 5 % over 5 minutes,
response time above 2 s for 10 minutes, database connectivity failures (3 consecutive checks).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class WatchThresholds(BaseModel):
    """`booking:watch`: every key is checked on its own, so one run reports every bad value.

    The bounds keep every trigger able to fire within an hour-long watch (a window of 1e308 s, or
    infinity, would never fill and silently switch its trigger off).
    """

    # Strict: a value of the wrong YAML type is refused, not converted (`true` is not 1 s, 2.5 not 2 failures).
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True,
                              strict=True)

    interval_seconds: float = Field(default=15.0, ge=1, le=300, allow_inf_nan=False)
    error_rate_percent: float = Field(default=5.0, ge=0.1, le=100, allow_inf_nan=False)
    error_window_seconds: float = Field(default=300.0, ge=30, le=3600, allow_inf_nan=False)
    latency_seconds: float = Field(default=2.0, ge=0.1, le=60, allow_inf_nan=False)
    latency_window_seconds: float = Field(default=600.0, ge=30, le=3600, allow_inf_nan=False)
    database_failures: int = Field(default=3, ge=1, le=100)
