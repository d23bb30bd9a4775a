"""The policy pack served over gRPC for each committed stack, once per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from booking_shared.project import Project, load_stack
from bookingctl.gate import PackProcess
from tests.helpers.policy_helpers import PACK


@pytest.fixture(scope="module")
def prod_pack(project: Project) -> Iterator[PackProcess]:
    with PackProcess(PACK, project.name, "production", load_stack(project, "production").flat) as pack:
        yield pack


@pytest.fixture(scope="module")
def staging_pack(project: Project) -> Iterator[PackProcess]:
    with PackProcess(PACK, project.name, "staging", load_stack(project, "staging").flat) as pack:
        yield pack
