"""canary-version-affinity (policies/affinity.py) passes a zone when ANY rule of its late-transform
entry point is the declared one. Cloudflare runs every matching rule of the phase in order, so a
later rule that sets Cloudflare-Workers-Version-Key to one static value (or removes it) overrides
the browser's key for every request: every browser hashes to one version (the canary gets 0 % or
100 % of keyed traffic), yet the pack reports no violation.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from booking_shared.edge import VERSION_KEY_HEADER
from booking_shared.project import Project, load_stack
from bookingctl.gate import PackProcess
from bookingctl.planner import Plan
from tests.helpers.policy_helpers import COMPLETE_EVIDENCE, PACK, changed, found, gate

pytestmark = pytest.mark.slow
POLICY = "canary-version-affinity"


@pytest.fixture(scope="module")
def prod_pack(project: Project) -> Iterator[PackProcess]:  # as tests/integration/policies/conftest.py
    with PackProcess(PACK, project.name, "production", load_stack(project, "production").flat) as pack:
        yield pack


@pytest.mark.parametrize("change", [{"operation": "set", "value": "everyone"}, {"operation": "remove"}])
def test_a_later_rule_overriding_the_key_is_a_violation(prod_pack: PackProcess, production: Plan,
                                                        change: dict) -> None:
    [transform] = [r for r in production.resources if r.name == "edge-transform-main"]
    rules = copy.deepcopy(transform.raw_inputs["rules"])
    rules.append({"enabled": True, "action": "rewrite", "expression": "true", "description": "static key",
                  "actionParameters": {"headers": {VERSION_KEY_HEADER: change}}})
    overridden = changed(production, "edge-transform-main", ("rules",), rules)
    assert found(gate(prod_pack, overridden, None, COMPLETE_EVIDENCE), POLICY), "no violation reported"
