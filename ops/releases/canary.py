"""A canary release of the API Worker: a new version earns its traffic before it gets all of it.

Steps, each through Cloudflare's Workers deployments API:

1. **Smoke test, pinned.** A deployment of the new version at 0 % beside the serving one at 100 %:
   no salon's request reaches it, but requests carrying Cloudflare's version-override header do
   (the header is honoured only for versions in the current deployment, hence the 0 % entry).
   `/` and `/api/health` are asked for with that header until the new version answers healthy.
2. **Canary.** The new version at `canaryPercent`, the serving one at the rest. Every minute: that
   version's own numbers from two sources (ops/observation/analytics.py: its HTTP answers from Workers
   Analytics Engine, its invocations from the GraphQL Analytics API), each judged by `judge()`
   against the serving version's numbers from the same source in the same window (a sequential
   test, ops/releases/baseline.py; the guide's thresholds stay as guardrails, and judge alone
   when there is no baseline), and one round of pinned probes. Analytics arrive late
   (`analyticsDelayMinutes`), so each window ends that long before now, and the bake is judged
   only once the data covers all of it: a bake shorter than the delay waits for its data instead of
   resting on probes.
3. **Verdict.** Promote: the caller moves 100 % (inside `pulumi up` the engine does, so its state
   names the deployment that really serves). Roll back: a deployment of 100 % of the serving
   version, at once, as soon as the numbers show it.

`judge()` is a pure function; more errors, slower answers or more failed probes never turn a
rollback into a promotion (tests/unit/ops/test_canary_judge.py holds it to that).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from booking_shared.naming import requests_dataset
from booking_shared.rollout import RolloutSettings, override_header
from ops.observation.analytics import UnreadableAnalytics, VersionTraffic, http_answers, invocations
from ops.observation.verify import Clock, VerifyResult, verify
from ops.releases.baseline import Comparison, compare
from ops.releases.rollback import RollbackError, deploy_versions, deployments, shares

if TYPE_CHECKING:
    from cloudflare import Cloudflare

Log = Callable[[str], None]


class CanaryStopped(RollbackError):
    """The bake ended on an error, not a verdict; the message says whether traffic is back on the stable version."""

    def __init__(self, message: str, report: CanaryReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class Signals:
    """One version's numbers over a window from each source; None: that source gave no numbers."""

    http: VersionTraffic | None = None  # Analytics Engine: the HTTP status and time the Worker recorded
    runtime: VersionTraffic | None = None  # GraphQL workersInvocationsAdaptive: invocation status, wall time
    # Set when a source answered what no real answer holds (ops/observation/analytics.py UnreadableAnalytics):
    # which source and why. Such numbers cannot clear a release, so the verdict is a rollback.
    unreadable: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"http": self.http.to_dict() if self.http else None,
                "runtime": self.runtime.to_dict() if self.runtime else None, "unreadable": self.unreadable}

    def describe(self) -> str:
        if self.unreadable:
            return f"analytics unreadable ({self.unreadable})"
        def one(label: str, t: VersionTraffic | None) -> str:
            if t is None:
                return f"{label}: no numbers"
            median = f", median {t.latency_seconds:.2f} s" if t.latency_seconds is not None else ""
            return f"{label}: {t.describe()}, {t.error_rate_percent:.1f} % errors{median}"
        return f"{one('HTTP answers', self.http)}; {one('invocations', self.runtime)}"


# (since, until, versions) -> each version's signals over that window.
Metrics = Callable[[dt.datetime, dt.datetime, Sequence[str]], dict[str, Signals]]

# Failed rounds of pinned probes that end a canary: one can be a blip (a cold start, a lost packet);
# two in one bake are a pattern.
PROBE_FAILURES_TO_ROLL_BACK = 2
SMOKE_DEADLINE_SECONDS = 120.0
# Monotonic minutes a bake may run past its own minutes and the analytics' delay (slow probe rounds,
# slow reads) before it ends unjudged: a wall clock that stops or steps back, or an API that stalls,
# must not keep the split serving forever.
BAKE_DEADLINE_SLACK_MINUTES = 5


@dataclass(frozen=True)
class Verdict:
    action: Literal["continue", "promote", "rollback"]
    reason: str
    basis: Literal["traffic", "probes"]


