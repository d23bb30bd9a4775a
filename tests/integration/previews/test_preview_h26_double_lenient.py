"""hostile26: routes of the API double that accept what the OpenAPI subset it cites (tests/data/
cloudflare-openapi.json) says the API refuses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cloudflare import BadRequestError, Cloudflare

from tests.helpers import ACCOUNT

# Whole previews brought up against the API double: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

SUBSET = json.loads((Path.cwd() / "tests" / "data" / "cloudflare-openapi.json").read_text())


@pytest.mark.parametrize("name", ["Appointment_Booking", "-leading-dash", "appointmentbooking.staging"])
def test_a_pages_project_name_the_document_refuses_is_refused(client: Cloudflare, name: str) -> None:
    pattern = SUBSET["components"]["schemas"]["pages_project_name"]["pattern"]  # ^[a-z0-9][a-z0-9-]*$
    assert not re.search(pattern, name)
    with pytest.raises(BadRequestError):
        client.pages.projects.create(account_id=ACCOUNT, name=name, production_branch="main")


def test_d1_refuses_a_row_whose_foreign_key_points_nowhere(client: Cloudflare) -> None:
    """D1 enforces foreign keys on every query ("By default, D1 enforces that foreign key constraints are valid
    within all queries and migrations ... identical to PRAGMA foreign_keys = on", developers.cloudflare.com/d1/
    sql-api/foreign-keys/). The double's /query opens SQLite with its default, foreign_keys off: the preview
    load's parents-first order, its `PRAGMA defer_foreign_keys` batches and `_empty`'s children-first DELETEs
    are never checked by the lifecycle tests."""
    db = client.d1.database.create(account_id=ACCOUNT, name="fk-probe")
    client.d1.database.query(str(db.uuid), account_id=ACCOUNT, sql=(
        "CREATE TABLE parent (id TEXT PRIMARY KEY); "
        "CREATE TABLE child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES parent(id));"))
    with pytest.raises(BadRequestError):
        client.d1.database.query(str(db.uuid), account_id=ACCOUNT,
                                 sql="INSERT INTO child (id, parent_id) VALUES ('c1', 'nowhere');")
