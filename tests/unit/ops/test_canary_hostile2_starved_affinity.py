"""`_starved` (ops/releases/judge.py) tests requests as if each were assigned to a version on its own.

With version affinity (the booking-version-key cookie, infra/edge.py) Cloudflare assigns a *browser*
to a version, so the canary's part of the requests is clustered: a few busy browsers (salon staff
with the dashboard open, polling) on the serving version make the canary look "far below its share"
by chance. The Chernoff bound over n requests then rolls a good canary back *and quarantines it*
(Verdict.judged is True).
"""

from __future__ import annotations

import random

from booking_shared.rollout import RolloutSettings
from ops.observation.analytics import VersionTraffic
from ops.releases.judge import judge

SETTINGS = RolloutSettings()  # canaryPercent 10, minRequests 100, 10-minute bake


def _t(requests: int, units: int) -> VersionTraffic:
    return VersionTraffic(requests, 0, 0.05, 0.2, sampled=requests, units=units, failing_units=0)


def test_one_browser_fewer_than_expected_is_not_a_missing_canary() -> None:
    # 5 % split, 50 browsers of 40 requests each. The canary got 1 browser where 2.5 were expected:
    # P(<= 1 of 50 at 5 %) = 0.28, entirely ordinary. Error-free, fast, all probes pass.
    canary, serving = _t(40, 1), _t(1960, 49)
    verdict = judge(canary, [True] * 10, SETTINGS, final=True, baseline=serving, share=0.05)
    assert not (verdict.action == "rollback" and verdict.judged), verdict


def _bake(rng: random.Random, share: float, staff: int, staff_rpm: int, customers_pm: int,
          customer_requests: int, minutes: int = 10) -> str:
    on_canary = [rng.random() < share for _ in range(staff)]
    rc = rb = uc = ub = 0
    for m in range(1, minutes + 1):
        for c in on_canary:
            rc, rb = (rc + staff_rpm, rb) if c else (rc, rb + staff_rpm)
        for _ in range(customers_pm):
            if rng.random() < share:
                rc, uc = rc + customer_requests, uc + 1
            else:
                rb, ub = rb + customer_requests, ub + 1
        canary = _t(rc, uc + sum(on_canary))
        serving = _t(rb, ub + staff - sum(on_canary))
        verdict = judge(canary, [True] * m, SETTINGS, final=m == minutes, baseline=serving, share=share)
        if verdict.action != "continue":
            return verdict.action if not (verdict.action == "rollback" and verdict.judged) else "quarantined"
    return "continue"


def test_a_good_canary_beside_polling_staff_browsers_is_rarely_rolled_back() -> None:
    # 20 staff browsers polling every 10 s and 10 customers a minute (4 requests each), 10 % split:
    # every request succeeds on both versions. A sound judge rolls back (and quarantines) a good
    # canary in at most a few % of bakes (the comparison's own alpha is 5 %, STARVED_P 1e-6).
    rng = random.Random(1)
    outcomes = [_bake(rng, 0.10, 20, 6, 10, 4) for _ in range(300)]
    rate = outcomes.count("quarantined") / len(outcomes)
    assert rate <= 0.05, f"good canaries rolled back and quarantined as 'missing': {rate:.1%}"
