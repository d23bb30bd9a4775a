"""`bookingctl users|apikeys|audit|db` (bookingctl/commands/admin.py) on a local SQLite file: what goes to
stdout, what to stderr, the exit code, and --as-of. What each report finds is asserted on the operations
in tests/integration/ops/test_audit.py, on the same seeded database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from ops.database.migrations import apply, discover
from ops.targets import LocalDatabase
from tests.helpers import REPO
from tests.integration.ops.test_audit import NOW, seed

runner = CliRunner()


@pytest.fixture
def db(empty_sqlite: Path) -> Path:
    return empty_sqlite


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The audit's seeded database: rows on both sides of every threshold as of NOW."""
    path = tmp_path_factory.mktemp("audit") / "d1.sqlite"
    seed(path)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project-dir", str(REPO)])
    return result.exit_code, result.stdout, result.stderr


def test_users_permissions_of_an_unknown_user_fails_saying_so(db: Path) -> None:
    run("migrate", "apply", "--local", str(db), "--yes")
    code, out, err = run("users", "permissions", "nobody@example.com", "--local", str(db))
    assert code == 1 and out == "" and "no user with id or email 'nobody@example.com'" in err


def test_db_stats_prints_its_summary_on_stdout_in_the_chosen_format(db: Path) -> None:
    run("migrate", "apply", "--local", str(db), "--yes")
    code, out, err = run("db", "stats", "--local", str(db))
    assert code == 0 and "size" in out and "appointments-by-tenant query" in out and "uses an index" in out
    assert err == ""
    code, out, _ = run("db", "stats", "--local", str(db), "-f", "json")
    data = json.loads(out)
    assert data["size"]["size_bytes"] > 0 and data["tenant_query_uses_index"] is True


def test_cli_audit_json_and_fail_on_findings(seeded: Path) -> None:
    ok = runner.invoke(app, ["audit", "security", "--local", str(seeded), "--format", "json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["findings"] > 0
    failing = runner.invoke(app, ["audit", "security", "--local", str(seeded), "--fail-on-findings"])
    assert failing.exit_code == 1 and "failed_logins" in failing.stdout


def test_audit_json_says_per_section_how_many_findings_it_holds(seeded: Path, tmp_path: Path) -> None:
    """A section's kind and its count are two fields: a boolean `finding` read as "found something"
    was true on a section with no rows (newcomer review, problem 15)."""
    report = json.loads(runner.invoke(app, ["audit", "security", "--local", str(seeded), "-f", "json"]).stdout)
    sections = report["sections"].values()
    assert {s["kind"] for s in sections} == {"finding", "review"} and all("finding" not in s for s in sections)
    for section in sections:
        assert section["findings"] == (len(section["rows"]) if section["kind"] == "finding" else 0)
    assert report["findings"] == sum(s["findings"] for s in sections) > 0
    empty = tmp_path / "empty.sqlite"
    apply(LocalDatabase(empty, must_exist=False), discover(REPO / "migrations"))
    clean = json.loads(runner.invoke(app, ["audit", "security", "--local", str(empty), "-f", "json"]).stdout)
    assert clean["findings"] == 0 and all(s["findings"] == 0 for s in clean["sections"].values())


def test_cli_users_and_apikeys_as_of_the_seeds_time(seeded: Path) -> None:
    """--as-of makes the command-line reports as reproducible as the functions: same seed, same answer."""
    at = ["--as-of", NOW.isoformat()]

    def rows(*args: str) -> list[dict[str, object]]:
        result = runner.invoke(app, [*args, "--local", str(seeded), "-f", "json"])
        assert result.exit_code == 0, result.stderr
        found: list[dict[str, object]] = json.loads(result.stdout)
        return found

    assert {u["id"] for u in rows("users", "list")} == {"u-active", "u-dormant", "u-never", "u-edge"}
    assert [p["permission_name"] for p in rows("users", "permissions", "u-active")] == ["appointments.manage"]
    # Unused for more than 30 days or never: u-edge logged in 29 days before NOW, so it is not dormant.
    assert {u["id"] for u in rows("users", "dormant", *at)} == {"u-dormant", "u-never"}
    assert {k["id"]: k["status"] for k in rows("apikeys", "list", *at)} == {
        "k-ok": "Active", "k-expired": "Expired", "k-unused": "Unused", "k-never": "Unused"}
    # 201 logged requests, all within the hour before NOW: one day, two callers' IPs, one user.
    [day] = rows("apikeys", "usage", *at)
    assert (day["date"], day["request_count"], day["unique_users"]) == (NOW.date().isoformat(), 201, 1)


def test_cli_rejects_an_unreadable_as_of_time(seeded: Path) -> None:
    result = CliRunner().invoke(app, ["users", "dormant", "--local", str(seeded), "--as-of", "yesterday"])
    assert result.exit_code == 2 and "--as-of 'yesterday'" in result.stderr


@pytest.mark.parametrize("days", ["-5", "0", "99999999999999999999"])
def test_nonsense_day_counts_are_usage_errors_not_a_blind_spot(seeded: Path, days: str) -> None:
    """The review's D20: a negative count silently reported no dormant accounts at all."""
    result = CliRunner().invoke(app, ["audit", "security", "--local", str(seeded), "--dormant-days", days])
    assert result.exit_code == 2 and "--dormant-days" in result.stderr


# --- db scrub: a local copy without its people ---------------------------------------------------

def test_db_scrub_replaces_personal_values_keeps_rows_and_needs_a_salt_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    path = tmp_path / "copy.sqlite"
    assert runner.invoke(app, ["migrate", "apply", "--local", str(path), "--yes", "--project-dir", str(REPO)]
                         ).exit_code == 0
    assert runner.invoke(app, ["db", "seed", "--local", str(path)]).exit_code == 0
    conn = sqlite3.connect(path)
    emails = {e for e, in conn.execute("SELECT email FROM users")}
    count = conn.execute("SELECT count(*) FROM appointments").fetchone()[0]
    conn.close()
    monkeypatch.delenv("BOOKING_SCRUB_SALT", raising=False)
    refused = runner.invoke(app, ["db", "scrub", "--local", str(path), "--project-dir", str(REPO)])
    assert refused.exit_code == 2 and "BOOKING_SCRUB_SALT" in refused.stderr
    monkeypatch.setenv("BOOKING_SCRUB_SALT", "a-preview-salt-of-32-characters!")
    result = runner.invoke(app, ["db", "scrub", "--local", str(path), "--project-dir", str(REPO)])
    assert result.exit_code == 0, result.stderr
    assert "users.email" in result.stdout and "a-preview-salt" not in result.stdout + result.stderr
    conn = sqlite3.connect(path)
    assert not emails & {e for e, in conn.execute("SELECT email FROM users")}
    assert conn.execute("SELECT count(*) FROM appointments").fetchone()[0] == count
