"""The Analytics Engine double answers the canary's one query shape, late and sampled, and refuses any other."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from cloudflare import Cloudflare

from booking_shared.naming import requests_dataset
from ops.observation.analytics import http_answers, requests_sql
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, CloudflareDouble, ScriptState, Traffic
from tests.helpers.clock import EPOCH, FakeClock

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

WORKER = "appointmentbooking-api-staging"
DATASET = requests_dataset(WORKER)


def minutes(n: float) -> dt.datetime:
    return EPOCH + dt.timedelta(minutes=n)


def sql(double: CloudflareDouble, text: str) -> httpx.Response:
    return httpx.post(f"{double.base_url}/accounts/{ACCOUNT}/analytics_engine/sql", content=text.encode(),
                      headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def script(double: CloudflareDouble) -> ScriptState:
    fake = FakeClock()
    double.now = fake.wall
    state = double.add_script(WORKER, versions=1)
    state.requests_per_minute = 1000
    fake.sleep(10 * 60)
    return state


def test_the_canary_query_reads_one_version_as_strings_of_the_documented_json_format(
        double: CloudflareDouble, script: ScriptState) -> None:
    version = script.versions[0]["id"]
    script.traffic[version] = Traffic(http_5xx_rate=0.08, latency_ms=120, latency_p99_ms=900)
    answer = sql(double, requests_sql(DATASET, version, minutes(0), minutes(2)))
    assert answer.status_code == 200
    body = answer.json()
    assert [m["name"] for m in body["meta"]] == ["sampled", "requests", "errors", "failed_rows", "median_ms",
                                                 "p75_ms", "p90_ms", "p95_ms", "p98_ms", "p99_ms"]
    assert body["rows"] == 1
    row = body["data"][0]
    assert {k: row[k] for k in ("sampled", "requests", "errors", "failed_rows", "median_ms", "p99_ms")} == {
        "sampled": "2000", "requests": "2000", "errors": "160", "failed_rows": "160", "median_ms": 120, "p99_ms": 900}
    # Between them, the log-normal through the model's median and p99: rising with the level.
    assert 120 < row["p75_ms"] < row["p90_ms"] < row["p95_ms"] < row["p98_ms"] < 900


def test_the_sdk_reader_turns_the_answer_into_a_version_s_http_traffic(
        double: CloudflareDouble, client: Cloudflare, script: ScriptState) -> None:
    version = script.versions[0]["id"]
    script.traffic[version] = Traffic(http_5xx_rate=0.08, exception_rate=0.1, latency_ms=50, latency_p99_ms=2500)
    traffic = http_answers(client, ACCOUNT, DATASET, version, minutes(0), minutes(1))
    # 100 of the 1,000 invocations failed in the runtime and wrote no data point.
    assert traffic is not None and (traffic.requests, traffic.errors) == (900, 72)
    assert (traffic.latency_seconds, traffic.tail_latency_seconds) == (0.05, 2.5)
    assert traffic.judged_latency == ("p99", 2.5)


@pytest.mark.parametrize("text", [
    f"SELECT * FROM {DATASET}",
    f"SELECT count() FROM {DATASET} WHERE timestamp > NOW() - INTERVAL '1' DAY",
    "SHOW TABLES",
])
def test_any_other_query_is_refused_with_a_text_error(double: CloudflareDouble, script: ScriptState,
                                                      text: str) -> None:
    answer = sql(double, text)
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/plain")


def test_a_dataset_no_worker_writes_is_an_error_and_the_reader_says_no_numbers(
        double: CloudflareDouble, client: Cloudflare, script: ScriptState) -> None:
    version = script.versions[0]["id"]
    assert sql(double, requests_sql("someone_elses_requests", version, minutes(0), minutes(1))).status_code == 400
    assert http_answers(client, ACCOUNT, "someone_elses_requests", version, minutes(0), minutes(1)) is None


def test_data_points_arrive_after_the_ingestion_delay_and_sampled(
        double: CloudflareDouble, client: Cloudflare, script: ScriptState) -> None:
    version = script.versions[0]["id"]
    double.ingestion_delay = dt.timedelta(minutes=9)  # now is 10 minutes in: only the first minute is visible
    late = http_answers(client, ACCOUNT, DATASET, version, minutes(0), minutes(5))
    assert late is not None and late.requests == 1000
    double.sample_interval = 100
    sampled = http_answers(client, ACCOUNT, DATASET, version, minutes(0), minutes(5))
    assert sampled is not None and (sampled.requests, sampled.sampled, sampled.estimated) == (1000, 10, True)


def test_sampled_the_reader_asks_which_browsers_the_kept_rows_come_from(
        double: CloudflareDouble, client: Cloudflare, script: ScriptState) -> None:
    """Rows kept 1 in 2: browsers cannot be compared across versions (each index has its own rate),
    but one version's kept rows say how many browsers its failures come from, which the judge counts
    failures by (ops/releases/baseline.py per_browser)."""
    version = script.versions[0]["id"]
    script.traffic[version] = Traffic(http_5xx_rate=0.08, requests_per_unit=20)
    exact = http_answers(client, ACCOUNT, DATASET, version, minutes(0), minutes(2))
    assert exact is not None and exact.units and exact.failing_units and exact.kept is None
    double.sample_interval = 2
    sampled = http_answers(client, ACCOUNT, DATASET, version, minutes(0), minutes(2))
    assert sampled is not None and sampled.units is None and sampled.kept is not None
    kept = sampled.kept
    # The failed rows are counted, not estimated from the weights: 8 % of the 1,000 kept rows.
    assert kept.failed_rows == 80 and sampled.errors == 160
    # Twenty requests a browser, 8 % failing: 1.6 failures per failing browser, fewer of them among
    # the kept rows than failed rows, and never more than the exact count.
    assert 0 < kept.failing_browsers < kept.failed_rows and kept.failing_browsers <= exact.failing_units
    assert 0 < kept.browsers <= exact.units
    assert sampled.nonsense() is None
