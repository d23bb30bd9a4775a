"""What the Pulumi program declares for each environment, checked on the mocked registrations."""

from __future__ import annotations

import base64
import hashlib

from pulumi.runtime import rpc

from booking_shared.tokens import (
    BUCKET,
    D1,
    DEPLOYMENT,
    DNS,
    HEALTHCHECK,
    LIFECYCLE,
    NOTIFICATION,
    PAGES,
    PAGES_DOMAIN,
    ROUTE,
    VERSION,
    WORKER,
)
from bookingctl.planner import Plan
from tests.helpers import REPO, PlanFn

TENANTS = [
    {"slug": "glamour", "hostname": "book.glamoursalon.co.za", "zoneId": "ab" * 16, "zonePlan": "business"},
    {"slug": "fade-kings", "hostname": "www.fadekings.co.za", "zoneId": "cd" * 16, "zonePlan": "business"},
]


def bindings(plan: Plan) -> dict[str, dict[str, object]]:
    return {b["name"]: b for b in plan.one(VERSION).value("bindings")}


# --- database -------------------------------------------------------------------------------

def test_production_database_is_protected_and_retained_on_delete(production: Plan) -> None:
    db = production.one(D1)
    assert db.protect, f"{db.urn} must be protect=True in production"
    assert db.retain_on_delete, f"{db.urn} must be retained on delete in production"


def test_staging_database_is_not_protected(staging: Plan) -> None:
    db = staging.one(D1)
    assert not db.protect and not db.retain_on_delete


def test_each_environment_names_its_own_database(production: Plan, staging: Plan) -> None:
    assert production.one(D1).value("name") == "appointmentbooking-db"
    assert staging.one(D1).value("name") == "appointmentbooking-db-staging"


def test_database_read_replication_is_set_explicitly(production: Plan) -> None:
    assert production.one(D1).value("readReplication") == {"mode": "disabled"}


# --- worker ---------------------------------------------------------------------------------

def test_worker_binds_its_own_environments_database_as_DB(production: Plan, staging: Plan) -> None:
    for plan in (production, staging):
        db_id = f"{plan.one(D1).name}-id"  # the id the mocks gave this stack's D1 database
        binding = bindings(plan)["DB"]
        assert binding == {"type": "d1", "name": "DB", "id": db_id}, plan.stack


def test_worker_environment_is_a_plain_text_var(production: Plan, staging: Plan) -> None:
    assert bindings(production)["ENVIRONMENT"] == {"type": "plain_text", "name": "ENVIRONMENT", "text": "production"}
    assert bindings(staging)["ENVIRONMENT"]["text"] == "staging"


def test_worker_writes_each_request_to_its_own_environments_analytics_engine_dataset(
        production: Plan, staging: Plan) -> None:
    assert bindings(production)["REQUESTS"] == {"type": "analytics_engine", "name": "REQUESTS",
                                                "dataset": "appointmentbooking_api_requests"}
    assert bindings(staging)["REQUESTS"]["dataset"] == "appointmentbooking_api_staging_requests"
    assert bindings(production)["CF_VERSION_METADATA"]["type"] == "version_metadata"


def test_integration_credentials_are_secret_text_bindings(production: Plan) -> None:
    found = bindings(production)
    for name in ("PAYSTACK_SECRET_KEY", "GOOGLE_CALENDAR_CREDENTIALS", "WHATSAPP_TOKEN"):
        assert found[name]["type"] == "secret_text", name
    # The engine receives the bindings as a secret value, so state encrypts them.
    assert rpc.is_rpc_secret(production.one(VERSION).raw_inputs["bindings"])


def test_worker_version_is_an_es_module_with_main_module_and_the_bundle(production: Plan) -> None:
    version = production.one(VERSION)
    [module] = version.value("modules")
    assert version.value("mainModule") == module["name"] == "index.js"
    assert module["contentType"] == "application/javascript+module"
    bundle = (REPO / "worker/src/index.js").read_bytes()
    assert base64.b64decode(module["contentBase64"]) == bundle
    assert hashlib.sha256(bundle).hexdigest()[:16] in version.value("annotations", "workersMessage")


def test_compatibility_date_comes_from_config(plan_with: PlanFn) -> None:
    plan = plan_with("staging", overrides={"booking:compatibilityDate": "2025-06-15"})
    assert plan.one(VERSION).value("compatibilityDate") == "2025-06-15"
    assert plan.one(PAGES).value("deploymentConfigs", "production", "compatibilityDate") == "2025-06-15"


