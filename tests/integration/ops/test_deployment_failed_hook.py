"""`booking-deployment-failed`: the engine's create of the 100 % deployment fails after a promoted canary.

The engine runs the deployment's `on_error` hooks when the provider's Create fails
(pulumi/pulumi pkg/resource/deploy/step.go, CreateStep.Apply). Hooks never run under mocks, so the
engine's part is played here: the canary (the before hook, for real), the provider's POST (the SDK
against the API double, which fails it), then the error hook's callback as the engine would await it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import cloudflare
import pulumi
import pytest
from cloudflare import Cloudflare

from booking_shared.deploy import DEPLOYMENT_TYPE
from booking_shared.rollout import RolloutSettings
from infra.hooks import error_callback
from ops.releases.hooks import DeployHookError, before_traffic
from stackconfig.deploy import DeployContext
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, CloudflareDouble, Fault, ScriptState, Traffic
from tests.helpers.clock import FakeClock
from tests.helpers.http_site import Site, serving

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

WORKER = "appointmentbooking-api-staging"
DEPLOYMENTS = rf"/workers/scripts/{WORKER}/deployments$"


@dataclasses.dataclass
class Release:
    double: CloudflareDouble
    script: ScriptState
    stable: str
    new: str
    ctx: DeployContext
    lines: list[str]

    def promote(self) -> None:
        """The before hook's canary, passing: the split is left for the engine's 100 % deployment."""
        canary = before_traffic(self.ctx, log=self.lines.append, version_id=self.new).canary
        assert canary is not None and canary["outcome"] == "promoted"
        assert self.script.shares() == {self.stable: 90.0, self.new: 10.0}

    def provider_create(self) -> str:
        """What the provider's Create sends for the stack's WorkersDeployment; raises what it gets."""
        with Cloudflare(api_token=TOKEN, base_url=self.double.base_url, max_retries=0) as sdk:
            created = sdk.workers.scripts.deployments.create(
                WORKER, account_id=ACCOUNT, strategy="percentage",
                versions=[{"version_id": self.new, "percentage": 100}],
                annotations={"workers_message": "deployed by pulumi up; migrations 0123456789ab"})
        return created.id

    def on_error(self, operation: str, errors: list[str]) -> bool:
        """The engine's call of the deployment's error hook (ErrorHookArgs as the Python SDK builds them)."""
        inputs = {"versions": [{"percentage": 100.0, "versionId": self.new}]}
        args = pulumi.ErrorHookArgs(
            urn=f"urn:pulumi:staging::appointmentbooking::booking:worker:ApiWorker${DEPLOYMENT_TYPE}::api-deployment",
            id="", name="api-deployment", type=DEPLOYMENT_TYPE, failed_operation=operation, errors=errors,
            new_inputs=inputs, old_inputs=inputs if operation != "create" else None)
        return asyncio.run(error_callback(self.ctx, log=self.lines.append)(args))


@pytest.fixture
def release(double: CloudflareDouble, tmp_path: Path) -> Iterator[Release]:
    script = double.add_script(WORKER, versions=2)
    stable = script.versions[-1]["id"]
    new = double.add_version(WORKER)
    script.requests_per_minute = 1000
    script.traffic[stable] = script.traffic[new] = Traffic(http_5xx_rate=0.005)
    double.add_database("appointmentbooking-db-staging")
    (tmp_path / "migrations").mkdir()
    with serving(Site(worker=WORKER, deployed=script.shares)) as site:
        ctx = DeployContext(
            stack="staging", account_id=ACCOUNT, database_name="appointmentbooking-db-staging", worker_name=WORKER,
            base_url=site.url, migrations_dir=tmp_path / "migrations", backup_dir=tmp_path / "backups",
            verify_deadline=0, rollout=RolloutSettings(), clock=FakeClock().clock(),
            client_factory=lambda: Cloudflare(api_token=TOKEN, base_url=double.base_url,
                                              _strict_response_validation=True, max_retries=1))
        yield Release(double, script, stable, new, ctx, [])


def test_a_failed_create_after_a_promoted_canary_sends_all_traffic_back_to_the_stable_version(
        release: Release) -> None:
    release.promote()
    release.double.inject(Fault("POST", DEPLOYMENTS, status=500))
    with pytest.raises(cloudflare.InternalServerError) as failed:
        release.provider_create()
    assert release.script.shares() == {release.stable: 90.0, release.new: 10.0}  # what nothing undid before

    retry = release.on_error("create", [str(failed.value)])

    assert release.script.shares() == {release.stable: 100.0}
    assert retry is False, "the create is not retried: a new `pulumi up` goes through the canary again"
    said = "\n".join(release.lines)
    assert str(failed.value) in said and "pulumi up --stack staging" in said


def test_a_create_that_landed_although_its_answer_was_lost_is_left_serving(release: Release) -> None:
    """The POST was applied and only its answer lost: one version already serves all traffic."""
    release.promote()
    release.double.inject(Fault("POST", DEPLOYMENTS, status=0, applied=True))
    with pytest.raises(cloudflare.APIConnectionError):
        release.provider_create()
    posts = [p for m, p in release.double.requests if m == "POST"]

    assert release.on_error("create", ["connection reset"]) is False

    assert release.script.shares() == {release.new: 100.0}
    assert [p for m, p in release.double.requests if m == "POST"] == posts, "nothing was deployed by the hook"


def test_a_split_that_is_not_this_updates_canary_is_left_alone(release: Release, client: Cloudflare) -> None:
    """Someone's `bookingctl release canary` of another version: not the hook's to end."""
    other = release.double.add_version(WORKER)
    client.workers.scripts.deployments.create(
        WORKER, account_id=ACCOUNT, strategy="percentage",
        versions=[{"version_id": release.stable, "percentage": 80}, {"version_id": other, "percentage": 20}])

    assert release.on_error("create", ["500 Internal Server Error"]) is False

    assert release.script.shares() == {release.stable: 80.0, other: 20.0}
    assert any("release abort --stack staging" in line for line in release.lines)


def test_a_failed_delete_of_the_replaced_deployment_never_moves_traffic(release: Release) -> None:
    release.promote()
    posts = len([p for m, p in release.double.requests if m == "POST"])

    assert release.on_error("delete", ["404 deployment not found"]) is False

    assert len([p for m, p in release.double.requests if m == "POST"]) == posts
    assert release.script.shares() == {release.stable: 90.0, release.new: 10.0}


def test_when_the_abort_fails_too_the_update_fails_naming_both_and_the_command(release: Release) -> None:
    release.promote()
    release.double.inject(Fault("POST", DEPLOYMENTS, status=500, times=3))
    with pytest.raises(cloudflare.InternalServerError) as failed:
        release.provider_create()

    with pytest.raises(DeployHookError) as stopped:
        release.on_error("create", [str(failed.value)])

    message = str(stopped.value)
    assert str(failed.value) in message and "bookingctl release abort --stack staging" in message
    assert release.script.shares() == {release.stable: 90.0, release.new: 10.0}


@pytest.mark.parametrize("garbage", [b"<html>502 Bad Gateway</html>", b'{"success": true, "result": []}',
                                     b'{"success": true, "result": {"deployments": [{"id": 7}]}}'])
def test_an_unreadable_deployments_list_fails_the_update_naming_the_abort_command(
        release: Release, garbage: bytes) -> None:
    release.promote()
    release.double.inject(Fault("POST", DEPLOYMENTS, status=500))
    with pytest.raises(cloudflare.InternalServerError) as failed:
        release.provider_create()
    release.double.inject(Fault("GET", DEPLOYMENTS, status=200, body=garbage, times=5))

    with pytest.raises(DeployHookError) as stopped:
        release.on_error("create", [str(failed.value)])

    message = str(stopped.value)
    assert str(failed.value) in message and "bookingctl release abort --stack staging" in message
    assert release.script.shares() == {release.stable: 90.0, release.new: 10.0}


def test_an_empty_deployments_list_moves_nothing(release: Release) -> None:
    release.promote()
    posts = len([p for m, p in release.double.requests if m == "POST"])
    release.double.inject(Fault("GET", DEPLOYMENTS, status=200, body=b'{"success": true, "errors": [], '
                                b'"messages": [], "result": {"deployments": []}}'))

    assert release.on_error("create", ["500 Internal Server Error"]) is False

    assert len([p for m, p in release.double.requests if m == "POST"]) == posts
    assert any("nothing serves, no split to undo" in line for line in release.lines)


def test_a_split_already_gone_is_left_as_it_is(release: Release, client: Cloudflare) -> None:
    release.promote()
    client.workers.scripts.deployments.create(WORKER, account_id=ACCOUNT, strategy="percentage",
                                              versions=[{"version_id": release.stable, "percentage": 100}])
    posts = len([p for m, p in release.double.requests if m == "POST"])

    assert release.on_error("create", ["500 Internal Server Error"]) is False

    assert len([p for m, p in release.double.requests if m == "POST"]) == posts
    assert release.script.shares() == {release.stable: 100.0}
