"""The one release controller the deployment hook and `bookingctl release canary` share."""

from __future__ import annotations

import pytest
from cloudflare import Cloudflare

from ops.releases import quarantine
from ops.releases.controller import Release
from ops.targets import Bucket, WorkerScript
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import CloudflareDouble

WORKER = "appointmentbooking-api-staging"
BUCKET = "appointmentbooking-backups-staging"
SHA = "cd" * 32


def release(double: CloudflareDouble, client: Cloudflare, bundle: str | None = SHA) -> Release:
    double.add_script(WORKER, versions=2)
    double.buckets[BUCKET] = {}
    return Release(WorkerScript(client, ACCOUNT, WORKER), "staging", Bucket(client, ACCOUNT, BUCKET), bundle)


def test_a_quarantined_bundle_or_version_is_refused_naming_the_clear_command(
        double: CloudflareDouble, client: Cloudflare) -> None:
    r = release(double, client)
    r.refuse_quarantined("v-new")  # nothing recorded yet: no refusal
    logged: list[str] = []
    note = r.quarantine("v-bad", "8 % 5xx", {"errors": 8}, logged.append)
    assert note.startswith(f"Bundle sha256:{SHA} is quarantined") and "release quarantine clear" in note
    assert logged == [f"bundle sha256:{SHA} quarantined in R2 bucket {BUCKET}"]
    with pytest.raises(quarantine.QuarantinedError, match=f"bundle sha256:{SHA} is quarantined"):
        r.refuse_quarantined()
    # Another bundle of the same version: still refused, by the version's own record.
    other = Release(r.worker, "staging", r.bucket, "ef" * 32)
    with pytest.raises(quarantine.QuarantinedError, match="version v-bad is quarantined"):
        other.refuse_quarantined("v-bad")


def test_recording_a_failure_never_raises_and_says_when_it_could_not(
        double: CloudflareDouble, client: Cloudflare) -> None:
    r = release(double, client)
    double.buckets.pop(BUCKET)  # the bucket is gone: the write fails
    logged: list[str] = []
    note = r.quarantine("v-bad", "8 % 5xx", {}, logged.append)
    assert note.startswith(f"Writing the quarantine record to R2 bucket {BUCKET} failed too")
    assert any("writing the quarantine record failed" in line for line in logged)
    without = Release(r.worker, "staging", None, None)
    assert without.quarantine("v-bad", "why", {}, logged.append).startswith("No quarantine record was written")


def test_the_version_judged_against_is_the_one_serving_most_traffic_other_than_itself(
        double: CloudflareDouble, client: Cloudflare) -> None:
    r = release(double, client)
    script = double.scripts[WORKER]
    serving = max(script.shares().items(), key=lambda item: item[1])[0]
    assert r.serving("not-deployed") == serving
    assert r.serving(serving) is None  # nothing else serves
