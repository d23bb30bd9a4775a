"""The reference Worker's unit of assignment (worker/src/index.js versionKey / withVersionKey).

hasVersionKey() accepts any non-empty booking-version-key cookie, so a browser whose cookie is not
one of the Worker's UUIDs (an RFC 6265 quoted value, a value another app on the domain set, a
tampered one) never gets a fresh key; the zone's transform rule still copies it into
Cloudflare-Workers-Version-Key, so ALL its requests go to one version. versionKey() rejects it,
so each of those requests is written as a unit of its own (a fresh random blob1): one browser
retrying a failing page is again N failing "browsers" on one side -- the clustering the unit
count was introduced to remove.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import pytest

WORKER = pathlib.Path(__file__).resolve().parents[3] / "worker" / "src" / "index.js"

SCRIPT = """
import worker from %s;
const points = [];
const env = { DB: { prepare: () => ({ first: async () => ({ result: 1 }) }) }, ENVIRONMENT: "staging",
  CF_VERSION_METADATA: { id: "11111111-1111-4111-8111-111111111111" },
  REQUESTS: { writeDataPoint: (p) => points.push(p) } };
const cookie = %s;
const out = [];
for (let i = 0; i < 3; i++) {
  const res = await worker.fetch(new Request("https://staging.example.co.za/api/health",
    { headers: { Cookie: cookie } }), env);
  out.push({ setCookie: res.headers.get("set-cookie"), blob: points[i].blobs[0] });
}
console.log(JSON.stringify(out));
"""


def _run(cookie: str) -> list[dict[str, str | None]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    code = SCRIPT % (json.dumps(WORKER.as_uri()), json.dumps(cookie))
    done = subprocess.run([node, "--input-type=module", "-e", code], capture_output=True, text=True, check=True,
                          timeout=60)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("cookie", [
    'booking-version-key="0b5c6a0e-2f8e-4b43-9d6e-6a3f2a1c9e11"',  # RFC 6265 quoted cookie-value
    "booking-version-key=0B5C6A0E-2F8E-4B43-9D6E-6A3F2A1C9E11",  # same key, upper case
    "booking-version-key=legacy-key",
])
def test_a_browser_pinned_by_its_key_is_one_unit_or_gets_a_key_the_worker_counts(cookie: str) -> None:
    seen = _run(cookie)
    one_unit = len({s["blob"] for s in seen}) == 1
    rekeyed = seen[0]["setCookie"] is not None
    assert one_unit or rekeyed, seen
