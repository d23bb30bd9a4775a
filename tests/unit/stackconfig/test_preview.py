"""A pull request's preview stack derived from staging's (stackconfig/preview.py), and what the
model refuses in a preview stack whatever wrote it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml

from stackconfig.files import ConfigError, parse_config
from stackconfig.preview import PreviewError, derive, pr_of, stack_name
from tests.helpers import REPO
from tests.helpers.stack_config import SECRETS

TODAY = dt.date(2026, 12, 5)


def _committed(stack: str) -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"])


def _parse(config: dict[str, Any], stack: str = "pr-42") -> Any:
    flat = {**{k: v for k, v in config.items() if not isinstance(v, dict) or "secure" not in v}, **SECRETS}
    return parse_config(flat, SECRETS, stack=stack, source=f"Pulumi.{stack}.yaml", project_root=REPO)


def test_a_preview_derived_from_staging_is_a_valid_stack_of_its_own() -> None:
    cfg = _parse(derive(_committed("staging"), 42, today=TODAY))
    assert (cfg.environment, cfg.stack, cfg.preview.pr, cfg.preview.expires) == (
        "staging", "pr-42", 42, dt.date(2026, 12, 12))
    assert cfg.worker_name == "appointmentbooking-api-staging-pr-42"
    assert cfg.database_name == "appointmentbooking-db-staging-pr-42"
    assert cfg.domain == "staging-pr-42.instylehairboutique.co.za"  # one label under the apex: Universal SSL
    assert not cfg.tenants and cfg.saas is None and not cfg.health_check and cfg.alert_email is None
    assert cfg.rate_limits.zone_ruleset is False


def test_a_preview_shares_no_name_or_hostname_with_staging_production_or_another_preview() -> None:
    staging = _committed("staging")
    names = ("workerName", "databaseName", "pagesProjectName", "backupBucketName", "domain")
    one, two = derive(staging, 42, today=TODAY), derive(staging, 43, today=TODAY)
    production = _committed("production")
    for key in names:
        values = {one[f"booking:{key}"], two[f"booking:{key}"], staging[f"booking:{key}"],
                  production[f"booking:{key}"]}
        assert len(values) == 4, key
    assert not any(isinstance(v, dict) and "secure" in v for v in one.values())  # no secret copied


@pytest.mark.parametrize(("change", "key"), [
    ({"booking:environment": "production", "booking:databaseName": "appointmentbooking-db-pr-42"}, "preview"),
    ({"booking:workerName": "appointmentbooking-api-staging"}, "workerName"),
    ({"booking:databaseName": "appointmentbooking-db-staging"}, "databaseName"),
    ({"booking:domain": "staging.instylehairboutique.co.za"}, "domain"),
    ({"booking:tenants": [{"slug": "glamour", "hostname": "glamour-staging-pr-42.instylehairboutique.co.za",
                           "zoneId": "1a2b3c4d5e6f708192a3b4c5d6e7f809"}]}, "tenants"),
    ({"booking:healthCheck": True}, "healthCheck"),
    ({"booking:rateLimits": {"zoneRuleset": True}}, "rateLimits.zoneRuleset"),
])
def test_a_preview_stack_holding_what_is_not_its_own_is_refused_naming_the_key(
        change: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _parse({**derive(_committed("staging"), 42, today=TODAY), **change})
    assert key in [p.key for p in refused.value.problems], refused.value


def test_a_preview_file_for_another_pull_request_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"preview\.pr"):
        _parse(derive(_committed("staging"), 42, today=TODAY), stack="pr-43")


@pytest.mark.parametrize(("pr", "days", "match"), [(0, 7, "not one"), (10_000_000, 7, "not one"),
                                                   (42, 0, "1 to 30 days"), (42, 31, "1 to 30 days")])
def test_a_preview_that_cannot_be_derived_says_why(pr: int, days: int, match: str) -> None:
    with pytest.raises(PreviewError, match=match):
        derive(_committed("staging"), pr, today=TODAY, lifetime_days=days)


def test_only_staging_is_derived_from_and_names_stay_within_cloudflares_63() -> None:
    with pytest.raises(PreviewError, match="from the staging stack"):
        derive(_committed("production"), 42, today=TODAY)
    long = {**_committed("staging"), "booking:workerName": "a" * 60}
    with pytest.raises(PreviewError, match=r"booking:workerName .* over 63"):
        derive(long, 42, today=TODAY)


def test_stack_names_and_pull_requests_map_both_ways() -> None:
    assert stack_name(42) == "pr-42" and pr_of("pr-42") == 42
    assert [pr_of(s) for s in ("staging", "pr-0", "pr-042", "pr-", "pr-42x")] == [None] * 5
