"""`release status` (ops/releases/release.py -> canary.last_verdict) after the grammar fix.

A verdict is read only for a version "the history shows serving (alone, or in a canary's split)".
A canary whose pinned smoke test failed never had a split: its only deployment is the smoke test's
(V at 0 %, annotated "smoke test of V (0 % of traffic)"), so run_canary's own rollback message
"canary of V rolled back: version-pinned smoke test failed: ..." is discarded. And `[^\\n]+` drops
any verdict whose reason has a line break (run_canary writes str(exc) of whatever stopped the bake).
"""

from __future__ import annotations

from ops.releases.canary import last_verdict

PULUMI = "deployed by pulumi up; migrations 0123456789ab"
STABLE, NEW = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def test_a_failed_smoke_test_is_the_last_verdict() -> None:
    # Newest first, as deployments() lists them; (sole version, message) as release_status builds them.
    rolled = f"canary of {NEW} rolled back: version-pinned smoke test failed: /api/health answered 503"
    history = [(STABLE, rolled),
               (None, f"smoke test of {NEW} (0 % of traffic)"),  # STABLE 100 %, NEW 0 %: no sole version
               (STABLE, PULUMI)]
    assert last_verdict(history) == rolled


def test_a_verdict_whose_reason_spans_lines_is_still_the_last_verdict() -> None:
    rolled = (f"canary of {NEW} rolled back: the canary stopped on an error (ValidationError: 1 validation error "
              "for Deployment\nversions\n  Field required)")
    history = [(STABLE, rolled), (None, f"canary of {NEW} at 10 %"), (None, f"smoke test of {NEW} (0 % of traffic)"),
               (STABLE, f"canary of {STABLE} promoted")]
    assert last_verdict(history) == rolled
