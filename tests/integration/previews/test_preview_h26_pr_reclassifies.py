"""hostile26: the pull request decides what is personal. `preview up` scrubs by the PR's own
migrations/columns.yaml (and runs the PR's own ops/database/scrub.py), loading staging's real backup. A one-word
change `users.email: email` -> `users.email: keep` passes the gate (text-columns-classified asks only that a
class exists) and puts every customer's real e-mail into the preview. The policy config is taken from the base
branch for exactly this reason (a PR cannot relax its own gate); the classification is not, and docs/deploying.md
lists .github/, policies/ and Pulumi.*.yaml for CODEOWNERS review but not migrations/columns.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.conftest import STAGING_DB
from tests.integration.previews.test_preview_lifecycle import rows_of, run

# Whole previews brought up against the API double: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow


def test_a_pr_that_reclassifies_a_personal_column_as_keep_gets_no_real_values_in_its_preview(
        project: Path, api: CloudflareDouble, engine: DoubleEngine,
        staging_seeded: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    """The workflow scrubs by the base branch's classification (`--classification`), as it takes the
    base branch's policy config: the pull request's own columns.yaml cannot weaken its preview's scrub."""
    classes = project / "migrations" / "columns.yaml"
    text = classes.read_text()
    base = tmp_path / "base-columns.yaml"
    base.write_text(text)  # `git show origin/$BASE_REF:migrations/columns.yaml`
    assert "  email: email\n" in text
    classes.write_text(text.replace("  email: email\n", "  email: keep\n", 1))  # users.email
    code, out = run(project, api, "up", "--pr", "1", "--classification", str(base))  # the pack passes
    assert code == 0, out[-800:]
    real = {r["email"] for r in staging_seeded["users"]}
    leaked = {r["email"] for r in rows_of(api, f"{STAGING_DB}-pr-1")["users"]} & real
    assert not leaked, f"{len(leaked)} of {len(real)} real e-mail addresses in the preview, e.g. {sorted(leaked)[:2]}"
