"""Which policies exist and which cannot be suppressed is derived from the pack's list, in process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

# Imports the suppression parser first and parses (filling its cache) before the pack is imported:
# the order that used to make a suppression of a non-suppressible policy look valid.
ORDER_SENSITIVE = """
import os, sys
from policies.common import load_suppressions
[entry] = load_suppressions()
first = list(entry.problems)
from policies.pack import CATALOG
from policies.suppression_review import problems_of
print(first, problems_of(entry, CATALOG))
"""


def test_a_suppression_of_data_protection_is_invalid_whatever_the_import_order(tmp_path: Path) -> None:
    entries = tmp_path / "suppressions.yaml"
    entries.write_text("suppressions:\n  - policy: data-protection\n    resource: database-d1\n"
                       "    reason: Migrating the database to another account this week\n"
                       "    approvedBy: jane@example.co.za\n    expires: 2999-01-01\n")
    result = subprocess.run([sys.executable, "-c", ORDER_SENSITIVE], cwd=REPO, capture_output=True, text=True,
                            env={"BOOKING_POLICY_SUPPRESSIONS": str(entries), "PATH": "/usr/bin:/bin"}, check=True)
    assert "policy `data-protection` cannot be suppressed" in result.stdout


def test_the_catalog_lists_every_policy_of_the_pack_and_the_non_suppressible_ones() -> None:
    from policies.pack import CATALOG, POLICIES

    assert CATALOG.names == {p.name for p in POLICIES}
    # The ones whose findings are about data loss, leaked credentials or the review of exceptions
    # themselves: a suppression could otherwise silence exactly what it must not.
    assert {"data-protection", "environment-isolation", "environment-hostname-isolation",
            "secrets-as-secret-bindings", "pre-deploy-checklist", "suppressions-valid",
            "suppressions-active"} <= CATALOG.non_suppressible
    assert "backup-retention" not in CATALOG.non_suppressible