def test_worker_has_logs_on_and_no_workers_dev_url(production: Plan) -> None:
    worker = production.one(WORKER)
    assert worker.value("observability", "enabled") is True
    assert worker.value("observability", "logs", "enabled") is True
    assert worker.value("observability", "logs", "invocationLogs") is True
    assert worker.value("subdomain") == {"enabled": False, "previewsEnabled": False}


def test_deployment_sends_all_traffic_to_the_new_version(production: Plan) -> None:
    deployment = production.one(DEPLOYMENT)
    version = production.one(VERSION)
    assert deployment.value("strategy") == "percentage"
    assert deployment.value("versions") == [{"versionId": f"{version.name}-id", "percentage": 100}]
    assert deployment.value("scriptName") == "appointmentbooking-api"
    assert version.urn in deployment.dependencies


# --- routing --------------------------------------------------------------------------------

def test_route_pattern_is_domain_then_worker_route(production: Plan, staging: Plan) -> None:
    assert production.one(ROUTE).value("pattern") == "www.instylehairboutique.co.za/*"
    assert staging.one(ROUTE).value("pattern") == "staging.instylehairboutique.co.za/*"
    assert production.one(ROUTE).value("script") == "appointmentbooking-api"
    assert production.one(ROUTE).value("zoneId") == "1a2b3c4d5e6f708192a3b4c5d6e7f809"


def test_route_waits_for_the_worker_deployment(production: Plan) -> None:
    route = production.one(ROUTE)
    assert production.one(DEPLOYMENT).urn in route.dependencies, "the route would serve a Worker with no deployment"


def test_on_a_fresh_stack_the_routes_come_after_the_deployment_and_its_hooks(staging: Plan) -> None:
    """The order a first `pulumi up` creates things in: the engine answers the deployment's
    registration only after its after-create hook ran, so every route, registered from the
    deployment's output, is created after the hook. That is why the hook cannot verify a first
    deployment (no route serves it yet) and leaves it to `bookingctl verify` after the update."""
    order = staging.registered
    deployment = staging.one(DEPLOYMENT)
    assert deployment.hooks["after_create"] == ["booking-after-traffic"]
    for route in staging.of_type(ROUTE):
        assert deployment.urn in route.dependencies
        assert order.index(route.urn) > order.index(deployment.urn)


def test_domain_dns_record_is_proxied_cname_to_pages(production: Plan) -> None:
    record = production.one(DNS)
    assert record.value("name") == "www.instylehairboutique.co.za"
    assert record.value("proxied") is True
    assert record.value("type") == "CNAME"
    assert record.value("content") == "appointmentbooking.pages.dev"


def test_each_tenant_gets_route_dns_and_pages_domain_in_its_own_zone(plan_with: PlanFn) -> None:
    plan = plan_with("production", overrides={"booking:tenants": TENANTS})
    routes = {r.value("pattern"): r.value("zoneId") for r in plan.of_type(ROUTE)}
    assert routes == {
        "www.instylehairboutique.co.za/*": "1a2b3c4d5e6f708192a3b4c5d6e7f809",
        "book.glamoursalon.co.za/*": "ab" * 16,
        "www.fadekings.co.za/*": "cd" * 16,
    }
    records = {r.value("name"): (r.value("zoneId"), r.value("proxied")) for r in plan.of_type(DNS)}
    assert records["www.fadekings.co.za"] == ("cd" * 16, True)
    assert {d.value("name") for d in plan.of_type(PAGES_DOMAIN)} == {
        "www.instylehairboutique.co.za", "book.glamoursalon.co.za", "www.fadekings.co.za"}
    assert plan.outputs["tenantHostnames"] == ["book.glamoursalon.co.za", "www.fadekings.co.za"]


# --- pages ----------------------------------------------------------------------------------

def test_pages_project_binds_its_database_in_production_and_preview(production: Plan) -> None:
    pages = production.one(PAGES)
    db_id = f"{production.one(D1).name}-id"
    assert pages.value("productionBranch") == "main"
    for kind in ("production", "preview"):
        config = pages.value("deploymentConfigs", kind)
        assert config["d1Databases"] == {"DB": {"id": db_id}}, kind
        assert config["envVars"]["ENVIRONMENT"] == {"type": "plain_text", "value": "production"}, kind


# --- backups --------------------------------------------------------------------------------

def test_lifecycle_deletes_backups_after_the_retention_days(production: Plan, staging: Plan) -> None:
    for plan, days in ((production, 30), (staging, 7)):
        [rule] = plan.one(LIFECYCLE).value("rules")
        assert rule["enabled"] is True
        assert rule["conditions"] == {"prefix": ""}
        condition = rule["deleteObjectsTransition"]["condition"]
        assert condition == {"type": "Age", "maxAge": days * 86_400}, plan.stack
        assert plan.one(LIFECYCLE).value("bucketName") == plan.one(BUCKET).value("name")


