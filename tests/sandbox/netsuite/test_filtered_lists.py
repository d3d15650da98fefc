"""A filtered record list selects on the record as read: stored fields and the fields
NetSuite computes (an order's status follows its invoices)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.netsuite.query import parse_filter
from sandbox.netsuite.store import COMPUTED_FIELDS, RecordStore


@pytest.fixture
def store() -> RecordStore:
    store = RecordStore()
    store.reset(seed=False)
    line = [{"amount": Decimal("10.00")}]
    for rid, external in (("10", "so-a"), ("11", "so-b"), ("12", "so-c")):
        store.put("salesOrder", rid, {"externalId": external, "entity": {"id": "1"},
                                      "item": line})
    store.put("invoice", "20", {"externalId": "in-a", "createdFrom": {"id": "11"},
                                "entity": {"id": "1"}, "item": line})
    return store


@pytest.mark.parametrize(("q", "expected"), [
    ('externalId IS "so-b"', ["11"]),
    ("externalId ANY_OF [so-a, so-c]", ["10", "12"]),
    ('status IS "Billed"', ["11"]),
    ('status IS "Pending Fulfillment" AND externalId IS "so-c"', ["12"]),
    ("total EQUAL 10", ["10", "11", "12"]),
])
def test_filters_read_stored_and_computed_fields(store: RecordStore, q: str,
                                                 expected: list[str]) -> None:
    ids = store.ids("salesOrder")

    assert store.matching("salesOrder", ids, parse_filter(q)) == expected


@pytest.mark.parametrize(("rtype", "record"), [
    ("salesOrder", {"entity": {"id": "1"}, "item": [{"amount": Decimal("10.00")}]}),
    ("invoice", {"entity": {"id": "1"}, "item": [{"amount": Decimal("10.00")}]}),
    ("creditMemo", {"entity": {"id": "1"}, "item": [{"amount": Decimal("2.00")}]}),
    ("customerPayment", {"customer": {"id": "1"}, "payment": Decimal("5.00")}),
    ("journalEntry", {"line": []}),
    ("customer", {"companyName": "Acme"}),
])
def test_every_field_a_view_computes_sends_a_filter_to_the_view(
    store: RecordStore, rtype: str, record: dict[str, object]
) -> None:
    # A filter on stored fields skips the view; one on a computed field must not, so every
    # field the view adds is known as computed.
    store.put(rtype, "90", record)
    stored = {key.lower() for key in store.record(rtype, "90")}
    computed = {key.lower() for key in store.view(rtype, "90")} - stored - {"id"}

    assert computed
    assert computed <= COMPUTED_FIELDS
