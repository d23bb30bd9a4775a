"""Worker rollback through the real SDK against the stateful API double."""

from __future__ import annotations

import pytest
from cloudflare import Cloudflare

from ops.releases.rollback import RollbackError, SecretsChangedError, choose_target, deployments, rollback
from ops.targets import TargetError, UncertainWriteError, WorkerScript
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import CloudflareDouble, Fault

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

SCRIPT = "appointmentbooking-api"


def ids(double: CloudflareDouble) -> list[str]:
    return [v["id"] for v in double.scripts[SCRIPT].versions]  # oldest first


def test_default_target_is_the_previous_fully_deployed_version(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=3)
    _, v2, v3 = ids(double)
    assert choose_target(WorkerScript(client, ACCOUNT, SCRIPT), None) == (v3, v2)
    result = rollback(WorkerScript(client, ACCOUNT, SCRIPT), reason="error rate above 5 %")
    assert (result.from_version, result.to_version, result.forced) == (v3, v2, False)
    newest = deployments(WorkerScript(client, ACCOUNT, SCRIPT))[0]
    assert newest.id == result.deployment_id
    assert [(v.version_id, v.percentage) for v in newest.versions] == [(v2, 100.0)]


def test_any_recent_version_can_be_the_target(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=3)
    v1, _, _ = ids(double)
    assert rollback(WorkerScript(client, ACCOUNT, SCRIPT), to=v1).to_version == v1


def test_unknown_version_is_refused_listing_recent_ones(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=2)
    with pytest.raises(RollbackError, match=f"no version nope among its last 2.*{ids(double)[1]}"):
        rollback(WorkerScript(client, ACCOUNT, SCRIPT), to="nope")


@pytest.mark.parametrize("status", [400, 409, 422])
def test_secrets_changed_since_the_target_is_refused_whatever_the_http_status(
        double: CloudflareDouble, client: Cloudflare, status: int) -> None:
    """Error 10220 is recognised by its code; without --force nothing is deployed and the message says
    what forcing would do (bring back the secret values the old version was uploaded with)."""
    double.secrets_changed_status = status
    double.add_script(SCRIPT, versions=3, stale_secrets_before=3)
    serving = double.scripts[SCRIPT].deployments[-1]
    with pytest.raises(SecretsChangedError) as info:
        rollback(WorkerScript(client, ACCOUNT, SCRIPT))
    assert "10220" in str(info.value) and "secret values it was uploaded with" in str(info.value)
    assert "--force" in str(info.value)
    assert double.scripts[SCRIPT].deployments[-1] is serving  # nothing deployed
    posts = [p for m, p in double.requests if m == "POST" and p.endswith("/deployments")]
    assert len(posts) == 1  # a 409 is not retried by the SDK: writes go out once


def test_force_deploys_past_changed_secrets_and_says_so(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=3, stale_secrets_before=3)
    result = rollback(WorkerScript(client, ACCOUNT, SCRIPT), force=True)
    assert result.forced and result.to_version == ids(double)[1]
    assert double.scripts[SCRIPT].deployments[-1]["versions"] == [{"version_id": ids(double)[1], "percentage": 100.0}]


def test_a_deployment_applied_before_its_answer_was_lost_is_not_sent_again(
        double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=2)
    v1, _ = ids(double)
    double.inject(Fault("POST", r"/deployments$", status=0, applied=True))
    result = rollback(WorkerScript(client, ACCOUNT, SCRIPT))
    assert result.to_version == v1
    posts = [p for m, p in double.requests if m == "POST" and p.endswith("/deployments")]
    assert len(posts) == 1  # read the deployment list back instead of deploying twice
    assert len(double.scripts[SCRIPT].deployments) == 3
    assert deployments(WorkerScript(client, ACCOUNT, SCRIPT))[0].id == result.deployment_id


def test_a_deployment_lost_before_it_was_applied_is_sent_once_more(
        double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=2)
    v1, _ = ids(double)
    double.inject(Fault("POST", r"/deployments$", status=0))  # dropped before anything was done
    assert rollback(WorkerScript(client, ACCOUNT, SCRIPT)).to_version == v1
    posts = [p for m, p in double.requests if m == "POST" and p.endswith("/deployments")]
    assert len(posts) == 2 and len(double.scripts[SCRIPT].deployments) == 3


def test_a_server_error_after_applying_the_deployment_is_found_in_the_list(
        double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=2)
    double.inject(Fault("POST", r"/deployments$", status=502, applied=True))
    rollback(WorkerScript(client, ACCOUNT, SCRIPT))
    assert len([p for m, p in double.requests if m == "POST" and p.endswith("/deployments")]) == 1
    assert len(double.scripts[SCRIPT].deployments) == 3


def test_persistent_server_errors_fail_the_rollback_after_one_more_try(
        double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=2)
    double.inject(Fault("POST", r"/deployments$", status=500, times=5))
    with pytest.raises(RollbackError, match="refused the rollback"):
        rollback(WorkerScript(client, ACCOUNT, SCRIPT))
    assert len([p for m, p in double.requests if m == "POST" and p.endswith("/deployments")]) == 2
    assert len(double.scripts[SCRIPT].deployments) == 2


def test_no_earlier_version_is_an_error(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=1)
    with pytest.raises(RollbackError, match="no earlier fully deployed version"):
        rollback(WorkerScript(client, ACCOUNT, SCRIPT))


def test_rolling_back_to_the_serving_version_is_refused(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=2)
    with pytest.raises(RollbackError, match="already serves"):
        rollback(WorkerScript(client, ACCOUNT, SCRIPT), to=ids(double)[1])


def test_rollback_never_touches_the_database(double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=2)
    double.add_database("appointmentbooking-db")
    rollback(WorkerScript(client, ACCOUNT, SCRIPT))
    assert not [p for _, p in double.requests if "/d1/" in p]


def test_a_lost_answer_whose_read_back_fails_too_is_reported_as_uncertain_not_as_not_applied(
        double: CloudflareDouble, client: Cloudflare) -> None:
    double.add_script(SCRIPT, versions=2)
    double.inject(Fault("POST", r"/deployments$", status=0, applied=True))
    double.inject(Fault("GET", r"/deployments$", status=500, times=20, skip=1))  # the list before passes
    with pytest.raises(UncertainWriteError, match="may or may not have been applied"):
        rollback(WorkerScript(client, ACCOUNT, SCRIPT))
    assert len([p for m, p in double.requests if m == "POST" and p.endswith("/deployments")]) == 1
    assert len(double.scripts[SCRIPT].deployments) == 3  # it was applied; nothing claims otherwise


def test_a_rollback_that_cannot_verify_afterwards_fails_before_changing_the_worker(
        double: CloudflareDouble, client: Cloudflare) -> None:
    from ops.releases.release import Site, roll_back_and_verify

    double.add_script(SCRIPT, versions=2)  # the account has no such D1 database: the lookup fails
    with pytest.raises(TargetError):
        roll_back_and_verify(client, Site(ACCOUNT, SCRIPT, "appointmentbooking-db", "https://x.invalid"))
    assert not [p for m, p in double.requests if m == "POST"]
