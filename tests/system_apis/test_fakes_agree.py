"""The fakes agree with the real clients: one scenario, run on the fake and on the vendor's
client wired to its in-process emulator, gives the same observable outcome (values, amounts,
number of records, error classes).

Ids differ between the two (each mints its own), so a scenario reports what a caller can rely
on: amounts, statuses, counts, "same id as before", the class of an error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import httpx
import msgspec
import pytest

from contracts.errors import GatewayError
from contracts.money import Money
from contracts.v1 import (
    ApprovalDecision,
    ApprovalTask,
    ContactCreate,
    CreditMemoCreate,
    CreditNoteCreate,
    Customer,
    CustomerCreate,
    CustomerPatch,
    DealPatch,
    JournalEntryCreate,
    JournalLine,
    Payment,
    SalesOrderCreate,
    SalesOrderLine,
    SubscriptionCreate,
    SubscriptionItemInput,
    SubscriptionPatch,
    SupportCaseCreate,
    SupportCasePatch,
    TaxRate,
)
from system_apis.billing.port import BillingPort
from system_apis.billing.stripe import StripeClient
from system_apis.crm.port import CrmPort
from system_apis.crm.salesforce import SalesforceClient
from system_apis.erp.netsuite import NetSuiteClient
from system_apis.erp.port import ErpPort
from system_apis.support.port import SupportPort
from system_apis.support.zendesk import ZendeskClient
from tests.fakes import FakeBilling, FakeCrm, FakeErp, FakeSupport
from tests.fakes.crm import sf_checksum


def _sandbox() -> SimpleNamespace:
    """The emulators, their sandbox credentials and the demo data: the one place this file
    imports them."""
    from gateway.sandbox_wiring import (
        netsuite_sandbox_credentials as netsuite_credentials,
    )
    from gateway.sandbox_wiring import (
        salesforce_sandbox_credentials as salesforce_credentials,
    )
    from gateway.sandbox_wiring import (
        stripe_sandbox_credentials as stripe_credentials,
    )
    from gateway.sandbox_wiring import (
        zendesk_sandbox_credentials as zendesk_credentials,
    )
    from sandbox import demo_data
    from sandbox.netsuite import NetSuiteEmulator
    from sandbox.salesforce import SalesforceEmulator
    from sandbox.stripe import StripeEmulator
    from sandbox.zendesk import ZendeskEmulator

    return SimpleNamespace(
        demo=demo_data,
        netsuite=(NetSuiteEmulator, netsuite_credentials),
        stripe=(lambda: StripeEmulator(rate_limit_per_second=None), stripe_credentials),
        salesforce=(SalesforceEmulator, salesforce_credentials),
        zendesk=(ZendeskEmulator, zendesk_credentials),
    )


SANDBOX = _sandbox()
T = TypeVar("T")
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
SEEDED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""When the fakes' copy of the demo data was last changed (long before any test runs)."""


async def outcome(call: Awaitable[T]) -> T | str:
    """The call's value, or the name of the contracts error it raised."""
    try:
        return await call
    except GatewayError as error:
        return type(error).__name__


