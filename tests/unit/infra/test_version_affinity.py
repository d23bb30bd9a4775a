"""One booking flow, one Worker version: the declared transform rule, applied to simulated flows.

Cloudflare's side is a model here, named as one: a request carrying Cloudflare-Workers-Version-Key
goes to the version its key hashes to under the deployment's percentages, the same one for the
same key; one without goes to a version at random (cloudflare-docs workers/versions-and-deployments/
gradual-deployments/version-affinity.mdx: "The platform hashes the key and uses the result with
the configured percentages to deterministically assign a version"). The rule is the one the
program declares, read from its plan, applied by an evaluator that knows only the two forms it
uses and refuses any other (a changed rule fails here instead of being guessed at).
"""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from collections.abc import Mapping
from typing import Any

from booking_shared.edge import VERSION_KEY_COOKIE, VERSION_KEY_HEADER
from booking_shared.tokens import RULESET
from bookingctl.planner import Plan

FLOWS = 10_000
SPLIT = 0.10  # the canary's share


def _cookies(header: str) -> dict[str, str]:
    pairs = (part.strip().split("=", 1) for part in header.split(";") if "=" in part)
    return {name: value for name, value in pairs}


def apply_rule(rule: Mapping[str, Any], headers: dict[str, str]) -> dict[str, str]:
    """The request's headers after the rule (only `http.cookie contains "…"` and `http.request.cookies["…"][0]`)."""
    condition = re.fullmatch(r'http\.cookie contains "([^"]*)"', str(rule["expression"]))
    assert condition, f"an expression this model cannot evaluate: {rule['expression']}"
    if rule["action"] != "rewrite" or condition.group(1) not in headers.get("Cookie", ""):
        return headers
    out = dict(headers)
    for name, change in rule["actionParameters"]["headers"].items():
        value = re.fullmatch(r'http\.request\.cookies\["([^"]+)"\]\[0\]', change["expression"])
        assert change["operation"] == "set" and value, f"a header change this model cannot apply: {change}"
        found = _cookies(headers.get("Cookie", "")).get(value.group(1), "")
        if found:
            out[name] = found
        else:
            out.pop(name, None)  # an empty value removes the header (request header modification docs)
    return out


def route(headers: Mapping[str, str], rng: random.Random) -> str:
    """Cloudflare's choice between the versions of a 90/10 deployment (the model above)."""
    key = headers.get(VERSION_KEY_HEADER)
    draw = (int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64 if key is not None
            else rng.random())
    return "canary" if draw < SPLIT else "stable"


def crossing_flows(rules: list[Mapping[str, Any]], rng: random.Random) -> int:
    """Flows whose three booking requests (slots, create, pay) met more than one version.

    Each browser's first response (the booking page, through the Worker's route) set its key
    cookie, as worker/src/index.js does; the flow's requests carry it.
    """
    crossed = 0
    for _ in range(FLOWS):
        cookie = f"theme=light; {VERSION_KEY_COOKIE}={uuid.UUID(int=rng.getrandbits(128))}"
        versions = set()
        for _request in ("slots", "create", "pay"):
            headers = {"Cookie": cookie}
            for rule in rules:
                headers = apply_rule(rule, headers)
            versions.add(route(headers, rng))
        crossed += len(versions) > 1
    return crossed


def declared_rules(plan: Plan) -> list[Mapping[str, Any]]:
    [ruleset] = [r for r in plan.of_type(RULESET) if r.value("phase") == "http_request_late_transform"]
    return list(ruleset.value("rules"))


def test_ten_thousand_booking_flows_at_a_ten_percent_split_never_cross_versions(production: Plan) -> None:
    assert crossing_flows(declared_rules(production), random.Random(7)) == 0


def test_without_the_rule_about_a_quarter_of_the_flows_would_cross() -> None:
    # 1 - 0.9^3 - 0.1^3 = 27 %: what per-request routing does to a three-request flow.
    crossed = crossing_flows([], random.Random(7))
    assert 0.25 < crossed / FLOWS < 0.29


def test_the_canary_still_gets_about_its_share_of_the_browsers(production: Plan) -> None:
    rng = random.Random(11)
    rules = declared_rules(production)
    keys = (uuid.UUID(int=rng.getrandbits(128)) for _ in range(FLOWS))
    on_canary = sum(route(apply_rule(rules[0], {"Cookie": f"{VERSION_KEY_COOKIE}={key}"}), rng) == "canary"
                    for key in keys)
    assert 0.09 < on_canary / FLOWS < 0.11


def test_a_browser_without_a_key_yet_is_routed_at_random_and_no_header_is_invented(production: Plan) -> None:
    [rule] = declared_rules(production)
    assert apply_rule(rule, {"Cookie": "theme=dark"}) == {"Cookie": "theme=dark"}
    assert VERSION_KEY_HEADER not in apply_rule(rule, {"Cookie": f"{VERSION_KEY_COOKIE}="})
