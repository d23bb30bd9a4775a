"""hostile26: a generated text column passes the gate unclassified, then stops the scrubber; classified as
what it holds (part of an e-mail: `hostname`), the scrubber crashes on it.

The gate (booking_shared.columns.text_columns) reads pragma_table_info, which omits generated columns; the
scrubber (`_holding_text`) reads pragma_table_xinfo, which lists them, and refuses "classify each there".
Classified with any replacing class, scrub() runs `UPDATE users SET email_domain = ...`, which SQLite
refuses for a generated column; only `keep` works (the copy skips hidden columns and D1 recomputes them)."""

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

MIGRATION = ("ALTER TABLE users ADD COLUMN email_domain TEXT "
             "GENERATED ALWAYS AS (substr(email, instr(email, '@') + 1)) VIRTUAL;\n")


@pytest.mark.parametrize("classified", [None, "hostname"])
def test_a_generated_column_is_handled_by_gate_and_scrubber_alike(
        project: Path, api: CloudflareDouble, engine: DoubleEngine, staging_seeded: dict[str, list[dict[str, Any]]],
        classified: str | None) -> None:
    (project / "migrations" / "0003_users_email_domain.sql").write_text(MIGRATION)
    if classified:
        text = (project / "migrations" / "columns.yaml").read_text()
        (project / "migrations" / "columns.yaml").write_text(
            text.replace("  email: email\n", f"  email: email\n  email_domain: {classified}\n", 1))
    code, out = run(project, api, "up", "--pr", "1")  # the pack's text-columns-classified passes either way
    assert "policy pack refused" not in out
    assert code == 0 and len(rows_of(api, f"{STAGING_DB}-pr-1")["users"]) == len(staging_seeded["users"]), \
        out.strip().splitlines()[-1][:500]
