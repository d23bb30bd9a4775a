"""hostile26b: a branch behind main is refused ("merge main") only at the data load, AFTER its `pulumi up`
and AFTER the cap destroyed the least recently updated preview of another pull request.

ops/previews/lifecycle.py preview_up: engine.up (l.~412) -> enforce_cap (l.~416) -> migrations.apply to the
preview's D1 (l.~420) -> load_scrubbed (l.~421), whose first check is _not_behind (ops/previews/data.py
l.~109). The check needs only staging's newest backup and the checkout's migrations, so it could run before
the engine's `up`; as it stands a pull request that cannot be loaded destroys a working preview of someone
else (and, on a fresh number, leaves its own infra up with an empty database). The same class as hostile26's
"cap before up" finding, fixed then for a refused plan but not for this new refusal."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.test_preview_branch_behind import merge_main, staging_ahead
from tests.integration.previews.test_preview_lifecycle import run

pytestmark = pytest.mark.slow


def test_a_branch_behind_main_destroys_nobody_elses_preview(
        project: Path, api: CloudflareDouble, engine: DoubleEngine, tmp_path: Path) -> None:
    staging_ahead(project, api, tmp_path, "text")  # main's 0003_users_phone.sql reached staging
    staging = project / "Pulumi.staging.yaml"
    staging.write_text(staging.read_text() + "  booking:previewCap: 1\n")
    # Pull request 2 has merged main: its migration and its classification. Its preview comes up, loaded.
    original = tmp_path / "behind-migrations"
    shutil.copytree(project / "migrations", original)
    merge_main(project, "text")
    code, out = run(project, api, "up", "--pr", "2")
    assert code == 0 and "loaded backup" in out, out[-800:]
    # Pull request 1's checkout is behind main (no 0003): refused, as designed...
    shutil.rmtree(project / "migrations")
    shutil.copytree(original, project / "migrations")
    code, out = run(project, api, "up", "--pr", "1")
    assert code == 2 and "this branch is behind" in out, out[-800:]
    # ...but only after pr-2's working preview was destroyed to make room for a preview that cannot load.
    assert "pr-2" in engine.states, f"pr-2 destroyed by a refused up: {'destroying pr-2' in out}"
