"""FakeErp books, settles and refuses as NetSuite does."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from contracts.errors import InvalidRequest, UpstreamInvalid, UpstreamNotFound
from contracts.money import Money
from contracts.v1 import (
    ApprovalDecision,
    ApprovalTask,
    CreditMemoCreate,
    CustomerCreate,
    JournalEntryCreate,
    JournalLine,
    Payment,
    Product,
    SalesOrderCreate,
    SalesOrderLine,
)
from tests.fakes import FakeErp

TODAY = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
ACME = CustomerCreate(legal_name="Acme Robotics Inc.", legal_entity="US01", currency="USD",
                      payment_terms_days=30)


def _erp() -> FakeErp:
    erp = FakeErp(clock=lambda: TODAY)
    erp.seed_product("PLAT-STD", name="Platform Standard", prices={"USD": 50_000})
    erp.seed_product("SEAT", name="User Seat", prices={"USD": 2_500})
    return erp


def _order(customer_id: str, external_id: str = "q2c:acme:order") -> SalesOrderCreate:
    return SalesOrderCreate(
        customer_id=customer_id, legal_entity="US01", currency="USD",
        order_date=dt.date(2026, 11, 2), external_id=external_id, deal_id="006-acme",
        lines=[SalesOrderLine(product_code="PLAT-STD", quantity=1, unit_amount=50_000,
                              amount=50_000),
               SalesOrderLine(product_code="SEAT", quantity=20, unit_amount=2_500, amount=0)],
    )


async def test_order_total_is_quantity_times_rate_and_a_repeat_is_the_same_order() -> None:
    erp = _erp()
    customer = await erp.upsert_customer(ACME, external_id="acct-acme")
    order = await erp.upsert_sales_order(_order(customer.id))
    assert (order.total, order.status, order.number) == (100_000, "pending_fulfillment", "SO1001")
    assert [(line.product_code, line.amount) for line in order.lines] == [
        ("PLAT-STD", 50_000), ("SEAT", 50_000)]
    assert (await erp.upsert_sales_order(_order(customer.id))).id == order.id
    assert list(erp.sales_orders) == [order.id]
    assert erp.writes == [("upsert_customer", "acct-acme"),
                          ("upsert_sales_order", "q2c:acme:order")]


async def test_invoice_is_settled_by_credit_memo_then_payment() -> None:
    erp = _erp()
    customer = await erp.upsert_customer(ACME, external_id="acct-acme")
    order = await erp.upsert_sales_order(_order(customer.id))
    invoice = await erp.upsert_invoice(sales_order_id=order.id, external_id="q2c:inv")
    assert (invoice.total, invoice.tax, invoice.amount_remaining, invoice.status) == (
        100_000, 0, 100_000, "open")
    assert invoice.due_date == dt.date(2026, 12, 2)
    assert erp.sales_orders[order.id].status == "billed"
    memo = CreditMemoCreate(customer_id=customer.id, invoice_id=invoice.id, legal_entity="US01",
                            currency="USD", amount=2_500, external_id="credit:1")
    await erp.upsert_credit_memo(memo)
    assert (await erp.get_invoice(invoice.id)).amount_remaining == 97_500
    payment = Payment(id="", invoice_id=invoice.id, customer_id=customer.id, amount=97_500,
                      currency="USD", status="succeeded", legal_entity="US01")
    await erp.upsert_customer_payment(payment, external_id="stripe:pi_1")
    settled = await erp.get_invoice(invoice.id)
    assert (settled.status, settled.amount_paid, settled.amount_remaining) == ("paid", 100_000, 0)
    balance = await erp.receivables_balance(customer.id)
    assert balance.balance == Money(amount=0, currency="USD")
    # A payment for an invoice with nothing open stays on the customer as unapplied credit,
    # as the NetSuite client posts it.
    extra = await erp.upsert_customer_payment(msgspec.structs.replace(payment, amount=1),
                                              external_id="stripe:pi_2")
    assert extra.invoice_id is None and extra.amount == 1
    assert (await erp.get_invoice(invoice.id)).amount_remaining == 0
    assert (await erp.receivables_balance(customer.id)).balance == Money(amount=-1, currency="USD")


async def test_refusals_match_netsuite() -> None:
    erp = _erp()
    with pytest.raises(UpstreamNotFound):
        await erp.get_customer("999999")
    with pytest.raises(UpstreamInvalid):
        await erp.get_customer("not-a-number")
    with pytest.raises(InvalidRequest):
        await erp.upsert_customer(msgspec.structs.replace(ACME, legal_entity="XX99"),
                                  external_id="x")
    with pytest.raises(UpstreamInvalid) as wrong_currency:
        await erp.upsert_customer(msgspec.structs.replace(ACME, currency="EUR"), external_id="x")
    assert wrong_currency.value.errors[0].pointer == "currency"
    with pytest.raises(UpstreamInvalid) as unknown_customer:
        await erp.upsert_sales_order(_order("424242"))
    assert unknown_customer.value.errors[0].pointer == "entity"
    customer = await erp.upsert_customer(ACME, external_id="acct-acme")
    bad_line = msgspec.structs.replace(_order(customer.id), lines=[
        SalesOrderLine(product_code="NOPE", quantity=1, unit_amount=1, amount=1)])
    with pytest.raises(InvalidRequest):
        await erp.upsert_sales_order(bad_line)
    with pytest.raises(InvalidRequest):
        await erp.list_customers(cursor="not-a-cursor")


async def test_lists_page_with_cursors() -> None:
    erp = _erp()
    for index in range(5):
        await erp.upsert_customer(msgspec.structs.replace(ACME, legal_name=f"Customer {index}"),
                                  external_id=f"acct-{index}")
    names, cursor = [], None
    while True:
        page = await erp.list_customers(cursor=cursor, limit=2)
        names += [customer.legal_name for customer in page.data]
        if (cursor := page.next_cursor) is None:
            break
    assert names == [f"Customer {index}" for index in range(5)]
    assert (await erp.list_customers(legal_entity="DE01")).data == []


async def test_products_upsert_by_code() -> None:
    erp = _erp()
    addon = Product(id="", code="ADDON", name="Add-on", billing_interval="year")
    created = await erp.upsert_product(addon, prices={"USD": 9_900})
    updated = await erp.upsert_product(msgspec.structs.replace(addon, name="Add-on 2"))
    assert created.id == updated.id and updated.name == "Add-on 2"
    assert (await erp.find_product("ADDON")) == updated
    assert await erp.find_product("NOPE") is None


async def test_journal_entries_and_approvals() -> None:
    erp = _erp()
    entry = JournalEntryCreate(
        legal_entity="DE01", currency="EUR", date=dt.date(2026, 11, 30), external_id="je:1",
        lines=[JournalLine(account="1200", debit=12_345), JournalLine(account="4000",
                                                                        credit=12_345)])
    posted = await erp.upsert_journal_entry(entry)
    assert (await erp.upsert_journal_entry(entry)).id == posted.id
    assert posted.number == "JE1001"
    task = ApprovalTask(id="", kind="credit_memo", subject="Credit 25 USD to Acme",
                        amount=2_500, currency="USD", requested_at=TODAY)
    created = await erp.upsert_approval_task(task, external_id="approval:flow-1")
    assert (await erp.upsert_approval_task(task, external_id="approval:flow-1")).id == \
        created.id
    decided = await erp.decide_approval_task(
        created.id, ApprovalDecision(decision="rejected", reason="too much"), decided_by="cfo")
    assert (decided.status, decided.reason, decided.decided_at) == ("rejected", "too much", TODAY)
    assert (await erp.list_approval_tasks(status="pending")).data == []
    assert erp.writes[-1] == ("decide_approval_task", created.id)
