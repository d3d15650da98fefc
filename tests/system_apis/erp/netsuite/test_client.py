"""The NetSuite client against the emulator over real HTTP: every operation, end to end."""

from __future__ import annotations

import datetime as dt

import httpx
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
from sandbox.netsuite import NetSuiteEmulator
from system_apis.erp.netsuite import NetSuiteClient
from system_apis.erp.port import ErpPort

ACME = CustomerCreate(legal_name="Acme Robotics Inc.", legal_entity="US01", currency="USD",
                      email="ada@acme.test", tax_id="US-94-1234567", payment_terms_days=30)
GLOBEX = CustomerCreate(legal_name="Globex Logistik GmbH", legal_entity="DE01",
                        currency="EUR", payment_terms_days=14)


def _order(customer_id: str, external_id: str = "q2c:acme:order") -> SalesOrderCreate:
    return SalesOrderCreate(
        customer_id=customer_id, legal_entity="US01", currency="USD",
        order_date=dt.date(2026, 11, 2), external_id=external_id, deal_id="006-acme",
        lines=[
            SalesOrderLine(product_code="PLAT-STD", quantity=1, unit_amount=50_000,
                           amount=50_000),
            SalesOrderLine(product_code="SEAT", quantity=20, unit_amount=2_500, amount=50_000),
        ],
    )


def test_client_satisfies_the_port(client: NetSuiteClient) -> None:
    port: ErpPort = client
    assert port is client


async def test_legal_entities_and_currencies(client: NetSuiteClient) -> None:
    entities = await client.list_legal_entities()
    assert [(e.code, e.currency, e.country) for e in entities] == [
        ("US01", "USD", "US"), ("DE01", "EUR", "DE")]
    assert (await client.get_legal_entity("DE01")).name == "Northwind Cloud GmbH"
    assert await client.list_currencies() == ["EUR", "USD"]
    with pytest.raises(UpstreamNotFound):
        await client.get_legal_entity("XX99")


async def test_customer_upsert_find_patch_and_list(client: NetSuiteClient) -> None:
    first = await client.upsert_customer(ACME, external_id="acct-acme")
    again = await client.upsert_customer(ACME, external_id="acct-acme")
    assert first.id == again.id
    assert (first.legal_entity, first.currency, first.payment_terms_days) == ("US01", "USD", 30)
    assert first.refs == {"netsuite": first.id}
    found = await client.find_customer(external_id="acct-acme")
    assert found is not None and found.id == first.id
    assert await client.find_customer(external_id="nobody") is None
    flagged = await client.set_customer_collections(first.id, payment_status="delinquent",
                                                    credit_hold=True)
    assert flagged.payment_status == "delinquent"
    globex = await client.upsert_customer(GLOBEX, external_id="acct-globex")
    page = await client.list_customers(legal_entity="DE01")
    assert [c.id for c in page.data] == [globex.id]
    named = await client.list_customers(q='companyName START_WITH "acme"')
    assert [c.id for c in named.data] == [first.id]


async def test_customer_list_pages_with_cursor(client: NetSuiteClient) -> None:
    for index in range(5):
        await client.upsert_customer(
            msgspec.structs.replace(ACME, legal_name=f"Customer {index}"),
            external_id=f"acct-{index}")
    seen, cursor, pages = [], None, 0
    while True:
        page = await client.list_customers(cursor=cursor, limit=2)
        seen += [c.legal_name for c in page.data]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"Customer {i}" for i in range(5)] and pages == 3


async def test_items_find_and_upsert(client: NetSuiteClient) -> None:
    page = await client.list_products(limit=10)
    assert [p.code for p in page.data] == ["PLAT-STD", "PLAT-ENT", "SEAT", "ONBOARD", "API-CALLS"]
    seat = await client.find_product("SEAT")
    assert seat is not None and seat.billing_interval == "month"
    assert await client.find_product("NOPE") is None
    addon = Product(id="", code="ADDON", name="Add-on", billing_interval="year")
    created = await client.upsert_product(addon, prices={"USD": 9_900})
    updated = await client.upsert_product(msgspec.structs.replace(addon, name="Add-on 2"))
    assert created.id == updated.id and updated.name == "Add-on 2"