async def _served(vendor: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    factory, _ = getattr(SANDBOX, vendor)
    emulator = factory()
    base = f"http://{vendor}.emulator.test"
    transport = httpx.ASGITransport(app=emulator.vendor)
    async with httpx.AsyncClient(transport=transport, base_url=base, timeout=5.0) as http:
        yield http, base


# ---------------------------------------------------------------------------------- ERP

Scenario = Callable[[Any], Awaitable[Any]]


@pytest.fixture
async def netsuite() -> AsyncIterator[ErpPort]:
    async for http, base in _served("netsuite"):
        yield NetSuiteClient(http, credentials=SANDBOX.netsuite[1](base))


def fake_erp() -> FakeErp:
    erp = FakeErp()
    for product in SANDBOX.demo.PRODUCTS:
        erp.seed_product(product.code, name=product.name,
                         billing_interval=product.billing_interval,
                         prices=product.unit_amounts, item_id=product.netsuite_item_id)
    return erp


ACME = CustomerCreate(legal_name="Acme Robotics Inc.", legal_entity="US01", currency="USD",
                      email="ada@acme.test", tax_id="US-94-1234567", payment_terms_days=30)


def _order(customer_id: str) -> SalesOrderCreate:
    return SalesOrderCreate(
        customer_id=customer_id, legal_entity="US01", currency="USD",
        order_date=dt.date(2026, 11, 2), external_id="q2c:acme:order", deal_id="006-acme",
        lines=[SalesOrderLine(product_code="PLAT-STD", quantity=1, unit_amount=50_000,
                              amount=50_000),
               SalesOrderLine(product_code="SEAT", quantity=20, unit_amount=2_500,
                              amount=50_000)],
    )


def _customer_view(customer: Customer) -> tuple[Any, ...]:
    return (customer.legal_name, customer.legal_entity, customer.currency, customer.email,
            customer.tax_id, customer.payment_terms_days, customer.payment_status,
            sorted(customer.refs))


async def erp_customer_upserted_twice(erp: ErpPort) -> Any:
    before = len((await erp.list_customers(limit=100)).data)
    first = await erp.upsert_customer(ACME, external_id="acct-acme")
    again = await erp.upsert_customer(ACME, external_id="acct-acme")
    found = await erp.find_customer(external_id="acct-acme")
    return (
        _customer_view(await erp.get_customer(first.id)), first.id == again.id,
        found is not None and found.id == first.id,
        await erp.find_customer(external_id="nobody"),
        len((await erp.list_customers(limit=100)).data) - before,
        len((await erp.list_customers(legal_entity="DE01")).data),
    )


async def erp_unknown_ids(erp: ErpPort) -> Any:
    customer = await erp.upsert_customer(ACME, external_id="acct-acme")
    refused = await outcome(erp.upsert_sales_order(_order("424242")))
    bad_code = msgspec.structs.replace(_order(customer.id), lines=[
        SalesOrderLine(product_code="NOPE", quantity=1, unit_amount=1, amount=1)])
    return [
        await outcome(erp.get_customer("999999")),
        await outcome(erp.get_customer("not-a-number")),
        await outcome(erp.get_sales_order("999999")),
        await outcome(erp.get_invoice("999999")),
        await outcome(erp.get_approval_task("999")),
        await outcome(erp.upsert_invoice(sales_order_id="999999", external_id="inv")),
        refused,
        await outcome(erp.upsert_sales_order(bad_code)),
        await outcome(erp.upsert_customer(msgspec.structs.replace(ACME, currency="EUR"),
                                          external_id="x")),
        await outcome(erp.upsert_customer(msgspec.structs.replace(ACME, legal_entity="XX99"),
                                          external_id="x")),
        await outcome(erp.list_customers(cursor="not-a-cursor")),
    ]


async def erp_order_to_cash(erp: ErpPort) -> Any:
    customer = await erp.upsert_customer(ACME, external_id="acct-acme")
    order = await erp.upsert_sales_order(_order(customer.id))
    repeat = await erp.upsert_sales_order(_order(customer.id))
    invoice = await erp.upsert_invoice(sales_order_id=order.id, external_id="q2c:inv",
                                       memo="first invoice")
    invoice_again = await erp.upsert_invoice(sales_order_id=order.id, external_id="q2c:inv")
    billed = await erp.get_sales_order(order.id)
    memo = await erp.upsert_credit_memo(CreditMemoCreate(
        customer_id=customer.id, invoice_id=invoice.id, legal_entity="US01", currency="USD",
        amount=2_500, memo="SLA credit", external_id="credit:1"))
    after_credit = await erp.get_invoice(invoice.id)
    payment = Payment(id="", invoice_id=invoice.id, customer_id=customer.id, amount=97_500,
                      currency="USD", status="succeeded", legal_entity="US01")
    paid = await erp.upsert_customer_payment(payment, external_id="stripe:pi_1")
    again = await erp.upsert_customer_payment(payment, external_id="stripe:pi_1")
    settled = await erp.get_invoice(invoice.id)
    over = await outcome(erp.upsert_customer_payment(
        msgspec.structs.replace(payment, amount=1), external_id="stripe:pi_2"))
    flagged = await erp.mark_invoice_for_collections(invoice.id)
    return (
        (order.number, order.total, order.status, order.deal_id, order.external_id),
        [(line.product_code, line.quantity, line.unit_amount, line.amount)
         for line in order.lines],
        repeat.id == order.id, billed.status,
        (invoice.total, invoice.subtotal, invoice.tax, invoice.amount_due,
         invoice.amount_remaining, invoice.status, invoice.number, invoice.due_date,
         invoice.legal_entity, len(invoice.lines)),
        [(line.quantity, line.unit_amount, line.amount) for line in invoice.lines],
        invoice_again.id == invoice.id,
        (memo.amount, memo.number, memo.memo, memo.invoice_id == invoice.id),
        (after_credit.amount_remaining, after_credit.status),
        (paid.amount, paid.status, paid.invoice_id == invoice.id, again.id == paid.id),
        (settled.status, settled.amount_paid, settled.amount_remaining), over,
        flagged.id == invoice.id,
        (await erp.receivables_balance(customer.id)).balance,
        len((await erp.list_sales_orders(customer_id=customer.id)).data),
        [i.status for i in (await erp.list_invoices(status="paid")).data],
        (await erp.list_invoices(status="open")).data,
        [m.amount for m in (await erp.list_credit_memos(customer_id=customer.id)).data],
    )


async def erp_journal_and_approval(erp: ErpPort) -> Any:
    entry = JournalEntryCreate(
        legal_entity="DE01", currency="EUR", date=dt.date(2026, 11, 30), memo="accrual",
        external_id="je:1",
        lines=[JournalLine(account="1200", debit=12_345), JournalLine(account="4000",
                                                                        credit=12_345)])
    posted = await erp.upsert_journal_entry(entry)
    repeat = await erp.upsert_journal_entry(entry)
    task = ApprovalTask(id="", kind="credit_memo", subject="Credit 25 USD to Acme",
                        amount=2_500, currency="USD", legal_entity="US01", flow_id="flow-1",
                        requested_at=dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC))
    created = await erp.upsert_approval_task(task, external_id="approval:flow-1")
    same = await erp.upsert_approval_task(task, external_id="approval:flow-1")
    pending = await erp.list_approval_tasks(status="pending")
    decided = await erp.decide_approval_task(
        created.id, ApprovalDecision(decision="rejected", reason="too much"), decided_by="cfo")
    expired = await erp.set_approval_status(created.id, "expired")
    return (
        (posted.number, posted.currency, posted.memo, repeat.id == posted.id),
        [(line.account, line.debit, line.credit) for line in posted.lines],
        (created.status, created.amount, created.currency, created.requested_at,
         created.legal_entity, created.flow_id, same.id == created.id),
        [t.id == created.id for t in pending.data],
        (decided.status, decided.reason, decided.decided_by, decided.decided_at is not None),
        (expired.status, expired.reason, expired.decided_by),
        (await erp.list_approval_tasks(status="pending")).data,
        [(e.code, e.currency) for e in await erp.list_legal_entities()],
    )


