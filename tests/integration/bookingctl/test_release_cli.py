"""`bookingctl release status|canary|abort|quarantine` against the API double and a version-pinning site."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cloudflare import Cloudflare
from typer.testing import CliRunner, Result

from booking_shared.deploy import PULUMI_DEPLOYMENT_MESSAGE, deployment_urn
from booking_shared.rollout import quarantine_key
from bookingctl.cli import app
from ops.releases import quarantine
from ops.targets import Bucket
from tests.helpers import ACCOUNT, REPO
from tests.helpers.cf_double import TOKEN, CloudflareDouble, ScriptState
from tests.helpers.http_site import PinnedVersion, Site, serving

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

WORKER = "appointmentbooking-api-staging"
BUCKET = "appointmentbooking-backups-staging"
SHA = "cd" * 32


@pytest.fixture
def api(double: CloudflareDouble, monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudflareDouble]:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    double.add_script(WORKER, versions=2)
    double.buckets[BUCKET] = {}
    yield double


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--project-dir", str(REPO)])


def deploy(client: Cloudflare, versions: list[tuple[str, float]], message: str) -> None:
    client.workers.scripts.deployments.create(WORKER, account_id=ACCOUNT, strategy="percentage",
                                              versions=[{"version_id": v, "percentage": p} for v, p in versions],
                                              annotations={"workers_message": message})


def script(api: CloudflareDouble) -> ScriptState:
    return api.scripts[WORKER]


def test_status_after_a_rollback_outside_pulumi_shows_the_drift_and_the_converging_command(
        api: CloudflareDouble, client: Cloudflare) -> None:
    old, new = script(api).versions[0]["id"], api.add_version(WORKER)
    deploy(client, [(new, 100.0)], f"{PULUMI_DEPLOYMENT_MESSAGE}; migrations 0123456789ab")
    deploy(client, [(old, 100.0)], "bookingctl rollback: watch")
    result = cli("release", "status", "--stack", "staging", "-f", "json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["serving"] == [{"versionId": old, "percentage": 100.0}]
    assert status["declaredVersion"] == new and status["converged"] is False
    assert f"--replace '{deployment_urn('appointmentbooking', 'staging')}'" in status["converge"]

    gate = cli("release", "status", "--stack", "staging", "--require-converged")
    assert gate.exit_code == 1
    assert f"declares version {new}" in gate.stderr and "--replace" in gate.stderr


def test_status_of_a_quarantined_declared_version_says_to_fix_the_code_not_to_replace(
        api: CloudflareDouble, client: Cloudflare) -> None:
    old, new = script(api).versions[0]["id"], api.add_version(WORKER)
    deploy(client, [(new, 100.0)], f"{PULUMI_DEPLOYMENT_MESSAGE}; migrations 0123456789ab")
    deploy(client, [(old, 100.0)], "rolled back by booking-after-traffic")
    quarantine.add(Bucket(client, ACCOUNT, BUCKET), bundle_sha256=SHA, version_id=new, stack="staging", reason="503s")
    status = json.loads(cli("release", "status", "--stack", "staging", "-f", "json").stdout)
    assert "quarantined" in status["converge"] and "fix the code" in status["converge"]
    assert [r["bundleSha256"] for r in status["quarantine"]] == [SHA]


def test_status_of_a_converged_stack_passes_the_gate(api: CloudflareDouble, client: Cloudflare) -> None:
    new = api.add_version(WORKER)
    deploy(client, [(new, 100.0)], f"{PULUMI_DEPLOYMENT_MESSAGE}; migrations 0123456789ab")
    result = cli("release", "status", "--stack", "staging", "--require-converged")
    assert result.exit_code == 0, result.output
    assert "state and reality: agree" in result.stdout


def test_canary_from_the_cli_promotes_a_healthy_version(api: CloudflareDouble) -> None:
    new = api.add_version(WORKER)
    with serving(Site(worker=WORKER, deployed=script(api).shares)) as site:
        result = cli("release", "canary", "--stack", "staging", "--version-id", new, "--bake", "0m",
                     "--base-url", site.url, "--yes", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcome"] == "promoted"
    assert script(api).shares() == {new: 100.0}


def test_canary_from_the_cli_rolls_back_a_failing_version_and_quarantines_the_named_bundle(
        api: CloudflareDouble) -> None:
    stable, new = script(api).versions[-1]["id"], api.add_version(WORKER)
    with serving(Site(worker=WORKER, deployed=script(api).shares,
                      versions={new: PinnedVersion(health_status=503, healthy=False)})) as site:
        result = cli("release", "canary", "--stack", "staging", "--version-id", new, "--bake", "0m",
                     "--base-url", site.url, "--bundle-sha256", SHA, "--smoke-timeout", "1", "--yes", "--quiet")
    assert result.exit_code == 1
    assert script(api).shares() == {stable: 100.0}
    record = json.loads(api.buckets[BUCKET][quarantine_key(SHA)])
    assert record["versionId"] == new and "smoke test failed" in record["reason"]


def test_canary_refuses_a_quarantined_version_naming_the_clear_command(api: CloudflareDouble,
                                                                      client: Cloudflare) -> None:
    new = api.add_version(WORKER)
    quarantine.add(Bucket(client, ACCOUNT, BUCKET), bundle_sha256=SHA, version_id=new, stack="staging",
                   reason="8 % 5xx")
    before = len(script(api).deployments)
    result = cli("release", "canary", "--stack", "staging", "--version-id", new, "--yes")
    assert result.exit_code == 2
    assert f"release quarantine clear {SHA} --stack staging" in result.stderr
    assert len(script(api).deployments) == before


def test_canary_bad_input_is_a_usage_error(api: CloudflareDouble) -> None:
    assert cli("release", "canary", "--stack", "staging", "--version-id", "nope", "--yes").exit_code == 2
    new = api.add_version(WORKER)
    assert cli("release", "canary", "--stack", "staging", "--version-id", new, "--percent", "80").exit_code == 2
    assert cli("release", "canary", "--stack", "staging", "--version-id", new, "--bake", "90s").exit_code == 2


def test_abort_sends_everything_back_to_the_version_that_served_before_the_canary(
        api: CloudflareDouble, client: Cloudflare) -> None:
    stable, new = script(api).versions[-1]["id"], api.add_version(WORKER)
    deploy(client, [(stable, 90.0), (new, 10.0)], f"canary of {new} at 10 %")
    result = cli("release", "abort", "--stack", "staging", "--yes")
    assert result.exit_code == 0, result.output
    assert script(api).shares() == {stable: 100.0}
    again = cli("release", "abort", "--stack", "staging", "--yes")
    assert again.exit_code == 0 and "no canary in progress" in again.stderr


def test_quarantine_list_and_clear(api: CloudflareDouble, client: Cloudflare) -> None:
    quarantine.add(Bucket(client, ACCOUNT, BUCKET), bundle_sha256=SHA, version_id="v9", stack="staging",
                   reason="8 % 5xx")
    listed = cli("release", "quarantine", "list", "--stack", "staging")
    assert listed.exit_code == 0 and f"{SHA}  QUARANTINED  version v9" in listed.stdout
    assert cli("release", "quarantine", "clear", "not-a-sha", "--reason", "x", "--approved-by", "y",
               "--stack", "staging").exit_code == 2
    assert cli("release", "quarantine", "clear", SHA, "--reason", " ", "--approved-by", "thandi",
               "--stack", "staging").exit_code == 2
    cleared = cli("release", "quarantine", "clear", SHA, "--reason", "upstream fixed", "--approved-by", "thandi",
                  "--stack", "staging")
    assert cleared.exit_code == 0, cleared.output
    records = json.loads(cli("release", "quarantine", "list", "--stack", "staging", "-f", "json").stdout)
    assert records[0]["cleared"]["approvedBy"] == "thandi" and records[0]["cleared"]["reason"] == "upstream fixed"


def _put_record(api: CloudflareDouble, key_sha: str, body: object) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    api.buckets[BUCKET][quarantine_key(key_sha)] = data


def _record(sha: str, **changes: object) -> dict[str, object]:
    return {"bundleSha256": sha, "versionId": "v9", "stack": "staging", "reason": "503s",
            "at": "2026-11-26T00:00:00Z", "metrics": {}, "cleared": None, **changes}


@pytest.mark.parametrize("cleared", [{}, {"approvedBy": "thandi"}, {"reason": "fixed", "approvedBy": " "}, "yes"])
def test_a_clearance_without_an_approver_and_a_reason_still_quarantines_the_bundle(
        api: CloudflareDouble, client: Cloudflare, cleared: object) -> None:
    _put_record(api, SHA, _record(SHA, cleared=cleared))
    with pytest.raises(quarantine.QuarantinedError, match="is quarantined"):
        quarantine.refuse_if_quarantined(Bucket(client, ACCOUNT, BUCKET), SHA, "staging")
    listed = cli("release", "quarantine", "list", "--stack", "staging")
    assert f"{SHA}  QUARANTINED" in listed.stdout


def test_an_unreadable_record_is_listed_as_unreadable_not_left_out(api: CloudflareDouble) -> None:
    _put_record(api, SHA, b"{" + b" " * 70_000 + b"}")
    listed = cli("release", "quarantine", "list", "--stack", "staging", "-f", "json")
    assert listed.exit_code == 0, listed.output
    [record] = json.loads(listed.stdout)
    assert record["bundleSha256"] == SHA and record["unreadable"] and record["cleared"] is None
    table = cli("release", "quarantine", "list", "--stack", "staging")
    assert f"{SHA}  UNREADABLE" in table.stdout
    status = json.loads(cli("release", "status", "--stack", "staging", "-f", "json").stdout)
    assert [r["bundleSha256"] for r in status["quarantine"]] == [SHA]


def test_clearing_a_record_clears_the_record_under_that_key_whatever_its_body_names(api: CloudflareDouble) -> None:
    other = "ef" * 32
    _put_record(api, SHA, _record(other))
    cleared = cli("release", "quarantine", "clear", SHA, "--reason", "fixed in config", "--approved-by", "ops",
                  "--stack", "staging")
    assert cleared.exit_code == 0, cleared.output
    record = json.loads(api.buckets[BUCKET][quarantine_key(SHA)])
    assert record["bundleSha256"] == SHA and record["cleared"]["approvedBy"] == "ops"
    assert quarantine_key(other) not in api.buckets[BUCKET]


def test_a_canary_terminated_mid_bake_sends_all_traffic_back_before_it_exits(api: CloudflareDouble) -> None:
    """SIGTERM (a cancelled CI job, `timeout`, a stopped container) ended the process at once and
    left the split serving the unjudged version; now it is handled like Ctrl-C: traffic goes back to
    the stable version first, then the command exits 143 (128 + SIGTERM)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    stable, new = script(api).versions[-1]["id"], api.add_version(WORKER)
    with serving(Site(worker=WORKER, deployed=script(api).shares)) as site:
        child = subprocess.Popen([sys.executable, "-m", "bookingctl", "release", "canary", "--stack", "staging",
                                  "--version-id", new, "--bake", "10m", "--base-url", site.url, "--yes", "--quiet",
                                  "--project-dir", str(REPO)],
                                 env={**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN,
                                      "CLOUDFLARE_BASE_URL": api.base_url},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 90
            while script(api).shares().get(new, 0) == 0:  # the split is live: the bake has begun
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline, "the canary never deployed its split"
                time.sleep(0.2)
            child.send_signal(signal.SIGTERM)
            _, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == 143, err
    assert script(api).shares() == {stable: 100.0}
    assert "terminated" in err and "Traceback" not in err


def test_the_last_canary_verdict_is_a_verdict_not_the_split_that_was_being_judged(
        api: CloudflareDouble, client: Cloudflare) -> None:
    """Design review 2 (reproduced): `release status` took any deployment message starting with
    "canary of" for the last verdict, so mid-bake and after a promotion through `pulumi up` it showed
    "canary of <id> at 10 %"."""
    stable, new = script(api).versions[-1]["id"], api.add_version(WORKER)
    deploy(client, [(stable, 90.0), (new, 10.0)], f"canary of {new} at 10 %")
    mid_bake = json.loads(cli("release", "status", "--stack", "staging", "-f", "json").stdout)
    assert mid_bake["canaryInProgress"] is True and mid_bake["lastVerdict"] is None
    assert mid_bake["canary"] == f"canary of {new} at 10 %, in progress (no verdict yet)"
    table = cli("release", "status", "--stack", "staging").stdout
    assert f"canary in progress: canary of {new} at 10 %, in progress (no verdict yet)" in table
    deploy(client, [(new, 100.0)], f"{PULUMI_DEPLOYMENT_MESSAGE}; migrations 0123456789ab")  # the engine promotes
    promoted = json.loads(cli("release", "status", "--stack", "staging", "-f", "json").stdout)
    assert promoted["canary"] is None
    assert promoted["lastVerdict"] == f"canary of {new} promoted (pulumi up deployed it at 100 %)"
    newer = api.add_version(WORKER)
    deploy(client, [(new, 90.0), (newer, 10.0)], f"canary of {newer} at 10 %")
    deploy(client, [(new, 100.0)], f"canary of {newer} rolled back: error rate 8.0 % over 200 requests")
    rolled_back = json.loads(cli("release", "status", "--stack", "staging", "-f", "json").stdout)
    assert rolled_back["lastVerdict"] == f"canary of {newer} rolled back: error rate 8.0 % over 200 requests"
