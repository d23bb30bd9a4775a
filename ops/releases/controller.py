"""One release controller: quarantine check, the serving version, the canary, then promote or quarantine.

The deployment hook (`before_traffic`, inside `pulumi up`) and `bookingctl release canary` release a
version the same way, through a `Release`. They differ in one decision, which the caller passes:
who moves the last 100 % after a passing canary. Under `pulumi up` the engine does (its 100 %
deployment is then the one Pulumi's state names), so `promote_after=False`; the CLI does it itself.
A failed canary has already sent 100 % back to the serving version (ops/releases/canary.py), and
its bundle is quarantined here, so neither the hook nor the CLI releases it again until someone
clears the record. The verdict's annotations are written and read in canary.py alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from booking_shared.rollout import RolloutSettings
from ops.observation.verify import Clock
from ops.releases import quarantine
from ops.releases.canary import SMOKE_DEADLINE_SECONDS, CanaryReport, promote, run_canary, serving_version
from ops.targets import Bucket, WorkerScript

Log = Callable[[str], None]


@dataclass(frozen=True)
class Release:
    """A version of the stack's Worker on its way to all traffic."""

    worker: WorkerScript
    stack: str
    # Where quarantine records live (the stack's backup bucket) and the bundle the version was built
    # from; without either, nothing can be quarantined or looked up.
    bucket: Bucket | None = None
    bundle_sha256: str | None = None

    def refuse_quarantined(self, version_id: str | None = None) -> None:
        """Raise QuarantinedError when the bundle (or, given, the version itself) has an active record.

        Raises what reading the records raises (an API error, an unreadable record): a caller that
        cannot tell must not release (the hook fails closed on it).
        """
        if self.bucket is None:
            return
        if self.bundle_sha256:
            quarantine.refuse_if_quarantined(self.bucket, self.bundle_sha256, self.stack)
        if version_id is None:
            return
        blocked = [r for r in quarantine.records(self.bucket) if r.active and r.version_id == version_id]
        if blocked:
            first = blocked[0]
            raise quarantine.QuarantinedError(
                f"version {version_id} is quarantined (bundle sha256:{first.bundle_sha256}: {first.reason}); "
                f"clear it first: {quarantine.clear_command(self.stack, first.bundle_sha256)}")

    def serving(self, version_id: str) -> str | None:
        """The version serving most traffic other than `version_id`: what the canary is judged against."""
        return serving_version(self.worker, exclude=version_id)

    def canary(self, version_id: str, stable: str, *, settings: RolloutSettings, base_url: str,
               promote_after: bool, log: Log, clock: Clock | None = None, percent: float | None = None,
               bake_minutes: int | None = None, smoke_deadline: float = SMOKE_DEADLINE_SECONDS) -> CanaryReport:
        """Run the canary; a passing one is promoted here when `promote_after` (else by the caller's engine)."""
        report = run_canary(self.worker, base_url=base_url, new_version=version_id, stable_version=stable,
                            settings=settings, percent=percent, bake_minutes=bake_minutes, clock=clock, log=log,
                            smoke_deadline=smoke_deadline)
        if report.promoted and promote_after:
            report.final_deployment = promote(self.worker, version_id)
        return report

    def quarantine(self, version_id: str | None, reason: str, metrics: dict[str, Any], log: Log) -> str:
        """Record the failed bundle; a sentence for the caller's message. Never raises: the release has
        already failed, and a failed write is said rather than hiding the first error."""
        if self.bucket is None or not self.bundle_sha256:
            return "No quarantine record was written (the stack has no bucket or bundle hash)."
        try:
            quarantine.add(self.bucket, bundle_sha256=self.bundle_sha256, version_id=version_id or "",
                           stack=self.stack, reason=reason, metrics=metrics)
        except Exception as exc:
            log(f"writing the quarantine record failed: {exc}")
            return f"Writing the quarantine record to R2 bucket {self.bucket.name} failed too ({exc})."
        log(f"bundle sha256:{self.bundle_sha256} quarantined in R2 bucket {self.bucket.name}")
        return (f"Bundle sha256:{self.bundle_sha256} is quarantined; `pulumi up` and `bookingctl release canary` "
                f"refuse it until it is fixed or cleared ({quarantine.clear_command(self.stack, self.bundle_sha256)}).")
