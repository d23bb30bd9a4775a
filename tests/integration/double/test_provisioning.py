"""The double creates and deletes what a stack's `pulumi up` / `pulumi destroy` does (issue #26), through
the official SDK, and refuses what the API refuses, each with the source named in the double's module."""

from __future__ import annotations

import cloudflare
import pytest
from cloudflare import Cloudflare

from tests.helpers import ACCOUNT
from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.cf_double.double import take_violations

ZONE = "zone-preview"
HOST = "staging-pr-1.example.co.za"


@pytest.fixture
def zone(double: CloudflareDouble) -> str:
    double.add_zone(ZONE, name="example.co.za")
    return ZONE


def test_a_d1_database_is_created_read_and_deleted_and_a_second_of_the_same_name_refused(
        double: CloudflareDouble, client: Cloudflare) -> None:
    db = client.d1.database.create(account_id=ACCOUNT, name="booking-pr-1")
    assert client.d1.database.get(db.uuid or "", account_id=ACCOUNT).name == "booking-pr-1"
    with pytest.raises(cloudflare.BadRequestError) as refused:
        client.d1.database.create(account_id=ACCOUNT, name="booking-pr-1")
    assert "7502" in str(refused.value)  # the code wrangler reads as "name already exists"
    client.d1.database.delete(db.uuid or "", account_id=ACCOUNT)
    assert db.uuid not in double.databases
    with pytest.raises(cloudflare.NotFoundError):
        client.d1.database.get(db.uuid or "", account_id=ACCOUNT)


def test_a_bucket_with_objects_is_not_deleted_and_an_empty_one_is(double: CloudflareDouble,
                                                                  client: Cloudflare) -> None:
    client.r2.buckets.create(account_id=ACCOUNT, name="backups-pr-1")
    double.buckets["backups-pr-1"]["a.sql.gz"] = b"x"
    with pytest.raises(cloudflare.ConflictError) as refused:
        client.r2.buckets.delete("backups-pr-1", account_id=ACCOUNT)
    assert "10008" in str(refused.value)  # BucketNotEmpty
    client.r2.buckets.objects.delete("a.sql.gz", account_id=ACCOUNT, bucket_name="backups-pr-1")
    client.r2.buckets.delete("backups-pr-1", account_id=ACCOUNT)
    assert "backups-pr-1" not in double.buckets


# R2's rule ("3-63 chars, lowercase alphanumeric and hyphens, start/end with alphanumeric", 10005) is partly
# the document's pattern and minimum length (refused before the double's own check), partly not (63).
@pytest.mark.parametrize("name", ["ab", "x" * 64, "Upper", "-dash", "under_score"])
def test_a_bucket_name_r2_refuses_is_refused_and_reported(client: Cloudflare, name: str) -> None:
    with pytest.raises(cloudflare.BadRequestError) as refused:
        client.r2.buckets.create(account_id=ACCOUNT, name=name)
    by_document = any("r2-create-bucket" in v for v in take_violations())
    assert by_document or "10005" in str(refused.value)


def test_a_lifecycle_rule_the_sdk_cannot_read_back_is_refused(client: Cloudflare) -> None:
    client.r2.buckets.create(account_id=ACCOUNT, name="backups-pr-2")
    with pytest.raises(cloudflare.BadRequestError):
        client.r2.buckets.lifecycle.update("backups-pr-2", account_id=ACCOUNT,
                                           rules=[{"id": "r", "enabled": True}])  # type: ignore[typeddict-item]
    client.r2.buckets.lifecycle.update("backups-pr-2", account_id=ACCOUNT, rules=[
        {"id": "r", "enabled": True, "conditions": {"prefix": ""},
         "delete_objects_transition": {"condition": {"type": "Age", "max_age": 86400}}}])
    rules = client.r2.buckets.lifecycle.get("backups-pr-2", account_id=ACCOUNT).rules or []
    assert [r.id for r in rules] == ["r"]


