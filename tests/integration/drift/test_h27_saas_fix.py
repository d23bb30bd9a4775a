"""hostile27: the converging command printed for a custom hostname missing on the SaaS zone is malformed.

`saas_differences` takes the text after "run " in the blocker up to its end and strips backticks from the
ends only: the blocker is "...; run `bookingctl tenants add SLUG HOST` to create it", so the fix becomes
"bookingctl tenants add SLUG HOST` to create it" (a stray backtick, prose, and no --stack, which the
command needs). The suite's test checks it with `in`, so it passes.

Run from the worktree:
    cd  && venv/bin/pytest -q -p no:cacheprovider -W ignore /work/briefs/hostile27/test_drift_saas_fix.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import double  # noqa: F401  (fixture)
from tests.helpers.cf_double import CloudflareDouble, D1State
from tests.helpers.saas_stack import SAAS_ZONE, STACK
from tests.integration.bookingctl.test_tenants_cli import _drift, d1, project, run  # noqa: F401  (fixtures)

# The API double and whole stacks: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow



def test_S1_missing_custom_hostname_fix_is_a_runnable_command(project: Path, d1: D1State,
                                                              double: CloudflareDouble) -> None:
    code, _, err = run(project, "add", "curls", "www.curls.co.za", "--stack", STACK, "--name", "Curls")
    assert code == 0, err
    hostnames = double.saas_zones[SAAS_ZONE].hostnames
    del hostnames[next(k for k, v in hostnames.items() if v["hostname"] == "www.curls.co.za")]
    [difference] = _drift(double).differences
    assert difference.fix == f"bookingctl tenants add curls www.curls.co.za --stack {STACK}", difference.fix
