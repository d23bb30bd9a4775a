"""hostile27: hand-made changes `bookingctl drift` does not see, and fixes that do not converge.

Each test fails on main (766289b). Run from the worktree:
    cd  && venv/bin/pytest -q -p no:cacheprovider /work/briefs/hostile27/test_drift_false_negatives.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cloudflare import Cloudflare

from tests.helpers import ACCOUNT
from tests.helpers.cf_double import CloudflareDouble
from tests.integration.bookingctl.test_drift import (  # noqa: F401  (fixtures)
    HOST,
    ZONE,
    applied,
    drift,
    drift_json,
    project,
)

Applied = tuple[CloudflareDouble, Cloudflare]

# The API double and whole stacks: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow



def _ratelimit_ruleset(api: CloudflareDouble) -> dict[str, Any]:
    return next(r for r in api.zones[ZONE].rulesets if r["phase"] == "http_ratelimit")


def test_F2_rate_limit_characteristics_changed_is_not_drift(project: Path, applied: Applied) -> None:
    """Counting per a header the client chooses instead of per IP: every request gets its own counter,
    the limit is gone. Characteristics are declared (CHARACTERISTICS) but not compared."""
    api, _ = applied
    rule = _ratelimit_ruleset(api)["rules"][0]
    rule["ratelimit"]["characteristics"] = ["cf.colo.id", 'http.request.headers["x-anything"]']
    code, found = drift(project, api, "--no-policies")
    assert code == 3, f"characteristics changed by hand, drift says nothing: {found}"


def test_F3_lifecycle_rule_age_changed_is_not_drift(project: Path, applied: Applied) -> None:
    """Backups kept 10 years instead of the retention: only the enabled rules' ids are compared."""
    api, _ = applied
    changed = 0
    for rules in api.lifecycles.values():
        for rule in rules:
            condition = (rule.get("delete_objects_transition") or rule.get("deleteObjectsTransition") or {}).get(
                "condition")
            if condition:
                key = "max_age" if "max_age" in condition else "maxAge"
                condition[key] = 3650 * 86400
                changed += 1
    assert changed, api.lifecycles
    code, found = drift(project, api)
    assert code == 3, f"lifecycle retention changed by hand, drift says nothing: {found}"


def test_F3b_lifecycle_age_change_passes_the_pack_over_reality(project: Path, applied: Applied) -> None:
    """The pack has a retention policy (policies/retention.py) but reality() does not patch lifecycles, so
    even when another difference triggers the audit, the retention break is not named."""
    api, _ = applied
    for rules in api.lifecycles.values():
        for rule in rules:
            transition = rule.get("delete_objects_transition") or rule.get("deleteObjectsTransition") or {}
            if transition.get("condition"):
                condition = transition["condition"]
                condition["max_age" if "max_age" in condition else "maxAge"] = 3650 * 86400
    _ratelimit_ruleset(api)["rules"][0]["ratelimit"]["requests_per_period"] = 500  # some drift, so the pack runs
    code, answer = drift_json(project, api)
    assert code == 3
    policies = {b["policy"] for b in answer["policiesBroken"]}
    assert any("retention" in p for p in policies), answer["policiesBroken"]


def test_F4_a_second_widget_with_the_stacks_widget_name_on_its_hostname_is_not_reported(
        project: Path, applied: Applied) -> None:
    """Widget names are not unique at Cloudflare. A dashboard-made widget named like the stack's, accepting
    the stack's hostname, is skipped by `_unmanaged_widgets` (its name is "declared")."""
    api, client = applied
    name = next(iter(api.turnstile_widgets.values()))["name"]
    client.turnstile.widgets.create(account_id=next(iter(api.turnstile_widgets.values())).get("account_id")
                                    or _account(), name=name, domains=[HOST], mode="invisible")
    code, found = drift(project, api, "--no-policies")
    assert code == 3, f"a second widget {name!r} accepting {HOST} is not reported: {found}"