async def erp_collections_and_catalog(erp: ErpPort) -> Any:
    customer = await erp.upsert_customer(ACME, external_id="acct-acme")
    flagged = await erp.set_customer_collections(customer.id, payment_status="delinquent",
                                                 credit_hold=True)
    cleared = await erp.set_customer_collections(customer.id, payment_status=None)
    renamed = await erp.upsert_customer(msgspec.structs.replace(ACME, legal_name="Acme Inc.",
                                                                email=None),
                                        external_id="acct-acme")
    products = await erp.list_products(limit=2)
    rest = await erp.list_products(cursor=products.next_cursor, limit=10)
    return (
        flagged.payment_status, cleared.payment_status, (renamed.legal_name, renamed.email),
        [p.code for p in products.data], [p.code for p in rest.data], rest.next_cursor,
        await outcome(erp.set_customer_collections("999999", payment_status="current")),
        await outcome(erp.receivables_balance("999999")),
        (await erp.receivables_balance(customer.id)).overdue,
    )


async def erp_taxed_invoice_of_billed_lines(erp: ErpPort) -> Any:
    """An order whose lines name a tax code keeps the code only; its invoice of billed lines
    carries the tax given per line, or (none given) amount x the code's rate half up."""
    customer = await erp.upsert_customer(ACME, external_id="acct-acme")
    taxed = [msgspec.structs.replace(line, tax_code="US-CA")
             for line in _order(customer.id).lines]
    order = await erp.upsert_sales_order(msgspec.structs.replace(_order(customer.id),
                                                                 lines=taxed))
    billed = [
        msgspec.structs.replace(order.lines[0], tax_rate_bps=725, tax_amount=3_625),
        # 10 x 20.20 at 7.25%: 14.645, none given: 14.65 (half up).
        msgspec.structs.replace(order.lines[1], quantity=10, unit_amount=2_020,
                                amount=20_200),
    ]
    invoice = await erp.upsert_invoice(sales_order_id=order.id, external_id="in_taxed",
                                       lines=billed, tax_note=None)
    again = await erp.upsert_invoice(sales_order_id=order.id, external_id="in_taxed",
                                     lines=billed)
    found = await erp.find_invoice(external_id="in_taxed")
    exempt = await erp.upsert_invoice(
        sales_order_id=order.id, external_id="in_exempt", tax_note="Reverse charge",
        lines=[msgspec.structs.replace(order.lines[0], tax_code="EU-RC", tax_rate_bps=0,
                                       tax_amount=0)])
    unknown = await outcome(erp.upsert_invoice(
        sales_order_id=order.id, external_id="in_unknown",
        lines=[msgspec.structs.replace(order.lines[0], tax_code="XX-NOPE")]))
    return (
        (order.total, [(line.tax_code, line.tax_amount) for line in order.lines]),
        (invoice.subtotal, invoice.tax, invoice.total, invoice.amount_remaining,
         invoice.external_id, invoice.tax_note),
        [(line.quantity, line.unit_amount, line.amount, line.tax_code, line.tax_rate_bps,
          line.tax_amount) for line in invoice.lines],
        again.id == invoice.id, found is not None and found.id == invoice.id,
        await erp.find_invoice(external_id="in_nope"),
        (exempt.subtotal, exempt.tax, exempt.total, exempt.tax_note,
         [(line.tax_code, line.tax_rate_bps, line.tax_amount) for line in exempt.lines]),
        unknown,
        (await erp.receivables_balance(customer.id)).balance,
    )


