"""Which column names and values a rehearsal's sample masks (ops/database/personal.py)."""

from __future__ import annotations

import pytest

from ops.database.personal import is_personal, masked


@pytest.mark.parametrize("column", ["passport_id", "national_id", "taxId", "tax_ids", "id_number", "idNumber",
                                    "ID_NO", "drivers_licence_id", "customerEmail", "fullname"])
def test_a_persons_document_number_or_contact_is_masked_by_its_name(column: str) -> None:
    assert is_personal(column)
    assert masked(column, "A1234567") == "<masked, 8 characters>"


@pytest.mark.parametrize("column", ["id", "customer_id", "customerId", "tenant_ids", "service_id", "rowid"])
def test_a_rows_key_is_shown_for_it_is_what_a_sample_is_for(column: str) -> None:
    assert not is_personal(column)
    assert masked(column, "A1234567") == "A1234567"