async def test_sales_order_invoice_payment_flow(client: NetSuiteClient) -> None:
    customer = await client.upsert_customer(ACME, external_id="acct-acme")
    order = await client.upsert_sales_order(_order(customer.id))
    assert order.number is not None and order.number.startswith("SO")
    assert (order.total, order.status, order.deal_id) == (100_000, "pending_fulfillment",
                                                          "006-acme")
    assert [(line.product_code, line.quantity, line.unit_amount) for line in order.lines] == [
        ("PLAT-STD", 1, 50_000), ("SEAT", 20, 2_500)]
    assert (await client.upsert_sales_order(_order(customer.id))).id == order.id
    listed = await client.list_sales_orders(number=order.number)
    assert [o.id for o in listed.data] == [order.id]
    assert (await client.list_sales_orders(customer_id=customer.id)).data[0].id == order.id
    assert (await client.list_sales_orders(legal_entity="DE01")).data == []

    invoice = await client.upsert_invoice(sales_order_id=order.id, external_id="q2c:inv")
    assert (invoice.total, invoice.amount_remaining, invoice.status) == (100_000, 100_000,
                                                                         "open")
    assert invoice.sales_order_id == order.id and len(invoice.lines) == 2
    assert (await client.get_sales_order(order.id)).status == "billed"
    flagged = await client.mark_invoice_for_collections(invoice.id)
    assert flagged.id == invoice.id
    balance = await client.receivables_balance(customer.id)
    assert balance.balance == Money(amount=100_000, currency="USD")

    payment = Payment(id="", invoice_id=invoice.id, customer_id=customer.id, amount=100_000,
                      currency="USD", status="succeeded", legal_entity="US01")
    paid = await client.upsert_customer_payment(payment, external_id="stripe:pi_1")
    assert (paid.amount, paid.invoice_id) == (100_000, invoice.id)
    again = await client.upsert_customer_payment(payment, external_id="stripe:pi_1")
    assert again.id == paid.id
    settled = await client.get_invoice(invoice.id)
    assert (settled.status, settled.amount_remaining, settled.amount_paid) == ("paid", 0,
                                                                               100_000)
    assert [i.id for i in (await client.list_invoices(status="paid")).data] == [invoice.id]
    assert (await client.list_invoices(status="open")).data == []
    assert (await client.list_invoices(customer_id=customer.id)).data[0].id == invoice.id


async def test_credit_memo_reduces_the_invoice(client: NetSuiteClient) -> None:
    customer = await client.upsert_customer(ACME, external_id="acct-acme")
    order = await client.upsert_sales_order(_order(customer.id))
    invoice = await client.upsert_invoice(sales_order_id=order.id, external_id="inv")
    memo = CreditMemoCreate(customer_id=customer.id, invoice_id=invoice.id,
                            legal_entity="US01", currency="USD", amount=2_500,
                            memo="SLA credit", external_id="credit:1")
    created = await client.upsert_credit_memo(memo)
    assert (await client.upsert_credit_memo(memo)).id == created.id
    assert (created.amount, created.invoice_id, created.memo) == (2_500, invoice.id,
                                                                  "SLA credit")
    assert (await client.get_invoice(invoice.id)).amount_remaining == 97_500
    listed = await client.list_credit_memos(customer_id=customer.id)
    assert [m.id for m in listed.data] == [created.id]


async def test_a_payment_applies_what_a_credit_memo_left_open(client: NetSuiteClient) -> None:
    """NetSuite refuses to apply more than an invoice has remaining: a payment of the whole
    invoice posted after a credit memo applies the rest of it, and what it does not apply is
    the customer's unapplied credit (a balance in the customer's favour)."""
    customer = await client.upsert_customer(ACME, external_id="acct-acme")
    order = await client.upsert_sales_order(_order(customer.id))
    invoice = await client.upsert_invoice(sales_order_id=order.id, external_id="inv")
    await client.upsert_credit_memo(
        CreditMemoCreate(customer_id=customer.id, invoice_id=invoice.id, legal_entity="US01",
                         currency="USD", amount=20_000, memo="SLA credit",
                         external_id="cn:1"))
    payment = Payment(id="", invoice_id=invoice.id, customer_id=customer.id, amount=100_000,
                      currency="USD", status="succeeded", legal_entity="US01")

    paid = await client.upsert_customer_payment(payment, external_id="pay:1")
    again = await client.upsert_customer_payment(payment, external_id="pay:1")
    settled = await client.get_invoice(invoice.id)
    balance = await client.receivables_balance(customer.id)

    assert (paid.amount, paid.invoice_id, again.id) == (100_000, invoice.id, paid.id)
    assert (settled.status, settled.amount_remaining) == ("paid", 0)
    assert balance.balance == Money(amount=-20_000, currency="USD")


