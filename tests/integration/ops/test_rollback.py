"""Worker rollback through the real SDK against the stateful API double."""

from __future__ import annotations

import pytest
from cloudflare import Cloudflare

from ops.rollback import RollbackError, choose_target, deployments, rollback
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import CloudflareDouble

SCRIPT = "appointmentbooking-api"


def ids(double: CloudflareDouble) -> list[str]:
    return [v["id"] for v in double.scripts[SCRIPT].versions]  # oldest first


def test_default_target_is_the_previous_fully_deployed_version(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=3)
    _, v2, v3 = ids(double)
    assert choose_target(client, ACCOUNT, SCRIPT, None) == (v3, v2)
    result = rollback(client, ACCOUNT, SCRIPT, reason="error rate above 5 %")
    assert (result.from_version, result.to_version, result.forced) == (v3, v2, False)
    newest = deployments(client, ACCOUNT, SCRIPT)[0]
    assert newest.id == result.deployment_id
    assert [(v.version_id, v.percentage) for v in newest.versions] == [(v2, 100.0)]


def test_any_recent_version_can_be_the_target(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=3)
    v1, _, _ = ids(double)
    assert rollback(client, ACCOUNT, SCRIPT, to=v1).to_version == v1


def test_unknown_version_is_refused_listing_recent_ones(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=2)
    with pytest.raises(RollbackError, match=f"no version nope among its last 2.*{ids(double)[1]}"):
        rollback(client, ACCOUNT, SCRIPT, to="nope")


def test_secrets_changed_since_the_target_forces_the_deployment(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=3, stale_secrets_before=3)
    result = rollback(client, ACCOUNT, SCRIPT)
    assert result.forced and result.to_version == ids(double)[1]
    posts = [p for m, p in double.requests if m == "POST" and p.endswith("/deployments")]
    assert len(posts) == 2  # refused with 10220, then forced


def test_no_earlier_version_is_an_error(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=1)
    with pytest.raises(RollbackError, match="no earlier fully deployed version"):
        rollback(client, ACCOUNT, SCRIPT)


def test_rolling_back_to_the_serving_version_is_refused(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=2)
    with pytest.raises(RollbackError, match="already serves"):
        rollback(client, ACCOUNT, SCRIPT, to=ids(double)[1])


def test_rollback_never_touches_the_database(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=2)
    double.add_database("appointmentbooking-db")
    rollback(client, ACCOUNT, SCRIPT)
    assert not [p for _, p in double.requests if "/d1/" in p]
