"""The ERP's change feed: records by `lastmodifieddate` (SuiteQL, to the second), an invoice
stamped modified when a payment settles it, a deleted record nowhere."""

from __future__ import annotations

import asyncio
import datetime as dt

from contracts.v1 import CustomerCreate, Payment, SalesOrderCreate, SalesOrderLine
from system_apis.erp.netsuite import NetSuiteClient

ACME = CustomerCreate(legal_name="Acme Robotics Inc.", legal_entity="US01", currency="USD")
QUIET = CustomerCreate(legal_name="Quiet Corp", legal_entity="US01", currency="USD")


async def _invoice(client: NetSuiteClient, customer_id: str, n: int) -> str:
    order = await client.upsert_sales_order(
        SalesOrderCreate(
            customer_id=customer_id,
            legal_entity="US01",
            currency="USD",
            order_date=dt.date(2026, 11, 2),
            external_id=f"order:{n}",
            lines=[
                SalesOrderLine(product_code="SEAT", quantity=1, unit_amount=5_000, amount=5_000)
            ],
        )
    )
    return (await client.upsert_invoice(sales_order_id=order.id, external_id=f"in_{n}")).id


async def test_changes_name_what_was_modified_since(client: NetSuiteClient) -> None:
    acme = await client.upsert_customer(ACME, external_id="cus-acme")
    quiet = await client.upsert_customer(QUIET, external_id="cus-quiet")
    paid = await _invoice(client, acme.id, 1)
    untouched = await _invoice(client, quiet.id, 2)
    await asyncio.sleep(1.05)  # modification dates are whole seconds
    since = dt.datetime.now(dt.UTC)

    await client.upsert_customer_payment(
        Payment(
            id="",
            invoice_id=paid,
            customer_id=acme.id,
            amount=5_000,
            currency="USD",
            status="succeeded",
            legal_entity="US01",
        ),
        external_id="pay:1",
    )
    changes = await client.changed_since(since)
    everything = await client.changed_since(since - dt.timedelta(hours=1))

    assert changes.invoices == [paid]
    assert changes.customers == [acme.id]
    assert changes.credit_memos == []
    assert {paid, untouched} <= set(everything.invoices)
    assert {acme.id, quiet.id} <= set(everything.customers)


async def test_a_future_time_names_nothing(client: NetSuiteClient) -> None:
    acme = await client.upsert_customer(ACME, external_id="cus-acme")
    await _invoice(client, acme.id, 3)
    changes = await client.changed_since(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    assert (changes.customers, changes.invoices, changes.credit_memos) == ([], [], [])


async def test_lists_of_many_customers_leave_the_others_out(client: NetSuiteClient) -> None:
    acme = await client.upsert_customer(ACME, external_id="cus-acme")
    quiet = await client.upsert_customer(QUIET, external_id="cus-quiet")
    other = await client.upsert_customer(
        CustomerCreate(legal_name="Other Inc.", legal_entity="US01", currency="USD"),
        external_id="cus-other",
    )
    mine = {await _invoice(client, acme.id, 4), await _invoice(client, quiet.id, 5)}
    theirs = await _invoice(client, other.id, 6)

    headers = await client.list_invoices(customer_ids=[acme.id, quiet.id], lines=False)
    whole = await client.list_invoices(customer_ids=[acme.id, quiet.id])
    orders = await client.list_sales_orders(customer_ids=[acme.id], lines=False)
    none = await client.list_credit_memos(customer_ids=[])

    assert {i.id for i in headers.data} == {i.id for i in whole.data} == mine
    assert theirs not in {i.id for i in headers.data}
    assert {o.customer_id for o in orders.data} == {acme.id}
    assert [i.total for i in headers.data] == [5_000, 5_000]
    assert none.data == []