def judge(traffic: VersionTraffic | None, probes: Sequence[bool], settings: RolloutSettings, *,
          final: bool, baseline: VersionTraffic | None = None) -> Verdict:
    """The canary's verdict from its own traffic so far, the serving version's in the same window
    (`baseline`), and its pinned probe rounds (True = passed).

    With a baseline the canary is judged against it (ops/releases/baseline.py): rolled back once its
    errors are decisively more than its share of the requests predicts, or once even the lower end
    of its error rate is `errorRatePercent` points over the baseline's (the guardrail for a plain
    failure too large to wait for). Errors both versions share (a D1 outage, a bad upstream) are
    not the canary's. A median over `latencySeconds` rolls back only when the baseline's is within
    it. Without one (no serving version's numbers) the canary's own numbers meet the fixed
    thresholds: traffic counts once it reaches `min_requests`, except that errors count at once
    when they are already too many for *any* outcome of the rest (the error rate is taken over at
    least `min_requests` requests). Latency needs the minimum (a few slow requests prove nothing).
    """
    failed = sum(1 for ok in probes if not ok)
    nonsense = traffic.nonsense() if traffic is not None else None
    if nonsense:
        return Verdict("rollback", f"the canary's numbers cannot be real ({nonsense}), so they cannot clear it",
                       "traffic")
    if failed >= PROBE_FAILURES_TO_ROLL_BACK:
        return Verdict("rollback", f"{failed} of {len(probes)} rounds of version-pinned probes failed", "probes")
    # Sampled numbers are estimates: what counts as enough is the rows observed, not the estimate.
    # A verdict on traffic says both thresholds held, so it also needs a median to hold one to.
    enough = (traffic is not None and traffic.evidence >= settings.min_requests
              and traffic.latency_seconds is not None)
    counted = traffic.describe() if traffic is not None else "no numbers"
    if traffic is None:
        short = "no numbers of the canary's traffic (the source answered none)"
    elif traffic.evidence >= settings.min_requests:
        short = f"{counted} of the canary but no median response time to hold to latencySeconds"
    else:
        short = f"only {counted} of the canary (fewer than minRequests {settings.min_requests})"
    versus = (compare(traffic, baseline) if traffic is not None and baseline is not None
              and baseline.nonsense() is None else None)
    if versus is not None and traffic is not None and baseline is not None:
        wrong = _against_baseline(traffic, baseline, versus, settings, counted, final=final, enough=enough)
        if wrong is not None:
            return wrong
        counted = f"{counted}, {traffic.error_rate_percent:.1f} % errors beside the serving version's " \
                  f"{baseline.error_rate_percent:.1f} %"
    elif traffic is not None and traffic.requests:
        wrong = _against_thresholds(traffic, settings, counted, final=final, enough=enough)
        if wrong is not None:
            return wrong
    if not final:
        return Verdict("continue", f"{counted} so far", "traffic" if enough else "probes")
    if enough:
        return Verdict("promote", f"{counted} within thresholds", "traffic")
    if settings.on_insufficient_traffic == "rollback":
        return Verdict("rollback", f"{short} and onInsufficientTraffic is rollback", "probes")
    if failed:
        return Verdict("rollback", f"{short} to judge by and {failed} round of pinned probes failed", "probes")
    return Verdict("promote", f"{short}: the verdict rests on the pinned smoke test and {len(probes)} rounds of "
                              "pinned probes, all passed",
                   "probes")


def _z(final: bool) -> tuple[str, float]:
    # The bake judges every minute, so before the end a bound is 99.9 % (checked again and again, a
    # 95 % bound would roll back sound versions by chance); the final verdict, once, at 95 %.
    return ("95", 1.96) if final else ("99.9", 3.29)


def _against_baseline(traffic: VersionTraffic, baseline: VersionTraffic, versus: Comparison,
                      settings: RolloutSettings, counted: str, *, final: bool, enough: bool) -> Verdict | None:
    """A rollback the baseline comparison calls for, or None."""
    if versus.worse:
        return Verdict("rollback", f"error rate {traffic.error_rate_percent:.1f} % over {counted}, more than the "
                                   f"serving version's {baseline.error_rate_percent:.1f} % beside it: "
                                   f"{versus.describe()}", "traffic")
    # Both the rate's lower bound (noise at a few hundred requests) and the errors over at least
    # minRequests (one failed request out of one has a 99.9 % lower bound of 8 %) must clear it.
    confidence, z = _z(final)
    low = min(100.0 * wilson_lower_bound(traffic.errors / traffic.requests, traffic.evidence, z),
              100.0 * traffic.errors / max(traffic.requests, settings.min_requests))
    if low - baseline.error_rate_percent > settings.error_rate_percent:
        return Verdict("rollback", f"error rate {traffic.error_rate_percent:.1f} % over {counted}: its {confidence} % "
                                   f"lower bound ({low:.1f} %) is more than errorRatePercent "
                                   f"{settings.error_rate_percent:g} points over the serving version's "
                                   f"{baseline.error_rate_percent:.1f} %", "traffic")
    slow = traffic.latency_seconds
    if enough and slow is not None and slow > settings.latency_seconds and not (
            baseline.latency_seconds is not None and baseline.latency_seconds > settings.latency_seconds):
        return Verdict("rollback", f"median response time {slow:.2f} s over {counted} (threshold "
                                   f"{settings.latency_seconds:g} s; the serving version's "
                                   f"{_median(baseline.latency_seconds)})", "traffic")
    return None


