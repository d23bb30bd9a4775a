"""How a new Worker version earns its traffic: the canary's settings and the names every layer shares.

`booking:rollout` in a stack file is parsed into `RolloutSettings` (stackconfig/sections.py validates every
key); the deployment hooks and `bookingctl release canary` (ops/canary.py) read it. Defaults are
the guide's automatic rollback triggers (error rate above 5 %, response time above 2 s), judged on
a canary that serves `canary_percent` of requests for `bake_minutes` before the rest moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# Cloudflare's documented header that sends one request to a named version of a Worker, provided
# that version is part of the current deployment (at any percentage, 0 % included).
VERSION_OVERRIDE_HEADER = "Cloudflare-Workers-Version-Overrides"
# Its value is an RFC 8941 Dictionary: the Worker's name as the key, the version id as a String
# (cloudflare-docs src/content/docs/workers/configuration/versions-and-deployments/version-overrides.mdx).
# RFC 8941 section 3.2: key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
DICTIONARY_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")

# Quarantine records live in the stack's backup bucket under this prefix. The R2 object API as the
# SDK sends it percent-encodes "/" in keys, so the prefix is part of the name, not a folder.
QUARANTINE_PREFIX = "quarantine-"

OnInsufficientTraffic = Literal["probes", "rollback"]


@dataclass(frozen=True)
class RolloutSettings:
    """The canary's size, its bake, and the thresholds it is judged on."""

    canary_percent: float = 10.0
    bake_minutes: int = 10
    error_rate_percent: float = 5.0
    latency_seconds: float = 2.0
    # Fewer canary requests than this over the bake: the traffic numbers say nothing, so the verdict
    # rests on the version-pinned probes ("probes") or the release is refused ("rollback").
    min_requests: int = 100
    on_insufficient_traffic: OnInsufficientTraffic = "probes"
    # How far behind the analytics run: a request is counted only this long after it was served.
    # Cloudflare gives no figure, only "a slight delay in aggregation and metrics delivery"
    # (cloudflare-docs workers/observability/metrics-and-analytics.mdx); each window of the canary
    # ends this long before now and the bake is judged once its data has arrived.
    analytics_delay_minutes: float = 3.0
    # A SQL export before every deployment. Off: an export blocks the database's other requests
    # while it runs (bookings fail during the deploy); the Time Travel bookmark is the restore point.
    pre_deploy_export: bool = False


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