@pytest.mark.parametrize("scenario", [erp_customer_upserted_twice, erp_unknown_ids,
                                      erp_order_to_cash, erp_journal_and_approval,
                                      erp_collections_and_catalog,
                                      erp_taxed_invoice_of_billed_lines],
                         ids=lambda s: s.__name__)
async def test_erp_fake_agrees_with_netsuite(scenario: Scenario, netsuite: ErpPort) -> None:
    assert await scenario(fake_erp()) == await scenario(netsuite)


# ------------------------------------------------------------------------------ billing


@pytest.fixture
async def stripe() -> AsyncIterator[BillingPort]:
    async for http, base in _served("stripe"):
        yield StripeClient(http, credentials=SANDBOX.stripe[1](base))


def fake_billing() -> FakeBilling:
    billing = FakeBilling()
    for product in SANDBOX.demo.PRODUCTS:
        for currency, amount in sorted(product.unit_amounts.items()):
            billing.seed_price(product.code, currency=currency, unit_amount=amount,
                               billing_interval=product.billing_interval, name=product.name)
    return billing


_NUMBER = re.compile(r"^[0-9A-F]{8}-\d{4}$")


async def billing_customer_created_twice(billing: BillingPort) -> Any:
    before = len((await billing.list_customers(limit=100)).data)
    first = await billing.create_customer(ACME, crm_account_id="001acme", canonical_id="cus-1",
                                          idempotency_key="q2c:1:customer")
    again = await billing.create_customer(ACME, crm_account_id="001acme", canonical_id="cus-1",
                                          idempotency_key="q2c:1:customer")
    other = await outcome(billing.create_customer(
        msgspec.structs.replace(ACME, legal_name="Other"), idempotency_key="q2c:1:customer"))
    found = await billing.find_customer(crm_account_id="001acme")
    return (
        _customer_view(await billing.get_customer(first.id)), first.id == again.id, other,
        found is not None and found.id == first.id,
        await billing.find_customer(crm_account_id="nobody"),
        len((await billing.list_customers(limit=100)).data) - before,
        [c.legal_name for c in (await billing.list_customers(email="ada@acme.test")).data],
    )


async def billing_unknown_ids(billing: BillingPort) -> Any:
    return [
        await outcome(billing.get_customer("cus_nope")),
        await outcome(billing.get_invoice("in_nope")),
        await outcome(billing.get_price("price_nope")),
        await outcome(billing.get_subscription("sub_nope")),
        await outcome(billing.get_credit_note("cn_nope")),
        await outcome(billing.get_event("evt_nope")),
        await outcome(billing.create_invoice(customer_id="cus_nope")),
        await outcome(billing.finalize_invoice("in_nope")),
        await outcome(billing.list_invoices(cursor="not-a-cursor")),
        await outcome(billing.create_invoice_item(customer_id="cus_nope")),
    ]


async def billing_invoice_lifecycle(billing: BillingPort) -> Any:
    customer = await billing.create_customer(ACME)
    onboard = await billing.find_price(product_code="ONBOARD", currency="USD")
    assert onboard is not None
    item = await billing.create_invoice_item(customer_id=customer.id, price_id=onboard.id,
                                             quantity=2, idempotency_key="item-1")
    same_item = await billing.create_invoice_item(customer_id=customer.id, price_id=onboard.id,
                                                  quantity=2, idempotency_key="item-1")
    extra = await billing.create_invoice_item(
        customer_id=customer.id, amount=Money(amount=1_234, currency="USD"),
        description="Travel")
    draft = await billing.create_invoice(customer_id=customer.id,
                                         collection_method="send_invoice", days_until_due=14)
    finalized = await billing.finalize_invoice(draft.id)
    twice = await outcome(billing.finalize_invoice(draft.id))
    credited = await billing.create_credit_note(
        CreditNoteCreate(invoice_id=draft.id, currency="USD", amount=1_234,
                         reason="service_credit", memo="goodwill"))
    wrong_currency = await outcome(billing.create_credit_note(
        CreditNoteCreate(invoice_id=draft.id, currency="EUR", amount=1)))
    after_credit = await billing.get_invoice(draft.id)
    paid = await billing.pay_invoice(draft.id, paid_out_of_band=True)
    again = await outcome(billing.pay_invoice(draft.id))
    notes = await billing.list_credit_notes(invoice_id=draft.id)
    return (
        (item.amount, item.quantity, item.unit_amount, item.description, same_item.id == item.id),
        (extra.amount, extra.quantity, extra.unit_amount, extra.description),
        (draft.status, draft.number, draft.subtotal, draft.tax, draft.total, draft.amount_due,
         draft.legal_entity, sorted(line.amount for line in draft.lines)),
        (finalized.status, bool(_NUMBER.match(finalized.number or "")),
         finalized.amount_remaining, finalized.due_date is not None), twice,
        (credited.amount, credited.reason, credited.status, credited.legal_entity,
         [(line.description, line.quantity, line.unit_amount, line.amount)
          for line in credited.lines]), wrong_currency,
        (after_credit.amount_due, after_credit.amount_remaining, after_credit.status),
        (paid.status, paid.amount_paid, paid.amount_remaining, paid.paid_at is not None), again,
        [n.amount for n in notes.data],
        [i.status for i in (await billing.list_invoices(customer_id=customer.id)).data],
    )