def _median(seconds: float | None) -> str:
    return "has none" if seconds is None else f"is {seconds:.2f} s"


def _against_thresholds(traffic: VersionTraffic, settings: RolloutSettings, counted: str, *, final: bool,
                        enough: bool) -> Verdict | None:
    """A rollback the fixed thresholds call for (no baseline to judge by), or None."""
    requests = traffic.requests
    floor_rate = 100.0 * traffic.errors / max(requests, settings.min_requests)
    if floor_rate > settings.error_rate_percent:
        return Verdict("rollback", f"error rate {traffic.error_rate_percent:.1f} % over {counted} "
                                   f"(threshold {settings.error_rate_percent:g} %)", "traffic")
    # Below minRequests the floor rate divides by the minimum, so a large one (production allows
    # 10,000) would excuse any failure rate of a quiet canary (200 errors in 200 requests: 2 %).
    # The errors still count once even the lower end of what so few observations allow is over
    # the threshold; a failure or two in a handful of requests does not get there.
    confidence, z = _z(final)
    low = (100.0 * wilson_lower_bound(traffic.errors / requests, traffic.evidence, z)
           if traffic.evidence < settings.min_requests else 0.0)  # at the minimum the rate itself is judged
    if low > settings.error_rate_percent:
        return Verdict("rollback", f"error rate {traffic.error_rate_percent:.1f} % over {counted}: fewer than "
                                   f"minRequests {settings.min_requests}, but its {confidence} % lower bound for "
                                   f"so few ({low:.1f} %) is over the threshold {settings.error_rate_percent:g} %",
                       "traffic")
    if enough and traffic.latency_seconds is not None and traffic.latency_seconds > settings.latency_seconds:
        return Verdict("rollback", f"median response time {traffic.latency_seconds:.2f} s over {counted} "
                                   f"(threshold {settings.latency_seconds:g} s)", "traffic")
    return None


def wilson_lower_bound(rate: float, observations: int, z: float = 1.96) -> float:
    """The lower end of the Wilson score interval of a proportion `rate` observed over
    `observations` trials (z = 1.96: 95 %, 3.29: 99.9 %): how low the true rate can plausibly be."""
    if observations <= 0:
        return 0.0
    n, p = observations, min(max(rate, 0.0), 1.0)
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n))


# --- the deployment annotations a canary writes, and how they are read back ---------------------
# One grammar: "canary of V at P %" is the split being judged (no verdict yet); "canary of V rolled
# back: why", "canary of V promoted" and "canary of V ended: why" are verdicts; under `pulumi up` the
# promotion is the engine's own deployment of V at 100 % right after V's split.

def split_message(version: str, percent: float) -> str:
    return f"canary of {version} at {percent:g} %"


_SPLIT = re.compile(r"canary of (?P<version>\S+) at [0-9.]+ %$")


def last_verdict(history: Sequence[tuple[str | None, str]], pulumi_message: str) -> str | None:
    """The latest canary verdict in a deployment history, newest first: (the version a deployment
    sends all traffic to, or None; its annotation message)."""
    for index, (sole, message) in enumerate(history):
        if message.startswith(pulumi_message) and index + 1 < len(history):
            split = _SPLIT.match(history[index + 1][1])
            if split and split.group("version") == sole:
                return f"canary of {sole} promoted (pulumi up deployed it at 100 %)"
        if message.startswith("canary of ") and not _SPLIT.match(message):
            return message
    return None


_SEVERITY = {"rollback": 0, "continue": 1, "promote": 2}


