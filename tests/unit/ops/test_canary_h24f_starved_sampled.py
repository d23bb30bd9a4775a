"""hostile24f (a): the HTTP answers' starved check runs *by requests* whenever a side is sampled.

`browser_counts` needs exact units on both sides, so sampled HTTP answers fall to `_starved`'s by-requests
branch (ops/releases/judge.py `_starved`), the one 2a48fd3 took off the invocations because whole browsers
are assigned. Busy sites are both the sampled ones and the ones with busy browsers. Same for a serving
version built before blob1 (per_browser None), on both sources. tests/unit/ops/affinity_bake.py unchanged.
Fail on main (6992758); measured rates in the ids (seed 24, 200 bakes).
"""

from __future__ import annotations

from typing import Any

import pytest

from ops.releases.baseline import ALPHA
from tests.unit.ops.affinity_bake import rollback_rate


@pytest.mark.parametrize("kwargs", [
    {"interval": 2, "rpm": 1200, "flow": 20, "rate": 0.001},  # 18.5 % (unsampled: 1.5 %)
    {"interval": 2, "canary_interval": 1, "rpm": 1200, "flow": 20, "rate": 0.001},  # 15 %
    {"interval": 2, "rpm": 1200, "flow": 40, "rate": 0.001},  # 41 %
    {"interval": 4, "rpm": 1200, "flow": 20, "rate": 0.001},  # 6.5 %
    {"interval": 2, "rpm": 200, "flow": 20, "rate": 0.001},  # 5.5 %
], ids=["1-in-2-1200rpm-20-a-browser", "only-serving-sampled-1200rpm-20", "1-in-2-1200rpm-40",
        "1-in-4-1200rpm-20", "1-in-2-200rpm-20"])
def test_a_good_canary_with_busy_browsers_is_not_starved_when_sampled(kwargs: dict[str, Any]) -> None:
    assert rollback_rate(24, 200, **kwargs) <= ALPHA


@pytest.mark.parametrize("kwargs", [
    {"interval": 1, "one_blob1": "serving", "flow": 10, "rate": 0.001},  # 12 %
    {"interval": 2, "one_blob1": "serving", "flow": 10, "rate": 0.001},  # 11.5 %
    {"interval": 1, "one_blob1": "serving", "rpm": 1200, "flow": 10, "rate": 0.001},  # 17.5 %
], ids=["unsampled-10-a-browser", "1-in-2-10-a-browser", "unsampled-1200rpm-10-a-browser"])
def test_the_first_canary_beside_a_serving_version_before_blob1_with_busy_browsers(kwargs: dict[str, Any]) -> None:
    # The migration deploy docs/releases.md names (0.8 % measured at 3 requests a browser).
    assert rollback_rate(24, 200, **kwargs) <= ALPHA


def test_mixed_browser_sizes_sampled_1_in_2() -> None:
    # Not even busy on average: 95 % of browsers make 3 requests, 5 % make 30 (4.35 a browser), 1,200 req/min.
    # 1 in 2 kept: 8 % (unsampled 1.5 %). hostile/h24f/_mixbake.py is affinity_bake's bake with that mix.
    from tests.unit.ops.affinity_mixbake import rollback_rate as mixed

    assert mixed(24, 200, interval=2, mix=((3, 0.95), (30, 0.05))) <= ALPHA