async def billing_subscription_lifecycle(billing: BillingPort) -> Any:
    customer = await billing.create_customer(ACME)
    std = await billing.find_price(product_code="PLAT-STD", currency="USD")
    seat = await billing.find_price(product_code="SEAT", currency="USD")
    assert std is not None and seat is not None
    create = SubscriptionCreate(customer_id=customer.id, currency="USD", deal_id="006-acme",
                                legal_entity="US01",
                                items=[SubscriptionItemInput(price_id=std.id),
                                       SubscriptionItemInput(price_id=seat.id, quantity=20)])
    sub = await billing.create_subscription(create, idempotency_key="q2c:sub")
    same = await billing.create_subscription(create, idempotency_key="q2c:sub")
    invoices = (await billing.list_invoices(subscription_id=sub.id)).data
    amended = await billing.update_subscription(
        sub.id, SubscriptionPatch(items=[SubscriptionItemInput(price_id=std.id),
                                         SubscriptionItemInput(price_id=seat.id, quantity=30)]),
        proration_behavior="none")
    unchanged = await billing.update_subscription(sub.id, SubscriptionPatch())
    canceled = await billing.cancel_subscription(sub.id)
    return (
        (sub.status, sub.currency, sub.deal_id, sub.legal_entity, same.id == sub.id,
         sorted((i.product_code, i.quantity, i.unit_amount) for i in sub.items)),
        [(i.status, i.total, i.amount_paid, sorted(line.amount for line in i.lines))
         for i in invoices],
        sorted((i.product_code, i.quantity) for i in amended.items),
        unchanged.id == sub.id,
        (canceled.status, canceled.canceled_at is not None),
        await outcome(billing.cancel_subscription(sub.id)),
        (await billing.list_subscriptions(customer_id=customer.id)).data,
        len((await billing.list_subscriptions(customer_id=customer.id, status="all")).data),
        (await billing.get_customer(customer.id)).payment_status,
    )


async def billing_declined_payment(billing: BillingPort) -> Any:
    customer = await billing.create_customer(ACME)
    await billing.create_invoice_item(customer_id=customer.id,
                                      amount=Money(amount=5_000, currency="USD"))
    invoice = await billing.create_invoice(customer_id=customer.id)
    declined = await outcome(billing.pay_invoice(invoice.id,
                                                 payment_method="pm_card_chargeDeclined"))
    after = await billing.get_invoice(invoice.id)
    delinquent = (await billing.get_customer(customer.id)).payment_status
    paid = await billing.pay_invoice(invoice.id)
    return (declined, (after.status, after.amount_remaining), delinquent,
            (paid.status, paid.amount_paid),
            (await billing.get_customer(customer.id)).payment_status)


async def billing_customer_patched(billing: BillingPort) -> Any:
    customer = await billing.create_customer(msgspec.structs.replace(
        ACME, country="US", website="https://acme.test"))
    patched = await billing.update_customer(customer.id, CustomerPatch(
        legal_name="Acme Inc.", website=None, country="DE", phone="+49 30 1234"))
    refused = await outcome(billing.update_customer(customer.id,
                                                    CustomerPatch(risk_level="high")))
    products = await billing.list_products(limit=100)
    return (
        (customer.country, customer.website, customer.billing_address),
        (patched.legal_name, patched.website, patched.country, patched.phone,
         patched.legal_entity, patched.currency), refused,
        await outcome(billing.update_customer("cus_nope", CustomerPatch(phone="1"))),
        sorted(p.code for p in products.data),
        await billing.find_product("NOPE"), await billing.find_price(product_code="SEAT",
                                                                     currency="JPY"),
    )


