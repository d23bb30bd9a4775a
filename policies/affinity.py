"""Version affinity: during a canary, one browser's requests reach one Worker version.

Cloudflare splits a deployment's traffic at random per request, so without a version key a booking
(slots, create, pay) can meet two versions; requests carrying the same Cloudflare-Workers-Version-Key
go to the same version (cloudflare-docs workers/versions-and-deployments/gradual-deployments/
version-affinity.mdx). The program declares, in each zone whose entry points the stack owns, a
request header transform rule that copies the reference Worker's key cookie into that header
(infra/edge.py, booking_shared/edge.py). This policy keeps it there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, Severity, StackValidationArgs

from booking_shared.edge import (
    TRANSFORM_PHASE,
    VERSION_AFFINITY_EXPRESSION,
    VERSION_KEY_HEADER,
    VERSION_KEY_VALUE,
    owns_zone_rulesets,
)
from booking_shared.tokens import ROUTE, RULESET
from policies.common import Report, config_value, get, make_stack_policy, message, of_type, stack_environment
from policies.edge import parsed_json, served_zones

VERSION_AFFINITY = "canary-version-affinity"


def _sets_version_key(rule: Mapping[str, Any]) -> bool:
    """The rule sets the header from each browser's own key, whenever it has one: exactly the declared
    condition and value. A static value (or a constant expression) hashes every browser to one
    version, so the canary would get no keyed traffic or all of it; a condition that never
    matches sets nothing."""
    change = _version_key_change(rule)
    return (rule.get("enabled") is not False and rule.get("action") == "rewrite" and isinstance(change, Mapping)
            and rule.get("expression") == VERSION_AFFINITY_EXPRESSION and change.get("operation") == "set"
            and change.get("expression") == VERSION_KEY_VALUE and change.get("value") in (None, ""))


def _version_key_change(rule: Any) -> Any:
    """What a rule does to the version key header, however it spells the name: HTTP header names are
    case-insensitive (RFC 9110, section 5.1), so `cloudflare-workers-version-key` is the same header.
    Two spellings in one rule: the last one, as a JSON object's later key would win."""
    headers = (rule.get("actionParameters") or {}).get("headers") if isinstance(rule, Mapping) else None
    if not isinstance(headers, Mapping):
        return None
    changes = [change for name, change in headers.items() if str(name).lower() == VERSION_KEY_HEADER.lower()]
    return changes[-1] if changes else None


def _touches_version_key(rule: Any) -> bool:
    return (isinstance(rule, Mapping) and _version_key_change(rule) is not None
            and rule.get("enabled") is not False)


def _last_sets_version_key(rules: Any) -> bool:
    """The last enabled rule that touches the header is the declared one: a later rule that sets it to
    a fixed value, or removes it, overrides the browser's key ("Overrides the value of an existing
    header": developers.cloudflare.com/rules/transform/request-header-modification/create-dashboard)."""
    touching = [rule for rule in rules or [] if _touches_version_key(rule)]
    return bool(touching) and _sets_version_key(touching[-1])


def check_version_affinity(args: StackValidationArgs, report: Report) -> None:
    """Each zone whose entry points the stack owns sets the version key header from the browser's key."""
    if not any(True for _ in of_type(args.resources, ROUTE)):
        args.not_applicable("the stack routes no hostname to the Worker, so no canary serves a browser")
        return
    limits = parsed_json(config_value("rateLimits"))
    configured = limits.get("zoneRuleset") if isinstance(limits, dict) else None
    if not owns_zone_rulesets(configured if isinstance(configured, bool) else None, stack_environment()):
        args.not_applicable("booking:rateLimits.zoneRuleset is off: the stack that owns the zones' entry points "
                            "declares the version affinity rule")
        return
    zones = set(served_zones().values())
    saas = parsed_json(config_value("saas"))
    if isinstance(saas, Mapping) and isinstance(saas.get("zoneId"), str):
        zones.add(saas["zoneId"])
    keyed = {get(ruleset.props, "zoneId") for ruleset in of_type(args.resources, RULESET)
             if get(ruleset.props, "phase") == TRANSFORM_PHASE and _last_sets_version_key(get(ruleset.props, "rules"))}
    missing = sorted(z for z in zones if z not in keyed)
    if missing:
        report(message(f"No request header transform rule sets {VERSION_KEY_HEADER} in zone(s) "
                       f"{', '.join(missing)}.",
                       "during a canary Cloudflare routes each request at random, so a booking's requests (slots, "
                       "create, pay) can meet both versions",
                       "keep the EdgeProtection component (infra/edge.py), which declares the rule in each zone's "
                       "http_request_late_transform entry point"))


canary_version_affinity = make_stack_policy(
    VERSION_AFFINITY,
    "During a canary one browser's requests reach one Worker version: each zone whose entry points the stack owns "
    "sets Cloudflare-Workers-Version-Key from the browser's key cookie.",
    check_version_affinity,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.MEDIUM,
    remediation="Keep the EdgeProtection component; it declares the version affinity rule in each zone's "
                "http_request_late_transform entry point.",
    locked=False,
)