async def test_a_credit_memo_booked_while_a_payment_posts_leaves_it_applying_the_rest(
    client: NetSuiteClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payment and a service credit race to the ERP: the memo lands after the payment read
    what the invoice had open. NetSuite refuses the outdated application; the payment is
    posted again with what is open now, not failed."""
    customer = await client.upsert_customer(ACME, external_id="acct-acme")
    order = await client.upsert_sales_order(_order(customer.id))
    invoice = await client.upsert_invoice(sales_order_id=order.id, external_id="inv")
    read_open = client._open_to_payment
    reads: list[int] = []

    async def memo_lands_after_the_first_read(invoice_id: str, external_id: str) -> int:
        reads.append(await read_open(invoice_id, external_id))
        if len(reads) == 1:
            await client.upsert_credit_memo(
                CreditMemoCreate(customer_id=customer.id, invoice_id=invoice.id,
                                 legal_entity="US01", currency="USD", amount=5_000,
                                 memo="SLA credit", external_id="cn:1"))
        return reads[-1]

    monkeypatch.setattr(client, "_open_to_payment", memo_lands_after_the_first_read)
    payment = Payment(id="", invoice_id=invoice.id, customer_id=customer.id, amount=100_000,
                      currency="USD", status="succeeded", legal_entity="US01")

    paid = await client.upsert_customer_payment(payment, external_id="pay:1")
    settled = await client.get_invoice(invoice.id)
    balance = await client.receivables_balance(customer.id)

    assert reads == [100_000, 95_000]
    assert (paid.amount, paid.invoice_id) == (100_000, invoice.id)
    assert (settled.status, settled.amount_remaining) == ("paid", 0)
    assert balance.balance == Money(amount=-5_000, currency="USD")


async def test_a_payment_refused_for_another_reason_is_not_posted_again(
    client: NetSuiteClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = await client.upsert_customer(ACME, external_id="acct-acme")
    order = await client.upsert_sales_order(_order(customer.id))
    invoice = await client.upsert_invoice(sales_order_id=order.id, external_id="inv")
    posts: list[str] = []
    post = client._post_payment

    async def counted(payment: Payment, external_id: str) -> str:
        posts.append(external_id)
        return await post(payment, external_id)

    monkeypatch.setattr(client, "_post_payment", counted)
    elsewhere = Payment(id="", invoice_id=invoice.id, customer_id=customer.id, amount=100_000,
                        currency="USD", status="succeeded", legal_entity="DE01")

    with pytest.raises(UpstreamInvalid) as refused:
        await client.upsert_customer_payment(elsewhere, external_id="pay:1")
    assert "subsidiary" in str(refused.value)  # a USER_ERROR too, but not on an application
    assert posts == ["pay:1"]


async def test_a_payment_on_a_credited_invoice_stays_unapplied(client: NetSuiteClient) -> None:
    customer = await client.upsert_customer(ACME, external_id="acct-acme")
    order = await client.upsert_sales_order(_order(customer.id))
    invoice = await client.upsert_invoice(sales_order_id=order.id, external_id="inv")
    await client.upsert_credit_memo(
        CreditMemoCreate(customer_id=customer.id, invoice_id=invoice.id, legal_entity="US01",
                         currency="USD", amount=100_000, memo="Full credit",
                         external_id="cn:1"))
    payment = Payment(id="", invoice_id=invoice.id, customer_id=customer.id, amount=100_000,
                      currency="USD", status="succeeded", legal_entity="US01")

    paid = await client.upsert_customer_payment(payment, external_id="pay:1")
    balance = await client.receivables_balance(customer.id)

    assert (paid.amount, paid.invoice_id) == (100_000, None)
    assert balance.balance == Money(amount=-100_000, currency="USD")


async def test_journal_entry_upsert_and_imbalance(client: NetSuiteClient) -> None:
    entry = JournalEntryCreate(
        legal_entity="DE01", currency="EUR", date=dt.date(2026, 11, 30), memo="accrual",
        external_id="je:1",
        lines=[JournalLine(account="1200", debit=12_345), JournalLine(account="4000",
                                                                        credit=12_345)],
    )
    posted = await client.upsert_journal_entry(entry)
    assert (await client.upsert_journal_entry(entry)).id == posted.id
    assert [(line.account, line.debit, line.credit) for line in posted.lines] == [
        ("1200", 12_345, 0), ("4000", 0, 12_345)]
    # The contract refuses an unbalanced entry itself, so send one as NetSuite would get it.
    unbalanced = {"subsidiary": {"id": "2"}, "line": {"items": [
        {"account": {"id": "1200"}, "debit": 1.00}, {"account": {"id": "4000"}, "credit": 0.99}]}}
    with pytest.raises(UpstreamInvalid) as caught:
        await client._transport.send("POST", "/services/rest/record/v1/journalEntry",
                                     json=unbalanced, what="post journal")
    assert caught.value.errors[0].pointer == "line"


async def test_approval_tasks(client: NetSuiteClient) -> None:
    task = ApprovalTask(id="", kind="credit_memo", subject="Credit 25 USD to Acme",
                        amount=2_500, currency="USD", legal_entity="US01", flow_id="flow-1",
                        requested_at=dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC))
    created = await client.upsert_approval_task(task, external_id="approval:flow-1")
    assert (await client.upsert_approval_task(task, external_id="approval:flow-1")).id == \
        created.id
    assert (created.status, created.amount, created.requested_at) == (
        "pending", 2_500, task.requested_at)
    pending = await client.list_approval_tasks(status="pending")
    assert [t.id for t in pending.data] == [created.id]
    decided = await client.decide_approval_task(
        created.id, ApprovalDecision(decision="rejected", reason="too much"),
        decided_by="cfo@northwind.test")
    assert (decided.status, decided.reason, decided.decided_by) == (
        "rejected", "too much", "cfo@northwind.test")
    assert decided.decided_at is not None
    assert (await client.list_approval_tasks(status="pending")).data == []


async def test_suiteql_pages(client: NetSuiteClient) -> None:
    for index in range(5):
        await client.upsert_customer(
            msgspec.structs.replace(ACME, legal_name=f"C{index}"), external_id=f"c{index}")
    query = "SELECT id, companyname FROM customer WHERE companyname LIKE 'C%' ORDER BY id DESC"
    first = await client.suiteql_page(query, limit=2)
    assert (first.count, first.has_more, first.total_results) == (2, True, 5)
    rows = [row async for row in client.suiteql(query, page_size=2)]
    assert [row["companyname"] for row in rows] == ["C4", "C3", "C2", "C1", "C0"]


async def test_not_found_and_invalid_input(client: NetSuiteClient) -> None:
    with pytest.raises(UpstreamNotFound) as missing:
        await client.get_customer("999999")
    assert missing.value.request_id
    with pytest.raises(UpstreamInvalid) as invalid:
        await client.upsert_sales_order(
            msgspec.structs.replace(_order("424242"), external_id="bad"))
    assert invalid.value.errors[0].pointer == "entity"
    with pytest.raises(InvalidRequest):
        await client.list_customers(cursor="not-a-cursor")


async def test_token_is_refreshed_once_after_revocation(
    client: NetSuiteClient, emulator: NetSuiteEmulator
) -> None:
    await client.list_legal_entities()
    emulator.revoke_tokens()
    assert len(await client.list_legal_entities()) == 2


async def test_idempotency_key_replays_a_create(
    http: httpx.AsyncClient, client: NetSuiteClient
) -> None:
    await client.list_currencies()  # obtains a token
    auth = client._transport.auth
    body = {"companyName": "Replay Co", "subsidiary": {"id": "1"}}
    headers = {"X-NetSuite-Idempotency-Key": "key-1"}
    first = await http.post("/services/rest/record/v1/customer", json=body, headers=headers,
                            auth=auth)
    second = await http.post("/services/rest/record/v1/customer", json=body, headers=headers,
                             auth=auth)
    assert first.status_code == second.status_code == 204
    assert first.headers["Location"] == second.headers["Location"]
    listing = await http.get("/services/rest/record/v1/customer", auth=auth)
    assert listing.json()["totalResults"] == 1
