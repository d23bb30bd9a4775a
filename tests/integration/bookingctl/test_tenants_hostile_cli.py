"""`bookingctl tenants` under hostile input: rows other writers stored, stack files that cannot be read,
text that would drive the terminal, booking times that are not canonical text (issue #22: M4, L1, L2 of
the adversarial review, problem 5 of the newcomer review)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.cf_double import CloudflareDouble, D1State
from tests.helpers.saas_stack import SAAS_ZONE, STACK, migrated_sqlite
from tests.integration.bookingctl import test_tenants_cli as base

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

# The SaaS project and its D1 on the API double, as the other `tenants` tests have them.
project = base.project
d1 = base.d1
run, rows, book = base.run, base.rows, base.book


def insert_tenant(path: Path, slug: str, hostname: str | None, name: str = "Salon") -> None:
    """A tenant row as another writer (the Worker, a migration, a restore, a hand-run query) stores it."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO tenants (id, slug, name, hostname) VALUES (?, ?, ?, ?)",
                     (f"t-{slug}", slug, name, hostname))
    conn.close()


# --- M4: one hostname, one tenant ---------------------------------------------------------------

@pytest.mark.parametrize(("stored", "asked"), [
    ("WWW.Legacy.co.za", "www.legacy.co.za"),
    ("www.legacy.co.za.", "www.legacy.co.za"),
    (" www.legacy.co.za", "WWW.LEGACY.CO.ZA"),
    ("www.glamour-ü.co.za", "www.xn--glamour--e6a.co.za"),  # stored as written, asked as browsers send it
])
def test_a_hostname_another_tenant_holds_in_another_spelling_is_refused_and_nothing_is_written(
        project: Path, d1: D1State, double: CloudflareDouble, stored: str, asked: str) -> None:
    insert_tenant(d1.path, "legacy", stored)
    code, _, err = run(project, "add", "copycat", asked, "--stack", STACK)
    assert code == 2, err
    assert "already belongs to tenant legacy" in err and repr(stored) in err
    assert rows(d1, "SELECT slug FROM tenants") == [("legacy",)]
    assert double.saas_zones[SAAS_ZONE].hostnames == {}


def test_status_reports_two_tenants_holding_one_hostname_in_two_spellings_and_exits_1(
        project: Path, d1: D1State) -> None:
    assert run(project, "add", "copycat", "www.legacy.co.za", "--stack", STACK)[0] == 0
    insert_tenant(d1.path, "legacy", "WWW.Legacy.co.za")
    code, out, err = run(project, "status", "--stack", STACK, "-f", "json")
    assert code == 1
    claims = sorted((h["slug"], h["state"]) for h in json.loads(out)["hostnames"]
                    if h["hostname"] == "www.legacy.co.za")
    assert claims == [("copycat", "hostname-clash"), ("legacy", "hostname-clash")]
    assert "www.legacy.co.za (hostname-clash)" in err


@pytest.mark.parametrize(("broken", "said"), [
    # An unquoted date: YAML reads a date, which the Pulumi CLI does not take as the string it needs.
    (lambda text: text.replace('booking:compatibilityDate: "2026-10-01"', "booking:compatibilityDate: 2026-10-01"),
     "booking:compatibilityDate"),
    (lambda text: text + "  booking:alertEmail: oncall@company.com\n", "alertEmail"),  # a key set twice
])
def test_add_fails_closed_while_another_stack_file_cannot_be_read(
        project: Path, d1: D1State, double: CloudflareDouble, broken: object, said: str) -> None:
    assert callable(broken)
    (project / "Pulumi.production.yaml").write_text(broken((REPO / "Pulumi.production.yaml").read_text()))
    code, _, err = run(project, "add", "hijack", "www.instylehairboutique.co.za", "--stack", STACK)
    assert code == 2, err
    assert "Pulumi.production.yaml" in err and said in err and "fix" in err
    assert rows(d1, "SELECT * FROM tenants") == []
    assert double.saas_zones[SAAS_ZONE].hostnames == {}


# --- L2: bookings whose start is not canonical text -----------------------------------------------

