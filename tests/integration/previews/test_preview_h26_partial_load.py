"""hostile26: a load that fails part-way and cannot be undone (or is interrupted) leaves rows that the next
`preview up` keeps as "already holds rows", and the first failure's message says the opposite.

Faults come from the API double (tests/helpers/cf_double/faults.py); the wrapper around write_once only
chooses the moment (the second batch) at which to inject them, since reads and writes share one path."""

from __future__ import annotations

from typing import Any

import pytest

from ops.targets import RemoteDatabase
from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.cf_double.faults import Fault
from tests.helpers.preview_engine import DoubleEngine
from tests.integration.previews.conftest import STAGING_DB
from tests.integration.previews.test_preview_lifecycle import rows_of, run

# Whole previews brought up against the API double: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

QUERY = r"/d1/database/[^/]+/query$"


def _at_batch(monkeypatch: pytest.MonkeyPatch, number: int, action: Any) -> dict[str, int]:
    """Run `action` before the `number`th batch of rows is sent; set the returned ["n"] to -10**9 to stop."""
    original = RemoteDatabase.write_once
    seen = {"n": 0}

    def wrapped(self: RemoteDatabase, sql: str, log: Any) -> None:
        if sql.startswith("PRAGMA defer_foreign_keys = on;\nINSERT"):
            seen["n"] += 1
            if seen["n"] == number:
                action()
        original(self, sql, log)

    monkeypatch.setattr(RemoteDatabase, "write_once", wrapped)
    return seen


def test_a_failed_cleanup_is_reported_as_deleted_and_the_retry_keeps_half_the_data(
        project: Any, api: CloudflareDouble, engine: DoubleEngine, staging_seeded: dict[str, list[dict[str, Any]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Batch 2 lands but its answer is lost (a 500 after applying); the DELETE that undoes the load gets a 500 too.
    seen = _at_batch(monkeypatch, 2, lambda: (api.inject(Fault("POST", QUERY, 500, applied=True)),
                                       api.inject(Fault("POST", QUERY, 500))))
    code, out = run(project, api, "up", "--pr", "1")
    assert code != 0
    held = {t: len(r) for t, r in rows_of(api, f"{STAGING_DB}-pr-1").items()}
    expected = {t: len(r) for t, r in staging_seeded.items()}
    assert sum(held.values()) > 0, "precondition: the rows written stayed (the DELETE failed)"
    problems = []
    # The failure's message must not say the rows were deleted when they were not.
    if "the rows written were deleted again, so `bookingctl preview up` can be run again" in out:
        problems.append(f"the error says the rows were deleted and up can be run again; {sum(held.values())} "
                        "rows are still there")

    # The retry the message suggests: must not report success with a partial copy of staging's data.
    seen["n"] = -10**9  # no more faults
    code, out = run(project, api, "up", "--pr", "1")
    held = {t: len(r) for t, r in rows_of(api, f"{STAGING_DB}-pr-1").items()}
    if code == 0 and held != expected:
        problems.append(f"the retry exits 0 ('already holds rows: kept' in its output: "
                        f"{'already holds rows: kept' in out}) with {sum(held.values())} of "
                        f"{sum(expected.values())} rows: {held}")
    assert not problems, problems


def test_an_interrupted_load_ctrl_c_or_a_cancelled_job_leaves_rows_the_next_up_keeps(
        project: Any, api: CloudflareDouble, engine: DoubleEngine, staging_seeded: dict[str, list[dict[str, Any]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The pull-request workflow's `concurrency: cancel-in-progress: true` cancels a running `preview up` on the
    # next push: the runner signals the process (KeyboardInterrupt in Python) in the middle of the load.
    def interrupt() -> None:
        raise KeyboardInterrupt

    seen = _at_batch(monkeypatch, 2, interrupt)
    code, _ = run(project, api, "up", "--pr", "1")
    assert code != 0
    partial = {t: len(r) for t, r in rows_of(api, f"{STAGING_DB}-pr-1").items()}
    expected = {t: len(r) for t, r in staging_seeded.items()}
    problems = []
    if sum(partial.values()):
        problems.append(f"the interrupted load left {sum(partial.values())} rows (of {sum(expected.values())}) "
                        f"behind: {partial}")
    seen["n"] = -10**9  # no more faults
    code, out = run(project, api, "up", "--pr", "1")
    held = {t: len(r) for t, r in rows_of(api, f"{STAGING_DB}-pr-1").items()}
    if code == 0 and held != expected:
        problems.append(f"the next up exits 0 ('already holds rows: kept': {'already holds rows: kept' in out}) "
                        f"with {sum(held.values())} of {sum(expected.values())} rows")
    assert not problems, problems