def test_a_worker_its_version_route_and_deployment_go_with_the_worker(double: CloudflareDouble, client: Cloudflare,
                                                                      zone: str) -> None:
    worker = client.workers.beta.workers.create(account_id=ACCOUNT, name="api-pr-1")
    version = client.workers.beta.workers.versions.create(worker.id, account_id=ACCOUNT, main_module="index.js")
    client.workers.scripts.deployments.create("api-pr-1", account_id=ACCOUNT, strategy="percentage",
                                              versions=[{"version_id": version.id, "percentage": 100}])
    assert double.scripts["api-pr-1"].shares() == {version.id: 100.0}
    route = client.workers.routes.create(zone_id=zone, pattern=f"{HOST}/*", script="api-pr-1")
    with pytest.raises(cloudflare.ConflictError):
        client.workers.routes.create(zone_id=zone, pattern=f"{HOST}/*", script="api-pr-1")
    with pytest.raises(cloudflare.BadRequestError):  # a hostname of another zone
        client.workers.routes.create(zone_id=zone, pattern="www.elsewhere.com/*", script="api-pr-1")
    client.workers.routes.delete(route.id, zone_id=zone)
    client.workers.beta.workers.delete(worker.id, account_id=ACCOUNT)
    assert "api-pr-1" not in double.scripts and not double.worker_routes


def test_a_worker_and_its_version_read_back_as_created_by_id_or_name_with_no_secret_text(
        client: Cloudflare) -> None:
    worker = client.workers.beta.workers.create(account_id=ACCOUNT, name="api-pr-2",
                                                subdomain={"enabled": False, "previews_enabled": False},
                                                observability={"enabled": True, "logs": {"enabled": True}})
    by_name = client.workers.beta.workers.get("api-pr-2", account_id=ACCOUNT)
    assert by_name.id == worker.id == client.workers.beta.workers.get(worker.id, account_id=ACCOUNT).id
    assert by_name.subdomain and by_name.subdomain.enabled is False
    assert by_name.observability and by_name.observability.logs and by_name.observability.logs.enabled is True
    version = client.workers.beta.workers.versions.create(
        worker.id, account_id=ACCOUNT, main_module="index.js",
        bindings=[{"type": "d1", "name": "DB", "id": "db-1"},  # type: ignore[list-item]  # the provider sends `id`
                  {"type": "secret_text", "name": "KEY", "text": "s3cret"}])
    read = client.workers.beta.workers.versions.get(version.id, account_id=ACCOUNT, worker_id="api-pr-2")
    answered = {b.name: b.model_dump(exclude_none=True) for b in read.bindings or []}
    assert answered["DB"]["database_id"] == "db-1"
    assert "text" not in answered["KEY"], answered  # a secret's value is never read back
    with pytest.raises(cloudflare.NotFoundError):
        client.workers.beta.workers.get("api-pr-3", account_id=ACCOUNT)
    with pytest.raises(cloudflare.BadRequestError) as refused:  # a setting the SDK's create params lack
        client.workers.beta.workers.create(account_id=ACCOUNT, name="api-pr-3",
                                           observability={"logs": {"enabled": True, "invocationLogs": True}})  # type: ignore[typeddict-unknown-key]
    assert "observability.logs.invocationLogs" in str(refused.value)


def test_a_cname_beside_another_address_record_is_refused_with_81053(client: Cloudflare, zone: str) -> None:
    client.dns.records.create(zone_id=zone, name=HOST, type="CNAME", content="site-pr-1.pages.dev", proxied=True,
                              ttl=1)
    with pytest.raises(cloudflare.BadRequestError) as refused:
        client.dns.records.create(zone_id=zone, name=HOST, type="A", content="192.0.2.1", ttl=1)
    assert "81053" in str(refused.value)


def test_a_pages_project_with_a_domain_left_is_not_deleted(double: CloudflareDouble, client: Cloudflare) -> None:
    client.pages.projects.create(account_id=ACCOUNT, name="site-pr-1", production_branch="main")
    client.pages.projects.domains.create("site-pr-1", account_id=ACCOUNT, name=HOST)
    with pytest.raises(cloudflare.ConflictError):
        client.pages.projects.delete("site-pr-1", account_id=ACCOUNT)
    client.pages.projects.domains.delete(HOST, account_id=ACCOUNT, project_name="site-pr-1")
    client.pages.projects.delete("site-pr-1", account_id=ACCOUNT)
    assert not double.pages_projects


def test_a_widget_is_created_with_the_updates_rules_and_deleted(double: CloudflareDouble, client: Cloudflare) -> None:
    with pytest.raises(cloudflare.BadRequestError):  # "No wildcards are supported"
        client.turnstile.widgets.create(account_id=ACCOUNT, name="pr-1", domains=["*.example.co.za"], mode="managed")
    widget = client.turnstile.widgets.create(account_id=ACCOUNT, name="pr-1", domains=[HOST], mode="managed")
    client.turnstile.widgets.delete(widget.sitekey, account_id=ACCOUNT)
    assert not double.turnstile_widgets
