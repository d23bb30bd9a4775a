"""Run a script of this repository (`scripts/*.py`, `bench/*.py`) as the project's module, in its venv.

Started as a file (`scripts/checklist_evidence.py OUT`, `bench/backup_bench.py`), a script has only
its own folder on the import path and whichever `python3` is first on PATH, which lacks the
project's dependencies. `rerun_as_module` starts it again exactly as the README's other form
(`venv/bin/python -m scripts.checklist_evidence OUT`): the venv's Python, with the repository on
the import path, in the caller's working folder (so relative file arguments keep their meaning).
Standard library only: it runs before anything of the project can be imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rerun_as_module(script: str) -> None:
    """Replace this process with `venv/bin/python -m <package>.<name> ARGS...`; never returns."""
    path = Path(script).resolve()
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    python = ROOT / "venv" / "bin" / "python"
    if not python.exists():
        sys.exit(f"{python} does not exist: run `make install` in {ROOT} first (it creates the venv)")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    os.execve(python, [str(python), "-m", module, *sys.argv[1:]], env)
