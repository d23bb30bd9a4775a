"""A canary release of the API Worker: a new version earns its traffic before it gets all of it.

Steps, each through Cloudflare's Workers deployments API:

1. **Smoke test, pinned.** A deployment of the new version at 0 % beside the serving one at 100 %:
   no salon's request reaches it, but requests carrying Cloudflare's version-override header do
   (the header is honoured only for versions in the current deployment, hence the 0 % entry).
   `/` and `/api/health` are asked for with that header until the new version answers healthy.
2. **Canary.** The new version at `canaryPercent`, the serving one at the rest. Every minute of the
   bake: that version's own traffic from the GraphQL Analytics API (ops/analytics.py) and one round
   of pinned probes, judged by `judge()` on the guide's thresholds.
3. **Verdict.** Promote: the caller moves 100 % (inside `pulumi up` the engine does, so its state
   names the deployment that really serves). Roll back: a deployment of 100 % of the serving
   version, at once, inside the bake.

`judge()` is a pure function; more errors, slower answers or more failed probes never turn a
rollback into a promotion (tests/unit/ops/test_canary_judge.py holds it to that).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from booking_shared.rollout import RolloutSettings, override_header
from ops.analytics import VersionTraffic, version_traffic
from ops.rollback import deploy_versions, deployments, shares
from ops.verify import Clock, VerifyResult, verify

if TYPE_CHECKING:
    from cloudflare import Cloudflare

Log = Callable[[str], None]
Metrics = Callable[[dt.datetime, dt.datetime], "dict[str, VersionTraffic] | None"]

# Failed rounds of pinned probes that end a canary: one can be a blip (a cold start, a lost packet);
# two in one bake are a pattern.
PROBE_FAILURES_TO_ROLL_BACK = 2
SMOKE_DEADLINE_SECONDS = 120.0


@dataclass(frozen=True)
class Verdict:
    action: Literal["continue", "promote", "rollback"]
    reason: str
    basis: Literal["traffic", "probes"]


def judge(traffic: VersionTraffic | None, probes: Sequence[bool], settings: RolloutSettings, *,
          final: bool) -> Verdict:
    """The canary's verdict from its own traffic so far and its pinned probe rounds (True = passed).

    Traffic counts once it reaches `min_requests`, except that errors count at once when they are
    already too many for *any* outcome of the rest: the error rate is taken over at least
    `min_requests` requests, so 50 errors in 50 requests fail a 5 % threshold at a minimum of 100
    without waiting. Latency needs the minimum (a few slow requests prove nothing).
    """
    failed = sum(1 for ok in probes if not ok)
    if failed >= PROBE_FAILURES_TO_ROLL_BACK:
        return Verdict("rollback", f"{failed} of {len(probes)} rounds of version-pinned probes failed", "probes")
    requests = traffic.requests if traffic else 0
    enough = requests >= settings.min_requests
    if traffic is not None and requests:
        floor_rate = 100.0 * traffic.errors / max(requests, settings.min_requests)
        if floor_rate > settings.error_rate_percent:
            return Verdict("rollback", f"error rate {traffic.error_rate_percent:.1f} % over {requests} requests "
                                       f"(threshold {settings.error_rate_percent:g} %)", "traffic")
        if enough and traffic.latency_seconds is not None and traffic.latency_seconds > settings.latency_seconds:
            return Verdict("rollback", f"median response time {traffic.latency_seconds:.2f} s over {requests} "
                                       f"requests (threshold {settings.latency_seconds:g} s)", "traffic")
    if not final:
        return Verdict("continue", f"{requests} canary requests so far", "traffic" if enough else "probes")
    if enough:
        return Verdict("promote", f"{requests} canary requests within thresholds", "traffic")
    if settings.on_insufficient_traffic == "rollback":
        return Verdict("rollback", f"only {requests} canary requests (fewer than minRequests "
                                   f"{settings.min_requests}) and onInsufficientTraffic is rollback", "probes")
    if failed:
        return Verdict("rollback", f"only {requests} canary requests to judge by and {failed} round of pinned probes "
                                   "failed", "probes")
    return Verdict("promote", f"only {requests} canary requests (fewer than minRequests {settings.min_requests}): "
                              f"the verdict rests on the pinned smoke test and {len(probes)} rounds of pinned probes, "
                              "all passed",
                   "probes")


@dataclass
class Minute:
    minute: int
    canary: dict[str, Any] | None
    stable: dict[str, Any] | None
    probe_ok: bool
    probe_detail: str
    verdict: str


@dataclass
class CanaryReport:
    script: str
    new_version: str
    stable_version: str
    percent: float
    bake_minutes: int
    outcome: Literal["promoted", "rolled-back", "smoke-failed"] = "rolled-back"
    reason: str = ""
    basis: str = ""
    minutes: list[Minute] = field(default_factory=list)
    smoke: dict[str, Any] | None = None
    canary_deployment: str | None = None
    final_deployment: str | None = None

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    def metrics(self) -> dict[str, Any]:
        """The numbers the verdict rested on (the last minute's cumulative traffic)."""
        last = self.minutes[-1] if self.minutes else None
        return {"canary": last.canary if last else None, "stable": last.stable if last else None,
                "probeRounds": len(self.minutes), "probeFailures": sum(1 for m in self.minutes if not m.probe_ok)}

    def to_dict(self) -> dict[str, Any]:
        return {"script": self.script, "newVersion": self.new_version, "stableVersion": self.stable_version,
                "percent": self.percent, "bakeMinutes": self.bake_minutes, "outcome": self.outcome,
                "reason": self.reason, "basis": self.basis, "metrics": self.metrics(),
                "minutes": [vars(m) for m in self.minutes], "smoke": self.smoke,
                "canaryDeployment": self.canary_deployment, "finalDeployment": self.final_deployment}


def serving_version(client: Cloudflare, account_id: str, script: str, exclude: str | None = None) -> str | None:
    """The version with the largest share of the newest deployment, other than `exclude` (None: no deployment)."""
    history = deployments(client, account_id, script)
    if not history:
        return None
    split = sorted(((p, v) for v, p in shares(history[0]).items() if v != exclude), reverse=True)
    return split[0][1] if split else None


def _probe_round(base_url: str, pinned: dict[str, str], version: str, settings: RolloutSettings,
                 clock: Clock) -> tuple[bool, str]:
    result = verify(base_url, None, deadline=0, expected_version=version, clock=clock, headers=pinned)
    slow = [c for c in result.checks if c.response_time is not None and c.response_time > settings.latency_seconds]
    if not result.ok:
        return False, result.failures()
    if slow:
        return False, "; ".join(f"{c.name}: answered in {c.response_time:.2f} s" for c in slow)
    return True, "pinned probes pass"


def run_canary(client: Cloudflare, *, account_id: str, script: str, base_url: str, new_version: str,
               stable_version: str, settings: RolloutSettings, percent: float | None = None,
               bake_minutes: int | None = None, clock: Clock | None = None, log: Log = print,
               metrics: Metrics | None = None, smoke_deadline: float = SMOKE_DEADLINE_SECONDS) -> CanaryReport:
    """Smoke-test, then bake the new version beside the serving one; on failure send 100 % back.

    Returns the report; `report.promoted` says whether the new version may take all traffic (the
    caller moves it). On a rollback the deployment already serves 100 % of `stable_version`.
    """
    clock = clock or Clock()
    percent = settings.canary_percent if percent is None else percent
    bake = settings.bake_minutes if bake_minutes is None else bake_minutes
    report = CanaryReport(script, new_version, stable_version, percent, bake)
    pinned = override_header(script, new_version)
    read = metrics or (lambda since, until: version_traffic(client, account_id, script, since, until))
    def deploy(versions: list[tuple[str, float]], message: str) -> str:
        history = deployments(client, account_id, script)
        return deploy_versions(client, account_id, script, versions, message,
                               newest=history[0].id if history else None)

    def back_to_stable(reason: str) -> None:
        report.final_deployment = deploy([(stable_version, 100.0)], f"canary of {new_version} rolled back: {reason}")
        log(f"canary: rolled back, 100 % of traffic is on {stable_version} again (deployment "
            f"{report.final_deployment})")

    log(f"canary: smoke test of version {new_version}, pinned with {next(iter(pinned))}, at 0 % of traffic")
    deploy([(stable_version, 100.0), (new_version, 0.0)], f"smoke test of {new_version} (0 % of traffic)")
    smoke: VerifyResult = verify(base_url, None, deadline=smoke_deadline, expected_version=new_version, clock=clock,
                                 headers=pinned, log=log)
    report.smoke = smoke.to_dict()
    if not smoke.ok:
        report.outcome, report.basis = "smoke-failed", "probes"
        report.reason = f"version-pinned smoke test failed: {smoke.failures()}"
        back_to_stable(report.reason)
        return report
    report.canary_deployment = deploy([(stable_version, 100.0 - percent), (new_version, percent)],
                                      f"canary of {new_version} at {percent:g} %")
    log(f"canary: {new_version} serves {percent:g} % of requests, {stable_version} the rest; baking {bake} min")
    started_at, started = dt.datetime.now(dt.UTC), clock.now()
    probes: list[bool] = []
    verdict = judge(None, probes, settings, final=bake == 0)
    for minute in range(1, bake + 1):
        clock.sleep(60.0)
        until = started_at + dt.timedelta(seconds=clock.now() - started)
        traffic = read(started_at, until)
        ok, detail = _probe_round(base_url, pinned, new_version, settings, clock)
        probes.append(ok)
        canary = traffic.get(new_version) if traffic is not None else None
        stable = traffic.get(stable_version) if traffic is not None else None
        verdict = judge(canary or (VersionTraffic() if traffic is not None else None), probes, settings,
                        final=minute == bake)
        report.minutes.append(Minute(minute, canary.to_dict() if canary else None,
                                     stable.to_dict() if stable else None, ok, detail, verdict.action))
        shown = (f"{canary.requests} requests, {canary.error_rate_percent:.1f} % errors"
                 + (f", median {canary.latency_seconds:.2f} s" if canary.latency_seconds is not None else "")
                 if canary else "no traffic numbers" if traffic is None else "0 requests")
        log(f"canary minute {minute}/{bake}: {shown}; probes: {detail}; {verdict.action}")
        if verdict.action != "continue":
            break
    report.reason, report.basis = verdict.reason, verdict.basis
    if verdict.action == "promote":
        report.outcome = "promoted"
        log(f"canary: promote {new_version} ({verdict.reason})")
        return report
    report.outcome = "rolled-back"
    back_to_stable(verdict.reason)
    return report


def promote(client: Cloudflare, account_id: str, script: str, version: str) -> str:
    """Send 100 % to `version` (what `pulumi up` does after a passing canary; here for `release canary`)."""
    history = deployments(client, account_id, script)
    return deploy_versions(client, account_id, script, [(version, 100.0)], f"canary of {version} promoted",
                           newest=history[0].id if history else None)



def stable_of_split(history: list[Any]) -> str:
    """The version that served all traffic before the newest (split) deployment began: what an abort goes back to.

    Falls back to the split's larger share when no earlier single-version deployment of one of its
    versions is among the latest deployments.
    """
    serving = shares(history[0])
    for deployment in history[1:]:
        full = [v for v, p in shares(deployment).items() if p >= 100.0]
        if full and full[0] in serving:
            return full[0]
    return max(serving.items(), key=lambda item: item[1])[0]
