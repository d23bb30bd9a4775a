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

`judge()` (ops/releases/judge.py) is a pure function; more errors, slower answers or more failed
probes never turn a rollback into a promotion (tests/unit/ops/test_canary_judge.py holds it to that).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from booking_shared.deploy import is_pulumi_message
from booking_shared.naming import requests_dataset
from booking_shared.rollout import RolloutSettings, probe_headers
from ops.observation.analytics import UnreadableAnalytics, VersionTraffic, http_answers, invocations
from ops.observation.verify import Clock, VerifyResult, verify
from ops.releases.judge import Signals, Verdict, judge_signals
from ops.releases.rollback import RollbackError, deploy_versions, deployments, shares
from ops.targets import WorkerScript

if TYPE_CHECKING:
    pass

Log = Callable[[str], None]


class CanaryStopped(RollbackError):
    """The bake ended on an error, not a verdict; the message says whether traffic is back on the stable version."""

    def __init__(self, message: str, report: CanaryReport) -> None:
        super().__init__(message)
        self.report = report


# (since, until, versions) -> each version's signals over that window.
Metrics = Callable[[dt.datetime, dt.datetime, Sequence[str]], dict[str, Signals]]

SMOKE_DEADLINE_SECONDS = 120.0
# Monotonic minutes a bake may run past its own minutes and the analytics' delay (slow probe rounds,
# slow reads) before it ends unjudged: a wall clock that stops or steps back, or an API that stalls,
# must not keep the split serving forever.
BAKE_DEADLINE_SLACK_MINUTES = 5


# --- the deployment annotations a canary writes, and how they are read back ---------------------
# One grammar: "canary of V at P %" is the split being judged (no verdict yet); "canary of V rolled
# back: why", "canary of V promoted" and "canary of V ended: why" are verdicts; under `pulumi up` the
# promotion is the engine's own deployment of V at 100 % right after V's split.

def split_message(version: str, percent: float) -> str:
    return f"canary of {version} at {percent:g} %"


# Exactly the forms the canary writes (fullmatch, one line): an annotation someone wrote by hand
# that merely starts with "canary of" is neither a split nor a verdict.
_VERSION_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SPLIT = re.compile(rf"canary of (?P<version>{_VERSION_ID}) at [0-9.]+ %")
_VERDICT = re.compile(rf"canary of (?P<version>{_VERSION_ID}) (?:rolled back: .+|promoted|ended: .+)", re.S)
_SMOKE = re.compile(rf"smoke test of (?P<version>{_VERSION_ID}) \(0 % of traffic\)")


def in_progress(message: str) -> str | None:
    """What the newest deployment's annotation says of a canary still being judged, or None."""
    return f"{message}, in progress (no verdict yet)" if _SPLIT.fullmatch(message) else None


def last_verdict(history: Sequence[tuple[str | None, str]]) -> str | None:
    """The latest canary verdict in a deployment history, newest first: (the version a deployment
    sends all traffic to, or None; its annotation message). A verdict names a version the history
    shows serving (alone, in a canary's split, or at 0 % for its smoke test); one naming any other
    version is not read."""
    known = {sole for sole, _ in history if sole}
    known |= {m.group("version") for _, message in history
              if (m := _SPLIT.fullmatch(message) or _SMOKE.fullmatch(message))}
    for index, (sole, message) in enumerate(history):
        if is_pulumi_message(message) and index + 1 < len(history):
            split = _SPLIT.fullmatch(history[index + 1][1])
            if split and split.group("version") == sole:
                return f"canary of {sole} promoted (pulumi up deployed it at 100 %)"
        verdict = _VERDICT.fullmatch(message)
        if verdict and verdict.group("version") in known:
            return message
    return None


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
    # False: rolled back without a verdict against the canary (the serving version failed the same
    # limits, the bake's data never arrived): its bundle is not quarantined.
    judged: bool = True

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    @property
    def quarantines(self) -> bool:
        """Whether the bundle is to be quarantined: a rollback (or failed smoke test) held against the canary."""
        return not self.promoted and self.judged

    def metrics(self) -> dict[str, Any]:
        """The numbers the verdict rested on (the last window read: the bake's traffic so far)."""
        read = [m for m in self.minutes if m.canary is not None]
        last = read[-1] if read else None
        return {"canary": last.canary if last else None, "stable": last.stable if last else None,
                "probeRounds": len(self.minutes), "probeFailures": sum(1 for m in self.minutes if not m.probe_ok)}

    def to_dict(self) -> dict[str, Any]:
        return {"script": self.script, "newVersion": self.new_version, "stableVersion": self.stable_version,
                "percent": self.percent, "bakeMinutes": self.bake_minutes,
                "analyticsDelayMinutes": self.analytics_delay_minutes, "outcome": self.outcome, "judged": self.judged,
                "reason": self.reason, "basis": self.basis, "metrics": self.metrics(),
                "minutes": [vars(m) for m in self.minutes], "smoke": self.smoke,
                "canaryDeployment": self.canary_deployment, "finalDeployment": self.final_deployment}