def judge_signals(signals: Signals, probes: Sequence[bool], settings: RolloutSettings, *, final: bool,
                  baseline: Signals | None = None) -> Verdict:
    """`judge()` on each source, against the serving version's numbers from the same source
    (`baseline`, when there are any), the worse verdict wins.

    A rollback from either source rolls back; the canary goes on while either source would; it is
    promoted on traffic only when both sources promote on traffic. A source without numbers is
    judged as `judge(None, ...)`: its part of the verdict rests on the probes, and says so.
    """
    if signals.unreadable:
        return Verdict("rollback", f"analytics answered numbers that cannot be read ({signals.unreadable}), so they "
                                   "cannot clear the canary", "traffic")
    base = baseline or Signals()
    verdicts = [("HTTP answers (Analytics Engine)",
                 judge(signals.http, probes, settings, final=final, baseline=base.http)),
                ("invocations (GraphQL Analytics)",
                 judge(signals.runtime, probes, settings, final=final, baseline=base.runtime))]
    label, worst = min(verdicts, key=lambda lv: (_SEVERITY[lv[1].action], lv[1].basis == "traffic"))
    if worst.action != "promote":
        # The same verdict from both (the probes decided it) needs no source named.
        same = verdicts[0][1] == verdicts[1][1]
        return worst if same else Verdict(worst.action, f"{label}: {worst.reason}", worst.basis)
    return Verdict("promote", "; ".join(f"{lab}: {v.reason}" for lab, v in verdicts), worst.basis)


@dataclass
class Minute:
    minute: int
    canary: dict[str, Any] | None  # Signals.to_dict() of the new version (None: no window visible yet)
    stable: dict[str, Any] | None
    probe_ok: bool
    probe_detail: str
    verdict: str
    data_until: str | None = None  # where the analytics window ended (now minus the delay, at most the bake's end)


