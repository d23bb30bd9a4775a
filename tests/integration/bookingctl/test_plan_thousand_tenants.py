"""`scripts/bookingctl plan production` with 1,000 per-zone tenants (the plan bench's config): on the
Turnstile free plan it fails naming the limits, on Enterprise it shards the hostnames over widgets
that are each within the limit."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from booking_shared.tokens import TURNSTILE
from tests.helpers import REPO

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

EVIDENCE = str(REPO / "policies" / "examples" / "checklist-evidence.json")
TURNSTILE_POLICIES = {"turnstile-widgets-within-plan-limits", "turnstile-covers-all-hostnames"}


def bench() -> ModuleType:
    """bench/plan_bench.py, whose `tenant_project` writes the 1,000-tenant production stack."""
    spec = importlib.util.spec_from_file_location("plan_bench", REPO / "bench" / "plan_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plan(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "scripts" / "bookingctl"), "plan", "production", "--format", "json",
                           "--policy-config", EVIDENCE, "--project-dir", str(project)],
                          capture_output=True, text=True, timeout=600)


def test_a_thousand_per_zone_tenants_on_the_turnstile_free_plan_fail_naming_the_limits(tmp_path: Path) -> None:
    # Zone plans unset: 1,000 tenants stating theirs pass the pack's 128 KiB config limit first.
    result = plan(bench().tenant_project(1000, tmp_path, zone_plan=None))
    assert result.returncode == 2, result.stderr
    assert "booking:tenants" in result.stderr and "1001 site hostnames" in result.stderr
    assert "67 Turnstile widgets of at most 15 hostnames" in result.stderr and "at most 20 widgets" in result.stderr
    assert "booking:turnstile.plan to enterprise" in result.stderr


def test_a_thousand_per_zone_tenants_on_turnstile_enterprise_are_sharded_within_the_limit(tmp_path: Path) -> None:
    project = bench().tenant_project(1000, tmp_path, turnstile_plan="enterprise", zone_plan=None)
    # 1,000 tenants stating their zone plan (which the four rate-limiting rules in each zone need:
    # Business) no longer fit the pack's 128 KiB config; without rate-limiting rulesets they do, and
    # production's public-write-endpoints-rate-limited then fails the gate (exit 1), as it should.
    stack = project / "Pulumi.production.yaml"
    data = yaml.safe_load(stack.read_text())
    data["config"]["booking:rateLimits"] = {"zoneRuleset": False}
    stack.write_text(yaml.safe_dump(data, default_style='"'))
    result = plan(project)
    assert result.returncode in (0, 1), result.stderr
    data = json.loads(result.stdout)
    widgets = [r for r in data["resources"] if r["type"] == TURNSTILE]
    domains = [d for w in widgets for d in w["inputs"]["domains"]]
    assert len(widgets) == 6 and all(1 <= len(w["inputs"]["domains"]) <= 200 for w in widgets)
    assert sorted(domains) == sorted(["www.instylehairboutique.co.za", *(f"www.salon-{i}.co.za" for i in range(1000))])
    assert [v for v in data["violations"] if v["policy"] in TURNSTILE_POLICIES] == []
