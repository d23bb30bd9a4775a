"""The reference Worker's health contract, run with Node's test runner (Node ships Request/Response)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.helpers import REPO


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed on this machine")
def test_reference_worker_health_contract_passes_its_node_tests() -> None:
    result = subprocess.run(["node", "--test", "test/"], cwd=REPO / "worker",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = int(result.stdout.split("# pass ")[1].split()[0])
    assert passed >= 1 and "# fail 0" in result.stdout  # the contract's cases ran, and none failed


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed on this machine")
def test_reference_worker_booking_creation_is_403_without_or_with_a_bad_token_and_201_with_a_good_one() -> None:
    result = subprocess.run(["node", "--test", "test/bookings.test.mjs"], cwd=REPO / "worker",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("booking creation without a Turnstile token is 403", "with a token Siteverify rejects is 403",
                 "with a good token is 201", "429s before Siteverify", "webhook meets neither"):
        assert any(line.startswith("ok ") and name in line for line in result.stdout.splitlines()), name


def test_the_worker_serves_the_endpoints_the_edge_rules_protect() -> None:
    from booking_shared.edge import (
        PAYSTACK_WEBHOOK,
        PUBLIC_WRITE_ENDPOINTS,
        RATE_LIMIT_BINDING,
        SITE_HOSTNAMES_BINDING,
        TURNSTILE_SAAS_SECRET_BINDING,
        TURNSTILE_SECRET_BINDING,
    )
    from booking_shared.turnstile import SITEKEY_PATH, SITEKEYS_BINDING

    source = (REPO / "worker/src/index.js").read_text()
    for endpoint in PUBLIC_WRITE_ENDPOINTS:
        assert f'{endpoint.key}: "{endpoint.path}"' in source, endpoint
    assert PAYSTACK_WEBHOOK.path in source
    assert f"env.{RATE_LIMIT_BINDING}" in source
    # The per-widget bindings the program declares (booking_shared/turnstile.py) by the names it gives them.
    for binding in (TURNSTILE_SECRET_BINDING, TURNSTILE_SAAS_SECRET_BINDING, SITE_HOSTNAMES_BINDING, SITEKEYS_BINDING):
        assert f'"{binding}"' in source or f"env.{binding}" in source, binding
    assert f'"{SITEKEY_PATH}"' in source
