"""Every custom hostname status the API can report is classified: active, pending or blocked.

The statuses are the SDK's (cloudflare/types/custom_hostnames/custom_hostname_list_params.py, the
`hostname_status` and `ssl_status` filters, generated from Cloudflare's OpenAPI document): a status
the SDK gains and `ops.tenants.tenants` does not place fails here.
"""

from __future__ import annotations

import typing

import pytest
from cloudflare.types.custom_hostnames.custom_hostname_list_params import CustomHostnameListParams
from cloudflare.types.custom_hostnames.custom_hostname_list_response import CustomHostnameListResponse

from booking_shared.limits import ACTIVE_STATUSES, BLOCKED_SSL, BLOCKED_STATUSES, PENDING_SSL, PENDING_STATUSES
from ops.tenants.custom_hostnames import hostname_state
from ops.tenants.tenant_model import SaasZone

HINTS = typing.get_type_hints(CustomHostnameListParams, include_extras=True)
HOSTNAME_STATUSES = set(typing.get_args(HINTS["hostname_status"]))
SSL_STATUSES = set(typing.get_args(HINTS["ssl_status"]))
ZONE = SaasZone("cd" * 16, "salons.example.co.za")


def found(status: str, ssl_status: str = "active") -> CustomHostnameListResponse:
    return CustomHostnameListResponse.model_validate(
        {"id": "ch-1", "hostname": "www.glamoursalon.co.za", "status": status,
         "ssl": {"status": ssl_status, "method": "txt", "type": "dv"}})


def test_the_sdk_lists_the_statuses_these_tests_read() -> None:
    assert {"active", "active_redeploying", "pending", "moved"} <= HOSTNAME_STATUSES
    assert {"active", "pending_validation", "validation_timed_out"} <= SSL_STATUSES


def test_every_hostname_status_the_api_lists_is_classified_once() -> None:
    sets = (ACTIVE_STATUSES, PENDING_STATUSES, BLOCKED_STATUSES)
    assert set().union(*sets) == HOSTNAME_STATUSES
    assert sum(len(s) for s in sets) == len(HOSTNAME_STATUSES), "a status in two classes"


def test_every_certificate_status_the_api_lists_is_classified_once() -> None:
    sets = ({"active"}, PENDING_SSL, BLOCKED_SSL)
    assert set().union(*sets) == SSL_STATUSES
    assert sum(len(s) for s in sets) == len(SSL_STATUSES), "a status in two classes"


def test_an_active_redeploying_hostname_with_an_active_certificate_is_live() -> None:
    """Cloudflare: "Active re-deploying: Customer hostname is active and the changes have been processed"."""
    assert hostname_state(found("active_redeploying"), "glamour", ZONE).state == "active"


@pytest.mark.parametrize("status", sorted(HOSTNAME_STATUSES))
def test_each_hostname_status_gives_the_state_of_its_class(status: str) -> None:
    expected = ("active" if status in ACTIVE_STATUSES else "blocked" if status in BLOCKED_STATUSES
                else "pending")
    assert hostname_state(found(status), "glamour", ZONE).state == expected


def test_a_moved_hostname_says_how_cloudflare_brings_it_back() -> None:
    """Moved: not validated within the backoff schedule, or no longer pointing at the fallback origin; a
    validation refresh sets it back to pending (validation-status.mdx)."""
    state = hostname_state(found("moved"), "glamour", ZONE)
    assert state.state == "blocked"
    assert "CNAME" in state.blockers[0] and "Refresh" in state.blockers[0]
    assert "support" not in state.blockers[0]
