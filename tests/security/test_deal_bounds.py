"""A won deal is booked only within the bounds of `contracts.limits`: a CRM user cannot make
quote-to-cash bill a quantity or an amount no business sells, nor a deal of endless lines.
The deal's check lists each as a field problem (422), before any flow or vendor call."""

from __future__ import annotations

from datetime import date

import pytest

from contracts.limits import MAX_AMOUNT, MAX_ITEMS, MAX_QUANTITY
from contracts.v1 import Customer, Deal, DealLine, LegalEntity, Price, Product
from process_apis.quote_to_cash.orders import Catalog, order_problems

ENTITIES = {"US01": LegalEntity(id="1", code="US01", name="US", country="US", currency="USD")}
ACCOUNT = Customer(id="001", legal_name="Acme", legal_entity="US01", currency="USD", country="US")
CATALOG = Catalog(
    products={"SEAT": Product(id="SEAT", code="SEAT", name="Seat", billing_interval="month")},
    prices={"SEAT": Price(id="SEAT:USD", product_id="SEAT", currency="USD", unit_amount=2_500,
                          product_code="SEAT")},
)


def seats(quantity: int, unit_amount: int = 2_500, lines: int = 1) -> Deal:
    line = DealLine(id="l1", product_code="SEAT", quantity=quantity, unit_amount=unit_amount,
                    total_amount=quantity * unit_amount)
    return Deal(id="006", customer_id="001", name="Deal", stage="Closed Won", won=True,
                closed=True, close_date=date(2026, 11, 2), currency="USD", legal_entity="US01",
                lines=[line] * lines)


@pytest.mark.parametrize("quantity", [2**63, 10**30, MAX_QUANTITY + 1])
def test_a_quantity_past_its_bound_is_a_problem_of_the_deal(quantity: int) -> None:
    pointers = {p.pointer for p in order_problems(seats(quantity), ACCOUNT, CATALOG, ENTITIES)}

    assert "/lines/0/quantity" in pointers
    assert order_problems(seats(MAX_QUANTITY // 1_000), ACCOUNT, CATALOG, ENTITIES) == []


def test_an_amount_past_its_bound_is_a_problem_of_the_deal() -> None:
    problems = order_problems(seats(1, unit_amount=MAX_AMOUNT + 1), ACCOUNT, CATALOG, ENTITIES)

    assert {p.pointer for p in problems} == {"/lines/0/unit_amount", "/lines/0/total_amount"}
    assert order_problems(seats(1, unit_amount=MAX_AMOUNT), ACCOUNT, CATALOG, ENTITIES) == []


def test_more_lines_than_a_request_may_list_is_a_problem_of_the_deal() -> None:
    problems = order_problems(seats(1, lines=MAX_ITEMS + 1), ACCOUNT, CATALOG, ENTITIES)

    assert [p.pointer for p in problems] == ["/lines"]
    assert order_problems(seats(1, lines=MAX_ITEMS), ACCOUNT, CATALOG, ENTITIES) == []