async def billing_taxed_subscription_at_sold_prices(billing: BillingPort) -> Any:
    """A subscription at the deal's prices (a discounted seat through `price_data`), its
    one-time line on its first invoice, taxed by a default tax rate: per-line tax rounded
    half up, the invoice's tax and total; then fewer seats credit the customer's balance."""
    customer = await billing.create_customer(ACME)
    std = await billing.find_price(product_code="PLAT-STD", currency="USD")
    seat = await billing.find_price(product_code="SEAT", currency="USD")
    onboard = await billing.find_price(product_code="ONBOARD", currency="USD")
    assert std is not None and seat is not None and onboard is not None
    rate = await billing.create_tax_rate(TaxRate(
        id="US-CA", code="US-CA", rate_bps=725, display_name="Sales tax California",
        jurisdiction="CA"), idempotency_key="tax:US-CA:rate")
    found = await billing.find_tax_rate("US-CA")
    create = SubscriptionCreate(
        customer_id=customer.id, currency="USD", deal_id="006-acme", legal_entity="US01",
        collection_method="send_invoice", days_until_due=30, tax_rate_ids=[rate.id],
        items=[SubscriptionItemInput(price_id=std.id, product_code="PLAT-STD"),
               # 10 x 20.20 at 7.25% is 14.645: billed 14.65 (half up, once per line).
               SubscriptionItemInput(price_id=seat.id, quantity=10, unit_amount=2_020,
                                     product_code="SEAT")],
        one_time_items=[SubscriptionItemInput(price_id=onboard.id, unit_amount=123_457,
                                              product_code="ONBOARD")])
    sub = await billing.create_subscription(create, idempotency_key="q2c:sub")
    (first,) = (await billing.list_invoices(subscription_id=sub.id)).data
    sold_seat = next(i for i in sub.items if i.product_code == "SEAT")
    fewer = await billing.update_subscription(
        sub.id, SubscriptionPatch(items=[SubscriptionItemInput(price_id=std.id),
                                         SubscriptionItemInput(price_id=sold_seat.price_id,
                                                               quantity=5)]),
        proration_behavior="always_invoice")
    credit = [i for i in (await billing.list_invoices(subscription_id=sub.id)).data
              if i.id != first.id]
    catalog = await billing.list_prices(product_id=seat.product_id, currency="USD")
    listed = await billing.find_price(product_code="SEAT", currency="USD")
    return (
        (rate.code, rate.rate_bps, found is not None and found.id == rate.id),
        sorted((i.product_code, i.quantity, i.unit_amount) for i in sub.items),
        (first.status, first.subtotal, first.tax, first.total, first.amount_due),
        sorted((line.quantity, line.amount, line.tax_rate_bps, line.tax_amount, line.tax_code)
               for line in first.lines),
        sorted((i.product_code, i.quantity) for i in fewer.items),
        [(i.status, i.total < 0, i.tax, i.total, i.amount_due) for i in credit],
        [(p.unit_amount, p.active) for p in catalog.data],
        listed is not None and listed.id == seat.id,
    )


async def billing_one_time_invoice_of_its_own(billing: BillingPort) -> Any:
    """A deal of one-time lines only: a draft of its own, taxed by a zero rate whose reason is
    printed, its item at the sold price bound to it, not a pending item of the customer."""
    customer = await billing.create_customer(ACME)
    onboard = await billing.find_price(product_code="ONBOARD", currency="USD")
    assert onboard is not None
    loose = await billing.create_invoice_item(customer_id=customer.id,
                                              amount=Money(amount=999, currency="USD"))
    rate = await billing.create_tax_rate(TaxRate(
        id="US-EXPORT", code="US-EXPORT", rate_bps=0, display_name="Export",
        reason="Services outside the US"))
    draft = await billing.create_invoice(
        customer_id=customer.id, collection_method="send_invoice", days_until_due=14,
        include_pending_items=False, auto_advance=False, tax_rate_ids=[rate.id],
        deal_id="006-onboard", legal_entity="US01", idempotency_key="q2c:draft")
    item = await billing.create_invoice_item(
        customer_id=customer.id, price_id=onboard.id, quantity=2, unit_amount=100_001,
        invoice_id=draft.id, deal_id="006-onboard", idempotency_key="q2c:item")
    sent = await billing.finalize_invoice(draft.id)
    return (
        (item.quantity, item.unit_amount, item.amount),
        (sent.status, sent.subtotal, sent.tax, sent.total, sent.amount_due, sent.legal_entity,
         sent.tax_note),
        [(line.quantity, line.unit_amount, line.amount, line.tax_rate_bps, line.tax_amount,
          line.tax_code) for line in sent.lines],
        loose.id != item.id and len((await billing.list_invoices(customer_id=customer.id)).data),
    )


@pytest.mark.parametrize("scenario", [billing_customer_created_twice, billing_unknown_ids,
                                      billing_customer_patched,
                                      billing_invoice_lifecycle, billing_subscription_lifecycle,
                                      billing_declined_payment,
                                      billing_taxed_subscription_at_sold_prices,
                                      billing_one_time_invoice_of_its_own],
                         ids=lambda s: s.__name__)
async def test_billing_fake_agrees_with_stripe(scenario: Scenario, stripe: BillingPort) -> None:
    assert await scenario(fake_billing()) == await scenario(stripe)


# ---------------------------------------------------------------------------------- CRM


@pytest.fixture
async def salesforce() -> AsyncIterator[CrmPort]:
    async for http, base in _served("salesforce"):
        yield SalesforceClient(http, SANDBOX.salesforce[1](base))


