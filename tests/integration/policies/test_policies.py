"""Every policy through the Analyzer gRPC path the gate and `pulumi preview --policy-pack` share.

The happy path is the real production (or staging) plan with complete checklist evidence; each
non-compliant case changes one field of it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from booking_shared.checklist import ITEMS
from booking_shared.project import Project, load_stack
from bookingctl.gate import PackProcess
from bookingctl.planner import Plan
from bookingctl.policy_config import PolicyConfigError
from tests.helpers import REPO
from tests.helpers.policy_helpers import (
    COMPLETE_EVIDENCE,
    PACK,
    SAFE_MIGRATIONS,
    SAFE_REHEARSAL,
    changed,
    found,
    gate,
    not_applicable,
    without,
)

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow


def prod(pack: PackProcess, plan: Plan, config: dict[str, Any] | None = None) -> Any:
    return gate(pack, plan, config, COMPLETE_EVIDENCE)


# --- the happy paths ------------------------------------------------------------------------

def test_committed_production_stack_passes_with_complete_evidence(prod_pack: PackProcess, production: Plan) -> None:
    result = prod(prod_pack, production)
    assert result.violations == [], [v.to_dict() for v in result.violations]
    assert result.passed


def test_committed_staging_stack_has_no_mandatory_violation_without_evidence(
        staging_pack: PackProcess, staging: Plan) -> None:
    result = gate(staging_pack, staging)
    assert result.passed
    assert {v.policy for v in result.violations} == {"pre-deploy-checklist"}
    assert all(v.level == "advisory" for v in result.violations)


def test_every_policy_is_configured_with_an_explicit_level_and_production_rules_stay_mandatory(
        prod_pack: PackProcess, production: Plan) -> None:
    # The pack's initial config sets backup-retention's properties: without an explicit level the
    # engine would read the proto default (ADVISORY) and the policy would stop blocking.
    result = prod(prod_pack, production, {"worker-compatibility-date": {"maxAgeDays": 400}})
    levels = {name: cfg.level for name, cfg in result.config.items()}
    assert levels["backup-retention"] == "mandatory"
    assert levels["worker-compatibility-date"] == "mandatory"
    assert levels["pre-deploy-checklist"] == "mandatory"
    assert all(level in ("mandatory", "advisory") for level in levels.values())
    assert {p.severity for p in result.policies} <= {"low", "medium", "high", "critical"}
    assert all(p.remediation for p in result.policies)


# --- environment-isolation ------------------------------------------------------------------

def test_isolation_flags_a_production_database_named_like_staging(prod_pack: PackProcess, production: Plan) -> None:
    plan = changed(production, "database-d1", ("name",), "appointmentbooking-db-staging")
    [v] = found(prod(prod_pack, plan), "environment-isolation")
    assert v.level == "mandatory"
    assert "appointmentbooking-db-staging" in v.message and v.resource.endswith("::database-d1")


def test_isolation_flags_a_worker_bound_to_another_environments_database(
        prod_pack: PackProcess, production: Plan) -> None:
    plan = changed(production, "api-version", ("bindings", 0, "id"), "uuid-of-the-staging-database")
    [v] = found(prod(prod_pack, plan), "environment-isolation")
    assert "uuid-of-the-staging-database" in v.message and "does not declare" in v.message


def test_isolation_flags_a_pages_preview_bound_to_a_foreign_database(prod_pack: PackProcess, production: Plan) -> None:
    plan = changed(production, "site-project", ("deploymentConfigs", "preview", "d1Databases", "DB", "id"), "other")
    [v] = found(prod(prod_pack, plan), "environment-isolation")
    assert "Pages preview binding DB" in v.message


def test_isolation_flags_a_wrong_environment_variable(prod_pack: PackProcess, production: Plan) -> None:
    plan = changed(production, "api-version", ("bindings", 1, "text"), "staging")
    [v] = found(prod(prod_pack, plan), "environment-isolation")
    assert "ENVIRONMENT is 'staging'" in v.message


def test_isolation_flags_a_staging_database_without_a_staging_name(staging_pack: PackProcess, staging: Plan) -> None:
    plan = changed(staging, "database-d1", ("name",), "appointmentbooking-db")
    [v] = found(gate(staging_pack, plan), "environment-isolation")
    assert v.level == "mandatory"


def test_isolation_does_not_apply_to_a_stack_without_data_bindings(prod_pack: PackProcess, production: Plan) -> None:
    plan = production
    for token in ("cloudflare:index/d1Database:D1Database", "cloudflare:index/workerVersion:WorkerVersion",
                  "cloudflare:index/pagesProject:PagesProject"):
        plan = without(plan, token)
    result = prod(prod_pack, plan)
    assert not found(result, "environment-isolation")
    assert not_applicable(result, "environment-isolation")


# --- data-protection ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["database-d1", "backups-bucket"])
def test_unprotected_production_data_is_a_mandatory_violation(
        prod_pack: PackProcess, production: Plan, name: str) -> None:
    [v] = found(prod(prod_pack, changed(production, name, protect=False)), "data-protection")
    assert v.level == "mandatory" and v.severity == "critical"
    assert v.resource.endswith(f"::{name}") and "protect=True" in v.message


def test_data_protection_does_not_apply_to_staging(staging_pack: PackProcess, staging: Plan) -> None:
    result = gate(staging_pack, staging)
    assert not found(result, "data-protection")
    assert "only production data is protected" in not_applicable(result, "data-protection")


# --- backup-retention -----------------------------------------------------------------------

def test_production_lifecycle_of_seven_days_violates_thirty_day_retention(
        prod_pack: PackProcess, production: Plan) -> None:
    plan = changed(production, "backups-lifecycle", ("rules", 0, "deleteObjectsTransition", "condition", "maxAge"),
                   7 * 86_400)
    [v] = found(prod(prod_pack, plan), "backup-retention")
    assert "kept 7 days; production keeps 30 days" in v.message


def test_disabled_lifecycle_rule_does_not_count(prod_pack: PackProcess, production: Plan) -> None:
    plan = changed(production, "backups-lifecycle", ("rules", 0, "enabled"), False)
    [v] = found(prod(prod_pack, plan), "backup-retention")
    assert "no enabled whole-bucket Age rule" in v.message


def test_retention_days_come_from_policy_config(prod_pack: PackProcess, production: Plan) -> None:
    result = prod(prod_pack, production, {"backup-retention": {"retentionDays": {"production": 14, "staging": 7}}})
    [v] = found(result, "backup-retention")
    assert "production keeps 14 days" in v.message


def test_staging_keeps_seven_days(staging_pack: PackProcess, staging: Plan) -> None:
    assert not found(gate(staging_pack, staging), "backup-retention")
    plan = changed(staging, "backups-lifecycle", ("rules", 0, "deleteObjectsTransition", "condition", "maxAge"),
                   30 * 86_400)
    assert found(gate(staging_pack, plan), "backup-retention")


def test_invalid_retention_config_is_a_config_error(prod_pack: PackProcess, production: Plan) -> None:
    with pytest.raises(PolicyConfigError, match="backup-retention: retentionDays/production"):
        prod(prod_pack, production, {"backup-retention": {"retentionDays": {"production": 0, "staging": 7}}})


def test_backup_retention_does_not_apply_to_other_resources(prod_pack: PackProcess, production: Plan) -> None:
    assert "not an R2 bucket lifecycle" in not_applicable(prod(prod_pack, production), "backup-retention")


# --- secrets-as-secret-bindings -------------------------------------------------------------

def test_credential_bound_as_plain_text_is_a_violation(prod_pack: PackProcess, production: Plan) -> None:
    plan = changed(production, "api-version", ("bindings", 3, "type"), "plain_text")
    [v] = found(prod(prod_pack, plan), "secrets-as-secret-bindings")
    assert "PAYSTACK_SECRET_KEY is 'plain_text'" in v.message and v.level == "mandatory"


@pytest.mark.parametrize(("value", "kind"), [
    ("sk_live_FAKEFAKE1234567890", "Paystack secret key"),
    ("Bearer abcdefghijklmnop1234567890", "bearer token"),
    (json.dumps({"type": "service_account", "private_key": "x"}), "JSON service-account key"),
    ("-----BEGIN PRIVATE KEY-----\nMIIE", "private key"),
])
def test_plain_text_binding_that_looks_like_a_credential_is_a_violation(
        prod_pack: PackProcess, production: Plan, value: str, kind: str) -> None:
    plan = changed(production, "api-version", ("bindings", 1, "text"), value)
    violations = found(prod(prod_pack, plan), "secrets-as-secret-bindings")
    assert any(kind in v.message for v in violations), [v.message for v in violations]


def test_pages_variable_holding_a_token_is_a_violation(prod_pack: PackProcess, production: Plan) -> None:
    plan = changed(production, "site-project", ("deploymentConfigs", "production", "envVars", "API_BASE_URL", "value"),
                   "Bearer abcdefghijklmnop1234567890")
    [v] = found(prod(prod_pack, plan), "secrets-as-secret-bindings")
    assert "Pages production variable API_BASE_URL" in v.message


def test_secret_policy_does_not_apply_to_a_database(prod_pack: PackProcess, production: Plan) -> None:
    assert "no bindings or variables" in not_applicable(prod(prod_pack, production), "secrets-as-secret-bindings")


# --- routing --------------------------------------------------------------------------------

def test_route_on_a_foreign_hostname_is_a_violation(prod_pack: PackProcess, production: Plan) -> None:
    plan = changed(production, "main-route", ("pattern",), "www.someone-else.co.za/*")
    [v] = found(prod(prod_pack, plan), "worker-routes-on-own-hostnames")
    assert "www.someone-else.co.za" in v.message and v.resource.endswith("::main-route")


def test_a_wildcard_route_under_the_domain_is_not_the_domain_itself(prod_pack: PackProcess, production: Plan) -> None:
    """`*.www.instylehairboutique.co.za/*` catches every name under the domain, none of them declared
    (the policy used to read it as the domain itself and let it pass)."""
    plan = changed(production, "main-route", ("pattern",), "*.www.instylehairboutique.co.za/*")
    [v] = found(prod(prod_pack, plan), "worker-routes-on-own-hostnames")
    assert "*.www.instylehairboutique.co.za" in v.message


def test_unproxied_dns_record_violates_both_routing_policies(prod_pack: PackProcess, production: Plan) -> None:
    result = prod(prod_pack, changed(production, "main-dns", ("proxied",), False))
    [record] = found(result, "dns-records-proxied")
    [route] = found(result, "worker-routes-on-own-hostnames")
    assert record.resource.endswith("::main-dns")
    assert "is not proxied" in route.message


def test_dns_policy_does_not_apply_to_mx_records(prod_pack: PackProcess, production: Plan) -> None:
    result = prod(prod_pack, changed(production, "main-dns", ("type",), "MX"))
    assert not found(result, "dns-records-proxied")
    assert "not an A, AAAA or CNAME record" in not_applicable(result, "dns-records-proxied")


# --- worker hygiene -------------------------------------------------------------------------

@pytest.mark.parametrize(("date", "expected"), [("2020-01-01", "days old"), ("2999-01-01", "in the future"),
                                                 ("soon", "no valid compatibility date")])
def test_bad_compatibility_dates_are_violations(prod_pack: PackProcess, production: Plan, date: str,
                                                expected: str) -> None:
    [v] = found(prod(prod_pack, changed(production, "api-version", ("compatibilityDate",), date)),
                "worker-compatibility-date")
    assert expected in v.message


def test_compatibility_age_limit_comes_from_policy_config(prod_pack: PackProcess, production: Plan) -> None:
    result = prod(prod_pack, production, {"worker-compatibility-date": {"maxAgeDays": 1}})
    [v] = found(result, "worker-compatibility-date")
    assert "(limit 1)" in v.message


def test_worker_without_logs_is_a_violation(prod_pack: PackProcess, production: Plan) -> None:
    plan = changed(production, "api-worker", ("observability", "logs", "enabled"), False)
    [v] = found(prod(prod_pack, plan), "worker-observability")
    assert v.resource.endswith("::api-worker")


def test_worker_policies_do_not_apply_elsewhere(prod_pack: PackProcess, production: Plan) -> None:
    result = prod(prod_pack, production)
    assert "not a Worker" in not_applicable(result, "worker-observability")
    assert "not a Worker version" in not_applicable(result, "worker-compatibility-date")
    assert "not a Worker version" in not_applicable(result, "worker-request-analytics")


def _binding_index(plan: Plan, name: str) -> int:
    bindings = next(r for r in plan.resources if r.name == "api-version").raw_inputs["bindings"]
    bindings = bindings.get("value", bindings) if isinstance(bindings, dict) else bindings
    return next(i for i, b in enumerate(bindings) if b["name"] == name)


def test_a_version_without_its_requests_dataset_is_a_violation(prod_pack: PackProcess, production: Plan) -> None:
    plan = changed(production, "api-version", ("bindings", _binding_index(production, "REQUESTS"), "type"),
                   "plain_text")
    [v] = found(prod(prod_pack, plan), "worker-request-analytics")
    assert "no analytics_engine binding REQUESTS" in v.message and "503" in v.message
    assert v.level == "mandatory"


def test_a_version_without_its_version_metadata_is_a_violation(prod_pack: PackProcess, production: Plan) -> None:
    index = _binding_index(production, "CF_VERSION_METADATA")
    plan = changed(production, "api-version", ("bindings", index, "name"), "SOMETHING_ELSE")
    [v] = found(prod(prod_pack, plan), "worker-request-analytics")
    assert "no version_metadata binding CF_VERSION_METADATA" in v.message


# --- production-completeness ----------------------------------------------------------------

def test_production_without_a_lifecycle_is_incomplete(prod_pack: PackProcess, production: Plan) -> None:
    result = prod(prod_pack, without(production, "cloudflare:index/r2BucketLifecycle:R2BucketLifecycle"))
    messages = [v.message for v in found(result, "production-completeness")]
    assert any("no cloudflare:index/r2BucketLifecycle:R2BucketLifecycle" in m for m in messages)
    assert any("has no lifecycle rule" in m for m in messages)


def test_production_without_a_route_is_incomplete(prod_pack: PackProcess, production: Plan) -> None:
    result = prod(prod_pack, without(production, "cloudflare:index/workersRoute:WorkersRoute"))
    [v] = found(result, "production-completeness")
    assert "the Worker route on the domain" in v.message


def test_completeness_does_not_apply_to_staging(staging_pack: PackProcess, staging: Plan) -> None:
    result = gate(staging_pack, without(staging, "cloudflare:index/workersRoute:WorkersRoute"))
    assert not found(result, "production-completeness")
    assert not_applicable(result, "production-completeness")


# --- pre-deploy-checklist -------------------------------------------------------------------

def test_missing_evidence_names_every_item_with_the_guides_wording(prod_pack: PackProcess, production: Plan) -> None:
    result = gate(prod_pack, production)
    violations = found(result, "pre-deploy-checklist")
    assert len(violations) == len(ITEMS) + 1 and all(v.level == "mandatory" for v in violations)  # + the commit
    assert any("'stagingSmokeTests' is missing: \"Environment Ready: Smoke tests passing on staging\"" in v.message
               for v in violations)
    assert not result.passed


def test_one_false_item_is_the_only_violation(prod_pack: PackProcess, production: Plan) -> None:
    result = gate(prod_pack, production, evidence={**COMPLETE_EVIDENCE, "securityAudit": False})
    [v] = found(result, "pre-deploy-checklist")
    assert "'securityAudit' is False" in v.message and "pnpm audit" in v.message


@pytest.mark.parametrize("commit", ["not-a-sha", "0" * 40, "0000000"])
def test_evidence_must_name_a_commit(prod_pack: PackProcess, production: Plan, commit: str) -> None:
    result = gate(prod_pack, production, evidence={**COMPLETE_EVIDENCE, "commit": commit})
    [v] = found(result, "pre-deploy-checklist")
    assert "names no commit" in v.message


def test_checklist_is_advisory_on_staging(staging_pack: PackProcess, staging: Plan) -> None:
    violations = found(gate(staging_pack, staging), "pre-deploy-checklist")
    assert violations and {v.level for v in violations} == {"advisory"}


# Mandatory everywhere: no policy config may disable them or make them advisory.
LOCKED = ["data-protection", "environment-hostname-isolation", "environment-isolation",
          "preview-isolated", "secrets-as-secret-bindings", "suppressions-valid"]


def test_all_key_sets_every_level_as_the_engine_does(prod_pack: PackProcess, production: Plan) -> None:
    # `all` first, then named entries, as the engine reconciles; the locked policies stay mandatory.
    kept = [*LOCKED, "migrations-rollback-safe", "migrations-rehearsed"]  # the last two locked in production only
    result = gate(prod_pack, production, {"all": "advisory", **{name: "mandatory" for name in LOCKED},
                                          "migrations-rollback-safe": {"enforcementLevel": "mandatory",
                                                                       **SAFE_MIGRATIONS},
                                          "migrations-rehearsed": {"enforcementLevel": "mandatory",
                                                                   **SAFE_REHEARSAL}})
    levels = {name: cfg.level for name, cfg in result.config.items()}
    assert {levels[name] for name in kept} == {"mandatory"}
    assert {level for name, level in levels.items() if name not in kept} == {"advisory"}
    assert result.passed and found(result, "pre-deploy-checklist")


@pytest.mark.parametrize("config", [
    {"all": "disabled"}, {"all": "advisory"}, {"data-protection": "advisory"},
    {"environment-isolation": {"enforcementLevel": "disabled"}}, {"all": "mandatory", "suppressions-valid": "advisory"},
])
def test_no_policy_config_can_lower_a_locked_policy(prod_pack: PackProcess, production: Plan,
                                                     config: dict[str, Any]) -> None:
    with pytest.raises(PolicyConfigError) as info:
        prod(prod_pack, production, config)
    text = str(info.value)
    lowered = LOCKED if "all" in config and config["all"] != "mandatory" else [n for n in config if n != "all"]
    assert all(name in text for name in lowered), text
    assert "cannot be disabled or made advisory" in text


def test_the_pack_itself_refuses_a_lowered_locked_policy_as_under_the_real_engine(prod_pack: PackProcess) -> None:
    # What `pulumi preview --policy-pack-config` sends after reconciling: the engine reports the
    # pack's Configure error ("configuring policy pack ...") and stops.
    import grpc
    from pulumi.runtime.proto import analyzer_pb2

    stub = prod_pack.connect()
    request = analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={
        "data-protection": analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.DISABLED),
        "backup-retention": analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.ADVISORY),
    })
    with pytest.raises(grpc.RpcError) as info:
        stub.Configure(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "data-protection" in info.value.details() and "backup-retention" not in info.value.details()


def test_remediate_keeps_a_locked_policy_blocking(prod_pack: PackProcess, production: Plan) -> None:
    result = prod(prod_pack, changed(production, "database-d1", protect=False), {"data-protection": "remediate"})
    [v] = found(result, "data-protection")
    assert v.level == "mandatory" and not result.passed


def test_every_allowed_downgrade_is_listed(prod_pack: PackProcess, production: Plan) -> None:
    result = gate(prod_pack, production, {"pre-deploy-checklist": "advisory", "backup-retention": "disabled",
                                          "worker-observability": "mandatory"})
    assert [(d.policy, d.was, d.now) for d in result.downgrades] == [
        ("backup-retention", "mandatory", "disabled"), ("pre-deploy-checklist", "mandatory", "advisory")]
    assert result.summary()["downgrades"] == [
        {"policy": "backup-retention", "from": "mandatory", "to": "disabled"},
        {"policy": "pre-deploy-checklist", "from": "mandatory", "to": "advisory"}]


def test_the_packs_own_staging_level_for_the_checklist_is_no_downgrade(
        staging_pack: PackProcess, staging: Plan) -> None:
    result = gate(staging_pack, staging, {"pre-deploy-checklist": "advisory"})
    assert result.downgrades == [] and result.config["pre-deploy-checklist"].level == "advisory"


def test_unknown_policy_in_config_is_a_config_error(prod_pack: PackProcess, production: Plan) -> None:
    with pytest.raises(PolicyConfigError, match="unknown policies: pre-deploy-checklst"):
        gate(prod_pack, production, {"pre-deploy-checklst": {"commit": "abc1234"}})


def test_production_without_its_health_alert_is_incomplete(prod_pack: PackProcess, production: Plan) -> None:
    result = prod(prod_pack, without(production, "cloudflare:index/notificationPolicy:NotificationPolicy"))
    [v] = found(result, "production-completeness")
    assert "the alert when the health check fails" in v.message


# --- environment-hostname-isolation ---------------------------------------------------------

HOSTNAMES = "environment-hostname-isolation"


def test_committed_stacks_use_only_their_own_hostnames(
        prod_pack: PackProcess, production: Plan, staging_pack: PackProcess, staging: Plan) -> None:
    assert not found(prod(prod_pack, production), HOSTNAMES)
    assert not found(gate(staging_pack, staging), HOSTNAMES)


@pytest.mark.parametrize(("resource", "path", "value"), [
    ("main-route", ("pattern",), "www.instylehairboutique.co.za/api/*"),
    ("main-route", ("pattern",), "*.instylehairboutique.co.za/*"),
    ("main-dns", ("name",), "WWW.instylehairboutique.co.za."),
    ("main-pages-domain", ("name",), "www.instylehairboutique.co.za"),
])
def test_staging_resource_on_productions_hostname_is_a_mandatory_violation(
        staging_pack: PackProcess, staging: Plan, resource: str, path: tuple[str, ...], value: str) -> None:
    result = gate(staging_pack, changed(staging, resource, path, value))
    [v] = found(result, HOSTNAMES)
    assert v.level == "mandatory" and v.severity == "critical" and not result.passed
    assert v.resource.endswith(f"::{resource}")
    assert "www.instylehairboutique.co.za" in v.message and "Pulumi.production.yaml (production)" in v.message
    assert "Why:" in v.message and "Fix:" in v.message


def test_production_resource_on_a_staging_labelled_hostname_is_a_violation(
        prod_pack: PackProcess, production: Plan) -> None:
    [v] = found(prod(prod_pack, changed(production, "main-dns", ("name",), "test.instylehairboutique.co.za")),
                HOSTNAMES)
    assert "staging/test-labelled" in v.message and v.resource.endswith("::main-dns")


def test_hostname_isolation_does_not_apply_without_routes_dns_or_pages_domains(
        prod_pack: PackProcess, production: Plan) -> None:
    plan = production
    for token in ("cloudflare:index/workersRoute:WorkersRoute", "cloudflare:index/dnsRecord:DnsRecord",
                  "cloudflare:index/pagesDomain:PagesDomain"):
        plan = without(plan, token)
    result = prod(prod_pack, plan)
    assert not found(result, HOSTNAMES)
    assert not_applicable(result, HOSTNAMES)


def test_an_unreadable_committed_stack_file_fails_hostname_isolation(
        project: Project, staging: Plan, tmp_path: Path) -> None:
    # The pack reads the stack files next to its own folder, as under `pulumi preview --policy-pack`.
    shutil.copytree(PACK, tmp_path / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("Pulumi.yaml", "Pulumi.production.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "Pulumi.broken.yaml").write_text("config:\n  booking:domain: a\n  booking:domain: b\n")
    with PackProcess(tmp_path / "policies", project.name, "staging", load_stack(project, "staging").flat) as pack:
        result = gate(pack, staging)
    [v] = found(result, HOSTNAMES)
    assert "Pulumi.broken.yaml" in v.message and v.level == "mandatory"
