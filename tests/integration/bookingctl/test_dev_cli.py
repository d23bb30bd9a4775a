"""`bookingctl dev` without the runtime installed says how to install it (exit 2), before starting anything."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from bookingctl.cli import app
from tests.helpers import REPO


def test_dev_without_wrangler_installed_names_make_install_runtime(tmp_path: Path) -> None:
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "__main__.py").touch()
    result = CliRunner().invoke(app, ["dev", "--project-dir", str(tmp_path), "--state", str(tmp_path / "dev")])
    assert result.exit_code == 2, result.output
    assert "make install-runtime" in result.stderr and "wrangler is not installed" in result.stderr
    assert not (tmp_path / "dev").exists()  # nothing was started or written
