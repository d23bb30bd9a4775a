"""The HTTP module's rules that need no server: URLs, redirects, escaping and the health contract."""

from __future__ import annotations

import json

import httpx
import pytest

from booking_shared.text import printable
from ops.http import redact, redirect_problem, url_problem
from ops.observation.health import MAX_JSON_DEPTH, read_health


@pytest.mark.parametrize("url", ["127.0.0.1:8787", "notaurl", "x", "localhost:8787", "ftp://example.com/",
                                 "www.example.co.za/api/health", "http://", "http://exa mple.com",
                                 "http://example.com:99999/", "https://example.com/\x1b[2J"])
def test_a_url_without_scheme_or_host_is_not_usable(url: str) -> None:
    assert url_problem(url) is not None


@pytest.mark.parametrize("url", ["http://127.0.0.1:8787", "https://www.instylehairboutique.co.za/api/health",
                                 "HTTPS://Example.com", "http://[::1]:8080/"])
def test_full_http_urls_are_usable(url: str) -> None:
    assert url_problem(url) is None


def test_the_problem_never_repeats_the_url() -> None:
    secret = "hooks.slack.com/services/T000/B000/SECRETTOKEN"
    problem = url_problem(secret)
    assert problem is not None and "SECRETTOKEN" not in problem


@pytest.mark.parametrize(("url", "shown"), [
    ("https://hooks.slack.com/services/T000/B000/SECRETTOKEN", "https://hooks.slack.com"),
    ("https://user:pass@example.com:8443/x?token=SECRET", "https://example.com:8443"),
    ("http://[::1]:8080/hook", "http://[::1]:8080"),
    ("not a url", "<not a URL>"),
])
def test_redact_keeps_only_scheme_host_and_port(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_control_characters_are_escaped_and_long_text_shortened() -> None:
    assert printable("\x1b[31mred\x1b[0m\u202e") == "\\x1b[31mred\\x1b[0m\\u202e"
    assert printable("a\nb\tc") == "a\\nb\\tc"
    assert printable("x" * 500, limit=10) == "x" * 10 + "…"


@pytest.mark.parametrize(("origin", "target"), [
    ("http://127.0.0.1:8787/", "http://127.0.0.1:8787/login"),
    ("http://www.example.co.za/", "https://www.example.co.za/"),  # the site moving itself to https
    ("https://www.example.co.za/", "https://WWW.example.co.za/other"),
])
def test_redirects_within_the_site_are_followed(origin: str, target: str) -> None:
    assert redirect_problem(httpx.URL(origin), httpx.URL(target)) is None


@pytest.mark.parametrize(("origin", "target", "why"), [
    ("https://www.example.co.za/", "http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://169.254.1.1/", "http://169.254.169.254/", "link-local"),
    ("https://www.example.co.za/", "http://[fe80::1]/", "link-local"),
    ("https://www.example.co.za/", "http://[::ffff:169.254.169.254]/", "link-local"),
    ("https://www.example.co.za/", "http://127.0.0.1:2019/", "loopback"),
    ("https://www.example.co.za/", "http://localhost/", "loopback"),
    ("http://127.0.0.1:8787/", "http://localhost:8787/", "another host"),
    ("http://127.0.0.1:8787/", "http://127.0.0.2:8787/", "another host"),
    ("https://www.example.co.za/", "https://evil.example/", "another host"),
    ("https://www.example.co.za/", "http://www.example.co.za/", "downgrade"),
    ("http://127.0.0.1:8787/", "http://127.0.0.1:9999/", "another port"),
    ("https://www.example.co.za/", "file:///etc/passwd", "not http"),
])
def test_redirects_elsewhere_are_refused_with_the_reason(origin: str, target: str, why: str) -> None:
    problem = redirect_problem(httpx.URL(origin), httpx.URL(target))
    assert problem is not None and why in problem


def test_a_healthy_body_reads_as_healthy() -> None:
    body = json.dumps({"status": "ok", "version": "v-1", "database": {"status": "ok"}}).encode()
    health = read_health(200, body)
    assert health.healthy and health.version == "v-1"
    assert health.describe() == "HTTP 200, status='ok', database='ok', version='v-1'"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 100_000])
def test_deeply_nested_json_is_not_a_usable_body_and_never_raises(depth: int) -> None:
    """The C JSON parser recurses once per level: 100,000 levels used to escape as RecursionError."""
    health = read_health(200, b"[" * depth + b"]" * depth)
    assert not health.json_object and not health.healthy
    assert "not a usable JSON object" in health.describe()


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = "[{" * 1000 + '\\"' + "]}"
    body = json.dumps({"status": "ok", "database": {"status": "ok"}, "note": text}).encode()
    assert read_health(200, body).healthy


@pytest.mark.parametrize(("body", "problem"), [(b"<html>oops</html>", "body is not JSON"),
                                               (b"[1, 2]", "body is not a JSON object"),
                                               (b"\xff\xfe\x00", "body is not JSON")])
def test_a_body_that_is_not_a_json_object_says_so(body: bytes, problem: str) -> None:
    health = read_health(200, body)
    assert not health.json_object and health.describe() == f"HTTP 200, {problem}"


def test_remote_values_are_escaped_in_the_description() -> None:
    body = json.dumps({"status": "ok\x1b[2J", "database": {"status": "ok"}, "version": "\x1b]0;pwned\x07"})
    described = read_health(200, body.encode()).describe()
    assert "\x1b" not in described and "\x07" not in described and "\\x1b" in described
