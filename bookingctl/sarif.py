"""SARIF 2.1.0 output of the policy gate, for GitHub code scanning.

Each finding points at the line of `infra/` that declares the resource (found from the component
type in its URN and the child's `f"{name}-<role>"` logical name), or at the stack file for
stack-wide findings, so code scanning annotates the code a reviewer would change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bookingctl.gate import GateResult, Violation
from bookingctl.planner import Plan

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"mandatory": "error", "advisory": "warning"}
# GitHub ranks code-scanning alerts by this CVSS-like number.
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}


def _location(violation: Violation, plan: Plan, root: Path) -> dict[str, Any]:
    uri, line = f"Pulumi.{plan.stack}.yaml", 1
    if violation.resource:
        chain = violation.resource.split("::")[2] if violation.resource.count("::") >= 3 else ""
        components = [t for t in chain.split("$") if t.startswith("booking:")]
        if components:
            module = components[-1].split(":")[1]
            candidate = root / "infra" / f"{module}.py"
            if candidate.is_file():
                uri, line = f"infra/{module}.py", _declaring_line(candidate, violation.resource, plan)
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                             "region": {"startLine": line}},
    }
    if violation.resource:
        location["logicalLocations"] = [{"fullyQualifiedName": violation.resource, "kind": "resource"}]
    return location


def _declaring_line(path: Path, urn: str, plan: Plan) -> int:
    resource = next((r for r in plan.resources if r.urn == urn), None)
    if resource is None:
        return 1
    parent = next((r for r in plan.resources if r.urn == resource.parent), None)
    lines = path.read_text(encoding="utf-8").splitlines()
    if parent is not None and resource.name.startswith(parent.name + "-"):
        needle = f'-{resource.name[len(parent.name) + 1:]}"'
    else:
        needle = f"class {resource.type.rsplit(':', 1)[-1]}("
    return next((i for i, text in enumerate(lines, 1) if needle in text), 1)


def to_sarif(plan: Plan, gate: GateResult, root: Path) -> dict[str, Any]:
    """The gate's findings as one SARIF run; rules are all the pack's policies."""
    rules = []
    index = {}
    for i, policy in enumerate(gate.policies):
        index[policy.name] = i
        level = gate.config.get(policy.name)
        rule: dict[str, Any] = {
            "id": policy.name,
            "name": policy.name,
            "shortDescription": {"text": policy.description},
            "fullDescription": {"text": policy.description},
            "help": {"text": policy.remediation or policy.description},
            "defaultConfiguration": {"level": _LEVEL.get((level.level if level else None) or policy.level, "note")},
            "properties": {"tags": ["pulumi", "crossguard"]},
        }
        if policy.severity in _SECURITY_SEVERITY:
            rule["properties"]["security-severity"] = _SECURITY_SEVERITY[policy.severity]
        rules.append(rule)
    results = []
    for v in gate.violations:
        first_line = v.message.splitlines()[0] if v.message else v.policy
        fingerprint = hashlib.sha256(f"{v.policy}|{v.resource}|{first_line}".encode()).hexdigest()
        result: dict[str, Any] = {
            "ruleId": v.policy,
            "level": _LEVEL.get(v.level, "note"),
            "message": {"text": v.message},
            "locations": [_location(v, plan, root)],
            "partialFingerprints": {"bookingctlFinding/v1": fingerprint},
        }
        if v.policy in index:
            result["ruleIndex"] = index[v.policy]
        results.append(result)
    # A policy the policy config lowered is a rule configuration override of this run: listed so
    # that code scanning (and a reviewer reading the file) sees the gate ran weakened.
    overrides = [{"descriptor": {"id": d.policy, "index": index[d.policy]},
                  "configuration": {"level": _LEVEL.get(d.now, "none"), "enabled": d.now != "disabled"}}
                 for d in gate.downgrades if d.policy in index]
    notices = [{"level": "warning", "associatedRule": {"id": d.policy, "index": index[d.policy]},
                "message": {"text": f"The policy config lowered {d.policy} from {d.was} to {d.now}."}}
               for d in gate.downgrades if d.policy in index]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": gate.pack, "version": gate.version, "rules": rules}},
            "invocations": [{"executionSuccessful": True, "ruleConfigurationOverrides": overrides,
                             "toolConfigurationNotifications": notices}],
            "automationDetails": {"id": f"bookingctl-plan/{plan.stack}/"},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": root.resolve().as_uri() + "/"}},
            "results": results,
        }],
    }


def sarif_text(plan: Plan, gate: GateResult, root: Path) -> str:
    return json.dumps(to_sarif(plan, gate, root), indent=2)
