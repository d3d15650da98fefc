"""A filtered record list selects on the record as read: stored fields and the fields
NetSuite computes (an order's status follows its invoices)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.netsuite.query import parse_filter
from sandbox.netsuite.store import RecordStore


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
