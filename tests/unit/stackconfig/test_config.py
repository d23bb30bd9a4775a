"""Stack config validation: every bad value names the file, the key, what was found and what is allowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from booking_shared.naming import looks_like_staging
from booking_shared.rollout import RolloutSettings
from stackconfig.files import parse_config
from stackconfig.model import StackConfig
from stackconfig.problems import ConfigError
from tests.helpers import REPO
from tests.helpers.stack_config import BASE, SECRETS


def parse(changes: dict[str, Any] | None = None, secret_keys: set[str] | None = None) -> StackConfig:
    flat = dict(BASE)
    for key, value in (changes or {}).items():
        if value is None:
            flat.pop(key)
        else:
            flat[key] = value
    keys = set(SECRETS) if secret_keys is None else secret_keys
    return parse_config(flat, keys, stack="production", source="Pulumi.production.yaml", project_root=REPO)


def problems(changes: dict[str, Any], secret_keys: set[str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(changes, secret_keys)
    return info.value


def test_valid_production_config_parses_with_derived_route_and_health_url() -> None:
    cfg = parse()
    assert cfg.environment == "production"
    assert cfg.backup_retention_days == 30
    assert cfg.route_pattern == "www.instylehairboutique.co.za/*"
    assert cfg.health_url == "https://www.instylehairboutique.co.za/api/health"
    assert cfg.worker_bundle == (REPO / "worker/src/index.js").resolve()


def test_config_model_is_frozen() -> None:
    cfg = parse()
    with pytest.raises(ValueError):
        cfg.domain = "evil.example.com"  # type: ignore[misc]


def test_unknown_environment_names_file_key_found_and_allowed() -> None:
    err = problems({"booking:environment": "prod"})
    [p] = err.problems
    assert p.key == "environment"
    assert "'prod'" in p.found
    assert "production" in p.allowed and "staging" in p.allowed
    text = err.render()
    assert "Pulumi.production.yaml" in text and "booking:environment" in text
    assert "pulumi config set booking:environment" in text


@pytest.mark.parametrize("days", ["0", "-3", "abc", "4000"])
def test_backup_retention_outside_1_to_3650_days_is_refused(days: str) -> None:
    [p] = problems({"booking:backupRetentionDays": days}).problems
    assert p.key == "backupRetentionDays"
    assert repr(days) in p.found


@pytest.mark.parametrize("domain", ["https://www.example.co.za", "www.example.co.za/book", "localhost",
                                    "WWW.EXAMPLE.CO.ZA", "bad_label.example.com", "-x.example.com"])
def test_domain_that_is_not_a_bare_hostname_is_refused(domain: str) -> None:
    [p] = problems({"booking:domain": domain}).problems
    assert p.key == "domain"
    assert "hostname" in p.allowed


def test_production_database_name_that_looks_like_staging_is_refused() -> None:
    [p] = problems({"booking:databaseName": "appointmentbooking-db-staging"}).problems
    assert p.key == "databaseName"
    assert "appointmentbooking-db-staging" in p.found
    assert "production" in p.allowed


def test_staging_database_name_without_a_staging_marker_is_refused() -> None:
    [p] = problems({"booking:environment": "staging", "booking:domain": "staging.instylehairboutique.co.za"}).problems
    assert p.key == "databaseName"
    assert "staging" in p.allowed


def test_production_domain_with_a_staging_label_is_refused() -> None:
    [p] = problems({"booking:domain": "staging.instylehairboutique.co.za"}).problems
    assert p.key == "domain"


@pytest.mark.parametrize(("name", "expected"), [
    ("appointmentbooking-db-staging", True), ("appointmentbooking_test", True), ("staging.example.co.za", True),
    ("appointmentbooking-db", False), ("testimonials-db", False), ("devonport.example.com", False),
])
def test_staging_markers_match_whole_words_only(name: str, expected: bool) -> None:
    assert looks_like_staging(name) is expected


def test_plain_text_secret_is_refused_without_echoing_it() -> None:
    err = problems({}, secret_keys={"booking:googleCalendarCredentials", "booking:whatsappToken"})
    [p] = err.problems
    assert p.key == "paystackSecretKey"
    assert "plain-text" in p.found
    text = err.render()
    assert "sk_test_x" not in text
    assert "pulumi config set --secret booking:paystackSecretKey" in text


def test_missing_secret_is_refused_with_the_secret_set_command() -> None:
    err = problems({"booking:whatsappToken": None})
    [p] = err.problems
    assert p.key == "whatsappToken"
    assert "not set" in p.found
    assert "--secret booking:whatsappToken" in err.render()


def test_misspelt_key_is_reported_as_unknown_with_the_known_keys() -> None:
    [p] = problems({"booking:databseName": "x"}).problems
    assert p.key == "databseName"
    assert "unknown" in p.found
    assert "databaseName" in p.allowed


def test_keys_of_other_namespaces_are_ignored() -> None:
    assert parse({"aws:region": "us-east-1", "cloudflare:apiToken": "v1:x"},
                 secret_keys={*SECRETS, "cloudflare:apiToken"}).environment == "production"


@pytest.mark.parametrize("key", ["cloudflare:apiToken", "cloudflare:apiKey", "aws:secretKey"])
def test_a_plain_provider_credential_is_refused_without_echoing_it(key: str) -> None:
    err = problems({key: "LEAKCANARY_cf_token_0123456789"})
    [p] = err.problems
    assert p.key == key and "not shown" in p.found
    text = err.render()
    assert "LEAKCANARY" not in text
    assert f"- {key}: found" in text and f"pulumi config set --secret {key}" in text


@pytest.mark.parametrize(("key", "value"), [
    ("booking:pagesProductionBranch", "sk_live_LEAKCANARY0123456789"),
    ("booking:alertEmail", "sk_live_LEAKCANARY0123456789@company.com"),
    ("booking:databaseName", "Bearer LEAKCANARYabcdefghijklmnop"),
    ("booking:tenants", json.dumps([{"slug": "sk_live_LEAKCANARY0123456789", "hostname": "a.example.co.za",
                                     "zoneId": "ab" * 16}])),
    ("other:note", "EAAGLEAKCANARY0123456789abcdefgh"),
])
def test_a_credential_shaped_value_in_a_plain_key_is_refused_and_never_printed(key: str, value: str) -> None:
    err = problems({key: value})
    assert [p.key for p in err.problems] == [key.removeprefix("booking:")]
    assert "looks like" in err.problems[0].found and "not shown" in err.problems[0].found
    assert "LEAKCANARY" not in err.render()


def test_every_problem_is_reported_at_once() -> None:
    err = problems({"booking:environment": "prod", "booking:accountId": "xyz", "booking:workerRoute": "*"})
    assert {p.key for p in err.problems} == {"environment", "accountId", "workerRoute"}


def test_tenants_arrive_as_json_and_parse_into_models() -> None:
    tenants = [{"slug": "glamour", "hostname": "book.glamoursalon.co.za", "zoneId": "ab" * 16, "zonePlan": "business"}]
    cfg = parse({"booking:tenants": json.dumps(tenants)})
    assert cfg.tenants[0].hostname == "book.glamoursalon.co.za"
    assert cfg.tenants[0].zone_id == "ab" * 16


def test_tenant_with_a_bad_zone_id_names_its_index() -> None:
    tenants = [{"slug": "glamour", "hostname": "book.glamoursalon.co.za", "zoneId": "nope"}]
    [p] = problems({"booking:tenants": json.dumps(tenants)}).problems
    assert p.key == "tenants[0].zoneId"
    assert "'nope'" in p.found


def test_tenant_hostname_equal_to_the_main_domain_is_refused() -> None:
    tenants = [{"slug": "dup", "hostname": "www.instylehairboutique.co.za", "zoneId": "ab" * 16}]
    [p] = problems({"booking:tenants": json.dumps(tenants)}).problems
    assert p.key == "tenants[0]"
    assert "booking:domain" in p.allowed


def test_duplicate_tenant_slugs_are_refused() -> None:
    tenants = [{"slug": "a", "hostname": "a.one.co.za", "zoneId": "ab" * 16},
               {"slug": "a", "hostname": "a.two.co.za", "zoneId": "cd" * 16}]
    [p] = problems({"booking:tenants": json.dumps(tenants)}).problems
    assert p.key == "tenants[1]"


def test_missing_worker_bundle_file_is_refused() -> None:
    [p] = problems({"booking:workerBundle": "worker/dist/missing.js"}).problems
    assert p.key == "workerBundle"
    assert "no file is there" in p.allowed


@pytest.mark.parametrize("date", ["2026/10/01", "2999-01-01", "yesterday"])
def test_compatibility_date_must_be_a_past_iso_date(date: str) -> None:
    [p] = problems({"booking:compatibilityDate": date}).problems
    assert p.key == "compatibilityDate"


def test_production_needs_an_alert_address() -> None:
    [p] = problems({"booking:alertEmail": None}).problems
    assert p.key == "alertEmail" and "health alerts" in p.allowed


def test_alert_address_must_be_an_email() -> None:
    [p] = problems({"booking:alertEmail": "not-an-email"}).problems
    assert p.key == "alertEmail" and "email address" in p.allowed


def test_an_alert_address_without_a_health_check_is_refused_naming_both_keys() -> None:
    with pytest.raises(ConfigError) as info:
        parse({"booking:healthCheck": "false"})
    assert "booking:alertEmail" in info.value.render() and "booking:healthCheck" in info.value.render()


def test_production_without_a_health_check_needs_no_alert_address() -> None:
    cfg = parse({"booking:healthCheck": "false", "booking:alertEmail": None})
    assert cfg.health_check is False and cfg.alert_email is None


def test_the_pre_deploy_export_is_off_unless_asked_for() -> None:
    assert parse().rollout.pre_deploy_export is False
    assert parse({"booking:rollout": '{"preDeployExport": true}'}).rollout.pre_deploy_export is True


def test_the_pre_deploy_export_at_its_old_place_is_refused_naming_the_new_one() -> None:
    [p] = problems({"booking:preDeployExport": "true"}).problems
    assert p.key == "preDeployExport" and p.allowed == "booking:rollout.preDeployExport"
    assert "booking:rollout" in p.fix


def test_rollout_defaults_are_the_guides_thresholds() -> None:
    settings = parse().rollout
    # One model: what the stack file says is what the canary reads (booking_shared.rollout).
    assert isinstance(settings, RolloutSettings)
    assert (settings.canary_percent, settings.bake_minutes, settings.error_rate_percent, settings.latency_seconds,
            settings.min_requests, settings.on_insufficient_traffic) == (10, 10, 5, 2, 100, "probes")


def test_every_bad_rollout_value_is_reported_with_its_key_and_what_is_allowed() -> None:
    found = problems({"booking:rollout": json.dumps({"canaryPercent": 80, "bakeMinutes": -1,
                                                     "errorRatePercent": "lots", "onInsufficientTraffic": "pray",
                                                     "minRequest": 100})}).problems
    by_key = {p.key: p for p in found}
    assert set(by_key) == {"rollout.canaryPercent", "rollout.bakeMinutes", "rollout.errorRatePercent",
                           "rollout.onInsufficientTraffic", "rollout.minRequest"}
    assert "50" in by_key["rollout.canaryPercent"].allowed
    assert "probes" in by_key["rollout.onInsufficientTraffic"].allowed
    assert "minRequests" in by_key["rollout.minRequest"].allowed


def test_production_bakes_at_least_five_minutes_and_staging_may_skip_the_bake() -> None:
    [p] = problems({"booking:rollout": '{"bakeMinutes": 2}'}).problems
    assert p.key == "rollout.bakeMinutes" and "at least 5 in production" in p.allowed
    staging = parse({"booking:environment": "staging", "booking:domain": "staging.instylehairboutique.co.za",
                     "booking:databaseName": "appointmentbooking-db-staging", "booking:rollout": '{"bakeMinutes": 0}'})
    assert staging.rollout.bake_minutes == 0


# --- workerBundle stays inside the project (D7) ---------------------------------------------

def bundle_problem(value: str, root: Path = REPO) -> str:
    flat = {**BASE, "booking:workerBundle": value}
    with pytest.raises(ConfigError) as info:
        parse_config(flat, set(SECRETS), stack="production", source="Pulumi.production.yaml", project_root=root)
    [p] = info.value.problems
    assert p.key == "workerBundle"
    return p.allowed


@pytest.mark.parametrize("value", ["/etc/hostname", "/proc/self/environ", "../../../etc/passwd",
                                   "worker/../../../../proc/self/environ", "~/bundle.js", "worker/\x00x.js"])
def test_worker_bundle_outside_the_project_is_refused(value: str) -> None:
    assert "relative to the project" in bundle_problem(value)


def test_worker_bundle_symlinked_out_of_the_project_is_refused(tmp_path: Path) -> None:
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "index.js").symlink_to("/proc/self/environ")
    assert "inside the project" in bundle_problem("worker/index.js", tmp_path)


def test_worker_bundle_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.js")
    assert "a regular file" in bundle_problem("pipe.js", tmp_path)
    assert "a regular file" in bundle_problem("worker", REPO)


def test_worker_bundle_larger_than_cloudflares_limit_is_refused(tmp_path: Path) -> None:
    with (tmp_path / "big.js").open("wb") as handle:
        handle.truncate(10 * 1024 * 1024 + 1)
    allowed = bundle_problem("big.js", tmp_path)
    assert "10 MiB" in allowed and "Cloudflare" in allowed


# --- routes, hostnames, branches (D19) ------------------------------------------------------

@pytest.mark.parametrize("route", ["/*evil", "/\x00*", "/../../*", "/*.evil.com/*", "/*?x=1#frag", "//evil.com/*",
                                   "/api/../*", "/a b/*", "/ä/*"])
def test_worker_route_that_is_not_a_cloudflare_path_pattern_is_refused(route: str) -> None:
    [p] = problems({"booking:workerRoute": route}).problems
    assert p.key == "workerRoute" and "'*' only as the last character" in p.allowed


def test_worker_route_that_would_not_reach_the_api_is_refused() -> None:
    # `/` matches the home page only: /api/* (and the health check on /api/health) would go to Pages.
    [p] = problems({"booking:workerRoute": "/"}).problems
    assert p.key == "workerRoute" and "/api/health" in p.allowed


@pytest.mark.parametrize("route", ["/*", "/api/*", "/api*"])
def test_worker_routes_covering_the_api_are_accepted(route: str) -> None:
    assert parse({"booking:workerRoute": route}).worker_route == route


@pytest.mark.parametrize("domain", ["10.0.0.1", "www.example.123", "1.2.3.4"])
def test_ip_address_or_numeric_top_level_domain_is_refused(domain: str) -> None:
    [p] = problems({"booking:domain": domain}).problems
    assert p.key == "domain" and "not an IP address" in p.allowed


def test_tenant_hostname_that_is_an_ip_address_is_refused() -> None:
    tenants = [{"slug": "ip", "hostname": "192.168.1.20", "zoneId": "ab" * 16}]
    [p] = problems({"booking:tenants": json.dumps(tenants)}).problems
    assert p.key == "tenants[0].hostname" and "not an IP address" in p.allowed


@pytest.mark.parametrize("branch", ["../../ x;rm -rf /", "main..x", "-main", "a b", "release.lock", "@", "a//b",
                                    "feature/", ".hidden", "x@{1}", "tab\there", "a:b", "ref~1", "a^", "*", "?"])
def test_pages_production_branch_must_be_a_valid_git_branch_name(branch: str) -> None:
    [p] = problems({"booking:pagesProductionBranch": branch}).problems
    assert p.key == "pagesProductionBranch" and "git branch name" in p.allowed


@pytest.mark.parametrize("branch", ["main", "production", "release/2026-10", "feature/x_y.z"])
def test_ordinary_branch_names_are_accepted(branch: str) -> None:
    assert parse({"booking:pagesProductionBranch": branch}).pages_production_branch == branch


def test_unknown_tenant_key_is_answered_with_the_tenant_keys() -> None:
    tenants = [{"slug": "a", "hostname": "a.example.co.za", "zoneId": "ab" * 16, "route": "/evil"}]
    [p] = problems({"booking:tenants": json.dumps(tenants)}).problems
    assert p.key == "tenants[0].route"
    assert "hostname, slug, zoneId" in p.allowed and "accountId" not in p.allowed


# --- messages a newcomer can act on ---------------------------------------------------------

def test_misspelt_key_fix_names_the_nearest_valid_key_and_not_the_misspelt_one() -> None:
    err = problems({"booking:backupRetentionDays": None, "booking:backupRetentionDay": "7"})
    text = err.render()
    unknown = next(p for p in err.problems if p.key == "backupRetentionDay")
    assert "did you mean booking:backupRetentionDays" in unknown.allowed
    assert "rename booking:backupRetentionDay to booking:backupRetentionDays" in text
    assert "pulumi config set booking:backupRetentionDay " not in text


def test_missing_key_says_a_value_is_required_in_plain_words() -> None:
    [p] = problems({"booking:zoneId": None}).problems
    assert p.allowed == "a value (the key is required)"


@pytest.mark.parametrize("changes", [
    {"booking:zoneId": None}, {"booking:backupRetentionDays": "abc"}, {"booking:backupRetentionDays": "0"},
    {"booking:environment": "prod"}, {"booking:healthCheck": "maybe"}, {"booking:compatibilityDate": "2026-02-30"},
    {"booking:tenants": "[{]"}, {"booking:tenants": json.dumps([{"slug": "a"}])}, {"booking:watch": "[1]"},
    {"booking:domain": "https://x"}, {"booking:tenants": json.dumps([None, 5])},
])
def test_no_pydantic_wording_reaches_the_user(changes: dict[str, Any]) -> None:
    text = problems(changes).render()
    for leaked in ("Field required", "Value error,", "Input should be", "pydantic", "[type="):
        assert leaked not in text, text


def test_production_tenant_hostname_with_a_staging_label_is_refused() -> None:
    tenants = [{"slug": "stg", "hostname": "staging.instylehairboutique.co.za", "zoneId": "ab" * 16}]
    [p] = problems({"booking:tenants": json.dumps(tenants)}).problems
    assert p.key == "tenants[0].hostname" and "staging/test label" in p.allowed


# --- rollback-safe migrations (issue 15): booking:servingQueries, booking:approvedUnsafeMigrations ---

def test_serving_queries_are_files_inside_the_project() -> None:
    cfg = parse({"booking:servingQueries": json.dumps(["migrations/0001_initial_schema.sql"])})
    assert cfg.serving_queries == ("migrations/0001_initial_schema.sql",)
    assert parse().serving_queries == ()


@pytest.mark.parametrize(("value", "expected"), [
    (["/etc/passwd"], "relative to the project folder"),
    (["../outside.sql"], "relative to the project folder"),
    (["queries/missing.sql"], "no file is there"),
    (["migrations"], "a regular file inside the project"),
    ("not json", "valid JSON"),
])
def test_a_serving_query_path_out_of_the_project_or_missing_is_refused(value: Any, expected: str) -> None:
    err = problems({"booking:servingQueries": value if isinstance(value, str) else json.dumps(value)})
    [p] = err.problems
    assert p.key.startswith("servingQueries") and expected in p.allowed


def test_an_approved_unsafe_migration_names_its_file_its_content_and_says_why() -> None:
    approval = {"name": "0007_drop_notes.sql", "sha256": "ab" * 32,
                "reason": "the booking app stopped reading notes in release 41"}
    cfg = parse({"booking:approvedUnsafeMigrations": json.dumps([approval])})
    assert [(a.name, a.sha256, a.reason) for a in cfg.approved_unsafe_migrations] == [tuple(approval.values())]
    err = problems({"booking:approvedUnsafeMigrations": json.dumps([{"name": "drop.sql", "reason": "short"}])})
    assert {p.key for p in err.problems} == {"approvedUnsafeMigrations[0].name", "approvedUnsafeMigrations[0].reason",
                                             "approvedUnsafeMigrations[0].sha256"}
    err = problems({"booking:approvedUnsafeMigrations": json.dumps([{**approval, "sha256": "0003"}])})
    assert [p.key for p in err.problems] == ["approvedUnsafeMigrations[0].sha256"]


# --- booking:saas ---------------------------------------------------------------------------

SAAS = {"zoneId": "ef" * 16, "fallbackHostname": "salons.instylebookings.co.za", "zonePlan": "business"}


def test_saas_arrives_as_json_with_tls_1_2_by_default() -> None:
    cfg = parse({"booking:saas": json.dumps(SAAS)})
    assert cfg.saas is not None
    assert (cfg.saas.zone_id, cfg.saas.fallback_hostname, cfg.saas.min_tls_version) == (
        "ef" * 16, "salons.instylebookings.co.za", "1.2")
    assert parse().saas is None  # the path is off unless the key is set


def test_an_unquoted_tls_version_means_the_same_version() -> None:
    cfg = parse({"booking:saas": json.dumps({**SAAS, "minTlsVersion": 1.3})})
    assert cfg.saas is not None and cfg.saas.min_tls_version == "1.3"


def test_every_bad_saas_value_is_reported_with_its_key_found_and_allowed() -> None:
    err = problems({"booking:saas": json.dumps({"zoneId": "nope", "fallbackHostname": "https://x.co.za",
                                                "minTlsVersion": "1.4", "fallbackHost": "y"})})
    found = {p.key: p for p in err.problems}
    assert set(found) == {"saas.zoneId", "saas.fallbackHostname", "saas.minTlsVersion", "saas.fallbackHost"}
    assert "32-character" in found["saas.zoneId"].allowed and "'nope'" in found["saas.zoneId"].found
    assert "'1.0', '1.1', '1.2' or '1.3'" in found["saas.minTlsVersion"].allowed
    assert "did you mean booking:saas.fallbackHostname" in found["saas.fallbackHost"].allowed
    rendered = err.render()
    assert "Pulumi.production.yaml" in rendered and "booking:saas.minTlsVersion: found '1.4'" in rendered
    assert "pulumi config set --path booking:saas.zoneId" in rendered


def test_saas_must_be_an_object() -> None:
    [p] = problems({"booking:saas": "[1, 2]"}).problems
    assert p.key == "saas" and "{zoneId, fallbackHostname, minTlsVersion}" in p.allowed


def test_saas_fallback_hostname_already_served_by_the_stack_is_refused() -> None:
    [p] = problems({"booking:saas": json.dumps({**SAAS, "fallbackHostname": "www.instylehairboutique.co.za"})}).problems
    assert p.key == "saas.fallbackHostname" and "booking:domain" in p.allowed


def test_production_saas_fallback_hostname_with_a_staging_label_is_refused() -> None:
    [p] = problems({"booking:saas": json.dumps({**SAAS, "fallbackHostname": "staging.salons.co.za"})}).problems
    assert p.key == "saas.fallbackHostname" and "staging/test label" in p.allowed
