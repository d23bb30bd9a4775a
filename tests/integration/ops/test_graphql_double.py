"""The GraphQL Analytics double is held to a published schema, answers late, samples, and remembers splits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, CloudflareDouble, ScriptState, Traffic
from tests.helpers.clock import EPOCH, FakeClock

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

WORKER = "appointmentbooking-api-staging"

# ops/observation/analytics.py's query until issue #20: it grouped by `httpResponseStatus`, a field no published
# schema of `AccountWorkersInvocationsAdaptiveDimensions` has.
QUERY_BEFORE_ISSUE_20 = """query CanaryTraffic($account: string!, $script: string!, $since: Time!, $until: Time!) {
  viewer {
    accounts(filter: {accountTag: $account}) {
      workersInvocationsAdaptive(limit: 1000,
                                 filter: {scriptName: $script, datetime_geq: $since, datetime_leq: $until}) {
        sum { requests errors }
        quantiles { wallTimeP50 }
        dimensions { scriptVersion status httpResponseStatus }
      }
    }
  }
}"""

BY_VERSION = """query ($account: string!, $script: string!, $since: Time!, $until: Time!) {
  viewer { accounts(filter: {accountTag: $account}) {
    workersInvocationsAdaptive(limit: 1000, filter: {scriptName: $script, datetime_geq: $since, datetime_leq: $until}) {
      sum { requests errors } avg { sampleInterval } dimensions { scriptVersion status }
    } } }
}"""


def ask(double: CloudflareDouble, query: str, **variables: Any) -> tuple[int, dict[str, Any]]:
    answer = httpx.post(f"{double.base_url}/graphql", headers={"Authorization": f"Bearer {TOKEN}"},
                        json={"query": query, "variables": variables})
    return answer.status_code, answer.json()


def window(since: float, until: float) -> dict[str, str]:
    """Variables of a window given in minutes after the fake clock's start."""
    at = lambda minutes: (EPOCH + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    return {"account": ACCOUNT, "script": WORKER, "since": at(since), "until": at(until)}


def requests_by_version(body: dict[str, Any]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in body["data"]["viewer"]["accounts"][0]["workersInvocationsAdaptive"]:
        version = row["dimensions"]["scriptVersion"]
        totals[version] = totals.get(version, 0) + row["sum"]["requests"]
    return totals


@pytest.fixture
def clock(double: CloudflareDouble) -> FakeClock:
    fake = FakeClock()
    double.now = fake.wall
    return fake


@pytest.fixture
def script(double: CloudflareDouble, clock: FakeClock) -> ScriptState:
    state = double.add_script(WORKER, versions=1)
    state.requests_per_minute = 1000
    return state


def test_the_query_with_http_response_status_is_refused_as_an_unknown_field(
        double: CloudflareDouble, script: ScriptState, clock: FakeClock) -> None:
    clock.sleep(600)
    status, body = ask(double, QUERY_BEFORE_ISSUE_20, **window(0, 5))
    # errors.mdx: parsing issues such as "unknown field..." are HTTP 400, with data null.
    assert status == 400 and body["data"] is None
    [error] = body["errors"]
    assert "httpResponseStatus" in error["message"]
    assert error["path"] == ["viewer", "accounts", "workersInvocationsAdaptive", "dimensions", "httpResponseStatus"]
    assert "timestamp" in error["extensions"]


def test_introspection_lists_the_published_dimensions_and_no_http_status(double: CloudflareDouble) -> None:
    status, body = ask(double, '{ __type(name: "AccountWorkersInvocationsAdaptiveDimensions") { fields { name } } }')
    names = {f["name"] for f in body["data"]["__type"]["fields"]}
    assert status == 200 and {"scriptVersion", "status", "scriptName", "datetimeMinute"} <= names
    assert "httpResponseStatus" not in names


def test_an_unknown_argument_and_a_wrongly_typed_variable_are_refused(
        double: CloudflareDouble, script: ScriptState) -> None:
    unknown = BY_VERSION.replace("limit: 1000,", "limit: 1000, sampling: 1,")
    assert ask(double, unknown, **window(0, 5))[0] == 400
    status, body = ask(double, BY_VERSION, **{**window(0, 5), "since": "five minutes ago"})
    assert status == 400 and "$since" in body["errors"][0]["message"]


def test_another_account_is_not_authorized(double: CloudflareDouble, script: ScriptState) -> None:
    status, body = ask(double, BY_VERSION, **{**window(0, 5), "account": "0" * 32})
    assert status == 403 and body["errors"][0]["message"] == "not authorized for that account"


def test_a_request_becomes_visible_only_after_the_ingestion_delay(
        double: CloudflareDouble, script: ScriptState, clock: FakeClock) -> None:
    double.ingestion_delay = dt.timedelta(minutes=3)
    clock.sleep(2 * 60)
    assert requests_by_version(ask(double, BY_VERSION, **window(0, 2))[1]) == {}
    clock.sleep(2 * 60)  # now 4 minutes in: the first minute has arrived, the second not yet
    assert requests_by_version(ask(double, BY_VERSION, **window(0, 2))[1]) == {script.versions[0]["id"]: 1000}
    clock.sleep(60)
    assert requests_by_version(ask(double, BY_VERSION, **window(0, 2))[1]) == {script.versions[0]["id"]: 2000}


def test_each_minute_is_split_as_the_deployment_serving_then_split_it(
        double: CloudflareDouble, script: ScriptState, clock: FakeClock) -> None:
    stable, new = script.versions[0]["id"], double.add_version(WORKER)
    clock.sleep(5 * 60)
    status, _ = double._deploy(script, {"versions": [{"version_id": stable, "percentage": 90},
                                                     {"version_id": new, "percentage": 10}]}, force=False)
    assert status == 200
    clock.sleep(20 * 60)
    before = requests_by_version(ask(double, BY_VERSION, **window(0, 5))[1])
    after = requests_by_version(ask(double, BY_VERSION, **window(5, 10))[1])
    assert before == {stable: 5000}, "the canary served nothing before its deployment"
    assert after == {stable: 4500, new: 500}


def test_sampled_rows_are_estimates_that_carry_their_sample_interval(
        double: CloudflareDouble, script: ScriptState, clock: FakeClock) -> None:
    version = script.versions[0]["id"]
    script.traffic[version] = Traffic(exception_rate=0.013)
    double.sample_interval = 10
    clock.sleep(10 * 60)
    rows = ask(double, BY_VERSION, **window(0, 1))[1]["data"]["viewer"]["accounts"][0]["workersInvocationsAdaptive"]
    assert {r["avg"]["sampleInterval"] for r in rows} == {10.0}
    # 13 exceptions in 1,000 requests, sampled 1 in 10: the estimate is a multiple of 10, not the exact 13.
    thrown = next(r for r in rows if r["dimensions"]["status"] == "scriptThrewException")
    assert thrown["sum"]["errors"] % 10 == 0 and thrown["sum"]["errors"] != 13


def test_a_dimension_the_double_does_not_model_is_an_error_never_an_invented_number(
        double: CloudflareDouble, script: ScriptState, clock: FakeClock) -> None:
    clock.sleep(600)
    status, body = ask(double, BY_VERSION.replace("scriptVersion status", "scriptVersion usageModel"), **window(0, 5))
    assert status == 200 and body["data"] == {"viewer": None}
    assert "dimensions.usageModel" in body["errors"][0]["message"]
