"""A stateful double of the parts of the Cloudflare API the operations use, on 127.0.0.1.

One module per service, each the API's reference in small: d1 (real SQLite per database; Time
Travel bookmarks are snapshots, one taken before every write, so restore-by-timestamp has history;
export is a polling job whose dump is served from a signed URL), workers (versions and
deployments), r2, zones (plans and rulesets), custom_hostnames (Cloudflare for SaaS: paginated,
moving from pending to active after some reads, or to a blocked state; a fallback origin),
turnstile (widgets listed, read and replaced whole, with the Free plan's per-widget hostname limit
unless a test raises it to Enterprise's), tokens (policies and permissions) and analytics (GraphQL
and Analytics Engine). Requests find their handler in one route table (routes.py); answers are
built by one envelope builder (envelope.py); every timestamp comes from one clock (clock.py).

Answers mirror the API (the envelope, the in-progress export status "active", the latest 10
deployments newest first); most tests drive it through the SDK with
`_strict_response_validation=True`, so a response the SDK's models reject fails them, and every
REST request and answer is checked against Cloudflare's OpenAPI document (tests/helpers/cf_openapi.py).
Faults are injected per request (faults.py): 429, 5xx, slow responses, an export that fails, a
download cut short, and a request that is applied before its answer is lost (`Fault(applied=True)`),
which is what makes blind retries of writes dangerous.
"""

from tests.helpers.cf_double.clock import Clock
from tests.helpers.cf_double.custom_hostnames import SaasZoneState
from tests.helpers.cf_double.d1 import D1_STATEMENT_BYTES, D1State
from tests.helpers.cf_double.double import TOKEN, CloudflareDouble, running, take_violations
from tests.helpers.cf_double.faults import Fault
from tests.helpers.cf_double.tokens import TokenState, group, policy
from tests.helpers.cf_double.workers import ScriptState
from tests.helpers.cf_double.zones import ZoneState
from tests.helpers.worker_traffic import Served, Traffic

__all__ = ["D1_STATEMENT_BYTES", "TOKEN", "Clock", "CloudflareDouble", "D1State", "Fault", "SaasZoneState",
           "ScriptState", "Served", "TokenState", "Traffic", "ZoneState", "group", "policy", "running",
           "take_violations"]
