"""hostile24f: the mirror of the named gap. One browser on the *serving* version retrying a page that throws on both
versions inflates the serving version's invocation errors (no browser dimension there), and a canary with 5 % of its
requests over the CPU limit (runtime only: no HTTP row) then looks no worse. docs/releases.md: "5 % of requests over
it is caught in 99.7 % of bakes". Fails on main (6992758): 15 % unsampled, 15.5 % 1 in 2 (4896270^: 20.5 %, 21 %).
"""

from __future__ import annotations

import pytest

from tests.unit.ops.affinity_bake import Stuck, rollback_rate

ALL = tuple(range(1, 11))


def test_control_cpu_limit_alone_is_caught() -> None:  # passes on main: 99.5 %
    assert rollback_rate(24, 200, interval=1, killed=0.05) >= 0.9


@pytest.mark.xfail(strict=True, reason=(
    "known, left (issue #24): the invocations have no browser dimension, so one browser "
    "retrying a page that throws on the serving version inflates the baseline and hides a "
    "canary over the CPU limit (the mirror of the named gap)"))
@pytest.mark.parametrize("interval", [1, 2], ids=["unsampled", "1-in-2"])
def test_a_cpu_limit_regression_is_caught_beside_a_browser_stuck_on_a_throwing_page_on_the_serving_version(
        interval: int) -> None:
    assert rollback_rate(24, 200, interval=interval, killed=0.05,
                         stuck=(Stuck(5, ALL, "serving", thrown=True),)) >= 0.9
