"""policies/affinity.py `_sets_version_key`: what counts as "sets the version key from the browser's key"."""

from __future__ import annotations

from booking_shared.edge import VERSION_AFFINITY_EXPRESSION, VERSION_KEY_HEADER, VERSION_KEY_VALUE
from policies.affinity import _sets_version_key


def _rule(*, expression: str = VERSION_AFFINITY_EXPRESSION, change: dict) -> dict:
    return {"enabled": True, "action": "rewrite", "expression": expression,
            "actionParameters": {"headers": {VERSION_KEY_HEADER: change}}}


def test_the_declared_rule_counts() -> None:  # control
    assert _sets_version_key(_rule(change={"operation": "set", "expression": VERSION_KEY_VALUE}))


def test_a_static_key_for_everyone_does_not_count() -> None:
    # One key for every request hashes every browser to the same version: the canary gets 0 % of
    # keyed traffic (and is promoted on probes) or 100 % (all salons on an unjudged version).
    assert not _sets_version_key(_rule(change={"operation": "set", "value": "everyone"}))


def test_a_constant_expression_does_not_count() -> None:
    assert not _sets_version_key(_rule(change={"operation": "set", "expression": '"everyone"'}))


def test_a_rule_that_never_matches_does_not_count() -> None:
    assert not _sets_version_key(_rule(expression="false",
                                       change={"operation": "set", "expression": VERSION_KEY_VALUE}))
