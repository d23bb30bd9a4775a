"""`bookingctl diff` says when a change is a Worker release through the canary, and what it adds."""

from __future__ import annotations

import copy
from typing import Any

from booking_shared import tokens
from bookingctl.diff import RolloutSummary, compare
from bookingctl.diff_render import mermaid, to_json, to_markdown

PREFIX = "urn:pulumi:production::appointmentbooking::booking:worker:ApiWorker$"
VERSION_URN = PREFIX + tokens.VERSION + "::api-version"
DEPLOYMENT_URN = PREFIX + tokens.DEPLOYMENT + "::api-deployment"
WORKER_URN = PREFIX + tokens.WORKER + "::api-worker"
DNS_URN = "urn:pulumi:production::appointmentbooking::booking:routing:SiteHostname$" + tokens.DNS + "::glamour-dns"
HOOKS = {"before_update": ["booking-before-traffic"], "after_update": ["booking-after-traffic"]}


def resource(urn: str, kind: str, inputs: dict[str, Any], deps: list[str] | None = None,
             hooks: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"type": kind, "name": urn.rsplit("::", 1)[-1], "urn": urn, "parent": None, "custom": True,
            "protect": False, "dependencies": deps or [], "hooks": hooks or {}, "inputs": inputs}


def plan(compatibility_date: str = "2026-10-01", *, extra: list[dict[str, Any]] | None = None,
         deployed: bool = True) -> dict[str, Any]:
    resources = [
        resource(WORKER_URN, tokens.WORKER, {"name": "appointmentbooking-api"}),
        resource(VERSION_URN, tokens.VERSION, {"compatibilityDate": compatibility_date, "workerId": "w"},
                 [WORKER_URN]),
    ]
    if deployed:
        resources.append(resource(DEPLOYMENT_URN, tokens.DEPLOYMENT, {"scriptName": "appointmentbooking-api"},
                                  [WORKER_URN, VERSION_URN], HOOKS))
    return {"resources": resources + (extra or []), "violations": []}


ROLLOUT = RolloutSummary(canary_percent=10, bake_minutes=10, error_rate_percent=5, latency_seconds=2)


def test_a_new_worker_version_is_announced_as_a_release_through_the_canary() -> None:
    result = compare("production", "main", plan(), plan("2026-11-20"), ROLLOUT)
    assert result.release is not None
    assert "production" in result.release and "canary" in result.release
    assert "10 % of requests for 10 min" in result.release
    markdown = to_markdown(result)
    assert markdown.index("canary") < markdown.index("| Action |"), "the release comes before the changes"
    assert to_json(result)["release"] == result.release


def test_the_deployment_that_follows_a_replaced_version_is_not_drawn_as_unchanged() -> None:
    result = compare("production", "main", plan(), plan("2026-11-20"), ROLLOUT)
    graph = mermaid(result)
    assert "unchanged: api-deployment" not in graph
    assert "update (new id of api-version): api-deployment" in graph


def test_a_change_that_leaves_the_worker_alone_is_not_a_release() -> None:
    dns = resource(DNS_URN, tokens.DNS, {"name": "www.glamoursalon.co.za", "content": "x.pages.dev"})
    result = compare("production", "main", plan(), plan(extra=[dns]), ROLLOUT)
    assert result.release is None


def test_a_stacks_first_deployment_says_there_is_no_canary() -> None:
    result = compare("production", "main", plan(deployed=False), plan("2026-11-20"), ROLLOUT)
    assert result.release is not None and "first deployment" in result.release


def test_an_added_resource_shows_its_key_inputs() -> None:
    dns = resource(DNS_URN, tokens.DNS, {"accountId": "a" * 32, "name": "www.glamoursalon.co.za",
                                         "content": "appointmentbooking.pages.dev", "zoneId": "ab" * 16})
    result = compare("production", "main", plan(), plan(extra=[copy.deepcopy(dns)]), ROLLOUT)
    row = next(line for line in to_markdown(result).splitlines() if "`glamour-dns`" in line and "| add |" in line)
    assert "content: appointmentbooking.pages.dev" in row
    assert "zoneId: " + "ab" * 16 in row
    assert "accountId" not in row, "an input every resource repeats is noise"
    assert "(new)" not in row


def test_a_replaced_database_releases_a_new_worker_version_through_its_bindings() -> None:
    """A new database id changes the version's bindings (every WorkerVersion input forces a
    replacement), so the deployment moves to a new version: a release, though no Worker input changed."""
    db_urn = "urn:pulumi:production::appointmentbooking::booking:database:Database$" + tokens.D1 + "::database-d1"

    def with_database(name: str) -> dict[str, Any]:
        doc = plan()
        doc["resources"].insert(0, resource(db_urn, tokens.D1, {"name": name}))
        doc["resources"][2]["dependencies"].append(db_urn)  # the version binds the database
        return doc

    result = compare("production", "main", with_database("db"), with_database("db-v2"), ROLLOUT)
    assert result.followers[VERSION_URN] == "replace (new id of database-d1)"
    assert result.followers[DEPLOYMENT_URN] == "update (new id of api-version)"
    assert result.release is not None and "canary" in result.release