def fake_crm() -> FakeCrm:
    crm = FakeCrm()
    demo = SANDBOX.demo
    for product in demo.PRODUCTS:
        crm.seed_product(product.code, name=product.name,
                         billing_interval=product.billing_interval, prices=product.unit_amounts)
    accounts = {}
    for account in demo.ACCOUNTS:
        accounts[account.key] = crm.seed_account(
            account.name, legal_entity=account.legal_entity, currency=account.currency,
            tax_id=account.tax_id, website=f"https://www.{account.domain}", updated_at=SEEDED)
    for opportunity in demo.OPPORTUNITIES:
        crm.seed_deal(accounts[opportunity.account_key].id, name=opportunity.name,
                      stage=opportunity.stage, updated_at=SEEDED,
                      close_date=dt.date.fromisoformat(opportunity.close_date),
                      lines=[(line.product_code, line.quantity) for line in opportunity.lines])
    return crm


def _unknown_account() -> str:
    id15 = "001ZZ0000000000"
    return id15 + sf_checksum(id15)


async def crm_account_upserted_twice(crm: CrmPort) -> Any:
    before = len((await crm.list_accounts(limit=100)).data)
    account = msgspec.structs.replace(ACME, legal_name="Fresh Co", country="US")
    first = await crm.upsert_account(account, external_id="cus-fresh")
    again = await crm.upsert_account(account, external_id="cus-fresh")
    got = await crm.get_account(first[0])
    named = await crm.list_accounts(name="fresh")
    return (
        first[1], again[1], first[0] == again[0], _customer_view(got), got.country,
        len((await crm.list_accounts(limit=100)).data) - before,
        [c.legal_name for c in named.data],
        (await crm.list_accounts(legal_entities=set())).data,
    )


async def crm_unknown_ids(crm: CrmPort) -> Any:
    unknown = _unknown_account()
    return [
        await outcome(crm.get_account(unknown)),
        await outcome(crm.get_account("nope")),
        await outcome(crm.get_deal("006" + unknown[3:])),
        await outcome(crm.get_deal("006ZZ0000000000AAA")),  # wrong case-safety suffix
        await outcome(crm.list_contacts("001ZZ0000000000AAA")),
        await outcome(crm.get_account("001ZZ0000000000AAA")),
        await outcome(crm.update_deal("nope", DealPatch(integration_status="synced"))),
        await outcome(crm.update_account(unknown, CustomerPatch(phone="1"))),
        await outcome(crm.add_account_note(unknown, title="t", body="b")),
        await outcome(crm.create_contacts([ContactCreate(customer_id=unknown, last_name="X")])),
        await outcome(crm.create_contacts([])),
        await crm.list_contacts(unknown),
        await outcome(crm.list_accounts(cursor="not-a-cursor")),
    ]


async def crm_notes_and_contacts(crm: CrmPort) -> Any:
    account_id, _ = await crm.upsert_account(ACME, external_id="cus-notes")
    note = await crm.add_account_note(account_id, title="Credit refused", body="over limit")
    same = await crm.add_account_note(account_id, title="Credit refused", body="again")
    other = await crm.add_account_note(account_id, title="Second", body="two")
    ids = await crm.create_contacts([
        ContactCreate(customer_id=account_id, first_name="Ben", last_name="Ito"),
        ContactCreate(customer_id=account_id, first_name="Ada", last_name="Reyes",
                  email="ada@acme.test"),
    ])
    contacts = await crm.list_contacts(account_id)
    return (
        note == same, note != other,
        [(n.title, n.body) for n in await crm.list_account_notes(account_id)],
        len(ids), [(c.first_name, c.last_name, c.email, c.customer_id == account_id)
                   for c in contacts],
    )


async def crm_won_deal_amounts(crm: CrmPort) -> Any:
    won = await crm.list_won_deals(since=EPOCH)
    deal = next(d for d in won if d.name == "Acme - Platform rollout")
    got = await crm.get_deal(deal.id)
    await crm.update_deal(deal.id, DealPatch(integration_status="synced",
                                             erp_order_number="SO1001"))
    written = await crm.get_deal(deal.id)
    assert written.updated_at is not None
    later = await crm.list_won_deals(since=written.updated_at - dt.timedelta(seconds=1))
    products = await crm.list_products(active_only=True)
    prices = await crm.list_prices(currency="EUR")
    return (
        sorted(d.name for d in won),
        (got.amount, got.currency, got.won, got.closed, got.stage, got.legal_entity,
         got.close_date),
        sorted((line.product_code, line.quantity, line.unit_amount, line.total_amount)
               for line in got.lines),
        (written.integration_status, written.erp_order_number),
        [d.id == deal.id for d in later],
        [(p.code, p.billing_interval) for p in products],
        [(p.product_code, p.unit_amount, p.recurring_interval) for p in prices],
    )


async def crm_account_patched(crm: CrmPort) -> Any:
    account_id, _ = await crm.upsert_account(msgspec.structs.replace(ACME, country="US"),
                                             external_id="cus-patch")
    patched = await crm.update_account(account_id, CustomerPatch(
        phone="+1 555 0100", payment_status="past_due", country="DE", email=None))
    unchanged = await crm.update_account(account_id, CustomerPatch())
    return (
        (patched.phone, patched.payment_status, patched.country, patched.email,
         patched.legal_name), unchanged == patched,
    )


