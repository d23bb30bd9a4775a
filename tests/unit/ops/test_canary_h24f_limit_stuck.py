"""hostile24f (a): the limit on every failed request (request_errors) rolls back *and quarantines* a good canary
when a few browsers retry a page answering 5xx on both versions: affinity puts each browser's retries on one
version, > 5 % of the 10 % canary's requests, < 1 % of the serving version's. Fail on main (6992758).
"""

from __future__ import annotations

from typing import Any

import pytest

from ops.releases.baseline import ALPHA
from tests.unit.ops.affinity_bake import Stuck, rollback_rate

ALL = tuple(range(1, 11))


@pytest.mark.xfail(strict=True, reason=(
    "known, left (issue #24): errorRatePercent holds every failed request, so a few browsers "
    "retrying a page that answers 5xx on both versions can put a quiet canary over it: rolled "
    "back (7-12 %), though no longer quarantined where browsers show it no worse"))
@pytest.mark.parametrize("kwargs", [
    {"interval": 1, "stuck": (Stuck(), Stuck(), Stuck())},  # 12.5 %, all judged (quarantined)
    {"interval": 1, "stuck": (Stuck(), Stuck())},  # 7.5 %
    {"interval": 1, "stuck": (Stuck(5, ALL),)},  # 9.5 %
    {"interval": 2, "stuck": (Stuck(5, ALL),)},  # 7.5 %
    {"interval": 1, "rpm": 100, "stuck": (Stuck(),)},  # 8 %
], ids=["3-browsers", "2-browsers", "1-browser-all-bake", "1-browser-all-bake-1-in-2", "100rpm-1-browser"])
def test_browsers_retrying_a_page_failing_on_both_versions_do_not_roll_a_good_canary_back(
        kwargs: dict[str, Any]) -> None:
    assert rollback_rate(24, 200, **kwargs) <= ALPHA
