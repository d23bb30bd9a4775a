"""The checks' HTTP client against a hostile server on 127.0.0.1: every request ends, every body is capped."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator

import pytest

from ops.http import MAX_BODY, Client, HttpError
from ops.observation.health import get_health
from tests.helpers.hostile_http import BOMB_SIZE, Hostile, hostile, within
from tests.helpers.http_site import HEALTHY

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

# What a socket can hold between the server's writes and the client's reads (send and receive
# buffers on loopback): a client that stopped reading leaves at most this much unsent-but-written.
SOCKET_SLACK = 8 * 1024 * 1024


@pytest.fixture
def server() -> Iterator[Hostile]:
    with hostile() as running:
        yield running


def fails(client: Client, url: str, **kwargs: object) -> HttpError:
    with pytest.raises(HttpError) as info:
        client.get(url, **kwargs)  # type: ignore[arg-type]
    return info.value


def post_fails(client: Client, url: str) -> HttpError:
    with pytest.raises(HttpError) as info:
        client.post_json(url, {"text": "x"})
    return info.value


def test_a_drip_ends_at_the_deadline_not_at_a_read_timeout(server: Hostile) -> None:
    """One byte every 0.2 s never trips a per-read timeout of 1 s; the overall deadline of 1 s ends it."""
    with Client(timeout=1.0) as client:
        error, elapsed = within(10, lambda: fails(client, server.url + "/drip"))
    assert 0.9 <= elapsed < 2.5
    assert str(error).startswith("timed out: no complete answer within 1 s (HTTP 200,")
    assert "of 1,000,000 body bytes received" in str(error) and error.status == 200


def test_slow_headers_end_at_the_deadline(server: Hostile) -> None:
    with Client(timeout=1.0) as client:
        error, elapsed = within(10, lambda: fails(client, server.url + "/slow-headers"))
    assert elapsed < 2.5 and "no complete answer within 1 s (no answer yet)" in str(error)


def test_a_server_that_never_answers_ends_at_the_deadline(server: Hostile) -> None:
    with Client(timeout=0.5) as client:
        error, elapsed = within(10, lambda: fails(client, server.url + "/hang"))
    assert elapsed < 2 and "timed out" in str(error)


def test_an_endless_body_stops_at_the_cap(server: Hostile) -> None:
    with Client(timeout=10) as client:
        error, _ = within(10, lambda: fails(client, server.url + "/endless", body="keep"))
    assert f"over the {MAX_BODY:,}-byte limit (stopped reading)" in str(error)
    assert server.sent["endless"] <= MAX_BODY + SOCKET_SLACK  # the server could not push more at us


def test_a_4_gib_body_is_refused_from_its_content_length_without_reading(server: Hostile) -> None:
    with Client(timeout=10) as client:
        error, elapsed = within(10, lambda: fails(client, server.url + "/huge"))
    assert "body of 4,294,967,296 bytes, over the" in str(error) and elapsed < 2
    assert server.sent["huge"] <= SOCKET_SLACK


def test_a_gzip_bomb_is_stopped_while_inflating(server: Hostile) -> None:
    """16 KiB on the wire, 16 MiB inflated: decoding stops one byte past the 1 MiB cap, so the inflated
    body is never in memory (decoding a whole network chunk at once would hold all 16 MiB)."""
    cap = 1024 * 1024
    with Client(timeout=10) as client:
        tracemalloc.start()
        try:
            error = fails(client, server.url + "/bomb", body="keep", max_body=cap)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert f"over the {cap:,}-byte limit" in str(error)
    assert peak < 4 * cap < BOMB_SIZE, peak


def test_a_well_behaved_gzip_answer_is_decoded(server: Hostile) -> None:
    with Client(timeout=5) as client:
        answer, health = get_health(client, server.url + "/gzip/api/health")
    assert json.loads(answer.body) == HEALTHY and health.healthy


def test_a_redirect_within_the_site_is_followed(server: Hostile) -> None:
    server.location = "/gzip/api/health"
    with Client(timeout=5) as client:
        answer = client.get(server.url + "/redirect", body="keep")
    assert answer.status == 200 and answer.url == server.url + "/gzip/api/health"


def test_a_redirect_elsewhere_is_refused_and_named(server: Hostile) -> None:
    # Which targets count as elsewhere (another host or port, loopback, link-local, not http) is
    # redirect_problem's table in tests/unit/ops/test_http.py; here, that the client asks it and stops.
    server.location = "http://169.254.169.254/latest/meta-data/"
    with Client(timeout=5) as client:
        error = fails(client, server.url + "/redirect")
    assert str(error).startswith("HTTP 302 redirect to ") and "link-local" in str(error) and error.status == 302
    assert [path for _, path in server.requests] == ["/redirect"]  # nothing else was asked


def test_a_refused_connection_says_so() -> None:
    with Client(timeout=2) as client:
        assert str(fails(client, "http://127.0.0.1:9/")) == "connection refused"


def test_a_webhook_post_ends_at_the_deadline_and_reads_no_body(server: Hostile) -> None:
    with Client(timeout=1.0) as client:
        status, elapsed = within(10, lambda: client.post_json(server.url + "/endless", {"text": "x"}))
        assert status == 200 and elapsed < 2  # the status is the answer; the endless body is not read
        error, elapsed = within(10, lambda: post_fails(client, server.url + "/slow-headers"))
    assert elapsed < 2.5 and "timed out" in str(error)
    assert server.requests[0][0] == "POST"