def serving_version(worker: WorkerScript, exclude: str | None = None) -> str | None:
    """The version with the largest share of the newest deployment, other than `exclude` (None: no deployment)."""
    history = deployments(worker)
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


def read_signals(worker: WorkerScript) -> Metrics:
    """The canary's two sources (ops/observation/analytics.py) for the Worker, as one reader of windows."""
    dataset = requests_dataset(worker.name)

    def read(since: dt.datetime, until: dt.datetime, versions: Sequence[str]) -> dict[str, Signals]:
        unreadable: list[str] = []
        try:
            runtime = invocations(worker, since, until)
        except UnreadableAnalytics as exc:
            runtime = None
            unreadable.append(f"invocations: {exc}")
        found = {}
        own: set[str] = set()
        for v in versions:
            try:
                http = http_answers(worker.client, worker.account_id, dataset, v, since, until)
            except UnreadableAnalytics as exc:
                http = None
                unreadable.append(f"HTTP answers of {v}: {exc}")
                own.add(v)
            found[v] = Signals(http=http, runtime=None if runtime is None else runtime.get(v, VersionTraffic()))
        return {v: dataclasses.replace(s, unreadable="; ".join(unreadable) or None, unreadable_own=v in own)
                for v, s in found.items()}
    return read


def run_canary(worker: WorkerScript, *, base_url: str, new_version: str,
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
    report = CanaryReport(worker.name, new_version, stable_version, percent, bake, settings.analytics_delay_minutes)
    pinned = probe_headers(worker.name, new_version)
    read = metrics or read_signals(worker)

    def deploy(versions: list[tuple[str, float]], message: str) -> str:
        history = deployments(worker)
        return deploy_versions(worker, versions, message,
                               newest=history[0].id if history else None)

    def back_to_stable(reason: str) -> None:
        # One line: the reason may be an exception's text, and release status reads the message back.
        report.final_deployment = deploy([(stable_version, 100.0)],
                                         f"canary of {new_version} rolled back: {' '.join(reason.split())}")
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
        share = percent / 100.0
        minute = 0
        while bake and verdict.action == "continue":
            if clock.now() >= deadline:
                # Not the canary's doing: traffic goes back, nothing is quarantined.
                verdict = Verdict("rollback", f"the bake's deadline passed ({waited + BAKE_DEADLINE_SLACK_MINUTES} "
                                              f"min of monotonic time) before the analytics covered it (data until "
                                              f"{report.minutes[-1].data_until if report.minutes else 'never'}): the "
                                              "wall clock stopped or stepped back, or the API stalled", "probes",
                                  judged=False)
                break
            minute += 1
            clock.sleep(60.0)
            # The window ends where the bake's start plus the monotonic time since says: the wall clock
            # is read once, at the start. Stepped later (NTP), stopped or leaping ahead, it would move
            # the window away from the time the data was served in; monotonic time never runs ahead of
            # the real time that passed (it stands still while a machine sleeps), so the window never
            # claims data that cannot exist yet.
            passed = dt.timedelta(seconds=clock.now() - started_at)
            until = min(started + passed - delay, longest_end)
            covered, last = until >= bake_end, until >= longest_end
            # Nothing of the canary is visible yet: no query (an empty window would read as zero traffic).
            seen = read(started, until, [new_version, stable_version]) if until > started else None
            ok, detail = _probe_round(base_url, pinned, new_version, settings, clock)
            probes.append(ok)
            canary = seen.get(new_version, Signals()) if seen is not None else Signals()
            stable = seen.get(stable_version) if seen is not None else None
            verdict = judge_signals(canary, probes, settings, final=last, baseline=stable, share=share)
            if covered and not last and verdict.action == "continue":
                # The bake is over and its data in: a verdict on traffic (or a rollback) ends it now;
                # one that would rest on the probes waits for more traffic while the bake may grow.
                ended = judge_signals(canary, probes, settings, final=True, baseline=stable, share=share)
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
    report.reason, report.basis, report.judged = verdict.reason, verdict.basis, verdict.judged
    if verdict.action == "promote":
        report.outcome = "promoted"
        log(f"canary: promote {new_version} ({verdict.reason})")
        return report
    report.outcome = "rolled-back"
    back_to_stable(verdict.reason)
    return report


def promote(worker: WorkerScript, version: str) -> str:
    """Send 100 % to `version` (what `pulumi up` does after a passing canary; here for `release canary`)."""
    history = deployments(worker)
    return deploy_versions(worker, [(version, 100.0)], f"canary of {version} promoted",
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
