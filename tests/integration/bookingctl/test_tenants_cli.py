"""`bookingctl tenants` end to end: the stack's D1 and its SaaS zone's custom hostnames on the API double."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import cloudflare
import pytest
from cloudflare import Cloudflare
from typer.testing import CliRunner

from booking_shared.limits import turnstile_hostname_limit
from bookingctl.cli import app
from ops.observation.drift import Context, saas_differences
from ops.targets import remote_database
from ops.tenants.tenant_model import SaasZone
from ops.tenants.tenants import status
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, CloudflareDouble, D1State, Fault
from tests.helpers.cf_double.ratelimit import RateLimit
from tests.helpers.saas_stack import (
    DATABASE,
    FALLBACK,
    SAAS_WIDGET,
    SAAS_ZONE,
    SAAS_ZONE_NAME,
    STACK,
    migrated_sqlite,
    saas_project,
)

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    return saas_project(tmp_path / "project")


@pytest.fixture
def d1(double: CloudflareDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> D1State:
    """The stack's D1 (migrated), its SaaS zone with an active fallback origin and the SaaS salons'
    Turnstile widget (as `pulumi up` leaves them), reached through the SDK."""
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", double.base_url)
    zone = double.add_saas_zone(SAAS_ZONE, name=SAAS_ZONE_NAME)
    zone.fallback_origin = {"origin": FALLBACK, "status": "active", "errors": []}
    # The main widget of the same account first: its name holds the SaaS one's as no substring,
    # but a name filter is a substring match, so a look-alike is there too.
    double.add_turnstile_widget("appointmentbooking staging booking form", ["staging.instylehairboutique.co.za"])
    double.add_turnstile_widget(SAAS_WIDGET + "-old", ["old.example.co.za"])
    double.add_turnstile_widget(SAAS_WIDGET, [FALLBACK], clearance_level="managed")
    return double.add_database(DATABASE, migrated_sqlite(tmp_path / "seed.sqlite"))


def run(project: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["tenants", *args, "--project-dir", str(project)])
    return result.exit_code, result.stdout, result.stderr


def rows(d1: D1State, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(d1.path)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def test_add_writes_the_row_creates_the_hostname_and_prints_what_the_salon_publishes(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    code, out, err = run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK, "--name", "Glamour",
                         "-f", "json")
    assert code == 0, err
    result = json.loads(out)
    assert rows(d1, "SELECT slug, name, hostname, status FROM tenants") == [
        ("glamour", "Glamour", "www.glamoursalon.co.za", "active")]
    [created] = double.saas_zones[SAAS_ZONE].hostnames.values()
    assert created["hostname"] == "www.glamoursalon.co.za"
    assert created["ssl"]["settings"]["min_tls_version"] == "1.2"  # booking:saas.minTlsVersion
    publish = {(r["type"], r["name"], r["purpose"]): r["value"] for r in result["publish"]}
    assert publish[("CNAME", "www.glamoursalon.co.za", "traffic")] == FALLBACK
    assert publish[("TXT", "_cf-custom-hostname.www.glamoursalon.co.za", "ownership")] == (
        created["ownership_verification"]["value"])
    assert publish[("TXT", "_acme-challenge.www.glamoursalon.co.za", "certificate")] == (
        created["ssl"]["validation_records"][0]["txt_value"])
    assert result["state"]["state"] == "pending"


def test_add_twice_creates_nothing_twice(project: Path, d1: D1State, double: CloudflareDouble) -> None:
    for _ in range(2):
        code, _, err = run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
        assert code == 0, err
    assert len(rows(d1, "SELECT * FROM tenants")) == 1
    assert len(double.saas_zones[SAAS_ZONE].hostnames) == 1
    posts = [p for m, p in double.requests if m == "POST" and p.endswith("/custom_hostnames")]
    assert len(posts) == 1


def test_a_lost_answer_to_the_creation_is_read_back_not_sent_again(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    double.inject(Fault("POST", r"/custom_hostnames$", status=0, applied=True))
    code, _, err = run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    assert code == 0, err
    assert len(double.saas_zones[SAAS_ZONE].hostnames) == 1
    posts = [p for m, p in double.requests if m == "POST" and p.endswith("/custom_hostnames")]
    assert len(posts) == 1, "a write whose answer was lost must be read back, not resent"


def test_one_hundred_salons_onboarded_all_reach_active(project: Path, d1: D1State, double: CloudflareDouble,
                                                       client: Cloudflare) -> None:
    from ops.targets import remote_database
    from ops.tenants.tenant_model import SaasZone
    from ops.tenants.tenants import add_tenant

    double.custom_hostname_polls_needed = 3
    # Turnstile Enterprise: 200 hostnames a widget, so one SaaS widget takes all of them.
    double.turnstile_hostname_limit = turnstile_hostname_limit("enterprise")
    # Onboarded through the operation `tenants add` runs, with the strict SDK (one client: the CLI's
    # start-up 100 times over would only slow the suite), then followed by the command itself.
    with remote_database(ACCOUNT, DATABASE, client=client) as db:
        for i in range(100):
            onboarding = add_tenant(db, db.client, SaasZone(SAAS_ZONE, FALLBACK, account_id=ACCOUNT,
                                                            turnstile_widget=SAAS_WIDGET, turnstile_plan="enterprise"),
                                    f"salon-{i:03d}", f"www.salon-{i:03d}.co.za")
            assert onboarding.row_created and onboarding.hostname_created and onboarding.state.state == "pending"
    assert len(rows(d1, "SELECT * FROM tenants WHERE status = 'active'")) == 100
    assert len(widget(double)["domains"]) == 101
    code, out, err = run(project, "status", "--stack", STACK, "-f", "json", "--wait", "5m", "--interval", "0")
    assert code == 0, err
    report = json.loads(out)
    assert report["counts"] == {"active": 100}
    assert report["polls"] >= 2, "the hostnames were pending at first and followed until active"
    # Paginated: 100 hostnames at 50 a page are read in more than one request per look.
    lists = [p for m, p in double.requests if m == "GET" and p.endswith(f"/zones/{SAAS_ZONE}/custom_hostnames")]
    assert len(lists) >= 3 * report["polls"]


def test_a_blocked_hostname_exits_1_naming_the_records_to_fix(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    double.blocked_hostnames["book.neverpublished.co.za"] = "validation_timed_out"
    assert run(project, "add", "fine", "www.fine.co.za", "--stack", STACK)[0] == 0
    assert run(project, "add", "stuck", "book.neverpublished.co.za", "--stack", STACK)[0] == 0
    code, out, err = run(project, "status", "--stack", STACK, "--wait", "1m", "--interval", "0")
    assert code == 1
    assert "book.neverpublished.co.za" in err and "TXT _acme-challenge.book.neverpublished.co.za" in err
    assert "CNAME book.neverpublished.co.za" in err and "www.fine.co.za" not in err
    assert "records to fix for book.neverpublished.co.za (blocked)" in out
    assert "validation_timed_out" in out


def test_add_again_restarts_a_timed_out_validation_once_the_records_are_published(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    double.blocked_hostnames["book.late.co.za"] = "validation_timed_out"
    run(project, "add", "late", "book.late.co.za", "--stack", STACK)
    assert run(project, "status", "--stack", STACK, "--wait", "1m", "--interval", "0")[0] == 1
    code, out, err = run(project, "add", "late", "book.late.co.za", "--stack", STACK, "-f", "json")
    assert code == 0, err
    assert json.loads(out)["state"]["ssl_status"] == "pending_validation"
    assert [m for m, p in double.requests if p.endswith("/custom_hostnames/" + json.loads(out)["state"][
        "custom_hostname_id"]) and m == "PATCH"] == ["PATCH"]
    code, out, err = run(project, "status", "late", "--stack", STACK, "--wait", "1m", "--interval", "0")
    assert code == 0, err
    assert "active" in out


def test_a_live_salon_whose_hostname_is_active_redeploying_passes_status_wait(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    """Cloudflare reports a live hostname whose changes were processed as `active_redeploying`
    (validation-status.mdx): the salon is live, so `status --wait` must not fail on it."""
    run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    assert run(project, "status", "--stack", STACK, "--wait", "1m", "--interval", "0")[0] == 0
    [record] = double.saas_zones[SAAS_ZONE].hostnames.values()
    record["status"] = "active_redeploying"
    code, out, err = run(project, "status", "--stack", STACK, "--wait", "1m", "--interval", "0", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["counts"] == {"active": 1}


def test_status_of_one_pending_salon_exits_0_and_says_what_it_waits_for(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    double.custom_hostname_polls_needed = 100
    run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    code, out, err = run(project, "status", "glamour", "--stack", STACK, "-f", "json")
    assert code == 0, err
    [state] = json.loads(out)["hostnames"]
    assert state["state"] == "pending" and "waiting for the records below" in state["blockers"]
    assert {r["purpose"] for r in state["records"]} == {"traffic", "ownership", "certificate"}


def test_drift_both_ways_is_reported_and_exits_1(project: Path, d1: D1State, double: CloudflareDouble) -> None:
    run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    # A row whose hostname was never created, and a hostname created by hand with no row.
    conn = sqlite3.connect(d1.path)
    conn.execute("INSERT INTO tenants (id, slug, name, hostname) VALUES ('t2', 'rowonly', 'R', 'www.rowonly.co.za')")
    conn.commit()
    conn.close()
    double.dispatch_zone("POST", f"{SAAS_ZONE}/custom_hostnames", {},
                         {"hostname": "www.orphan.co.za", "ssl": {"method": "txt", "type": "dv"}})
    code, out, err = run(project, "status", "--stack", STACK, "-f", "json")
    assert code == 1
    states = {h["hostname"]: h["state"] for h in json.loads(out)["hostnames"]}
    assert states["www.rowonly.co.za"] == "missing-hostname"
    assert states["www.orphan.co.za"] == "no-tenant-row"
    assert "www.rowonly.co.za (missing-hostname)" in err and "www.orphan.co.za (no-tenant-row)" in err


def test_rows_served_by_the_stack_config_are_not_drift(project: Path, d1: D1State) -> None:
    conn = sqlite3.connect(d1.path)
    conn.execute("INSERT INTO tenants (id, slug, name, hostname) VALUES "
                 "('t1', 'instyle', 'InStyle', 'staging.instylehairboutique.co.za')")
    conn.commit()
    conn.close()
    code, out, err = run(project, "status", "--stack", STACK, "-f", "json")
    assert code == 0, err
    assert json.loads(out)["hostnames"] == []
    code, out, _ = run(project, "list", "--stack", STACK, "-f", "json")
    assert json.loads(out)[0]["path"] == "config (booking:domain)"


def book(d1: D1State, starts_at: str, status: str = "booked") -> None:
    conn = sqlite3.connect(d1.path)
    tenant = conn.execute("SELECT id FROM tenants WHERE slug = 'glamour'").fetchone()[0]
    conn.execute("INSERT OR IGNORE INTO users (id, email, name) VALUES ('u1', 'a@b.co.za', 'A')")
    conn.execute("INSERT OR IGNORE INTO services (id, tenant_id, name, duration_minutes) VALUES ('s1', ?, 'Cut', 30)",
                 (tenant,))
    conn.execute("INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at, status) "
                 "VALUES (hex(randomblob(8)), ?, 's1', 'u1', ?, ?)", (tenant, starts_at, status))
    conn.commit()
    conn.close()


def test_remove_with_future_bookings_is_refused_and_changes_nothing(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    book(d1, "2026-12-05 10:00:00")  # after BOOKING_TODAY (2026-11-27)
    book(d1, "2026-11-01 10:00:00")  # past: does not count
    book(d1, "2026-12-06 10:00:00", status="cancelled")  # cancelled: does not count
    code, _, err = run(project, "remove", "glamour", "--stack", STACK)
    assert code == 1
    assert "1 open appointment(s)" in err and "2026-12-05 10:00:00" in err and "--force --reason" in err
    assert len(double.saas_zones[SAAS_ZONE].hostnames) == 1
    assert rows(d1, "SELECT status, hostname FROM tenants") == [("active", "www.glamoursalon.co.za")]


def test_remove_is_refused_for_a_booking_written_in_utc_on_the_eve_of_today_that_is_today_in_the_salon(
        project: Path, d1: D1State, monkeypatch: pytest.MonkeyPatch) -> None:
    run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    monkeypatch.setenv("BOOKING_TODAY", "2026-11-28")  # an operator in Johannesburg, just after midnight
    book(d1, "2026-11-27T23:00:00Z")  # 01:00 on the 28th in Johannesburg: an hour from now
    book(d1, "2026-11-27 12:00:00")  # a wall-clock time yesterday: does not count
    book(d1, "2026-11-27T08:00:00+02:00")  # yesterday morning in Johannesburg: does not count
    code, _, err = run(project, "remove", "glamour", "--stack", STACK)
    assert code == 1
    assert "1 open appointment(s)" in err and "2026-11-27T23:00:00Z" in err
    assert rows(d1, "SELECT status FROM tenants") == [("active",)]


def test_forced_remove_needs_a_reason(project: Path, d1: D1State) -> None:
    run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    code, _, err = run(project, "remove", "glamour", "--stack", STACK, "--force")
    assert code == 2 and "--reason" in err


def test_forced_remove_deletes_the_hostname_suspends_the_row_and_records_why(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    book(d1, "2026-12-05 10:00:00")
    code, out, err = run(project, "remove", "glamour", "--stack", STACK, "--force", "--reason",
                         "salon closed; customers called", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["forced"] is True
    assert double.saas_zones[SAAS_ZONE].hostnames == {}
    assert rows(d1, "SELECT status, hostname FROM tenants") == [("suspended", None)]
    [(action,)] = rows(d1, "SELECT action FROM audit_logs WHERE resource_id = 'glamour'")
    assert "forced" in action and "salon closed; customers called" in action
    assert len(rows(d1, "SELECT * FROM appointments")) == 1  # the bookings themselves are kept
    # Nothing disagrees afterwards: the suspended row is no SaaS tenant any more.
    assert run(project, "status", "--stack", STACK)[0] == 0


def test_add_refuses_a_hostname_the_stack_config_serves(project: Path, d1: D1State) -> None:
    code, _, err = run(project, "add", "x", "staging.instylehairboutique.co.za", "--stack", STACK)
    assert code == 2 and "booking:domain" in err


@pytest.mark.parametrize(("hostname", "said"), [
    (SAAS_ZONE_NAME.upper(), "matches the SaaS zone's name"),  # Cloudflare: never the zone's own name
    (FALLBACK, "booking:saas.fallbackHostname"),
    ("www." + FALLBACK, "SaaS fallback hostname"),
])
def test_add_refuses_the_saas_zones_own_name_and_its_fallback_hostname_and_writes_nothing(
        project: Path, d1: D1State, double: CloudflareDouble, hostname: str, said: str) -> None:
    code, _, err = run(project, "add", "x", hostname, "--stack", STACK)
    assert code == 2 and hostname.lower() in err and said in err, err
    assert rows(d1, "SELECT * FROM tenants") == []
    assert double.saas_zones[SAAS_ZONE].hostnames == {}


def test_add_of_an_internationalised_hostname_stores_and_creates_it_as_browsers_send_it(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    # A browser asks for bücher.co.za as xn--bcher-kva.co.za (the Host header the Worker matches).
    code, out, err = run(project, "add", "buecher", "Bücher.co.za", "--stack", STACK, "-f", "json")
    assert code == 0, err
    assert rows(d1, "SELECT hostname FROM tenants") == [("xn--bcher-kva.co.za",)]
    assert [h["hostname"] for h in double.saas_zones[SAAS_ZONE].hostnames.values()] == ["xn--bcher-kva.co.za"]
    assert json.loads(out)["publish"][0]["name"] == "xn--bcher-kva.co.za"
    code, _, err = run(project, "add", "buecher", "bücher.co.za", "--stack", STACK)
    assert code == 0, err  # the same salon again: nothing new
    assert len(double.saas_zones[SAAS_ZONE].hostnames) == 1


def test_add_of_a_hostname_that_is_no_valid_idn_is_one_error_line(project: Path, d1: D1State) -> None:
    code, _, err = run(project, "add", "x", "xn--zz.co.za", "--stack", STACK)
    assert code == 2 and "xn--zz.co.za" in err and "Traceback" not in err
    assert rows(d1, "SELECT * FROM tenants") == []


def test_add_refuses_a_hostname_another_committed_stack_serves_and_creates_nothing(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    from tests.helpers import REPO

    (project / "Pulumi.production.yaml").write_text((REPO / "Pulumi.production.yaml").read_text())
    code, _, err = run(project, "add", "x", "WWW.instylehairboutique.co.za.", "--stack", STACK)
    assert code == 2
    assert "www.instylehairboutique.co.za" in err and "Pulumi.production.yaml" in err and "booking:domain" in err
    assert rows(d1, "SELECT * FROM tenants") == []
    assert double.saas_zones[SAAS_ZONE].hostnames == {}


def test_a_stack_without_booking_saas_is_a_usage_error(d1: D1State) -> None:
    from tests.helpers import REPO

    code, _, err = run(REPO, "add", "glamour", "www.glamoursalon.co.za", "--stack", "staging")
    assert code == 2 and "booking:saas" in err


def test_strict_sdk_accepts_every_answer_of_the_double(double: CloudflareDouble) -> None:
    """The double's custom hostname answers fit the SDK's models (strict response validation)."""
    from cloudflare import Cloudflare

    double.add_saas_zone(SAAS_ZONE, name=SAAS_ZONE_NAME)
    with Cloudflare(api_token=TOKEN, base_url=double.base_url, _strict_response_validation=True,
                    max_retries=0) as sdk:
        assert sdk.zones.get(zone_id=SAAS_ZONE).name == SAAS_ZONE_NAME
        sdk.custom_hostnames.fallback_origin.update(zone_id=SAAS_ZONE, origin=FALLBACK)
        created = sdk.custom_hostnames.create(zone_id=SAAS_ZONE, hostname="www.a.co.za",
                                              ssl={"method": "txt", "type": "dv"})
        assert created is not None
        for _ in range(3):
            listed = list(sdk.custom_hostnames.list(zone_id=SAAS_ZONE, per_page=5))
        assert [h.status for h in listed] == ["active"]
        assert sdk.custom_hostnames.get(created.id, zone_id=SAAS_ZONE) is not None
        sdk.custom_hostnames.fallback_origin.get(zone_id=SAAS_ZONE)  # first read: still deploying
        origin = sdk.custom_hostnames.fallback_origin.get(zone_id=SAAS_ZONE)
        assert origin is not None and origin.status == "active"
        assert sdk.custom_hostnames.delete(created.id, zone_id=SAAS_ZONE).id == created.id
    assert ACCOUNT  # the account-scoped routes are untouched by the zone section


# --- the SaaS salons' Turnstile widget -----------------------------------------------------------

def widget(double: CloudflareDouble, name: str = SAAS_WIDGET) -> dict[str, object]:
    [found] = [w for w in double.turnstile_widgets.values() if w["name"] == name]
    return found


def widget_puts(double: CloudflareDouble) -> list[str]:
    return [p for m, p in double.requests if m == "PUT" and "/challenges/widgets/" in p]


def test_add_lists_the_hostname_on_the_saas_widget_keeping_its_other_settings(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    code, _, err = run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    assert code == 0, err
    saas = widget(double)
    assert saas["domains"] == [FALLBACK, "www.glamoursalon.co.za"]
    assert (saas["mode"], saas["clearance_level"], saas["region"]) == ("managed", "managed", "world")
    assert widget(double, SAAS_WIDGET + "-old")["domains"] == ["old.example.co.za"], "only the exact name is touched"
    assert widget_puts(double) == [f"/client/v4/accounts/{ACCOUNT}/challenges/widgets/{saas['sitekey']}"]


def test_a_second_add_sends_nothing_to_the_widget(project: Path, d1: D1State, double: CloudflareDouble) -> None:
    for _ in range(2):
        code, _, err = run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
        assert code == 0, err
    assert len(widget_puts(double)) == 1
    assert widget(double)["domains"] == [FALLBACK, "www.glamoursalon.co.za"]


def test_a_hostname_cloudflare_refuses_on_the_widget_is_refused_and_nothing_is_written(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    double.turnstile_hostname_limit = 2  # Cloudflare refusing before the plan's limit: its word counts
    assert run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)[0] == 0
    code, _, err = run(project, "add", "fade-kings", "www.fadekings.co.za", "--stack", STACK)
    assert code == 1
    [line] = err.strip().splitlines()
    assert "www.fadekings.co.za" in line and "Cloudflare refused it" in line
    assert "booking:turnstile.saasWidgets" in line and "Nothing was written" in line
    assert "Traceback" not in err
    assert rows(d1, "SELECT slug FROM tenants") == [("glamour",)]
    assert [h["hostname"] for h in double.saas_zones[SAAS_ZONE].hostnames.values()] == ["www.glamoursalon.co.za"]
    assert widget(double)["domains"] == [FALLBACK, "www.glamoursalon.co.za"]


def test_remove_unlists_the_hostname_from_the_widget_after_deleting_the_custom_hostname(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    run(project, "add", "fade-kings", "www.fadekings.co.za", "--stack", STACK)
    code, _, err = run(project, "remove", "glamour", "--stack", STACK)
    assert code == 0, err
    assert widget(double)["domains"] == [FALLBACK, "www.fadekings.co.za"]
    delete = next(i for i, (m, p) in enumerate(double.requests) if m == "DELETE" and "/custom_hostnames/" in p)
    put = max(i for i, (m, p) in enumerate(double.requests) if m == "PUT" and "/challenges/widgets/" in p)
    assert delete < put, "the hostname stays on the widget until its custom hostname is gone"
    assert run(project, "status", "--stack", STACK)[0] == 0


def test_status_reports_an_active_tenants_hostname_missing_from_the_widget(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    run(project, "add", "fade-kings", "www.fadekings.co.za", "--stack", STACK)
    assert run(project, "status", "--stack", STACK)[0] == 0
    widget(double)["domains"] = [FALLBACK, "www.fadekings.co.za"]  # changed by hand in the dashboard
    code, out, err = run(project, "status", "--stack", STACK, "-f", "json")
    assert code == 1
    assert json.loads(out)["turnstile"] == {"widget": SAAS_WIDGET, "missing": ["www.glamoursalon.co.za"]}
    assert f"1 not on Turnstile widget {SAAS_WIDGET}" in err and "www.glamoursalon.co.za" in err
    assert "www.fadekings.co.za" not in err
    # `tenants add` again puts it back.
    assert run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)[0] == 0
    assert run(project, "status", "--stack", STACK)[0] == 0


def test_without_the_saas_widget_add_is_refused_before_anything_is_written(
        project: Path, d1: D1State, double: CloudflareDouble) -> None:
    double.turnstile_widgets = {k: w for k, w in double.turnstile_widgets.items() if w["name"] != SAAS_WIDGET}
    code, _, err = run(project, "add", "glamour", "www.glamoursalon.co.za", "--stack", STACK)
    assert code == 1 and SAAS_WIDGET in err and "pulumi up" in err
    assert rows(d1, "SELECT * FROM tenants") == []
    assert double.saas_zones[SAAS_ZONE].hostnames == {}


def test_strict_sdk_accepts_every_turnstile_answer_of_the_double(double: CloudflareDouble) -> None:
    """The double's widget answers fit the SDK's Widget and WidgetListResponse (strict validation)."""
    for i in range(7):
        double.add_turnstile_widget(f"form-{i}", [f"www.s{i}.co.za"])
    saas = double.add_turnstile_widget(SAAS_WIDGET, [FALLBACK])
    with Cloudflare(api_token=TOKEN, base_url=double.base_url, _strict_response_validation=True,
                    max_retries=0) as sdk:
        everything = list(sdk.turnstile.widgets.list(account_id=ACCOUNT, per_page=5))  # two pages and an empty one
        assert len(everything) == 8
        [found] = sdk.turnstile.widgets.list(account_id=ACCOUNT, filter="name:SAAS-SALONS")
        assert found.sitekey == saas["sitekey"] and found.domains == [FALLBACK]
        got = sdk.turnstile.widgets.get(saas["sitekey"], account_id=ACCOUNT)
        assert got is not None and got.secret == saas["secret"]
        updated = sdk.turnstile.widgets.update(saas["sitekey"], account_id=ACCOUNT, domains=[FALLBACK, "www.a.co.za"],
                                               mode="managed", name=SAAS_WIDGET)
        assert updated is not None and updated.domains == [FALLBACK, "www.a.co.za"]
        double.turnstile_hostname_limit = 1
        with pytest.raises(cloudflare.BadRequestError):
            sdk.turnstile.widgets.update(saas["sitekey"], account_id=ACCOUNT, domains=[FALLBACK, "www.b.co.za"],
                                         mode="managed", name=SAAS_WIDGET)


# --- `bookingctl drift` on a SaaS stack (issue #27): custom hostnames against the tenants table, both ways ---

def _drift(double: CloudflareDouble, retries: int = 0) -> Context:
    with Cloudflare(api_token=TOKEN, base_url=double.base_url, max_retries=retries) as client:
        ctx = Context(client, ACCOUNT, STACK, frozenset())
        db = remote_database(ACCOUNT, DATABASE, client=client, stack=STACK)
        zone = SaasZone(SAAS_ZONE, FALLBACK)
        saas_differences(ctx, status(db, client, zone, served={}))
        return ctx


def test_custom_hostnames_removed_or_added_by_hand_are_found(project: Path, d1: D1State,
                                                             double: CloudflareDouble) -> None:
    for slug, host in (("glamour", "www.glamoursalon.co.za"), ("curls", "www.curls.co.za")):
        code, _, err = run(project, "add", slug, host, "--stack", STACK, "--name", slug.title())
        assert code == 0, err
    assert _drift(double).differences == []
    hostnames = double.saas_zones[SAAS_ZONE].hostnames
    removed = next(k for k, v in hostnames.items() if v["hostname"] == "www.curls.co.za")
    del hostnames[removed]  # deleted in the dashboard
    with Cloudflare(api_token=TOKEN, base_url=double.base_url, max_retries=0) as client:
        client.custom_hostnames.create(zone_id=SAAS_ZONE, hostname="shop.someone-else.co.za",
                                       ssl={"method": "http", "type": "dv"})
    found = {(d.kind, d.resource): d for d in _drift(double).differences}
    assert set(found) == {("missing", "custom hostname www.curls.co.za"),
                          ("unmanaged", "custom hostname shop.someone-else.co.za")}
    assert "bookingctl tenants add curls www.curls.co.za" in found[("missing", "custom hostname www.curls.co.za")].fix
    assert "no tenant row" in found[("unmanaged", "custom hostname shop.someone-else.co.za")].detail


def _salons(d1: D1State, double: CloudflareDouble, count: int) -> None:
    """`count` salons as `tenants add` leaves them: a tenant row and a custom hostname each."""
    conn = sqlite3.connect(d1.path)
    conn.executemany("INSERT INTO tenants (id, slug, name, hostname) VALUES (?, ?, ?, ?)",
                     [(f"t{i}", f"salon{i}", f"Salon {i}", f"www.salon{i}.co.za") for i in range(count)])
    conn.commit()
    conn.close()
    with Cloudflare(api_token=TOKEN, base_url=double.base_url, max_retries=0) as client:
        for i in range(count):
            client.custom_hostnames.create(zone_id=SAAS_ZONE, hostname=f"www.salon{i}.co.za",
                                           ssl={"method": "http", "type": "dv"})


def test_a_thousand_salons_are_read_within_the_published_rate_limit(d1: D1State, double: CloudflareDouble) -> None:
    """Issue #27 point 4 (custom hostnames): 1,000 salons' hostnames read page by page under the API's
    published limit (1,200 requests per 5 minutes, tests/helpers/cf_double/ratelimit.py), no drift."""
    _salons(d1, double, 1000)
    double.rate_limit = RateLimit()
    started = time.monotonic()
    differences = _drift(double).differences
    elapsed = time.monotonic() - started
    assert differences == [] and double.rate_limit.refused == 0
    assert double.rate_limit.answered <= 60 and elapsed < 60, (double.rate_limit.answered, elapsed)
    print(f"1,000 salons: {double.rate_limit.answered} requests in {elapsed:.1f} s")


def test_the_read_waits_out_a_429_as_its_retry_after_says(d1: D1State, double: CloudflareDouble) -> None:
    """Over the limit every call answers 429 with retry-after; the SDK waits that long and goes on."""
    _salons(d1, double, 120)  # 3 pages of custom hostnames
    double.rate_limit = RateLimit(requests=3, period=1.0)
    started = time.monotonic()
    assert _drift(double, retries=4).differences == []
    assert double.rate_limit.refused >= 1 and time.monotonic() - started >= 1.0