def test_lifecycle_keeps_aborting_incomplete_multipart_uploads_as_r2s_default_rule_did(staging: Plan) -> None:
    [rule] = staging.one(LIFECYCLE).value("rules")
    assert rule["abortMultipartUploadsTransition"]["condition"] == {"type": "Age", "maxAge": 7 * 86_400}


def test_a_stack_can_go_without_the_health_check_a_free_zone_cannot_have(plan_with: PlanFn) -> None:
    plan = plan_with("staging", overrides={"booking:healthCheck": "false"})
    assert not plan.of_type(HEALTHCHECK) and plan.outputs["healthCheckId"] is None


def test_lifecycle_follows_a_changed_retention(plan_with: PlanFn) -> None:
    plan = plan_with("staging", overrides={"booking:backupRetentionDays": "14"})
    [rule] = plan.one(LIFECYCLE).value("rules")
    assert rule["deleteObjectsTransition"]["condition"]["maxAge"] == 14 * 86_400


def test_production_backup_bucket_is_protected(production: Plan, staging: Plan) -> None:
    assert production.one(BUCKET).protect and production.one(BUCKET).retain_on_delete
    assert not staging.one(BUCKET).protect


# --- shape and outputs ----------------------------------------------------------------------

def test_every_cloud_resource_sits_in_a_component(production: Plan) -> None:
    components = {r.urn for r in production.resources if not r.custom}
    assert {r.type.split(":")[1] for r in production.resources if not r.custom} == {
        "database", "worker", "pages", "backups", "routing", "monitoring", "edge"}
    for r in production.custom_resources():
        assert r.parent in components, f"{r.urn} should be a child of a booking:* component"


def test_stack_outputs_name_what_was_declared(production: Plan) -> None:
    """Each output a reader (or `bookingctl`) looks up points at the resource that was declared."""
    out = production.outputs
    assert out["environment"] == "production" and out["domain"] == production.one(ROUTE).value("pattern")[:-2]
    assert out["healthUrl"] == f"https://{out['domain']}/api/health"
    assert out["workerName"] == production.one(WORKER).value("name")
    assert out["workerVersionId"] == production.one(VERSION).raw_outputs["id"]
    assert out["deploymentId"] == production.one(DEPLOYMENT).raw_outputs["id"]
    database = production.one(D1)
    assert (out["databaseName"], out["databaseId"]) == (database.value("name"), database.raw_outputs["id"])
    assert out["pagesUrl"] == "https://" + production.one(PAGES).raw_outputs["subdomain"]
    assert out["backupBucket"] == production.one(BUCKET).value("name")
    assert out["healthCheckId"] == production.one(HEALTHCHECK).raw_outputs["id"]
    assert out["tenantHostnames"] == []


def test_plans_in_one_process_do_not_leak_into_each_other(production: Plan, staging: Plan) -> None:
    assert staging.outputs["environment"] == "staging"
    assert all(r.urn.startswith("urn:pulumi:staging::") for r in staging.resources)
    assert all(r.urn.startswith("urn:pulumi:production::") for r in production.resources)
    assert staging.one(D1).value("name") != production.one(D1).value("name")
    assert not staging.of_type(NOTIFICATION) and production.of_type(NOTIFICATION)


# --- monitoring -----------------------------------------------------------------------------

def test_each_environment_health_checks_its_own_api(production: Plan, staging: Plan) -> None:
    for plan, domain in ((production, "www.instylehairboutique.co.za"), (staging, "staging.instylehairboutique.co.za")):
        check = plan.one(HEALTHCHECK)
        assert check.value("address") == domain and check.value("type") == "HTTPS"
        assert check.value("httpConfig", "path") == "/api/health"
        assert check.value("httpConfig", "expectedCodes") == ["200"]
        assert check.value("httpConfig", "expectedBody") == '"status":"ok"'


def test_production_alerts_by_email_when_the_health_check_is_unhealthy(production: Plan) -> None:
    alert = production.one(NOTIFICATION)
    assert alert.value("alertType") == "health_check_status_notification" and alert.value("enabled") is True
    assert alert.value("filters") == {"healthCheckIds": [production.one(HEALTHCHECK).raw_outputs["id"]],
                                      "statuses": ["Unhealthy"]}
    assert alert.value("mechanisms") == {"emails": [{"id": "devops@company.com"}]}


def test_staging_has_no_alert(staging: Plan) -> None:
    assert staging.of_type(NOTIFICATION) == []
