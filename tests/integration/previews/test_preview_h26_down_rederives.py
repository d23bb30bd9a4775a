"""hostile26: `preview down` re-derives the preview's bucket name from the checkout's Pulumi.staging.yaml
instead of reading what the preview was created with (its stack's state/outputs). The workflow runs `up`
with the pull request's staging file and `down` with the base branch's: when staging's bucket name differs
between the two (the base renamed it since, or the pull request did), `down` empties a bucket that does
not exist, `pulumi destroy` fails on R2's "bucket not empty" and the preview's resources stay, counting
against the cap; the message does not say to empty the real bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.conftest import STAGING_BUCKET
from tests.integration.previews.test_preview_lifecycle import owned, run

# Whole previews brought up against the API double: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow


def test_down_after_staging_renamed_its_bucket_leaves_the_preview_behind(
        project: Path, api: CloudflareDouble, engine: DoubleEngine, staging_seeded: Any) -> None:
    code, out = run(project, api, "up", "--pr", "1")
    assert code == 0, out
    api.buckets[f"{STAGING_BUCKET}-pr-1"]["2026-12-05T0600Z.sql"] = b"x"  # the preview's own backup hook's

    # Meanwhile the base branch renames staging's bucket (or the pull request did, and its preview was made
    # from its own file). Closed: `down` runs with the base branch's checkout, without a Pulumi.pr-1.yaml.
    staging = project / "Pulumi.staging.yaml"
    staging.write_text(staging.read_text().replace(f"booking:backupBucketName: {STAGING_BUCKET}",
                                                   "booking:backupBucketName: appointmentbooking-backups-stg"))
    (project / "Pulumi.pr-1.yaml").unlink()
    code, out = run(project, api, "down", "--pr", "1")
    left = {k: v for k, v in owned(api, 1).items() if v}
    assert code == 0 and not left, f"exit {code}; left behind: {left}; output: {out[-900:]}"
