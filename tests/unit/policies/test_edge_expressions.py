"""How the edge policies read rule expressions (booking_shared/edge.py), in process."""

from __future__ import annotations

import pytest

from booking_shared.edge import PAYSTACK_WEBHOOK, hosts_named, may_reach, turnstile_covers

WEBHOOK = PAYSTACK_WEBHOOK.path


@pytest.mark.parametrize(("expression", "reaches"), [
    ('(http.request.uri.path eq "/api/payments/initialize")', False),
    ('(http.request.uri.path eq "/api/payments/webhook")', True),
    ('(starts_with(http.request.uri.path, "/api/payments"))', True),
    ('(starts_with(http.request.uri.path, "/api/payments") and http.request.uri.path ne "/api/payments/webhook")',
     False),
    ('(http.request.uri.path wildcard "/api/*")', True),
    ('(http.request.uri.path matches "^/api/pay")', True),
    ('(http.request.uri.path contains "webhook")', True),
    ('(http.host eq "www.instylehairboutique.co.za")', True),  # no path condition: every path
    ('(not http.request.uri.path in {"/api/payments/webhook"} and http.request.method eq "POST")', False),
    # Rewrites of the payments rule the policy refuses (tests/integration/policies/test_edge_policies.py).
    ('(starts_with(http.request.uri.path, "/api/payments") and http.request.method eq "POST")', True),
    ('(http.host in {"www.instylehairboutique.co.za"} and http.request.method eq "POST")', True),
    ('(http.request.uri.path in {"/api/payments/initialize" "/api/payments/webhook"})', True),
])
def test_a_rule_reaches_the_webhook_when_its_expression_may_match_the_path(expression: str, reaches: bool) -> None:
    assert may_reach(expression, WEBHOOK) is reaches


def test_hosts_named_reads_in_and_eq_and_none_means_every_host() -> None:
    assert hosts_named('(http.host in {"a.co.za" "b.co.za"} and x)') == {"a.co.za", "b.co.za"}
    assert hosts_named('(http.host eq "a.co.za")') == {"a.co.za"}
    assert hosts_named('(http.request.uri.path eq "/x")') is None


def test_a_turnstile_domain_allows_itself_and_its_subdomains_only() -> None:
    assert turnstile_covers(["instylehairboutique.co.za"], "www.instylehairboutique.co.za")
    assert turnstile_covers(["www.instylehairboutique.co.za"], "www.instylehairboutique.co.za")
    assert not turnstile_covers(["www.instylehairboutique.co.za"], "instylehairboutique.co.za")
    assert not turnstile_covers(["hairboutique.co.za"], "www.instylehairboutique.co.za")


def test_a_prepared_domain_set_answers_as_the_plain_list_does() -> None:
    from booking_shared.edge import turnstile_domains

    domains = ["instylehairboutique.co.za", "Book.GlamourSalon.co.za.", "www.salon.co.za"]
    listed = turnstile_domains(domains)
    for host in ("www.instylehairboutique.co.za", "book.glamoursalon.co.za", "a.book.glamoursalon.co.za",
                 "glamoursalon.co.za", "salon.co.za", "www.salon.co.za", "evil-instylehairboutique.co.za"):
        assert turnstile_covers(listed, host) == turnstile_covers(domains, host), host
    assert not turnstile_covers(listed, "evil-instylehairboutique.co.za")
    assert turnstile_covers(listed, "a.book.glamoursalon.co.za")
