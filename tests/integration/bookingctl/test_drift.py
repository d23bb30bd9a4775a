"""`bookingctl drift` (issue #27) against the API double: production applied to the double by the engine
double (tests/helpers/preview_engine.py, the provider's calls through the SDK), then read back: nothing on
the freshly applied stack, and each kind of hand-made change found and named with its converging command."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudflare import Cloudflare
from typer.testing import CliRunner

from booking_shared.project import find_project
from bookingctl.cli import app
from tests.helpers import ACCOUNT, REPO, copy_project
from tests.helpers.cf_double import TOKEN, CloudflareDouble
from tests.helpers.cf_double.double import running
from tests.helpers.cf_double.ratelimit import RateLimit
from tests.helpers.preview_engine import DoubleEngine

pytestmark = pytest.mark.slow

ZONE = "1a2b3c4d5e6f708192a3b4c5d6e7f809"
HOST = "www.instylehairboutique.co.za"
runner = CliRunner()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("project"))


@pytest.fixture
def applied(project: Path, tmp_path: Path) -> Iterator[tuple[CloudflareDouble, Cloudflare]]:
    """Production as `pulumi up` leaves it, in the double."""
    (tmp_path / "api").mkdir()
    with running(tmp_path / "api", ACCOUNT) as api, \
            Cloudflare(api_token=TOKEN, base_url=api.base_url, max_retries=0) as client:
        api.add_zone(ZONE, "business", name="instylehairboutique.co.za")
        engine = DoubleEngine(find_project(project), client, lambda: dt.datetime(2026, 12, 5, tzinfo=dt.UTC),
                              gate=False)
        engine.up("production", lambda _: None)
        yield api, client


def drift(project: Path, api: CloudflareDouble, *more: str) -> tuple[int, list[dict[str, Any]]]:
    code, answer = drift_json(project, api, *more)
    return code, answer["differences"]


def drift_json(project: Path, api: CloudflareDouble, *more: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["drift", "--stack", "production", "-f", "json", "--project-dir", str(project),
                                 *more], env={"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_BASE_URL": api.base_url})
    assert result.exit_code in (0, 3), result.stdout + result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_a_freshly_applied_stack_has_no_drift(project: Path, applied: tuple[CloudflareDouble, Cloudflare]) -> None:
    code, found = drift(project, applied[0])
    assert (code, found) == (0, [])


def _rate_rule(api: CloudflareDouble) -> dict[str, Any]:
    ruleset = next(r for r in api.zones[ZONE].rulesets if r["phase"] == "http_ratelimit")
    rule: dict[str, Any] = ruleset["rules"][0]
    return rule


def _relax(api: CloudflareDouble, c: Cloudflare) -> None:
    _rate_rule(api)["ratelimit"]["requests_per_period"] = 500


def _delete_rule(api: CloudflareDouble, c: Cloudflare) -> None:
    ruleset = next(r for r in api.zones[ZONE].rulesets if r["phase"] == "http_ratelimit")
    ruleset["rules"].pop(0)


def _widget_mode(api: CloudflareDouble, c: Cloudflare) -> None:
    next(iter(api.turnstile_widgets.values()))["mode"] = "invisible"


def _extra_route(api: CloudflareDouble, c: Cloudflare) -> None:
    c.workers.routes.create(zone_id=ZONE, pattern=f"{HOST}/admin/*", script=next(iter(api.scripts)))


def _route_elsewhere(api: CloudflareDouble, c: Cloudflare) -> None:
    c.workers.beta.workers.create(account_id=ACCOUNT, name="someone-elses-worker")
    route = next(r for r in api.worker_routes.values() if r["pattern"].startswith(HOST))
    route["script"] = "someone-elses-worker"


def _rename_d1(api: CloudflareDouble, c: Cloudflare) -> None:
    [database] = api.databases.values()  # production's, the only one
    database.name = "renamed-by-hand"


def _no_lifecycle(api: CloudflareDouble, c: Cloudflare) -> None:
    for bucket in list(api.lifecycles):
        api.lifecycles[bucket] = []


def _pause_check(api: CloudflareDouble, c: Cloudflare) -> None:
    check = next(iter(api.healthchecks.values()))
    c.healthchecks.edit(check["id"], zone_id=ZONE, address=check["address"], name=check["name"], suspended=True)


def _extra_widget(api: CloudflareDouble, c: Cloudflare) -> None:
    c.turnstile.widgets.create(account_id=ACCOUNT, name="made in the dashboard", domains=[HOST], mode="managed")


def _deleted_dns(api: CloudflareDouble, c: Cloudflare) -> None:
    record = next(iter(api.dns_records.values()))
    c.dns.records.delete(record["id"], zone_id=ZONE)


CHANGES: dict[str, tuple[Callable[[CloudflareDouble, Cloudflare], None], str, str, str]] = {
    # name: (the change, kind found, words in its detail, words in its fix)
    "a relaxed rate-limit rule": (_relax, "changed", "ratelimit.requests_per_period is 500 live", "pulumi up"),
    "a deleted rate-limit rule": (_delete_rule, "missing", "is gone", "pulumi up"),
    "a widget's mode": (_widget_mode, "changed", "mode is 'invisible' live", "pulumi up"),
    "an extra route on the stack's hostname": (_extra_route, "unmanaged", f"{HOST}/admin/*", "pulumi import"),
    "a route to another Worker": (_route_elsewhere, "changed", "script is 'someone-elses-worker' live", "pulumi up"),
    "a D1 database renamed": (_rename_d1, "missing", "D1 database", "would create a new, empty"),
    "a bucket lifecycle removed": (_no_lifecycle, "changed", "lifecycle rules", "pulumi up"),
    "a health check paused": (_pause_check, "changed", "paused", "pulumi up"),
    "an extra widget on the stack's hostname": (_extra_widget, "unmanaged", "made in the dashboard", "pulumi import"),
    "a DNS record deleted": (_deleted_dns, "missing", "DNS CNAME record", "pulumi up"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_each_hand_made_change_is_found_with_its_converging_command(
        project: Path, applied: tuple[CloudflareDouble, Cloudflare], change: str) -> None:
    make, kind, detail, fix = CHANGES[change]
    make(*applied)
    code, found = drift(project, applied[0], "--no-policies")
    assert code == 3
    matching = [d for d in found if d["kind"] == kind and detail in d["detail"] and fix in d["fix"]]
    assert matching, found
    assert len(found) == 1, found  # the change, and nothing else reported with it


def test_the_pack_run_over_reality_names_the_policy_a_deleted_rule_breaks(
        project: Path, applied: tuple[CloudflareDouble, Cloudflare]) -> None:
    api, client = applied
    assert drift_json(project, api)[1]["policiesBroken"] == []
    _delete_rule(api, client)  # the login endpoint's rule
    code, answer = drift_json(project, api)
    assert code == 3 and [d["kind"] for d in answer["differences"]] == ["missing"]
    assert {b["policy"] for b in answer["policiesBroken"]} == {"public-write-endpoints-rate-limited"}, answer
    assert "/api/auth/login" in answer["policiesBroken"][0]["message"]


def test_twenty_zones_are_read_within_the_published_rate_limit_with_no_drift(tmp_path: Path) -> None:
    """Issue #27 point 4 (zones): production serving 19 salons on zones of their own besides its own (the
    plan bench's stack), applied to the double, then read back under the API's published rate limit."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("plan_bench", REPO / "bench" / "plan_bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    (tmp_path / "project").mkdir()
    root = bench.tenant_project(19, tmp_path / "project", turnstile_plan="enterprise")
    shutil.copytree(REPO / "migrations", root / "migrations")
    (tmp_path / "api").mkdir()
    with running(tmp_path / "api", ACCOUNT) as api, \
            Cloudflare(api_token=TOKEN, base_url=api.base_url, max_retries=0) as client:
        api.add_zone(ZONE, "business", name="instylehairboutique.co.za")
        for i in range(19):
            api.add_zone(f"{i:032x}", "business", name=f"salon-{i}.co.za")
        api.turnstile_hostname_limit = 200  # booking:turnstile.plan enterprise
        DoubleEngine(find_project(root), client, lambda: dt.datetime(2026, 12, 5, tzinfo=dt.UTC),
                     gate=False).up("production", lambda _: None)
        api.rate_limit = RateLimit()
        started = time.monotonic()
        code, found = drift(root, api, "--no-policies")
        elapsed = time.monotonic() - started
    assert (code, found) == (0, [])
    assert api.rate_limit.refused == 0 and elapsed < 60, (api.rate_limit.answered, elapsed)
    print(f"20 zones: {api.rate_limit.answered} requests in {elapsed:.1f} s")