def test_F5_a_wildcard_route_covering_the_stacks_hostname_is_not_reported(project: Path, applied: Applied) -> None:
    """`*instylehairboutique.co.za/*` matches www.instylehairboutique.co.za (every path the stack's own
    route leaves to Pages). `_unmanaged_routes` strips the `*` and compares the apex with the hostnames."""
    api, client = applied
    client.workers.routes.create(zone_id=ZONE, pattern="*instylehairboutique.co.za/*", script=next(iter(api.scripts)))
    code, found = drift(project, api, "--no-policies")
    assert code == 3, f"a route capturing {HOST}/* is not reported: {found}"


def test_F6_a_changed_version_affinity_transform_is_not_drift(project: Path, applied: Applied) -> None:
    """The transform rule's action_parameters (the header it sets) is the whole rule; only action,
    expression and enabled are compared."""
    api, _ = applied
    ruleset = next(r for r in api.zones[ZONE].rulesets if r["phase"] == "http_request_late_transform")
    rule = ruleset["rules"][0]
    headers = rule["action_parameters"]["headers"]
    for header in headers.values():
        header["expression"] = '"pinned-by-hand"'
        header.pop("value", None)
    code, found = drift(project, api, "--no-policies")
    assert code == 3, f"the affinity header's transform was changed by hand, drift says nothing: {found}"


def test_F7_a_second_health_check_with_the_same_name_paused_is_not_seen(project: Path, applied: Applied) -> None:
    """Health check names are not unique; `next(...)` compares the first and ignores a second one."""
    api, client = applied
    check = next(iter(api.healthchecks.values()))
    client.healthchecks.create(zone_id=ZONE, address=check["address"], name=check["name"], suspended=True)
    code, found = drift(project, api, "--no-policies")
    assert code == 3, f"a second (paused) check named {check['name']!r}: {found}"


def test_F8_health_check_probe_changed_is_not_drift(project: Path, applied: Applied) -> None:
    """The check probes /api/health for 200 + a body; pointed at `/` with any body it is always green."""
    api, client = applied
    check = next(iter(api.healthchecks.values()))
    client.healthchecks.edit(check["id"], zone_id=ZONE, address=check["address"], name=check["name"],
                             type="HTTPS", http_config={"path": "/", "expected_codes": ["200"], "method": "GET"})
    code, found = drift(project, api, "--no-policies")
    assert code == 3, f"the health check's probe was changed by hand, drift says nothing: {found}"


def _account() -> str:
    return ACCOUNT


def test_F9_a_d1_database_deleted_and_recreated_empty_is_not_drift(project: Path, applied: Applied) -> None:
    """Looked up by name, not by the state's id: a database deleted and created again under the same name
    (empty, a new uuid the Worker's D1 binding does not name) is "there"."""
    api, client = applied
    [database] = api.databases.values()
    name, old = database.name, database.uuid
    client.d1.database.delete(old, account_id=_account())
    new = client.d1.database.create(account_id=_account(), name=name)
    assert new.uuid != old
    code, found = drift(project, api, "--no-policies")
    assert code == 3, f"D1 {name} was deleted and recreated empty ({old} -> {new.uuid}): {found}"


def test_F10_a_worker_deleted_and_recreated_is_not_drift(project: Path, applied: Applied) -> None:
    """`_worker` only asks whether versions can be listed under the name; a Worker deleted and created
    again (a new id, none of the stack's versions, its deployment gone) is "there"."""
    api, client = applied
    worker = next(iter(api.scripts))
    old = next(i for i, n in api.worker_ids.items() if n == worker)
    client.workers.beta.workers.delete(old, account_id=_account())
    client.workers.beta.workers.create(account_id=_account(), name=worker)
    code, found = drift(project, api, "--no-policies")
    assert code == 3, f"Worker {worker} was deleted and recreated: {found}"