@dataclass
class CanaryReport:
    script: str
    new_version: str
    stable_version: str
    percent: float
    bake_minutes: int
    analytics_delay_minutes: float = 0.0
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
        """The numbers the verdict rested on (the last window read: the bake's traffic so far)."""
        read = [m for m in self.minutes if m.canary is not None]
        last = read[-1] if read else None
        return {"canary": last.canary if last else None, "stable": last.stable if last else None,
                "probeRounds": len(self.minutes), "probeFailures": sum(1 for m in self.minutes if not m.probe_ok)}

    def to_dict(self) -> dict[str, Any]:
        return {"script": self.script, "newVersion": self.new_version, "stableVersion": self.stable_version,
                "percent": self.percent, "bakeMinutes": self.bake_minutes,
                "analyticsDelayMinutes": self.analytics_delay_minutes, "outcome": self.outcome,
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


def read_signals(client: Cloudflare, account_id: str, script: str) -> Metrics:
    """The canary's two sources (ops/observation/analytics.py) for `script`, as one reader of windows."""
    dataset = requests_dataset(script)

    def read(since: dt.datetime, until: dt.datetime, versions: Sequence[str]) -> dict[str, Signals]:
        unreadable: list[str] = []
        try:
            runtime = invocations(client, account_id, script, since, until)
        except UnreadableAnalytics as exc:
            runtime = None
            unreadable.append(f"invocations: {exc}")
        found = {}
        for v in versions:
            try:
                http = http_answers(client, account_id, dataset, v, since, until)
            except UnreadableAnalytics as exc:
                http = None
                unreadable.append(f"HTTP answers of {v}: {exc}")
            found[v] = Signals(http=http, runtime=None if runtime is None else runtime.get(v, VersionTraffic()))
        return {v: dataclasses.replace(s, unreadable="; ".join(unreadable) or None) for v, s in found.items()}
    return read


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
    delay = dt.timedelta(minutes=settings.analytics_delay_minutes)
    report = CanaryReport(script, new_version, stable_version, percent, bake, settings.analytics_delay_minutes)
    pinned = override_header(script, new_version)
    read = metrics or read_signals(client, account_id, script)

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

    def bake_and_judge() -> Verdict | None:
        """The smoke test and the bake; None: the smoke test failed (the report says why)."""
        smoke: VerifyResult = verify(base_url, None, deadline=smoke_deadline, expected_version=new_version, clock=clock,
                                     headers=pinned, log=log)
        report.smoke = smoke.to_dict()
        if not smoke.ok:
            report.outcome, report.basis = "smoke-failed", "probes"
            report.reason = f"version-pinned smoke test failed: {smoke.failures()}"
            return None
        report.canary_deployment = deploy([(stable_version, 100.0 - percent), (new_version, percent)],
                                          split_message(new_version, percent))
        # The bake's own minutes, then as many more as the analytics lag behind: the verdict waits
        # until the data covers the whole bake (the split keeps serving meanwhile). A bake whose
        # traffic is still under minRequests then goes on, up to maxBakeMinutes, while the numbers
        # can still decide; only then does it end on insufficient traffic.
        longest = max(bake, settings.longest_bake_minutes) if bake else 0
        delay_minutes = math.ceil(settings.analytics_delay_minutes)
        waited = bake + delay_minutes if bake else 0
        longer = f", longer up to {longest} min while under minRequests" if longest > bake else ""
        log(f"canary: {new_version} serves {percent:g} % of requests, {stable_version} the rest; baking {bake} min"
            f"{longer}, judged on analytics {settings.analytics_delay_minutes:g} min behind (up to {waited} min)")
        started, started_at = clock.wall(), clock.now()
        bake_end = started + dt.timedelta(minutes=bake)
        longest_end = started + dt.timedelta(minutes=longest)
        # The whole bake on the monotonic clock: past it the bake ends unjudged (rolled back). It
        # moves to the longest bake only once the data covered the bake itself (the data flows).
        deadline = started_at + 60.0 * (waited + BAKE_DEADLINE_SLACK_MINUTES)
        probes: list[bool] = []
        verdict = judge_signals(Signals(), probes, settings, final=bake == 0)
        minute = 0
        while bake and verdict.action == "continue":
            if clock.now() >= deadline:
                verdict = Verdict("rollback", f"the bake's deadline passed ({waited + BAKE_DEADLINE_SLACK_MINUTES} "
                                              f"min of monotonic time) before the analytics covered it (data until "
                                              f"{report.minutes[-1].data_until if report.minutes else 'never'}): the "
                                              "wall clock stopped or stepped back, or the API stalled", "probes")
                break
            minute += 1
            clock.sleep(60.0)
            # The window's end never runs ahead of the time that really passed (monotonic): a wall clock
            # that jumps forward must not make the bake look covered before its data can exist.
            passed = dt.timedelta(seconds=clock.now() - started_at)
            until = min(clock.wall() - delay, started + passed - delay, longest_end)
            covered, last = until >= bake_end, until >= longest_end
            # Nothing of the canary is visible yet: no query (an empty window would read as zero traffic).
            seen = read(started, until, [new_version, stable_version]) if until > started else None
            ok, detail = _probe_round(base_url, pinned, new_version, settings, clock)
            probes.append(ok)
            canary = seen.get(new_version, Signals()) if seen is not None else Signals()
            stable = seen.get(stable_version) if seen is not None else None
            verdict = judge_signals(canary, probes, settings, final=last, baseline=stable)
            if covered and not last and verdict.action == "continue":
                # The bake is over and its data in: a verdict on traffic (or a rollback) ends it now;
                # one that would rest on the probes waits for more traffic while the bake may grow.
                ended = judge_signals(canary, probes, settings, final=True, baseline=stable)
                if ended.action == "rollback" or ended.basis == "traffic":
                    verdict = ended
                else:
                    deadline = started_at + 60.0 * (longest + delay_minutes + BAKE_DEADLINE_SLACK_MINUTES)
            report.minutes.append(Minute(minute, canary.to_dict() if seen is not None else None,
                                         stable.to_dict() if stable else None, ok, detail, verdict.action,
                                         until.isoformat() if seen is not None else None))
            shown = canary.describe() if seen is not None else f"no analytics yet (they run {delay} behind)"
            log(f"canary minute {minute} (bake {bake} min): {shown}; probes: {detail}; {verdict.action}")
        return verdict

    try:
        judged = bake_and_judge()
    except BaseException as exc:
        # Whatever stopped the bake (a bug, garbage no check foresaw, Ctrl-C), the split must not
        # keep serving an unjudged version: 100 % goes back to the stable one before anything else.
        report.outcome, report.basis = "rolled-back", "probes"
        report.reason = f"the canary stopped on an error ({type(exc).__name__}: {exc})"
        try:
            back_to_stable(report.reason)
        except Exception as undone:
            raise CanaryStopped(
                f"{report.reason}, and sending traffic back to {stable_version} failed too ({undone}); the split may "
                "still serve", report) from exc
        if not isinstance(exc, Exception):
            raise  # an interrupt stays an interrupt, once traffic is safe
        raise CanaryStopped(f"{report.reason}; 100 % of traffic is back on version {stable_version} (deployment "
                            f"{report.final_deployment})", report) from exc
    if judged is None:
        back_to_stable(report.reason)
        return report
    verdict = judged
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
