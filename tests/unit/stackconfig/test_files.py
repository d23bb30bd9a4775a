"""Reading a stack file offline, as bookingctl does, costs pydantic and never the Pulumi SDK."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO


def test_reading_a_stack_file_does_not_import_pulumi() -> None:
    # A fresh interpreter: this test process has long imported pulumi through other tests.
    code = ("import sys, pathlib; from bookingctl.options import load_stack_config; "
            "cfg = load_stack_config('production', pathlib.Path(sys.argv[1])); "
            "print(cfg.database_name); "
            "print(sorted(m for m in sys.modules if m == 'pulumi' or m.startswith(('pulumi.', 'pulumi_', 'infra'))))")
    result = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True, timeout=120,
                            check=True)
    database, loaded = result.stdout.splitlines()
    assert database == "appointmentbooking-db", result.stdout  # the file was really read and parsed
    assert loaded == "[]", f"reading a stack file imported {loaded}"
