"""The checks a won deal passes before quote-to-cash starts, as a pure function of the deal,
its account, the catalog and the ERP's legal entities."""

from __future__ import annotations

from datetime import date

from contracts.errors import FieldError
from contracts.v1 import Customer, Deal, DealLine, LegalEntity, Price, Product
from process_apis.quote_to_cash.orders import Catalog, order_problems

ENTITIES = {
    "US01": LegalEntity(id="1", code="US01", name="US", country="US", currency="USD"),
    "DE01": LegalEntity(id="2", code="DE01", name="DE", country="DE", currency="EUR"),
}
ACCOUNT = Customer(id="001", legal_name="Acme", legal_entity="US01", currency="USD", country="US")


def product(code: str, interval: str) -> Product:
    return Product(id=code, code=code, name=code, billing_interval=interval)  # type: ignore[arg-type]


def price(code: str, currency: str, amount: int) -> Price:
    return Price(id=f"{code}:{currency}", product_id=code, currency=currency,
                 unit_amount=amount, product_code=code)


CATALOG = Catalog(
    products={
        "STD": product("STD", "month"), "ENT": product("ENT", "year"),
        "SVC": product("SVC", "one_time"),
    },
    prices={"STD": price("STD", "USD", 100), "ENT": price("ENT", "USD", 1000),
            "SVC": price("SVC", "USD", 500)},
)


def deal(**fields: object) -> Deal:
    values: dict[str, object] = {
        "id": "006", "customer_id": "001", "name": "Deal", "stage": "Closed Won", "won": True,
        "closed": True, "close_date": date(2026, 11, 2), "currency": "USD",
        "legal_entity": "US01",
        "lines": [DealLine(id="l1", product_code="STD", quantity=2, unit_amount=100,
                           total_amount=200)],
    }
    values.update(fields)
    return Deal(**values)  # type: ignore[arg-type]


def pointers(problems: list[FieldError]) -> list[str]:
    return [problem.pointer for problem in problems]


def test_a_won_deal_in_the_entity_currency_has_no_problems() -> None:
    assert order_problems(deal(), ACCOUNT, CATALOG, ENTITIES) == []


def test_every_problem_is_listed_at_once() -> None:
    problems = order_problems(
        deal(won=False, stage="Prospecting", lines=[], currency="KPW", close_date=None),
        Customer(id="001", legal_name="Acme", legal_entity="US01", currency="USD"),
        CATALOG,
        ENTITIES,
    )

    assert pointers(problems) == [
        "/stage", "/close_date", "/lines", "/currency", "/currency",
        "/account/billing_address/country",
    ]
    details = " ".join(problem.detail for problem in problems)
    assert "billing does not support KPW" in details
    assert "not the currency of legal entity US01 (USD)" in details


def test_lines_need_a_priced_product_and_one_recurring_interval() -> None:
    lines = [
        DealLine(id="a", product_code="STD", quantity=1, unit_amount=100, total_amount=100),
        DealLine(id="b", product_code="ENT", quantity=0, unit_amount=0, total_amount=0),
        DealLine(id="c", product_code="GONE", quantity=1, unit_amount=1, total_amount=1),
        DealLine(id="d", product_code=None, quantity=1, unit_amount=1, total_amount=1),
    ]
    catalog = Catalog(products=CATALOG.products, prices={"ENT": CATALOG.prices["ENT"]})

    problems = order_problems(deal(lines=lines), ACCOUNT, catalog, ENTITIES)

    assert pointers(problems) == [
        "/lines/0/product_code", "/lines/1/quantity", "/lines/2/product_code",
        "/lines/3/product_code", "/lines",
    ]
    assert "STD has no active price in USD" in problems[0].detail
    assert "month and year" in problems[-1].detail


def test_unknown_or_missing_legal_entity() -> None:
    assert pointers(order_problems(deal(legal_entity="XX01"), ACCOUNT, CATALOG, ENTITIES)) == [
        "/legal_entity"
    ]
    assert pointers(order_problems(deal(legal_entity=None), ACCOUNT, CATALOG, ENTITIES)) == [
        "/legal_entity"
    ]
