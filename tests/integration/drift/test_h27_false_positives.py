"""hostile27: false drift on a correct account.

Run from the worktree:
    cd  && venv/bin/pytest -q -p no:cacheprovider -W ignore /work/briefs/hostile27/test_drift_false_positives.py
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from cloudflare.types.rulesets.phase_get_response import PhaseGetResponse

from ops.observation.drift import Declared, drift

# The API double and whole stacks: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow



def _client(ruleset: dict[str, Any]) -> Any:
    model = PhaseGetResponse.model_validate(ruleset)
    return SimpleNamespace(rulesets=SimpleNamespace(phases=SimpleNamespace(get=lambda *a, **k: model)))


def test_P1_throttling_rule_mitigation_timeout_0_omitted_by_the_api_is_false_drift() -> None:
    """Throttling (Enterprise: mitigation_timeout 0, allowed by booking_shared/limits.py) is declared as
    mitigationTimeout 0; the API leaves a zero mitigation_timeout out of its answer
    (terraform-provider-cloudflare #2445: "the mitigation_timeout of 0 is not present in the state" after an
    import; #2914 "was null, but now 0"; cf-terraforming #724: throttling rules read back without it).
    `_ruleset` compares 0 with None: a `changed` every night, on a correct account. The double echoes
    what it was given, so the suite cannot see it."""
    rule = {"ref": "booking_login_rate_limit", "expression": "true", "action": "block", "enabled": True,
            "ratelimit": {"characteristics": ["cf.colo.id", "ip.src"], "period": 60, "requests_per_period": 5}}
    live = {"id": "r1", "kind": "zone", "name": "n", "phase": "http_ratelimit", "last_updated": "2026-12-05T00:00:00Z",
            "version": "1", "rules": [{**rule, "id": "x", "version": "1", "last_updated": "2026-12-05T00:00:00Z"}]}
    declared = Declared("cloudflare:index/ruleset:Ruleset", "edge-ratelimit-main", {
        "phase": "http_ratelimit", "zoneId": "z", "rules": [{
            "ref": "booking_login_rate_limit", "expression": "true", "action": "block", "enabled": True,
            "ratelimit": {"characteristics": ["cf.colo.id", "ip.src"], "period": 60.0, "requestsPerPeriod": 5.0,
                          "mitigationTimeout": 0.0}}]})
    ctx = drift(_client(live), "acc", "production", [declared], [])
    assert ctx.differences == [], [d.detail for d in ctx.differences]


def test_P2_a_saas_widget_listing_its_salons_is_false_drift(tmp_path: Any) -> None:
    """`bookingctl tenants add` lists each salon's hostname on the SaaS widget (ops/tenants/widgets.py), and
    the program keeps them by reading the live widget (infra/turnstile.py `get_turnstile_widgets` ->
    `live_saas_domains`). Drift plans offline, where that invoke finds no widget (bookingctl/planner.py
    INVOKES), so the SaaS widget is "declared" with the fallback hostname alone, and every SaaS stack with
    one salon gets `changed: domains ... live, [fallback] declared` with fix `pulumi up` every night (a
    no-op: up would read the same live domains and keep them)."""
    import shutil

    from booking_shared.project import find_project, load_stack
    from bookingctl.commands.drift import declared_of
    from bookingctl.planner import plan_stack
    from tests.helpers import REPO
    from tests.helpers.saas_stack import FALLBACK, SAAS_WIDGET, STACK

    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    for folder in ("infra", "policies", "worker", "migrations"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    from tests.helpers.saas_stack import SAAS_CONFIG
    (root / f"Pulumi.{STACK}.yaml").write_text((REPO / "Pulumi.staging.yaml").read_text() + SAAS_CONFIG)
    project = find_project(root)
    declared = [d for d in declared_of(plan_stack(project, load_stack(project, STACK)))
                if d.type.endswith("TurnstileWidget") and d.inputs.get("name") == SAAS_WIDGET]
    assert declared, "the SaaS widget is declared"
    live = SimpleNamespace(name=SAAS_WIDGET, sitekey="0x4AAA", created_on="2026-01-01T00:00:00Z", mode=declared[0].inputs["mode"],
                           domains=[FALLBACK, "www.glamoursalon.co.za"])
    client = SimpleNamespace(turnstile=SimpleNamespace(widgets=SimpleNamespace(list=lambda **k: iter([live]))))
    ctx = drift(client, "acc", STACK, declared, [FALLBACK])  # type: ignore[arg-type]
    assert ctx.differences == [], [d.detail for d in ctx.differences]
