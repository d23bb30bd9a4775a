"""The API double's Worker GET against what Cloudflare publishes (hostile27b's D1, D2; both failed before)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cloudflare import Cloudflare

from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, CloudflareDouble
from tests.helpers.cf_double.double import running


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[CloudflareDouble, Cloudflare]]:
    (tmp_path / "api").mkdir()
    with running(tmp_path / "api", ACCOUNT) as double, \
            Cloudflare(api_token=TOKEN, base_url=double.base_url, max_retries=0) as client:
        yield double, client


def test_D1_a_worker_created_without_settings_is_not_answered_with_workers_dev_off(
        api: tuple[CloudflareDouble, Cloudflare]) -> None:
    """The double answers `subdomain.enabled: False` for a Worker created without `subdomain`
    (workers_beta.py:61-64, "the double's choice"). Cloudflare: "All Workers are assigned a workers.dev
    route when they are created" (developers.cloudflare.com/workers/configuration/routing/workers-dev/) and
    "If neither setting is configured: both the workers.dev route and the preview URL will default to
    enabled" (developers.cloudflare.com/changelog, 2025-10-31). A hand-made Worker in a test therefore looks
    safer in the double (no workers.dev URL) than it is."""
    _, client = api
    client.workers.beta.workers.create(account_id=ACCOUNT, name="made-in-the-dashboard")
    worker = client.workers.beta.workers.get("made-in-the-dashboard", account_id=ACCOUNT)
    assert worker.subdomain.enabled is not False, worker.subdomain


def test_D2_a_script_uploaded_through_the_scripts_api_is_a_worker_too(
        api: tuple[CloudflareDouble, Cloudflare]) -> None:
    """workers_beta.py's own docstring: "A Worker and the script of the same name are one thing". A script
    the double holds through the scripts API (`add_script`, what a `wrangler deploy`-made Worker looks like
    to the versions/deployments routes) answers 404 on GET /workers/workers/{name}: drift would call a
    serving Worker "missing" (workers_beta.py:70-77 looks in `worker_ids` only)."""
    double, client = api
    double.add_script("uploaded-by-wrangler", 1)
    assert client.workers.scripts.deployments.list("uploaded-by-wrangler", account_id=ACCOUNT) is not None
    worker = client.workers.beta.workers.get("uploaded-by-wrangler", account_id=ACCOUNT)
    assert worker.name == "uploaded-by-wrangler"


def test_the_worker_list_refuses_a_page_below_one(api: tuple[CloudflareDouble, Cloudflare]) -> None:
    """No bound is published for the list's paging (ints in the SDK's WorkerListParams); a page or
    page size below 1 is refused, not answered with an empty page a pager takes for the end."""
    import httpx

    double, client = api
    client.workers.beta.workers.create(account_id=ACCOUNT, name="one")
    url = f"{double.base_url}/accounts/{ACCOUNT}/workers/workers"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(url, params={"page": "0"}, headers=headers).status_code == 400
    assert httpx.get(url, params={"per_page": "x"}, headers=headers).status_code == 400
    assert [w.name for w in client.workers.beta.workers.list(account_id=ACCOUNT)] == ["one"]
