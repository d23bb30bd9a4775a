"""errorRatePercent is a per-request error rate (booking:rollout, docs/releases.md), but where both
sides count browsers, `_failures` makes the critical limit in `_over_limits` (and the guardrail in
`_against_baseline`) a share of *failing browsers*. A browser making n requests fails with
1 - (1 - rate)^n: at a 0.5 % request error rate (a tenth of the 5 % limit), a browser of 20 requests
fails 9.5 % of the time. Every canary on such a platform is "over the limit": never promoted, rolled
back unjudged (the serving version is "over" it too), however sound it is -- releases stop.
"""

from __future__ import annotations

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import VersionTraffic
from ops.releases.judge import judge

SETTINGS = RolloutSettings()  # errorRatePercent 5


def test_a_canary_identical_to_a_healthy_serving_version_is_promoted() -> None:
    # Both versions: 0.5 % of requests answer 5xx, browsers make 20 requests over the bake
    # (a booking flow plus a few page loads), 9.5 % of browsers see at least one 5xx.
    canary = VersionTraffic(4000, 20, 0.05, 0.3, sampled=4000, units=200, failing_units=19)
    serving = VersionTraffic(36_000, 180, 0.05, 0.3, sampled=36_000, units=1800, failing_units=171)
    verdict = judge(canary, [True] * 10, SETTINGS, final=True, baseline=serving, share=0.1)
    assert verdict.action == "promote", verdict
