"""The version-override header is an RFC 8941 Dictionary: an invalid one is refused, never sent.

Cloudflare ignores an override whose header "may not be a valid Dictionary" (cloudflare-docs
src/content/docs/workers/configuration/versions-and-deployments/version-overrides.mdx); a pinned
smoke test would then silently test whatever the deployment's percentages pick.
"""

from __future__ import annotations

import pytest

from booking_shared.rollout import VERSION_OVERRIDE_HEADER, override_header

VERSION = "dc8dcd28-271b-4367-9840-6c244f84cb40"


def test_cloudflares_example_is_what_is_sent() -> None:
    assert override_header("my-worker-name", VERSION) == {VERSION_OVERRIDE_HEADER: f'my-worker-name="{VERSION}"'}


@pytest.mark.parametrize("name", ["1worker", "-worker", "Worker", "my worker", "", "wörker"])
def test_a_worker_name_that_is_no_dictionary_key_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 8941 .*key.*lowercase letter"):
        override_header(name, VERSION)


@pytest.mark.parametrize("version", ["", "v\n1", "v\u00e91"])
def test_a_version_that_is_no_structured_string_is_refused(version: str) -> None:
    with pytest.raises(ValueError, match="version id"):
        override_header("api", version)


def test_quotes_and_backslashes_in_the_version_are_escaped_as_rfc_8941_strings_are() -> None:
    assert override_header("api", 'a"b\\c')[VERSION_OVERRIDE_HEADER] == 'api="a\\"b\\\\c"'
