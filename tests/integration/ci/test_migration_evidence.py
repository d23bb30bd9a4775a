"""scripts/migration_evidence.py: a `migrate check` output becomes the policy's config, and nothing else does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO
from tests.helpers.policy_helpers import SAFE_MIGRATIONS

SCRIPT = REPO / "scripts" / "migration_evidence.py"
POLICY = "migrations-rollback-safe"


def run(*args: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def test_only_the_checks_own_keys_reach_the_policy_config_so_evidence_cannot_lower_its_level(
        tmp_path: Path) -> None:
    check = tmp_path / "check.json"
    check.write_text(json.dumps({**SAFE_MIGRATIONS, "enforcementLevel": "disabled"}))
    out = tmp_path / "config.json"
    assert run(check, out).returncode == 0
    written = json.loads(out.read_text())[POLICY]
    assert "enforcementLevel" not in written and written["verdict"] == SAFE_MIGRATIONS["verdict"]
    assert written["migrations"] == SAFE_MIGRATIONS["migrations"]


def test_a_check_file_that_is_not_json_is_refused_naming_the_file(tmp_path: Path) -> None:
    check = tmp_path / "migrate-check.json"
    check.write_text("")  # what `migrate check ... > migrate-check.json || true` leaves after a usage error
    base = tmp_path / "base.json"
    base.write_text("{not json")
    for args, named in (((check, tmp_path / "out.json"), check), ((tmp_path / "ok.json", tmp_path / "out.json",
                                                                    Path("--base"), base), base)):
        (tmp_path / "ok.json").write_text(json.dumps(SAFE_MIGRATIONS))
        result = run(*args)
        assert result.returncode == 2 and str(named) in result.stderr and "Traceback" not in result.stderr


def test_the_checksum_of_the_files_checked_is_kept_and_a_pull_requests_evidence_says_so(tmp_path: Path) -> None:
    check = tmp_path / "check.json"
    check.write_text(json.dumps({key: value for key, value in SAFE_MIGRATIONS.items() if key != "scope"}))
    out = tmp_path / "config.json"
    assert run(check, out, Path("--pull-request")).returncode == 0
    written = json.loads(out.read_text())[POLICY]
    assert written["migrationsChecksum"] == SAFE_MIGRATIONS["migrationsChecksum"] and written["scope"] == "pull-request"
    assert run(check, out).returncode == 0 and "scope" not in json.loads(out.read_text())[POLICY]


def test_a_check_output_without_its_migrations_checksum_is_refused(tmp_path: Path) -> None:
    check = tmp_path / "check.json"
    check.write_text(json.dumps({"verdict": "safe", "target": "D1 x (y)", "migrations": []}))
    result = run(check, tmp_path / "config.json")
    assert result.returncode == 2 and "migrationsChecksum" in result.stderr
