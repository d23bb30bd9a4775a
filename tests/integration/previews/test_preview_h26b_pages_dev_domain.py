"""hostile26b: a real Pages project lists its own `<subdomain>.pages.dev` in `domains`, so the sweep of a
Pages project whose create answer was lost (the headline "pages" case of #26) tries to delete the pages.dev
hostname as a custom domain, fails, and `preview up` stops there on every retry: the leftover blocks `up`
for good.

What the API answers: GET /accounts/{id}/pages/projects/{name} -> `domains` includes the project's pages.dev
hostname beside its custom domains. Source: cloudflare/workers-sdk packages/wrangler/src/__tests__/pages/
project-list.test.ts (Cloudflare's own fixtures of the API: `subdomain: "cats.pages.dev", domains:
["cats.pages.dev", "kitten.com"]`; `wrangler pages project list` prints `project.domains` as "Project
Domains", packages/wrangler/src/pages/projects.ts), and users reading their pages.dev hostname from that
column (samzong/Recall#50). The API double (tests/helpers/cf_double/sites.py create_pages_project:
`"domains": []`, recomputed from custom domains only) never lists it, which is why
test_preview_lost_create.py's "pages" case passes.

ops/previews/sweep.py:145-151 `_pages`: on a project the state does not hold (`left`), EVERY entry of
`project.domains` is deleted through /pages/projects/{name}/domains/{domain}; the pages.dev hostname is no
custom domain there (404 in the double, as the API has no such domain record), and sweep() lets the error out
(l.92 `found.delete()`), before the project itself (l.152) and before widgets, Workers, D1 and R2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bookingctl.cli import app
from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.cf_double.faults import Fault
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.test_preview_lifecycle import run, runner
from tests.integration.previews.test_preview_lost_create import env_of

pytestmark = pytest.mark.slow

PROJECT = "appointmentbooking-staging-pr-1"


def test_a_lost_pages_project_that_lists_its_pages_dev_hostname_is_swept(
        project: Path, api: CloudflareDouble, engine: DoubleEngine, staging_seeded: Any) -> None:
    api.inject(Fault("POST", r"/pages/projects$", 500, applied=True))
    code, _ = run(project, api, "up", "--pr", "1")
    assert code != 0 and PROJECT in api.pages_projects
    # As the API lists a project: its pages.dev hostname first (its subdomain), then custom domains (none).
    lost = api.pages_projects[PROJECT]
    lost["domains"] = [lost["subdomain"]]
    retry = runner.invoke(app, ["preview", "up", "--pr", "1", "--project-dir", str(project)], env=env_of(api))
    assert retry.exit_code == 0, (retry.stdout + retry.stderr)[-800:]
    assert "deleted PagesProject" in retry.stderr
