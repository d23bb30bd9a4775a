"""The API double checks what it receives and what it answers against Cloudflare's OpenAPI document.

A request the document refuses is answered with the API's 400 error envelope and makes the test
that sent it fail, even when the code under test swallows the 400; an answer of the double that
does not fit the document fails the test too (tests/helpers/cf_openapi.py, tests/conftest.py).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, CloudflareDouble, take_violations
from tests.helpers.cf_openapi import load

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

ZONE = "5f0c3e2a1b9d8c7e6f5a4b3c2d1e0f9a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _send(double: CloudflareDouble, method: str, path: str, body: Any = None, **params: str) -> httpx.Response:
    return httpx.request(method, double.base_url + path, json=body, params=params, headers=AUTH)


def test_a_body_field_the_operation_does_not_define_is_refused_with_the_apis_400(double: CloudflareDouble) -> None:
    db = double.add_database("bookings")
    answer = _send(double, "POST", f"/accounts/{ACCOUNT}/d1/database/{db.uuid}/query",
                   {"sql": "SELECT 1", "parms": ["x"]})
    assert answer.status_code == 400
    assert answer.json()["success"] is False and answer.json()["result"] is None
    assert answer.json()["errors"][0]["code"] >= 1000  # the document's failure envelope
    [violation] = take_violations()
    assert "POST /client/v4/accounts/" in violation and "body/parms is not a field of the schema" in violation
    assert double.sql == ["SELECT 1"]  # seen, never run


def test_a_field_of_the_wrong_type_is_refused(double: CloudflareDouble) -> None:
    db = double.add_database("bookings")
    assert _send(double, "POST", f"/accounts/{ACCOUNT}/d1/database/{db.uuid}/query", {"sql": 1}).status_code == 400
    [violation] = take_violations()
    assert "1 is not of type 'string'" in violation


def test_a_missing_required_field_is_refused(double: CloudflareDouble) -> None:
    double.add_saas_zone(ZONE)
    assert _send(double, "PUT", f"/zones/{ZONE}/custom_hostnames/fallback_origin", {}).status_code == 400
    [violation] = take_violations()
    assert "'origin' is a required property" in violation


def test_a_query_parameter_the_operation_does_not_define_is_refused(double: CloudflareDouble) -> None:
    # The API would ignore it: code filtering on it would get everything back.
    assert _send(double, "GET", f"/accounts/{ACCOUNT}/d1/database", database_name="bookings").status_code == 400
    [violation] = take_violations()
    assert "query parameter 'database_name' is not one of the operation's (name, page, per_page)" in violation


def test_a_query_parameter_out_of_its_range_is_refused(double: CloudflareDouble) -> None:
    double.add_saas_zone(ZONE)
    assert _send(double, "GET", f"/zones/{ZONE}/custom_hostnames", per_page="51").status_code == 400
    [violation] = take_violations()
    assert "per_page=['51']: 51 is greater than the maximum of 50" in violation


def test_a_route_outside_the_document_is_refused(double: CloudflareDouble) -> None:
    db = double.add_database("bookings")
    assert _send(double, "POST", f"/accounts/{ACCOUNT}/d1/database/{db.uuid}/raw", {"sql": "SELECT 1"}).status_code \
        == 400
    [violation] = take_violations()
    assert "is not an operation of the OpenAPI subset" in violation


def test_a_correct_request_and_answer_pass(double: CloudflareDouble) -> None:
    db = double.add_database("bookings")
    answer = _send(double, "POST", f"/accounts/{ACCOUNT}/d1/database/{db.uuid}/query",
                   {"sql": "SELECT ? AS one", "params": ["1"]})
    assert answer.status_code == 200 and answer.json()["result"][0]["results"] == [{"one": "1"}]
    assert take_violations() == []


def test_an_error_answer_is_checked_against_the_failure_envelope() -> None:
    # The document writes 4XX answers as allOf(success envelope, failure envelope), which nothing
    # fits (success: true and false at once); the failure envelope alone is what an error is.
    check = load()
    path = f"/zones/{ZONE}/custom_hostnames/0b8e2f1a-6c4d-4e5f-9a7b-3c2d1e0f9a8b"
    error = {"success": False, "errors": [{"code": 1436, "message": "not found"}], "messages": [], "result": None}
    assert check.problem_with_response("GET", path, 404, error) is None
    assert "is not of type 'integer'" in str(check.problem_with_response(
        "GET", path, 404, {**error, "errors": [{"code": "1436", "message": "not found"}]}))


INNER = '''
    import cloudflare
    import httpx

    from tests.helpers import ACCOUNT
    from tests.helpers.cf_double import TOKEN


    def test_swallowed_400(client, double):
        db = double.add_database("bookings")
        try:
            client.d1.database.query(db.uuid, account_id=ACCOUNT, sql="SELECT 1", extra_body={"parms": []})
        except cloudflare.BadRequestError:
            pass  # the code under test swallows the 400: the test must fail all the same


    def test_wrong_answer(double):
        widget = double.add_turnstile_widget("salons", ["a.example.co.za"])
        widget["mode"] = "sometimes"
        httpx.get(f"{double.base_url}/accounts/{ACCOUNT}/challenges/widgets/{widget['sitekey']}",
                  headers={"Authorization": f"Bearer {TOKEN}"})


    def test_correct(client, double):
        db = double.add_database("bookings")
        assert client.d1.database.query(db.uuid, account_id=ACCOUNT, sql="SELECT 1 AS one").result[0].results \\
            == [{"one": 1}]
'''


class _Reports:
    def __init__(self) -> None:
        self.outcomes: dict[str, tuple[str, str]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.rsplit("::", 1)[-1]
        if report.failed or name not in self.outcomes:
            self.outcomes[name] = (report.outcome, report.longreprtext)


def test_the_test_that_sent_a_refused_request_or_got_a_wrong_answer_fails(tmp_path: Path) -> None:
    # The suite's own conftest (its fixtures and the hooks under test), for a session of three tests.
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n", encoding="utf-8")
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER), encoding="utf-8")
    reports = _Reports()
    pytest.main([str(tmp_path / "test_inner.py"), "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                 "--rootdir", str(tmp_path)], plugins=[reports])
    swallowed, wrong, correct = (reports.outcomes[n] for n in ("test_swallowed_400", "test_wrong_answer",
                                                               "test_correct"))
    assert swallowed[0] == "failed" and "request POST /client/v4/accounts/" in swallowed[1]
    assert "body/parms is not a field of the schema" in swallowed[1]
    assert wrong[0] == "failed" and "the double's answer to GET" in wrong[1]
    assert "'sometimes' is not one of ['non-interactive', 'invisible', 'managed']" in wrong[1]
    assert correct == ("passed", "")


# --- operations the document lacks: the SDK's own models (tests/helpers/cf_sdk_models.py) ------

def test_an_operation_the_document_lacks_is_checked_against_the_sdks_params(double: CloudflareDouble) -> None:
    db = double.add_database("bookings")
    path = f"/accounts/{ACCOUNT}/d1/database/{db.uuid}/time_travel/restore"
    assert _send(double, "POST", path, at="2026-12-01T00:00:00Z").status_code == 400  # the SDK says `timestamp`
    [violation] = take_violations()
    assert "query parameter 'at' is not one of the SDK's (bookmark, timestamp)" in violation
    bookmark = _send(double, "GET", f"/accounts/{ACCOUNT}/d1/database/{db.uuid}/time_travel/bookmark")
    assert bookmark.status_code == 200 and take_violations() == []


def test_the_doubles_answer_to_such_an_operation_must_fit_the_sdks_model() -> None:
    check = load()
    path = "/accounts/a/d1/database/b/time_travel/bookmark"
    assert check.problem_with_response("GET", path, 200, {"success": True, "result": {"bookmark": "x"}}) is None
    wrong_type = check.problem_with_response("GET", path, 200, {"success": True, "result": {"bookmark": 7}})
    assert wrong_type is not None and "TimeTravelGetBookmarkResponse.bookmark" in wrong_type
    unknown = check.problem_with_response("GET", "/zones/z/custom_hostnames/quota", 200,
                                          {"success": True, "result": {"allocated": 100, "remaining": 3}})
    assert unknown == "QuotaGetResponse has no field remaining"
    listing = check.problem_with_response("GET", "/accounts/a/r2/buckets/b/objects", 200,
                                          {"success": True, "result": {"key": "x"}})
    assert listing == "result is dict, the SDK lists ObjectListResponse"
