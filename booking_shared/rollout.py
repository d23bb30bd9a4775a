"""How a new Worker version earns its traffic: the canary's settings and the names every layer shares.

`booking:rollout` in a stack file is parsed into `RolloutSettings`, which validates every key; the
deployment hooks and `bookingctl release canary` (ops/releases/canary.py) read it. Defaults are
the guide's automatic rollback triggers (error rate above 5 %, response time above 2 s), judged on
a canary that serves `canary_percent` of requests for `bake_minutes` before the rest moves.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# Cloudflare's documented header that sends one request to a named version of a Worker, provided
# that version is part of the current deployment (at any percentage, 0 % included).
VERSION_OVERRIDE_HEADER = "Cloudflare-Workers-Version-Overrides"
# The canary's own probes name the version they pin in this header too; the reference Worker then
# writes their data points under the index `probe:<version>` (worker/src/index.js), which the
# canary's per-version query (`index1 = '<version>'`) leaves out: probes are not salons' traffic.
PROBE_HEADER = "Booking-Canary-Probe"
# Its value is an RFC 8941 Dictionary: the Worker's name as the key, the version id as a String
# (cloudflare-docs src/content/docs/workers/configuration/versions-and-deployments/version-overrides.mdx).
# RFC 8941 section 3.2: key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
DICTIONARY_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")

# Quarantine records live in the stack's backup bucket under this prefix. The R2 object API as the
# SDK sends it percent-encodes "/" in keys, so the prefix is part of the name, not a folder.
QUARANTINE_PREFIX = "quarantine-"

OnInsufficientTraffic = Literal["probes", "rollback"]


class RolloutSettings(BaseModel):
    """`booking:rollout`: how a new Worker version earns its traffic (ops/releases/canary.py): the canary's size,
    its bake, and the thresholds it is judged on.

    One model for the stack file and the operations: the config validates it (every key is checked on
    its own, so one run reports every bad value) and the canary reads the same object. Production
    bakes at least 5 minutes, the guide's shortest rollback window (error rate above 5 % for 5
    minutes; stackconfig/model.py); staging may bake for 0-2 minutes to keep its deploys quick.
    """

    # Strict: a value of the wrong YAML type is refused, not converted (`true` is not 1 %, "no" not false).
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True,
                              strict=True)

    canary_percent: float = Field(default=10.0, ge=1, le=50, allow_inf_nan=False)
    bake_minutes: int = Field(default=10, ge=0, le=60)
    # A bake whose traffic is still under minRequests once its data has arrived goes on, up to this
    # many minutes in all, while the numbers can still decide; then it ends on insufficient traffic
    # (onInsufficientTraffic). No longer than `bakeMinutes` means no extension.
    max_bake_minutes: int = Field(default=30, ge=0, le=120)
    error_rate_percent: float = Field(default=5.0, ge=0.1, le=100, allow_inf_nan=False)
    latency_seconds: float = Field(default=2.0, ge=0.1, le=60, allow_inf_nan=False)
    # Fewer canary requests than this over the bake: the traffic numbers say nothing, so the verdict
    # rests on the version-pinned probes ("probes") or the release is refused ("rollback").
    min_requests: int = Field(default=100, ge=1, le=1_000_000)
    on_insufficient_traffic: OnInsufficientTraffic = "probes"
    # How far behind the analytics run: a request is counted only this long after it was served.
    # Cloudflare gives no figure, only "a slight delay in aggregation and metrics delivery"
    # (cloudflare-docs workers/observability/metrics-and-analytics.mdx); each window of the canary
    # ends this long before now and the bake is judged once its data has arrived.
    analytics_delay_minutes: float = Field(default=3.0, ge=0, le=30, allow_inf_nan=False)
    # A SQL export before every deployment. Off: an export blocks the database's other requests
    # while it runs (bookings fail during the deploy); the Time Travel bookmark is the restore point.
    pre_deploy_export: bool = False

    @property
    def longest_bake_minutes(self) -> int:
        """The minutes a bake may run to reach minRequests: maxBakeMinutes, never less than bakeMinutes."""
        return max(self.bake_minutes, self.max_bake_minutes) if self.bake_minutes else 0


def override_header(worker_name: str, version_id: str) -> dict[str, str]:
    """The request header that pins one request to `version_id` (an RFC 8941 dictionary of strings).

    Raises ValueError rather than build a header Cloudflare would ignore ("The header value may not
    be a valid Dictionary": the request then goes wherever the deployment's percentages send it).
    """
    if not DICTIONARY_KEY.fullmatch(worker_name):
        raise ValueError(f"Worker name {worker_name!r} cannot be a key of the {VERSION_OVERRIDE_HEADER} header (an "
                         "RFC 8941 Dictionary key must start with a lowercase letter or '*', then lowercase letters, "
                         "digits, '_', '-', '.' or '*'): rename the Worker (booking:workerName) to start with a "
                         "lowercase letter")
    # RFC 8941 section 4.1.6: a String holds printable ASCII only, with '"' and '\\' escaped.
    if not version_id or any(not " " <= ch <= "~" for ch in version_id):
        raise ValueError(f"version id {version_id!r} cannot be pinned with {VERSION_OVERRIDE_HEADER}: an RFC 8941 "
                         "String holds printable ASCII only (Cloudflare's version ids are UUIDs)")
    escaped = version_id.replace("\\", "\\\\").replace('"', '\\"')
    return {VERSION_OVERRIDE_HEADER: f'{worker_name}="{escaped}"'}


def quarantine_key(bundle_sha256: str) -> str:
    """The R2 object key of a bundle's quarantine record."""
    return f"{QUARANTINE_PREFIX}{bundle_sha256}.json"


def probe_headers(worker_name: str, version_id: str) -> dict[str, str]:
    """The headers of the canary's own requests to `version_id`: pinned to it, and marked as probes."""
    return {**override_header(worker_name, version_id), PROBE_HEADER: version_id}