def test_F13_the_health_alert_sent_elsewhere_or_pointed_at_another_check_is_not_drift(
        project: Path, applied: Applied) -> None:
    """The critical alert's mechanisms (who is emailed) and filters (which health check) are declared
    (infra/monitoring.py); an alert re-addressed by hand must be drift. Stored as the API spells them
    (`email`, `health_check_id`, `status`: cloudflare 5.9.0 types/alerting/mechanism.py, policy_filter.py)."""
    api, _ = applied
    [policy] = api.notification_policies.values()
    policy["mechanisms"] = {"email": [{"id": "someone-else@example.com"}]}
    policy["filters"] = {"health_check_id": ["0" * 32], "status": ["Unhealthy"]}
    code, found = drift(project, api, "--no-policies")
    assert code == 3, f"the health alert now emails someone else about another check: {found}"
    assert {d["field"] for d in found} == {"mechanisms.email", "filters.health_check_id"}, found


def test_F13b_the_health_alert_pointed_at_another_check_is_drift(project: Path, applied: Applied) -> None:
    """Only the filter's health check changed: the alert still emails the right person, about a check
    that is not the API's. The plan names the check by a mock id; drift compares the live id of the
    check it found by name."""
    api, _ = applied
    [policy] = api.notification_policies.values()
    [check] = api.healthchecks.values()
    assert policy["filters"]["health_check_id"] == [check["id"]], (policy, check)  # freshly applied
    policy["filters"]["health_check_id"] = ["0" * 32]
    code, found = drift(project, api, "--no-policies")
    assert code == 3, f"the alert watches another check: {found}"
    [difference] = found
    assert (difference["field"], difference["declared"], difference["live"]) == (
        "filters.health_check_id", [check["id"]], ["0" * 32]), difference


def _worker_settings(api: CloudflareDouble) -> dict[str, Any]:
    [worker_id] = api.worker_ids
    return api.worker_settings[worker_id]


def test_F14_workers_dev_subdomain_turned_on_by_hand_is_not_drift(project: Path, applied: Applied) -> None:
    """The program declares subdomain.enabled False ("a workers.dev URL would be a second, unguarded way
    in", infra/worker.py): the URL turned on in the dashboard must be drift."""
    api, _ = applied
    settings = _worker_settings(api)
    assert settings["subdomain"] == {"enabled": False, "previews_enabled": False}, settings  # as declared
    settings["subdomain"] = {"enabled": True, "previews_enabled": False}
    code, found = drift(project, api, "--no-policies")
    assert code == 3, f"workers.dev URL turned on by hand: {found}"
    [difference] = found
    assert (difference["kind"], difference["field"], difference["live"]) == ("changed", "subdomain.enabled", True)
    assert "second way in" in difference["detail"], difference


def test_F14b_worker_logs_turned_off_by_hand_is_drift_and_breaks_the_observability_policy(
        project: Path, applied: Applied) -> None:
    """Observability (logs) declared on, turned off by hand: drift, and the pack over reality names the
    worker-observability policy it breaks."""
    api, _ = applied
    settings = _worker_settings(api)
    settings["observability"] = {**settings["observability"], "logs": {**settings["observability"]["logs"],
                                                                       "enabled": False}}
    code, answer = drift_json(project, api)
    assert code == 3
    assert [d["field"] for d in answer["differences"]] == ["observability.logs.enabled"], answer["differences"]
    assert "worker-observability" in {b["policy"] for b in answer["policiesBroken"]}, answer["policiesBroken"]


def test_F15_a_widget_listing_the_parent_domain_is_not_reported(project: Path, applied: Applied) -> None:
    """"a listed hostname already covers its subdomains" (the project's own words, policies/edge.py, from
    Turnstile's hostname management docs): a dashboard-made widget listing instylehairboutique.co.za
    accepts www.instylehairboutique.co.za, but `_unmanaged_widgets` intersects exact names only."""
    _, client = applied
    client.turnstile.widgets.create(account_id=_account(), name="made in the dashboard",
                                    domains=["instylehairboutique.co.za"], mode="managed")
    code, found = drift(project, applied[0], "--no-policies")
    assert code == 3, f"a widget accepting {HOST} through its parent domain is not reported: {found}"
