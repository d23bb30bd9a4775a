# ruff: noqa: F811
"""The second hostile round on drift (hostile27b): hand changes made the ordinary way after F9, F10, F13, F14.

A Worker made again with `wrangler deploy`, a database made again with the Worker redeployed onto it, a
version uploaded by hand (each: the serving versions lack the declared bundle's annotation); log
sampling set to 0; a same-named health check or widget listed first (drift must not advise deleting
the stack's own); a serving version the API does not find; the alert retyped. Each failed before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cloudflare import Cloudflare

from bookingctl.cli import app
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, CloudflareDouble
from tests.integration.bookingctl.test_drift import (  # noqa: F401  (fixtures)
    ZONE,
    applied,
    drift,
    drift_json,
    project,
    runner,
)

Applied = tuple[CloudflareDouble, Cloudflare]
pytestmark = pytest.mark.slow

# A module Worker as `wrangler deploy` uploads one (any code: what matters is that it is not the stack's).
MODULES = [{"name": "index.js", "content_type": "application/javascript+module",
            "content_base64": "ZXhwb3J0IGRlZmF1bHQge30="}]  # export default {}


def _stack_worker(api: CloudflareDouble) -> tuple[str, str, str]:
    """(worker id, name, the version its newest deployment serves)."""
    [worker_id] = api.worker_ids
    name = api.worker_ids[worker_id]
    newest = max(api.scripts[name].deployments, key=lambda d: d["created_on"])
    return worker_id, name, newest["versions"][0]["version_id"]


def _d1_binding(api: CloudflareDouble, version_id: str) -> dict[str, Any]:
    return next(b for b in api.version_details[version_id]["bindings"] if b["type"] == "d1")


def test_G1_a_worker_recreated_and_deployed_by_hand_is_not_drift(project: Path, applied: Applied) -> None:
    """F10 is fixed only for a Worker made by the beta API's create ALONE. The ordinary way a Worker is made
    again by hand — `wrangler deploy` (or create + `versions upload --deploy`): a new Worker, a version, a
    deployment at once — from a config with the stack's settings (workers_dev = false, preview_urls = false,
    observability on) and the same D1 id: the account now serves code that is not the stack's, under a Worker
    the state does not know (its id differs), and drift says nothing. `worker` only asks "is there a
    deployment?" (ops/observation/drift_workers.py:59-70); the declared version's annotation (the bundle's
    sha256, infra/worker.py) or the Worker's id against the state would tell."""
    api, client = applied
    worker_id, name, version_id = _stack_worker(api)
    settings = api.worker_settings[worker_id]
    d1 = _d1_binding(api, version_id)
    client.workers.beta.workers.delete(worker_id, account_id=ACCOUNT)
    client.workers.beta.workers.create(account_id=ACCOUNT, name=name, **settings)
    client.workers.beta.workers.versions.create(
        name, account_id=ACCOUNT, deploy=True, main_module="index.js", modules=MODULES,  # type: ignore[arg-type]
        bindings=[{"type": "d1", "name": d1["name"], "id": d1["id"]}])
    assert next(iter(api.worker_ids)) != worker_id  # another Worker, serving another version
    code, answer = drift_json(project, api)
    assert code == 3, f"Worker {name} deleted and deployed again by hand, drift says nothing: {answer}"


def test_G2_log_sampling_rate_set_to_zero_by_hand_is_not_drift(project: Path, applied: Applied) -> None:
    """infra/worker.py declares observability.head_sampling_rate 1.0 and logs.head_sampling_rate 1.0; set to
    0 in the dashboard, no invocation is logged (logs effectively off, the incident review has nothing) —
    drift compares enabled/logs.enabled/invocation_logs only (drift_workers.py:27-35 `_SETTINGS`) and the
    worker-observability policy checks the flags only: exit 0."""
    api, _ = applied
    worker_id, _, _ = _stack_worker(api)
    observability = api.worker_settings[worker_id]["observability"]
    assert observability["head_sampling_rate"] == 1 and observability["logs"]["head_sampling_rate"] == 1
    observability["head_sampling_rate"] = 0.0
    observability["logs"]["head_sampling_rate"] = 0.0
    code, answer = drift_json(project, api)
    assert code == 3, f"log sampling set to 0 by hand, drift says nothing: {answer}"


def test_G3_a_same_named_check_listed_first_makes_drift_print_delete_the_stacks_check(
        project: Path, applied: Applied) -> None:
    """Health check names are not unique and Cloudflare does not publish the list's order. When a hand-made
    check with the stack's check's name is listed before it, `_healthcheck` takes it as the stack's
    (drift.py:165-172, `same[0]`), `_alerted_checks` reports the alert (untouched) as watching "another"
    check (drift.py:213-229), and the printed fix for the stack's REAL, active check — the one the alert
    watches — is "delete it in the dashboard": following drift's advice deletes production's health check.
    The double lists in insertion order; the test lists the hand-made one first, as an API ordering by
    anything else (id, name then id, newest first) may."""
    api, client = applied
    [check] = list(api.healthchecks.values())
    [policy] = api.notification_policies.values()
    assert policy["filters"]["health_check_id"] == [check["id"]]
    client.healthchecks.create(zone_id=ZONE, address=check["address"], name=check["name"], suspended=True)
    items = list(api.healthchecks.items())
    api.healthchecks.clear()
    api.healthchecks.update(dict(reversed(items)))  # the hand-made one listed first
    code, found = drift(project, api, "--no-policies")
    assert code == 3
    told_to_delete = [d for d in found if check["id"] in d["detail"] and "delete" in d["fix"]]
    assert not told_to_delete, f"drift tells to delete the stack's own check {check['id']}: {told_to_delete}"
    assert not [d for d in found if d["field"] == "filters.health_check_id"], \
        f"the alert still watches the stack's check, drift says it watches another: {found}"


