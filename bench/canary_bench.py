#!/usr/bin/env python3
"""How far a bad release gets: simulated minutes from the start of a canary to its rollback, and the share
of all requests the bad version served, for error rates of 2 %, 8 % and 50 %.

    bench/canary_bench.py [--rpm 1000 --rpm 100] [--delay-minutes 3]

The real controller (ops/releases/canary.py) runs against the Cloudflare API double (tests/helpers/cf_double/:
deployments; the GraphQL Analytics dataset, validated against the published schema, and the Analytics
Engine SQL API, both computed from each version's traffic model and arriving `--delay-minutes` late) and
a local site that honours the version-override header, on a fake clock: each simulated minute of bake
takes milliseconds. The canary reads with the same delay (`analyticsDelayMinutes`); "minutes" counts the
bake and the wait for its data. The serving version answers 0.5 % 5xx; the new one the error rate given.
Settings are booking:rollout's defaults (10 % canary, 10-minute bake, 5 % threshold, 100 requests
minimum). "Share of the hour" is the bad version's requests over all of the Worker's requests in the
hour from the start of the canary (a promoted version serves 100 % after the bake, which is then
counted); without a canary it would have served every one of them until a watch rolled it back (the
guide's trigger needs 5 minutes of errors).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if __name__ == "__main__" and not __package__:  # started as a file: again as a module, in the venv
    from _rerun import rerun_as_module

    rerun_as_module(__file__)

from cloudflare import Cloudflare  # noqa: E402

from booking_shared.rollout import RolloutSettings  # noqa: E402
from ops.releases.canary import run_canary  # noqa: E402
from ops.targets import WorkerScript  # noqa: E402
from tests.helpers import ACCOUNT  # noqa: E402
from tests.helpers.cf_double import TOKEN, Traffic, running  # noqa: E402
from tests.helpers.clock import FakeClock  # noqa: E402
from tests.helpers.http_site import Site, serving  # noqa: E402

WORKER = "appointmentbooking-api"


def one(rate: float, rpm: float, delay: float) -> dict[str, object]:
    settings = RolloutSettings(analytics_delay_minutes=delay)
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as root, running(Path(root), ACCOUNT) as double:
        double.now = clock.wall
        double.ingestion_delay = dt.timedelta(minutes=delay)
        script = double.add_script(WORKER, versions=1)
        stable, new = script.versions[0]["id"], double.add_version(WORKER)
        script.requests_per_minute = rpm
        script.traffic[stable] = Traffic(http_5xx_rate=0.005)
        script.traffic[new] = Traffic(http_5xx_rate=rate)
        with serving(Site(worker=WORKER, deployed=script.shares)) as site, \
                Cloudflare(api_token=TOKEN, base_url=double.base_url, max_retries=1) as client:
            report = run_canary(WorkerScript(client, ACCOUNT, WORKER), base_url=site.url, new_version=new,
                                stable_version=stable, settings=settings, clock=clock.clock(), log=lambda _: None,
                                smoke_deadline=0)
    minutes = len(report.minutes)
    bad = rpm * minutes * settings.canary_percent / 100
    if report.promoted:
        bad += rpm * (60 - minutes)
    return {"rate": rate, "rpm": rpm, "outcome": report.outcome, "minutes": minutes,
            "bad_requests": round(bad), "failed_requests": round(bad * rate), "share": bad / (rpm * 60),
            "basis": report.basis, "reason": report.reason}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpm", type=float, action="append", help="Worker requests per minute (repeatable)")
    parser.add_argument("--delay-minutes", type=float, default=RolloutSettings().analytics_delay_minutes,
                        help="how late analytics arrive, for the double and the canary alike (default %(default)g)")
    args = parser.parse_args()
    print(f"analytics {args.delay_minutes:g} min late")
    print(f"{'5xx rate':>8}  {'req/min':>7}  {'outcome':<12} {'minutes':>7}  {'new-version req':>15}  "
          f"{'failed req':>10}  {'share of hour':>13}  verdict")
    for rpm in args.rpm or [1000.0, 100.0]:
        for rate in (0.02, 0.08, 0.50):
            r = one(rate, rpm, args.delay_minutes)
            print(f"{rate:>8.0%}  {rpm:>7.0f}  {r['outcome']!s:<12} {r['minutes']:>7}  {r['bad_requests']:>15}  "
                  f"{r['failed_requests']:>10}  {r['share']:>13.2%}  {r['reason']}")


if __name__ == "__main__":
    main()
