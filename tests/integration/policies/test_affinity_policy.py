"""canary-version-affinity: each zone whose entry points the stack owns keys browsers to one version."""

from __future__ import annotations

import dataclasses

import pytest

from bookingctl.gate import PackProcess
from bookingctl.planner import Plan
from tests.helpers.policy_helpers import COMPLETE_EVIDENCE, changed, found, gate, not_applicable

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

POLICY = "canary-version-affinity"
MAIN_ZONE = "1a2b3c4d5e6f708192a3b4c5d6e7f809"


def without_transforms(plan: Plan) -> Plan:
    return dataclasses.replace(plan, resources=[r for r in plan.resources
                                                if r.inputs.get("phase") != "http_request_late_transform"])


def test_production_as_declared_keys_every_browser_to_one_version(prod_pack: PackProcess, production: Plan) -> None:
    assert found(gate(prod_pack, production, None, COMPLETE_EVIDENCE), POLICY) == []


def test_a_zone_without_the_rule_is_a_mandatory_violation_naming_it(prod_pack: PackProcess,
                                                                     production: Plan) -> None:
    [violation] = found(gate(prod_pack, without_transforms(production), None, COMPLETE_EVIDENCE), POLICY)
    assert violation.level == "mandatory" and MAIN_ZONE in violation.message
    assert "Cloudflare-Workers-Version-Key" in violation.message


def test_a_disabled_or_emptied_rule_does_not_count(prod_pack: PackProcess, production: Plan) -> None:
    disabled = changed(production, "edge-transform-main", ("rules", 0, "enabled"), False)
    assert found(gate(prod_pack, disabled, None, COMPLETE_EVIDENCE), POLICY)
    emptied = changed(production, "edge-transform-main", ("rules", 0, "actionParameters"), {"headers": {}})
    assert found(gate(prod_pack, emptied, None, COMPLETE_EVIDENCE), POLICY)


def test_staging_leaves_the_zones_entry_points_to_production(staging_pack: PackProcess, staging: Plan) -> None:
    result = gate(staging_pack, staging)
    assert found(result, POLICY) == [] and not_applicable(result, POLICY)