@pytest.mark.parametrize("starts_at", [
    "1796000000",  # a Unix time stored as text: no date `remove` can compare
    " 2026-12-04 10:00:00",  # a leading space sorts before every date
    "04/12/2026 10:00",  # a day-first date
])
def test_remove_counts_a_booking_whose_start_it_cannot_read_as_open_and_names_it(
        project: Path, d1: D1State, double: CloudflareDouble, starts_at: str) -> None:
    run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    book(d1, starts_at)
    code, _, err = run(project, "remove", "glamour", "--stack", STACK)
    assert code == 1, err
    assert "1 open appointment(s)" in err and repr(starts_at) in err
    assert rows(d1, "SELECT status FROM tenants") == [("active",)]
    assert len(double.saas_zones[SAAS_ZONE].hostnames) == 1


def test_remove_reads_a_past_booking_with_a_leading_space_as_past(project: Path, d1: D1State) -> None:
    run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    book(d1, " 2026-10-01 10:00:00")
    book(d1, "2026-10-01T10:00:00+02:00 ")
    code, _, err = run(project, "remove", "glamour", "--stack", STACK)
    assert code == 0, err
    assert rows(d1, "SELECT status FROM tenants") == [("suspended",)]


# --- L1: text from the database never drives the terminal ---------------------------------------

def test_tenants_list_prints_a_tenants_name_with_its_escape_sequences_spelled_out(tmp_path: Path) -> None:
    db = migrated_sqlite(tmp_path / "d1.sqlite")
    insert_tenant(db, "evil", "www.evil.co.za", name="Evil\x1b]0;pwned\x07\x1b[2J\u202e")
    code, out, err = run(REPO, "list", "--local", str(db))
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "Evil\\x1b]0;pwned\\x07\\x1b[2J\\u202e" in out


def test_users_list_prints_a_customers_name_without_the_osc_52_clipboard_write(tmp_path: Path) -> None:
    """The review's second L1 case: a customer's name carrying OSC 52 would write the admin's clipboard."""
    from typer.testing import CliRunner

    from bookingctl.cli import app

    db = migrated_sqlite(tmp_path / "d1.sqlite")
    insert_tenant(db, "salon", "www.salon.co.za")
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO users (id, tenant_id, email, name) VALUES ('u1', 't-salon', 'a@example.co.za', ?)",
                     ("Mallory\x1b]52;c;cHduZWQ=\x07",))
    result = CliRunner().invoke(app, ["users", "list", "--local", str(db)])
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "Mallory\\x1b]52;c;cHduZWQ=\\x07" in result.stdout


def test_status_prints_a_tenants_slug_and_hostname_from_the_table_without_escape_sequences(
        project: Path, d1: D1State) -> None:
    insert_tenant(d1.path, "rowonly", "www.row\x1b[2Jonly.co.za")
    code, out, err = run(project, "status", "--stack", STACK)
    assert code == 1  # a row with no custom hostname: drift
    assert "\x1b" not in out and "\\x1b[2j" in out  # stored hostnames compare lowercased
    assert "\x1b" not in err and "\\x1b[2j" in err


# --- newcomer 5: --local has no stack, so nothing is labelled SaaS ----------------------------------

def test_tenants_list_local_calls_no_hostname_saas(tmp_path: Path) -> None:
    db = migrated_sqlite(tmp_path / "d1.sqlite")
    insert_tenant(db, "instyle", "www.instylehairboutique.co.za")
    insert_tenant(db, "gone", None)
    code, out, err = run(REPO, "list", "--local", str(db), "-f", "json")
    assert code == 0, err
    assert {r["slug"]: r["path"] for r in json.loads(out)} == {"instyle": "unknown", "gone": "none"}
    assert "--stack" in err  # says where the labels come from


def test_an_error_naming_a_slug_another_writer_stored_spells_its_escape_sequences_out(
        project: Path, d1: D1State) -> None:
    insert_tenant(d1.path, "legacy\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07", "www.legacy.co.za")
    code, _, err = run(project, "add", "copycat", "www.legacy.co.za", "--stack", STACK)
    assert code == 2
    assert "\x1b" not in err and "\x07" not in err and "legacy\\x1b]52;c;" in err
