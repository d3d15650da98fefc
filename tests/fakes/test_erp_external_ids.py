"""FakeErp reads a record by its external id (`eid:<id>`), as NetSuite's REST API does."""

from __future__ import annotations

import pytest

from contracts.errors import UpstreamNotFound
from contracts.v1 import CustomerCreate, SalesOrderCreate, SalesOrderLine
from tests.fakes import FakeErp

ACME = CustomerCreate(legal_name="Acme Robotics Inc.", legal_entity="US01", currency="USD")


async def test_a_record_is_read_by_its_external_id_and_an_unknown_one_is_not_found() -> None:
    erp = FakeErp()
    erp.seed_product("SEAT", prices={"USD": 2_500})
    customer = await erp.upsert_customer(ACME, external_id="cus-acme")
    order = await erp.upsert_sales_order(SalesOrderCreate(
        customer_id=customer.id, legal_entity="US01", currency="USD",
        order_date=erp.now().date(), external_id="q2c:deal-1",
        lines=[SalesOrderLine(product_code="SEAT", quantity=2, unit_amount=2_500, amount=5_000)],
    ))
    invoice = await erp.upsert_invoice(sales_order_id=order.id, external_id="in_1")

    assert (await erp.get_customer("eid:cus-acme")).id == customer.id
    assert (await erp.get_sales_order("eid:q2c:deal-1")).id == order.id
    fetched = await erp.get_invoice("eid:in_1")
    assert (fetched.id, fetched.total) == (invoice.id, 5_000)
    with pytest.raises(UpstreamNotFound):
        await erp.get_invoice("eid:in_unknown")
    with pytest.raises(UpstreamNotFound):
        await erp.get_invoice(f"eid:{order.id}")  # an internal id is no external id
