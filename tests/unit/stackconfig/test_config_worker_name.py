"""`booking:workerName` must also be a key of Cloudflare's version-override header.

The canary pins its smoke test with `Cloudflare-Workers-Version-Overrides: <worker>="<version>"`,
an RFC 8941 Dictionary whose keys start with a lowercase letter or `*`. Cloudflare's own Worker
name rules (cloudflare-docs src/content/docs/workers/wrangler/configuration.mdx, `name`:
alphanumeric characters and dashes) allow a leading digit, which would make the header invalid:
Cloudflare then ignores the override and the smoke test never reaches the new version.
"""

from __future__ import annotations

import pytest

from stackconfig.files import parse_config
from stackconfig.problems import ConfigError
from tests.helpers import REPO
from tests.helpers.stack_config import BASE, SECRETS


def parse(worker_name: str) -> None:
    flat = {**BASE, "booking:workerName": worker_name}
    parse_config(flat, set(SECRETS), stack="production", source="Pulumi.production.yaml", project_root=REPO)


@pytest.mark.parametrize("name", ["1booking-api", "9"])
def test_a_worker_name_starting_with_a_digit_is_refused_naming_the_header_and_the_fix(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(name)
    [problem] = info.value.problems
    assert problem.key == "workerName"
    assert "Cloudflare-Workers-Version-Overrides" in problem.allowed
    assert "starting with a lowercase letter" in problem.allowed


@pytest.mark.parametrize("name", ["a", "booking-api-2", "x1"])
def test_a_worker_name_starting_with_a_letter_is_accepted(name: str) -> None:
    parse(name)
