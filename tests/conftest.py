"""Shared fixtures: offline plans of this repository's stacks, and the Cloudflare API double.

Every plan runs the real `infra/__main__.py` under Pulumi's mocks through the same planner the
CLI uses, so a test that passes here passes for `bookingctl plan` too. Plain values the tests
share (the repository, the account, fake secrets) are in `tests/helpers`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cloudflare import Cloudflare

from booking_shared.clock import TODAY_ENV
from booking_shared.project import Project, find_project, load_stack
from bookingctl.planner import InvokeAnswer, Plan, run_program
from tests.helpers import ACCOUNT, REPO, TODAY, PlanFn
from tests.helpers.cf_double import TOKEN, CloudflareDouble, running, take_violations

# The date rules (compatibility-date age, suppression expiry) judge as of a fixed day, here and in
# every process the tests start (the CLI, the policy pack): the suite gives the same answer on any
# day. Tests of those rules move the clock themselves.
os.environ[TODAY_ENV] = TODAY.isoformat()
# pytest-xdist's workers start with COLUMNS=80 (execnet sets it), and piped CLI output honours
# COLUMNS: without this, output would be 80 columns wide under `make test` only. Tests of the width
# set it themselves.
os.environ.pop("COLUMNS", None)


def _fail_on_violations(phase: str) -> None:
    found = take_violations()
    if found:
        pytest.fail(f"the Cloudflare API double saw what the API's OpenAPI document refuses ({phase}; "
                    "tests/helpers/cf_openapi.py):\n  " + "\n  ".join(found), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test fails when a request it made would be rejected by the API, even if the code under test
    swallowed the 400, and when the double answered what the API never would."""
    try:
        return (yield)
    finally:
        _fail_on_violations("during the test")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    try:
        return (yield)
    finally:
        _fail_on_violations("during its teardown")


@pytest.fixture
def empty_sqlite(tmp_path: Path) -> Path:
    """An empty SQLite file (a database with no schema yet), as `sqlite3 FILE` would create it."""
    path = tmp_path / "d1.sqlite"
    sqlite3.connect(path).close()
    return path


@pytest.fixture
def double(tmp_path: Path) -> Iterator[CloudflareDouble]:
    """The stateful Cloudflare API double on 127.0.0.1, empty."""
    root = tmp_path / "cf-api"
    root.mkdir()
    with running(root, ACCOUNT) as api:
        yield api


@pytest.fixture
def client(double: CloudflareDouble) -> Iterator[Cloudflare]:
    """The official SDK pointed at the double; strict: every response must fit the SDK's models."""
    with Cloudflare(api_token=TOKEN, base_url=double.base_url, _strict_response_validation=True,
                    max_retries=3) as sdk:
        yield sdk


@pytest.fixture
def lenient_client(double: CloudflareDouble) -> Iterator[Cloudflare]:
    """The SDK as `ops.targets.cloudflare_client` builds it (not strict), for the D1 export: the API
    reports an export in progress as "active", which the SDK's model does not list."""
    with Cloudflare(api_token=TOKEN, base_url=double.base_url, max_retries=3) as sdk:
        yield sdk


@pytest.fixture(scope="session")
def project() -> Project:
    return find_project(REPO)


def _plan(project: Project, stack: str, overrides: dict[str, Any] | None = None,
          secrets: dict[str, str] | None = None, invokes: Mapping[str, InvokeAnswer] | None = None) -> Plan:
    settings = load_stack(project, stack)
    flat = dict(settings.flat)
    secret_keys = set(settings.secret_keys)
    for key, value in (overrides or {}).items():
        if value is None:
            flat.pop(key, None)
        else:
            flat[key] = value if isinstance(value, str) else json.dumps(value)
    for key, value in (secrets or {}).items():
        flat[key] = value
        secret_keys.add(key)
    return run_program(project, stack, flat, secret_keys, settings.warnings, invokes=invokes)


@pytest.fixture
def plan_with(project: Project) -> PlanFn:
    """`plan_with("staging", overrides={"booking:x": "v"}, secrets={...}, invokes={token: answer})` plans a
    variant (`invokes`: what the account answers the program's invokes; none live by default)."""
    return lambda stack, **kw: _plan(project, stack, **kw)


@pytest.fixture(scope="session")
def production(project: Project) -> Plan:
    return _plan(project, "production")


@pytest.fixture(scope="session")
def staging(project: Project) -> Plan:
    return _plan(project, "staging")
