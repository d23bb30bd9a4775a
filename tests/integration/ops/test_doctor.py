"""`ops.observation.doctor` against the API double: a healthy account passes, and each check fails when exactly
its assumption is broken, saying what and how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudflare import Cloudflare

from bookingctl.options import load_stack_config
from ops.observation.doctor import Check, DoctorInputError, Report, Target, run, target_of
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import CloudflareDouble, Fault, TokenState
from tests.helpers.doctor_account import (
    MAIN_WIDGET,
    MAIN_ZONE,
    RULESET,
    doctor_project,
    healthy_account,
)
from tests.helpers.saas_stack import DATABASE, FALLBACK, SAAS_WIDGET, SAAS_ZONE, STACK

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow


@pytest.fixture
def target(tmp_path: Path) -> Target:
    (tmp_path / "project").mkdir()
    cfg = load_stack_config(STACK, doctor_project(tmp_path / "project"))
    return target_of(cfg, STACK)


@pytest.fixture
def account(double: CloudflareDouble) -> CloudflareDouble:
    healthy_account(double)
    return double


def as_token(double: CloudflareDouble, token: TokenState) -> Cloudflare:
    double.add_token("another-test-token", token)
    return Cloudflare(api_token="another-test-token", base_url=double.base_url, _strict_response_validation=True,
                      max_retries=1)


def check(report: Report, name: str) -> Check:
    found = [c for c in report.checks if c.name == name] or [c for c in report.checks if c.name.startswith(name + " ")]
    assert len(found) == 1, [c.name for c in report.checks]
    return found[0]


def test_a_healthy_account_passes_every_check(account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    report = run(client, target)
    assert report.ok, [c for c in report.checks if c.ok is not True]
    assert all(c.ok is True for c in report.checks), [c for c in report.checks if c.ok is not True]
    names = [c.name for c in report.checks]
    for expected in ("token", "token permissions", f"zone plan main ({MAIN_ZONE})", f"zone plan saas ({SAAS_ZONE})",
                     f"rate limiting entry point main ({MAIN_ZONE})", f"Turnstile widget {MAIN_WIDGET!r}",
                     f"Turnstile widget {SAAS_WIDGET!r}", f"custom hostname quota ({SAAS_ZONE})",
                     f"D1 database {DATABASE}", "R2 bucket appointmentbooking-backups-staging"):
        assert expected in names


def test_every_check_is_a_read(account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    run(client, target)
    writes = [(m, p) for m, p in account.requests if m != "GET"]
    # The only POSTs: the GraphQL introspection query and the D1 `SELECT 1`, both reads.
    assert {p.rsplit("/", 1)[-1] for _, p in writes} <= {"graphql", "query"}, writes
    assert all(sql == "SELECT 1" for sql in account.sql)


def test_a_missing_permission_is_named_with_its_zone_and_the_fix(account: CloudflareDouble, target: Target) -> None:
    with as_token(account, TokenState.full(ACCOUNT, leave_out={"Zone WAF Write"})) as sdk:
        found = check(run(sdk, target), "token permissions")
    assert found.ok is False
    assert f"Zone WAF Write on zone {MAIN_ZONE}" in found.detail and "http_ratelimit" in found.detail
    assert f"Zone WAF Write on zone {SAAS_ZONE}" in found.fix


def test_a_saas_stack_needs_turnstile_sites_read_for_the_programs_read_of_the_live_widgets(
        account: CloudflareDouble, target: Target) -> None:
    """`pulumi preview` reads the live SaaS widgets (getTurnstileWidgets): a read-only token without
    any Turnstile permission is told so, naming Turnstile Sites Read; with it, that need is met."""
    turnstile = {"Turnstile Sites Read", "Turnstile Sites Write", "Account Settings Read", "Account Settings Write"}
    with as_token(account, TokenState.full(ACCOUNT, leave_out=turnstile)) as sdk:
        found = check(run(sdk, target), "token permissions")
    assert found.ok is False and "reading the live SaaS widgets' domains" in found.detail
    assert "Turnstile Sites Read on the account" in found.fix
    with as_token(account, TokenState.full(ACCOUNT, leave_out=turnstile - {"Turnstile Sites Read"})) as sdk:
        found = check(run(sdk, target), "token permissions")
    assert "reading the live SaaS widgets' domains" not in found.detail
    assert "Turnstile Sites Write or Account Settings Write on the account" in found.detail


def test_a_deny_policy_takes_a_permission_away(account: CloudflareDouble, target: Target) -> None:
    from tests.helpers.cf_double import policy

    token = TokenState.full(ACCOUNT)
    token.policies.append(policy(["D1 Write"], {f"com.cloudflare.api.account.{ACCOUNT}": "*"}, effect="deny"))
    with as_token(account, token) as sdk:
        found = check(run(sdk, target), "token permissions")
    assert found.ok is False and "D1 Write on the account" in found.detail


def test_a_token_that_cannot_read_itself_falls_back_to_probes_and_never_passes(
        account: CloudflareDouble, target: Target) -> None:
    with as_token(account, TokenState.full(ACCOUNT, read_self=False)) as sdk:
        found = check(run(sdk, target), "token permissions")
    assert found.ok is None and found.status == "unchecked"
    assert "cannot read its own policies" in found.detail and "read-only probes" in found.detail
    assert "Write half" in found.detail and "API Tokens Read" in found.fix


def test_a_probe_the_token_is_refused_fails_the_fallback(account: CloudflareDouble, target: Target) -> None:
    token = TokenState.full(ACCOUNT, read_self=False, leave_out={"D1 Read", "D1 Write"})
    with as_token(account, token) as sdk:
        report = run(sdk, target)
    found = check(report, "token permissions")
    assert found.ok is False and f"GET /accounts/{ACCOUNT}/d1/database refused (D1 Read missing" in found.detail
    assert check(report, "D1 database").ok is False


def test_an_account_owned_token_is_told_turnstile_does_not_take_it(account: CloudflareDouble, target: Target) -> None:
    with as_token(account, TokenState.full(ACCOUNT, kind="account")) as sdk:
        report = run(sdk, target)
    assert check(report, "token permissions").ok is True  # read through /accounts/{id}/tokens/{id}
    found = check(report, "token type")
    assert found.ok is False and "Turnstile" in found.detail and "account-owned-tokens.mdx" in found.source


def test_an_expired_token_fails_the_token_line(account: CloudflareDouble, target: Target) -> None:
    token = TokenState.full(ACCOUNT)
    token.status = "expired"
    with as_token(account, token) as sdk:
        report = run(sdk, target)
    found = check(report, "token")
    assert found.ok is False and "is expired" in found.detail and "CLOUDFLARE_API_TOKEN" in found.fix
    assert not report.ok


def test_an_unknown_token_is_bad_input(account: CloudflareDouble, target: Target) -> None:
    with Cloudflare(api_token="nobody", base_url=account.base_url, max_retries=0) as sdk, \
            pytest.raises(DoctorInputError, match="not a valid token"):
        run(sdk, target)


def test_a_free_zone_cannot_hold_four_rules_or_a_health_check(
        account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    account.zones[MAIN_ZONE].plan = "free"
    found = check(run(client, target), f"zone plan main ({MAIN_ZONE})")
    assert found.ok is False
    assert "rules 4 rules (login, bookings, messages, payments), allowed at most 1 on Free" in found.detail
    assert "http.request.method" in found.detail and "a Health Check, which needs Pro or above" in found.detail
    assert "zoneRuleset false" in found.fix and 'booking:healthCheck "false"' in found.fix
    assert "rate-limiting-availability-by-plan.mdx" in found.source


def test_a_zone_missing_from_the_account_fails_its_plan_line_naming_the_key(
        account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    del account.zones[MAIN_ZONE]
    found = check(run(client, target), f"zone plan main ({MAIN_ZONE})")
    assert found.status == "fail" and "booking:zoneId" in found.fix


def test_a_token_with_no_permissions_at_all_fails_the_permissions_line(
        account: CloudflareDouble, target: Target) -> None:
    with as_token(account, TokenState("0" * 32, "user", [])) as sdk:
        found = check(run(sdk, target), "token permissions")
    assert found.status == "fail"


def test_a_plan_other_than_the_stack_file_states_is_named_with_its_key(
        account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    account.zones[MAIN_ZONE].plan = "enterprise"
    found = check(run(client, target), f"zone plan main ({MAIN_ZONE})")
    assert found.ok is False and "enterprise plan, but booking:zonePlan says business" in found.detail
    assert found.fix == "set booking:zonePlan to enterprise"


def test_an_entry_point_the_stack_does_not_manage_must_be_imported_first(
        account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    existing = account.ruleset("http_ratelimit", name="default")
    account.zones[MAIN_ZONE].rulesets.append(existing)
    found = check(run(client, target), f"rate limiting entry point main ({MAIN_ZONE})")
    assert found.ok is False and existing["id"] in found.detail
    ruleset_id = existing["id"]
    assert f'booking:rateLimits.existingRulesetIds: {{"{MAIN_ZONE}": "{ruleset_id}"}}' in found.fix
    assert f"Pulumi.{STACK}.yaml" in found.fix and f"zones/{MAIN_ZONE}/{ruleset_id}" in found.fix


def test_the_stacks_own_entry_point_passes(account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    account.zones[MAIN_ZONE].rulesets.append(account.ruleset("http_ratelimit", name=RULESET))
    assert check(run(client, target), f"rate limiting entry point main ({MAIN_ZONE})").ok is True


def test_a_full_saas_widget_fails_before_the_next_salon(
        account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    widget = next(w for w in account.turnstile_widgets.values() if w["name"] == SAAS_WIDGET)
    widget["domains"] = [FALLBACK] + [f"salon{i}.example.co.za" for i in range(14)]
    found = check(run(client, target), f"Turnstile widget {SAAS_WIDGET!r}")
    assert found.ok is False and "15 hostname(s) of 15 (free plan)" in found.detail and "full" in found.detail
    assert "hostname-management" in found.source


def test_an_unknown_graphql_field_in_the_canary_query_is_named(
        account: CloudflareDouble, client: Cloudflare, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    import ops.observation.doctor_account

    # Where the doctor looks the query up (it imports ops/observation/analytics.py's GRAPHQL_QUERY).
    query = ops.observation.doctor_account.GRAPHQL_QUERY.replace("scriptVersion", "scriptVersion httpResponseStatus",
                                                                 1)
    monkeypatch.setattr(ops.observation.doctor_account, "GRAPHQL_QUERY", query)
    found = check(run(client, target), "canary GraphQL query")
    assert found.ok is False
    assert 'Cannot query field \'httpResponseStatus\'' in found.detail and "GRAPHQL_QUERY" in found.fix


def test_the_canary_query_as_committed_passes_the_schema(
        account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    assert check(run(client, target), "canary GraphQL query").ok is True


def test_a_missing_database_fails_with_the_fix(account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    account.databases.clear()
    found = check(run(client, target), f"D1 database {DATABASE}")
    assert found.ok is False and "no D1 database named" in found.detail and "pulumi up" in found.fix


def test_a_missing_bucket_fails_with_the_fix(account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    account.buckets.clear()
    found = check(run(client, target), "R2 bucket")
    assert found.ok is False and "no R2 bucket named 'appointmentbooking-backups-staging'" in found.detail
    assert "booking:backupBucketName" in found.fix


def test_a_saas_zone_at_its_hard_cap_fails(account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    zone = account.saas_zones[SAAS_ZONE]
    zone.quota_allocated, zone.quota_hard_cap = 1, 2
    for i in range(2):
        zone.hostnames[f"h{i}"] = {"id": f"h{i}", "hostname": f"salon{i}.example.co.za"}
    found = check(run(client, target), "custom hostname quota")
    assert found.ok is False and "2 custom hostname(s) in use, 1 allocated, hard cap 2" in found.detail


def test_an_unreadable_quota_is_reported_unchecked_never_passed(
        account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    account.inject(Fault("GET", r"/custom_hostnames/quota$", status=404))
    found = check(run(client, target), "custom hostname quota")
    assert found.ok is None and "the limit was not checked" in found.detail
    assert "holds 0 custom hostname" in found.detail


def test_cloudflare_failing_every_retry_is_unreachable(account: CloudflareDouble, target: Target) -> None:
    account.inject(Fault("GET", r"/zones/[^/]+$", status=503, times=10))
    with Cloudflare(api_token="test-token-not-a-real-secret", base_url=account.base_url, max_retries=2) as sdk, \
            pytest.raises(DoctorInputError, match="503"):
        run(sdk, target)


def test_two_widgets_named_as_the_saas_widget_fail_as_tenants_add_would_refuse_them(
        account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    copy = account.add_turnstile_widget(SAAS_WIDGET, [FALLBACK])  # a dashboard copy with the same name
    found = check(run(client, target), f"Turnstile widget {SAAS_WIDGET!r}")
    assert found.ok is False and str(copy["sitekey"]) in found.detail and "delete" in found.fix


def test_a_saas_widget_listing_more_than_its_plan_allows_counts_what_the_account_holds(
        account: CloudflareDouble, client: Cloudflare, target: Target) -> None:
    widget = next(w for w in account.turnstile_widgets.values() if w["name"] == SAAS_WIDGET)
    widget["domains"] = [FALLBACK] + [f"salon{i}.example.co.za" for i in range(20)]  # outside our control
    found = check(run(client, target), f"Turnstile widget {SAAS_WIDGET!r}")
    assert found.ok is False and "21 hostname(s) of 15" in found.detail and "over the limit" in found.detail