def test_G4_a_serving_version_that_answers_404_is_not_reported_as_bad_input(
        project: Path, applied: Applied) -> None:
    """`bound_databases` calls versions.get for each serving version without handling NotFoundError
    (drift_workers.py:93-95): the run ends with exit 2 ("bad input", docs/monitoring.md) and a message
    sending the operator to booking:accountId/databaseName/workerName in the stack file, which are right.
    A version the deployment names but the API does not answer is drift (or a read failure, exit 1)."""
    api, _ = applied
    _, name, _ = _stack_worker(api)
    newest = max(api.scripts[name].deployments, key=lambda d: d["created_on"])
    newest["versions"][0]["version_id"] = "00000000-0000-4000-8000-000000000000"
    result = runner.invoke(app, ["drift", "--stack", "production", "-f", "json", "--project-dir", str(project),
                                 "--no-policies"],
                           env={"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_BASE_URL": api.base_url})
    assert result.exit_code in (1, 3), (result.exit_code, result.stdout + result.stderr)


def test_G5_d1_recreated_and_the_worker_redeployed_onto_it_is_not_drift(project: Path, applied: Applied) -> None:
    """F9's premise — "the serving version says which database it uses" (docs/monitoring.md) — fails when the
    same hand also redeploys: the database deleted and created again (empty) AND a version binding the new
    id deployed (`wrangler deploy` with the new database_id, the natural "fix" after recreating it). The
    name and the binding agree, the booking data is gone, drift exit 0. Only the state's id (or the declared
    version's bundle annotation, G1) can tell."""
    api, client = applied
    [database] = api.databases.values()
    name, old = database.name, database.uuid
    client.d1.database.delete(old, account_id=ACCOUNT)
    new = client.d1.database.create(account_id=ACCOUNT, name=name)
    _, worker, version_id = _stack_worker(api)
    client.workers.beta.workers.versions.create(
        worker, account_id=ACCOUNT, deploy=True, main_module="index.js", modules=MODULES,  # type: ignore[arg-type]
        bindings=[{"type": "d1", "name": _d1_binding(api, version_id)["name"], "id": new.uuid}])
    code, answer = drift_json(project, api)
    assert code == 3, f"D1 {name} recreated empty ({old} -> {new.uuid}) and the Worker rebound to it: {answer}"


def test_G6_a_hand_uploaded_version_deployed_on_the_stacks_worker_is_not_drift(
        project: Path, applied: Applied) -> None:
    """The stack's Worker now serves, at 100 %, a version uploaded by hand (any code, same D1 binding):
    not the stack's version. WorkerVersion/WorkersDeployment are NOT_READ (drift.py:302-303, "what serves is
    `release status`'s"), but the scheduled job runs drift, not `release status`: nothing reports it."""
    api, client = applied
    _, worker, version_id = _stack_worker(api)
    d1 = _d1_binding(api, version_id)
    client.workers.beta.workers.versions.create(
        worker, account_id=ACCOUNT, deploy=True, main_module="index.js", modules=MODULES,  # type: ignore[arg-type]
        bindings=[{"type": "d1", "name": d1["name"], "id": d1["id"]}])
    code, answer = drift_json(project, api)
    assert code == 3, f"the stack's Worker serves a hand-uploaded version, drift says nothing: {answer}"


def test_G7_the_health_alert_retyped_by_hand_is_not_drift(project: Path, applied: Applied) -> None:
    """The policy's alert_type (declared, infra/monitoring.py:66; editable: the SDK's PolicyUpdateParams has
    `alert_type`) changed to another event: the alert no longer fires on the health check. `_policy`
    compares enabled, emails, statuses and (after) the check ids, not the alert type (drift.py:192-209)."""
    api, _ = applied
    [policy] = api.notification_policies.values()
    policy["alert_type"] = "universal_ssl_event_type"
    code, answer = drift_json(project, api, "--no-policies")
    assert code == 3, f"the health alert now fires on SSL events only: {answer}"


def test_G3b_a_same_named_widget_listed_first_makes_drift_print_delete_the_stacks_widget(
        project: Path, applied: Applied) -> None:
    """G3's shape for Turnstile: `_widget` takes the first widget of the stack's widget's name as the stack's
    (drift.py:143-151) and prints for the other — here the stack's REAL widget, whose sitekey the site and
    the Worker's TURNSTILE_SITEKEYS use — "pulumi import … or delete it in the dashboard". Cloudflare's
    sitekeys are random and drift asks no `order`: the hand-made one may be listed first. The double lists by
    sitekey; the test gives the hand-made widget a sitekey that sorts first."""
    api, client = applied
    [real] = api.turnstile_widgets.values()
    made = client.turnstile.widgets.create(account_id=ACCOUNT, name=real["name"], domains=list(real["domains"]),
                                           mode=real["mode"])
    widget = api.turnstile_widgets.pop(made.sitekey)
    widget["sitekey"] = "0x4AAAAAAA000000000000"
    api.turnstile_widgets[widget["sitekey"]] = widget
    code, found = drift(project, api, "--no-policies")
    assert code == 3
    told_to_delete = [d for d in found if real["sitekey"] in d["detail"] + d["fix"]]
    assert not told_to_delete, f"drift tells to import or delete the stack's own widget {real['sitekey']}: {found}"
