"""Every recorded Salesforce response we have a use for, parsed by the client's wire Structs.

The samples were recorded from the real API (see WIRE-FACTS.md); if the client's Structs and
the emulator agreed on a wrong shape, these would catch it. Files of APIs the gateway does not
call are listed with the reason they are skipped, so a new sample is never silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from contracts.errors import UpstreamInvalid, UpstreamNotFound
from system_apis.crm.salesforce._client_http import ERRORS, error_entries
from system_apis.crm.salesforce.mapping import (
    CollectionRequest,
    ContactRecord,
    OpportunityRecord,
    QueryPage,
    SaveResult,
    SObjectRecord,
    record_id,
    to_contact,
    to_deal,
)
from tests.support.vendor_specs import vendor_specs_dir

SKIPPED = {
    "bulk__": "Bulk API 2.0 jobs: the gateway does not use the Bulk API",
    "metadata__read__": "describe metadata: the gateway selects fixed fields, never describes",
    "metadata__write__user-info": "OpenID userinfo: not called by the gateway",
    "subscription__": "Change Data Capture events over Pub/Sub: the gateway polls by "
    "SystemModstamp instead",
    "LICENSE": "licence text, not a response",
}


def _samples() -> Path:
    return vendor_specs_dir() / "salesforce" / "wire-samples"


def _error_array(raw: bytes) -> None:
    response = httpx.Response(400, content=raw, request=httpx.Request("GET", "http://sf.test/x"))
    entries = error_entries(response)
    assert entries and all(entry.code and entry.message for entry in entries)
    error = ERRORS.error_for(response, sobject="Contact")
    assert isinstance(error, UpstreamInvalid)
    assert entries[0].code in str(error)


def _not_found(raw: bytes) -> None:
    response = httpx.Response(404, content=raw, request=httpx.Request("GET", "http://sf.test/x"))
    assert isinstance(ERRORS.error_for(response), UpstreamNotFound)
    assert error_entries(response)[0].code == "ENTITY_IS_DELETED"


def _save_result(raw: bytes) -> None:
    result = msgspec.json.decode(raw, type=SaveResult)
    assert result.id and (result.success or result.errors[0].code == "MALFORMED_ID")


def _save_results(raw: bytes) -> None:
    results = msgspec.json.decode(raw, type=list[SaveResult])
    assert results
    for result in results:
        assert result.success == (not result.errors)
        assert all(error.code and error.message for error in result.errors)


def _contacts(raw: bytes) -> None:
    page = msgspec.json.decode(raw, type=QueryPage[ContactRecord])
    assert page.total_size == len(page.records) and page.done
    contacts = [to_contact(record) for record in page.records]
    assert all(c.id.startswith("003") and c.customer_id for c in contacts)


def _opportunities(raw: bytes) -> None:
    page = msgspec.json.decode(raw, type=QueryPage[OpportunityRecord])
    assert page.records and all(record_id(r).startswith("006") for r in page.records)
    assert page.records[0].amount == Decimal("50000.00")
    # Each amount reaches the deal exactly, in cents (no float on the way).
    assert all(r.amount is not None and to_deal(r, []).amount == int(r.amount * 100)
               for r in page.records)


def _any_page(raw: bytes) -> None:
    page = msgspec.json.decode(raw, type=QueryPage[SObjectRecord])
    assert page.records and all(record_id(r) for r in page.records)
    if page.next_records_url:
        assert page.next_records_url.startswith("/services/data/")


def _collection_request(raw: bytes) -> None:
    body = msgspec.json.decode(raw, type=CollectionRequest)
    assert body.records and all(r["attributes"]["type"] == "Contact" for r in body.records)


PARSERS: dict[str, Callable[[bytes], Any]] = {
    "batch__create__contacts__err-bad-request.json": _error_array,
    "batch__create__contacts__partial-but-allOrNone.json": _save_results,
    "batch__create__contacts__payload.json": _collection_request,
    "batch__create__contacts__success.json": _save_results,
    "batch__update__contacts__err-each-no-ids.json": _save_results,
    "batch__update__contacts__partial-but-allOrNone.json": _save_results,
    "batch__update__contacts__payload.json": _collection_request,
    "batch__update__contacts__success.json": _save_results,
    "create-ok.json": _save_result,
    "crm__delete__not-found.json": _not_found,
    "invalid-field-upsert.json": _error_array,
    "metadata__write__err-duplicate-permission-assignment.json": _error_array,
    "metadata__write__permission-set.json": _any_page,
    "read-list-contacts.json": _contacts,
    "read-list-leads.json": _any_page,
    "read-opportunity-with-account.json": _opportunities,
    "read-opportunity-with-contacts.json": _opportunities,
    "success-with-errors.json": _save_result,
    "unknown-field.json": _error_array,
    "unknown-object.json": _error_array,
}


def test_every_relevant_sample_parses() -> None:
    parsed, unclaimed = 0, []
    for path in sorted(_samples().iterdir()):
        parser = PARSERS.get(path.name)
        if parser is not None:
            parser(path.read_bytes())
            parsed += 1
        elif not any(path.name.startswith(prefix) for prefix in SKIPPED):
            unclaimed.append(path.name)
    assert not unclaimed, f"samples neither parsed nor skipped with a reason: {unclaimed}"
    assert parsed == len(PARSERS), "a sample we parse has disappeared"
    assert parsed > 0


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_sample(name: str) -> None:
    PARSERS[name]((_samples() / name).read_bytes())