@pytest.mark.parametrize("scenario", [crm_account_upserted_twice, crm_unknown_ids,
                                      crm_notes_and_contacts, crm_won_deal_amounts,
                                      crm_account_patched],
                         ids=lambda s: s.__name__)
async def test_crm_fake_agrees_with_salesforce(scenario: Scenario, salesforce: CrmPort) -> None:
    assert await scenario(fake_crm()) == await scenario(salesforce)


# ------------------------------------------------------------------------------ support


@pytest.fixture
async def zendesk() -> AsyncIterator[SupportPort]:
    async for http, base in _served("zendesk"):
        yield ZendeskClient(http, credentials=SANDBOX.zendesk[1](base))


def fake_support() -> FakeSupport:
    support = FakeSupport()
    for account in SANDBOX.demo.ACCOUNTS:
        support.seed_organization(account.name, legal_entity=account.legal_entity,
                                  currency=account.currency)
    return support


GLOBEX = Customer(id="cus-globex", legal_name="Globex Fresh GmbH", legal_entity="DE01",
                  currency="EUR", refs={"salesforce": "001000000000042AAA"})


async def support_organization_upserted_twice(support: SupportPort) -> Any:
    before = len((await support.list_organizations(limit=100)).data)
    first = await support.upsert_organization(GLOBEX, external_id="cus-globex")
    again = await support.upsert_organization(GLOBEX, external_id="cus-globex")
    renamed = await support.upsert_organization(
        msgspec.structs.replace(GLOBEX, legal_name="Globex Renamed GmbH"),
        external_id="CUS-GLOBEX")
    found = await support.find_organization("cus-globex")
    got = await support.get_organization(first.id)
    taken = await outcome(support.upsert_organization(
        msgspec.structs.replace(GLOBEX, legal_name="Globex Renamed GmbH"),
        external_id="cus-other"))
    return (
        first.id == again.id == renamed.id, found is not None and found.id == first.id,
        (got.legal_name, got.legal_entity, got.currency, got.refs.get("salesforce"),
         sorted(got.refs)),
        len((await support.list_organizations(limit=100)).data) - before, taken,
        await support.find_organization("nobody"), await support.get_entitlement(first.id),
    )


async def support_unknown_ids(support: SupportPort) -> Any:
    orphan = SupportCaseCreate(customer_id="cus-unlinked", subject="Help", description="Down")
    return [
        await outcome(support.get_organization("not-a-number")),
        await outcome(support.get_organization("999999999")),
        await outcome(support.get_entitlement("999999999")),
        await outcome(support.get_case("999999")),
        await outcome(support.get_case("abc")),
        await outcome(support.list_comments("999999")),
        await outcome(support.get_first_response_at("999999")),
        await outcome(support.create_case(orphan)),
        await outcome(support.update_case("999999", SupportCasePatch(status="open"))),
        await support.find_user_by_email("nobody@nowhere.test"),
    ]


async def support_case_lifecycle(support: SupportPort) -> Any:
    await support.upsert_organization(GLOBEX, external_id="cus-globex")
    create = SupportCaseCreate(customer_id="cus-globex", subject="Invoices missing",
                               description="Our November invoice never arrived.",
                               priority="high", requester_email="greta@globex-fresh.test",
                               tags=["billing"])
    case = await support.create_case(create, idempotency_key="esc:1")
    same = await support.create_case(create, idempotency_key="esc:1")
    reused = await outcome(support.create_case(
        msgspec.structs.replace(create, priority="low"), idempotency_key="esc:1"))
    got = await support.get_case(case.id)
    await support.add_internal_comment(case.id, "Checked NetSuite: invoice INV1001 exists.")
    comments = await support.list_comments(case.id)
    updated = await support.update_case(case.id, SupportCasePatch(status="pending",
                                                                  priority="urgent"))
    listed = await support.list_cases(organization_id=got.organization_id or "0",
                                      status="pending")
    user = await support.find_user_by_email("GRETA@globex-fresh.test")
    return (
        same.id == case.id, reused,
        (case.status, case.priority, case.severity, case.subject, case.customer_id,
         case.requester_email, case.tags),
        (got.status, got.customer_id, got.requester_email, got.description,
         got.first_response_at),
        [(c.body, c.public) for c in comments],
        (updated.status, updated.priority, updated.severity),
        [c.id == case.id for c in listed.data],
        (await support.list_cases(entities={"US01"}, organization_id=got.organization_id)).data,
        await support.get_first_response_at(case.id),
        None if user is None else (user.last_name, user.email),
    )


@pytest.mark.parametrize("scenario", [support_organization_upserted_twice, support_unknown_ids,
                                      support_case_lifecycle],
                         ids=lambda s: s.__name__)
async def test_support_fake_agrees_with_zendesk(scenario: Scenario, zendesk: SupportPort) -> None:
    assert await scenario(fake_support()) == await scenario(zendesk)
