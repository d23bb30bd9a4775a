"""hostile27: the pack over reality (`reality()` in bookingctl/commands/drift.py) passes broken live states.

Each test fails on main (766289b). Run from the worktree:
    cd  && venv/bin/pytest -q -p no:cacheprovider -W ignore /work/briefs/hostile27/test_drift_reality.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudflare import Cloudflare

from tests.helpers.cf_double import CloudflareDouble
from tests.integration.bookingctl.test_drift import (  # noqa: F401  (fixtures)
    HOST,
    ZONE,
    applied,
    drift_json,
    project,
)

Applied = tuple[CloudflareDouble, Cloudflare]

# The API double and whole stacks: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow



def test_F11_whole_ratelimit_entry_point_deleted_passes_the_pack(project: Path, applied: Applied) -> None:
    """One rule deleted: the pack names public-write-endpoints-rate-limited (test_drift.py). The whole
    http_ratelimit entry point deleted (no rate limit at all): `_ruleset` records no snapshot, `reality()`
    keeps a missing Ruleset (not in _SINGLE) with its DECLARED rules, so the pack sees every rule in place."""
    api, _ = applied
    rulesets = api.zones[ZONE].rulesets
    rulesets[:] = [r for r in rulesets if r["phase"] != "http_ratelimit"]
    code, answer = drift_json(project, api)
    assert code == 3 and any("entry point ruleset" in d["detail"] for d in answer["differences"]), answer
    assert {b["policy"] for b in answer["policiesBroken"]} >= {"public-write-endpoints-rate-limited"}, answer


def test_F12_unproxied_dns_record_is_not_named_by_the_pack(project: Path, applied: Applied) -> None:
    """Proxied turned off by hand: drift reports it, but `_PATCHES` has no DnsRecord entry, so the pack
    judges the declared proxied=True and `dns-proxied` (policies/routing.py check_dns_proxied) stays quiet."""
    api, _ = applied
    record = next(r for r in api.dns_records.values() if r["name"] == HOST)
    record["proxied"] = False
    code, answer = drift_json(project, api)
    assert code == 3 and [d["field"] for d in answer["differences"]] == ["proxied"], answer
    assert answer["policiesBroken"], f"an unproxied record breaks a policy, none named: {answer}"


def test_F16_the_pack_over_reality_runs_only_when_drift_found_a_difference(project: Path, applied: Applied) -> None:
    """The snapshot holds the whole live rulesets, and the pack over it DOES name canary-version-affinity and
    rate-limit-rules-fit-zone-plan for a hand-changed affinity header and per-header counting (checked:
    with any unrelated difference present, both are named). Alone, drift's field list sees neither, and
    `drift_command` runs the pack only `if policies and ctx.differences`: exit 0, no audit."""
    api, _ = applied
    ruleset = next(r for r in api.zones[ZONE].rulesets if r["phase"] == "http_request_late_transform")
    for header in ruleset["rules"][0]["action_parameters"]["headers"].values():
        header["expression"] = '"pinned-by-hand"'
    limit = next(r for r in api.zones[ZONE].rulesets if r["phase"] == "http_ratelimit")["rules"][0]["ratelimit"]
    limit["characteristics"] = ["cf.colo.id", 'http.request.headers["x-anything"]']
    code, answer = drift_json(project, api)
    assert {b["policy"] for b in answer["policiesBroken"]} >= {"canary-version-affinity",
                                                               "rate-limit-rules-fit-zone-plan"}, (code, answer)
