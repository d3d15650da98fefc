"""The comparison rules on books built in memory: what is a mismatch, its reason and values,
what is only pending, and the totals per kind, entity and currency."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec

from contracts.v1 import (
    CreditMemo,
    CreditNote,
    Customer,
    Deal,
    DealLine,
    Invoice,
    InvoiceLine,
    SalesOrder,
    Subscription,
    SubscriptionItem,
)
from process_apis.reconciliation.compare import Books, Kind, Link, Total, compare

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=2)


def _invoice(
    invoice_id: str,
    total: int,
    *,
    tax: int = 0,
    entity: str = "US01",
    currency: str = "USD",
    external_id: str | None = None,
    issued_at: datetime = LONG_AGO,
    subscription_id: str | None = None,
    paid: int = 0,
    customer_id: str = "cus_1",
) -> Invoice:
    return Invoice(
        id=invoice_id,
        customer_id=customer_id,
        subscription_id=subscription_id,
        status="paid" if paid else "open",
        currency=currency,
        subtotal=total - tax,
        tax=tax,
        total=total,
        amount_due=total,
        amount_paid=paid,
        amount_remaining=total - paid,
        issued_at=issued_at,
        legal_entity=entity,
        external_id=external_id,
    )


def _reasons(books: Books, *kinds: Kind, settle: float = 0) -> list[str]:
    found = compare(books, kinds, now=NOW, settle_seconds=settle)
    return [f.reason for f in found.findings]


def test_an_invoice_missing_in_the_erp_is_a_repairable_mismatch() -> None:
    books = Books(billing_invoices=[_invoice("in_1", 200_000)])

    found = compare(books, ["invoices"], now=NOW, settle_seconds=0)

    [finding] = found.findings
    assert finding.reason == "invoice in_1 (2,000.00 USD) is in billing but not in the ERP"
    assert (finding.values.billing, finding.values.erp) == (200_000, None)
    assert finding.repair == "post_invoice"
    assert finding.fingerprint == "invoices:missing_in_erp:in_1"
    assert found.totals == [
        Total(kind="invoices", legal_entity="US01", currency="USD", billing=200_000)
    ]


def test_an_invoice_younger_than_the_settle_window_is_pending() -> None:
    books = Books(
        billing_invoices=[_invoice("in_1", 200_000, issued_at=NOW - timedelta(seconds=10))]
    )

    found = compare(books, ["invoices"], now=NOW, settle_seconds=300)

    assert found.findings == []
    assert (found.checked["invoices"], found.pending["invoices"]) == (0, 1)


def test_invoices_posted_differently_are_named_with_both_amounts() -> None:
    books = Books(
        billing_invoices=[
            _invoice("in_1", 119_000, tax=19_000, entity="DE01", currency="EUR"),
            _invoice("in_2", 5_000),
            _invoice("in_3", 7_000),
        ],
        erp_invoices=[
            _invoice("101", 100_000, entity="DE01", currency="EUR", external_id="in_1"),
            _invoice("102", 5_000, external_id="in_2"),
            _invoice("103", 5_000, external_id="in_2"),
            _invoice("104", 7_000, entity="DE01", external_id="in_3"),
            _invoice("105", 900, external_id=None),
        ],
    )

    assert _reasons(books, "invoices") == [
        "invoice in_1 is 1,190.00 EUR in billing but ERP invoice 101 is 1,000.00 EUR",
        "invoice in_2 (50.00 USD) is posted 2 times in the ERP: 102, 103",
        "invoice in_3 is billed by US01 but ERP invoice 104 is booked in DE01",
        "ERP invoice 105 of 9.00 USD has no invoice in billing",
    ]


def test_a_payment_not_applied_in_the_erp_is_found() -> None:
    books = Books(
        billing_invoices=[_invoice("in_1", 5_000, paid=5_000)],
        erp_invoices=[_invoice("101", 5_000, external_id="in_1")],
    )

    found = compare(books, ["payments"], now=NOW, settle_seconds=0)

    [finding] = found.findings
    assert (
        finding.reason
        == "invoice in_1 was paid 50.00 USD in billing but the ERP shows 0.00 USD paid"
    )
    assert finding.repair == "apply_payment"


def test_a_lost_credit_memo_that_was_applied_before_the_payment_is_one_credit_finding() -> None:
    """The memo reached the ERP first and settled 50.00 of the invoice, so the payment was
    applied only to the rest; once the memo is deleted the invoice falls 50.00 short. That is
    the credit's drift, found once; a real payment shortfall beyond it is still found."""
    account = Customer(id="001A", legal_name="Acme", legal_entity="US01", currency="USD")
    billing_customer = Customer(
        id="cus_1",
        legal_name="Acme",
        legal_entity="US01",
        currency="USD",
        refs={"stripe": "cus_1", "salesforce": "001A"},
    )
    note = CreditNote(
        id="cn_1",
        invoice_id="in_1",
        customer_id="cus_1",
        currency="USD",
        amount=5_000,
        created_at=LONG_AGO,
        legal_entity="US01",
    )
    link = Link(canonical_id="cus-001A", system="netsuite", legal_entity="US01", external_id="7")
    settled_by_payment = _invoice("101", 350_000, external_id="in_1", paid=345_000)
    books = Books(
        accounts=[account],
        billing_customers=[billing_customer],
        billing_invoices=[_invoice("in_1", 350_000, paid=350_000)],
        credit_notes=[note],
        erp_invoices=[settled_by_payment],
        links=[link],
    )

    assert _reasons(books, "payments", "credits") == [
        "credit cn_1 of 50.00 USD is in billing but has no credit memo in the ERP"
    ]

    short = msgspec.structs.replace(settled_by_payment, amount_paid=340_000)
    assert _reasons(msgspec.structs.replace(books, erp_invoices=[short]), "payments") == [
        "invoice in_1 was paid 3,500.00 USD in billing but the ERP shows 3,400.00 USD paid"
    ]
    applied = CreditMemo(
        id="31",
        customer_id="7",
        invoice_id="101",
        legal_entity="US01",
        currency="USD",
        amount=5_000,
    )
    assert _reasons(msgspec.structs.replace(books, credit_memos=[applied]), "payments") == [
        "invoice in_1 was paid 3,500.00 USD in billing but the ERP shows 3,450.00 USD paid"
    ]


def test_a_discounted_deal_billed_at_list_price_is_found() -> None:
    deal = Deal(
        id="006A",
        customer_id="001A",
        name="Seats",
        stage="Closed Won",
        won=True,
        closed=True,
        currency="USD",
        amount=160_000,
        legal_entity="US01",
        updated_at=LONG_AGO,
        lines=[DealLine(id="l1", quantity=4, unit_amount=40_000, total_amount=160_000)],
    )
    books = Books(
        deals=[deal],
        subscriptions=[
            Subscription(
                id="sub_1", customer_id="cus_1", status="active", currency="USD", deal_id="006A"
            )
        ],
        billing_invoices=[_invoice("in_1", 200_000, subscription_id="sub_1")],
        sales_orders=[
            SalesOrder(
                id="9",
                number="SO9",
                customer_id="7",
                legal_entity="US01",
                currency="USD",
                status="pending_billing",
                order_date=date(2026, 12, 1),
                total=160_000,
                external_id="q2c:006A",
            )
        ],
    )

    found = compare(books, ["deals"], now=NOW, settle_seconds=0)

    [finding] = found.findings
    assert finding.reason == (
        "deal 006A (Seats) was sold for 1,600.00 USD but billing charges 2,000.00 USD for it"
    )
    assert (finding.values.crm, finding.values.billing, finding.values.erp) == (
        160_000,
        200_000,
        160_000,
    )
    assert finding.repair is None


def _amended_deal_books(seat_price_now: int) -> Books:
    """A deal sold as 4 seats at 400.00 and onboarding at 500.00, amended to 6 seats: the
    CRM's contract amount and the order follow; the opportunity's own amount and the first
    invoice still say 4 seats."""
    deal = Deal(
        id="006B",
        customer_id="001A",
        name="Growing",
        stage="Closed Won",
        won=True,
        closed=True,
        currency="USD",
        amount=4 * 40_000 + 50_000,
        contract_amount=6 * 40_000 + 50_000,
        legal_entity="US01",
        updated_at=LONG_AGO,
    )
    first = _invoice("in_1", 4 * 40_000 + 50_000, subscription_id="sub_1")
    first_lines = [
        InvoiceLine(id="il_1", quantity=4, unit_amount=40_000, amount=160_000, product_code="SEAT"),
        InvoiceLine(id="il_2", amount=50_000, product_code="ONBOARD"),
    ]
    return Books(
        deals=[deal],
        subscriptions=[
            Subscription(
                id="sub_1",
                customer_id="cus_1",
                status="active",
                currency="USD",
                deal_id="006B",
                items=[
                    SubscriptionItem(
                        id="si_1",
                        price_id="p",
                        product_code="SEAT",
                        quantity=6,
                        unit_amount=seat_price_now,
                    )
                ],
            )
        ],
        billing_invoices=[msgspec.structs.replace(first, lines=first_lines)],
        sales_orders=[
            SalesOrder(
                id="9",
                number="SO9",
                customer_id="7",
                legal_entity="US01",
                currency="USD",
                status="pending_billing",
                order_date=date(2026, 12, 1),
                total=6 * 40_000 + 50_000,
                external_id="q2c:006B",
            )
        ],
    )


def test_an_amended_deal_agrees_with_its_contract_amount_and_subscription_as_amended() -> None:
    agreed = compare(_amended_deal_books(40_000), ["deals"], now=NOW, settle_seconds=0)
    repriced = compare(_amended_deal_books(50_000), ["deals"], now=NOW, settle_seconds=0)

    assert agreed.findings == []
    assert agreed.totals == [
        Total(
            kind="deals",
            legal_entity="US01",
            currency="USD",
            crm=290_000,
            billing=290_000,
            erp=290_000,
        )
    ]
    [finding] = repriced.findings
    assert finding.reason == (
        "deal 006B (Growing) was sold for 2,900.00 USD but billing charges 3,500.00 USD for it"
    )


def test_a_proration_credit_matches_its_credit_memo_and_a_stray_memo_is_found() -> None:
    account = Customer(id="001A", legal_name="Acme", legal_entity="US01", currency="USD")
    books = Books(
        accounts=[account],
        billing_customers=[
            Customer(
                id="cus_1",
                legal_name="Acme",
                legal_entity="US01",
                currency="USD",
                refs={"stripe": "cus_1", "salesforce": "001A"},
            )
        ],
        billing_invoices=[_invoice("in_9", -2_500)],
        credit_memos=[
            CreditMemo(id="31", customer_id="7", legal_entity="US01", currency="USD", amount=2_500),
            CreditMemo(
                id="32",
                number="CM32",
                customer_id="7",
                legal_entity="US01",
                currency="USD",
                amount=1_000,
            ),
        ],
        links=[
            Link(canonical_id="cus-001A", system="netsuite", legal_entity="US01", external_id="7")
        ],
    )

    assert _reasons(books, "credits") == [
        "ERP credit memo CM32 of 10.00 USD has no credit in billing"
    ]


def test_a_duplicate_billing_customer_needs_a_person_and_a_stale_link_can_be_relinked() -> None:
    accounts = [
        Customer(id="001A", legal_name="Acme", legal_entity="US01", currency="USD"),
        Customer(id="001B", legal_name="Globex", legal_entity="DE01", currency="EUR"),
    ]
    billing = [
        Customer(
            id="cus_1",
            legal_name="Acme",
            legal_entity="US01",
            currency="USD",
            refs={"salesforce": "001A"},
        ),
        Customer(
            id="cus_2",
            legal_name="Acme copy",
            legal_entity="US01",
            currency="USD",
            refs={"salesforce": "001A"},
        ),
        Customer(
            id="cus_3",
            legal_name="Globex",
            legal_entity="DE01",
            currency="EUR",
            refs={"salesforce": "001B"},
        ),
    ]
    links = [
        Link(canonical_id="cus-001B", system="stripe", legal_entity="DE01", external_id="cus_old"),
        Link(canonical_id="cus-001B", system="netsuite", legal_entity="DE01", external_id="8"),
    ]
    erp = [Customer(id="8", legal_name="Globex", legal_entity="DE01", currency="EUR")]
    books = Books(accounts=accounts, billing_customers=billing, links=links, erp_customers=erp)

    found = compare(books, ["customers"], now=NOW, settle_seconds=0)

    duplicate, stale = found.findings
    assert duplicate.reason == (
        "account 001A (Acme) has 2 billing customers (cus_1, cus_2); one must go"
    )
    assert duplicate.repair is None
    assert stale.repair == "relink_customer"
    assert stale.subject == {"system": "stripe", "external_id": "cus_3", "legal_entity": "DE01"}


def test_a_one_time_deal_is_compared_with_its_own_invoice() -> None:
    def books(billed: int) -> Books:
        deal = Deal(
            id="006C",
            customer_id="001A",
            name="Onboarding",
            stage="Closed Won",
            won=True,
            closed=True,
            currency="EUR",
            amount=207_000,
            legal_entity="DE01",
            updated_at=LONG_AGO,
        )
        own = msgspec.structs.replace(
            _invoice("in_9", billed, entity="DE01", currency="EUR"), deal_id="006C"
        )
        order = SalesOrder(
            id="10",
            number="SO10",
            customer_id="7",
            legal_entity="DE01",
            currency="EUR",
            status="pending_billing",
            order_date=date(2026, 12, 1),
            total=207_000,
            external_id="q2c:006C",
        )
        return Books(deals=[deal], billing_invoices=[own], sales_orders=[order])

    agreed = compare(books(207_000), ["deals"], now=NOW, settle_seconds=0)
    listed = compare(books(230_000), ["deals"], now=NOW, settle_seconds=0)

    assert agreed.findings == []
    assert agreed.totals == [
        Total(
            kind="deals",
            legal_entity="DE01",
            currency="EUR",
            crm=207_000,
            billing=207_000,
            erp=207_000,
        )
    ]
    assert [f.reason for f in listed.findings] == [
        "deal 006C (Onboarding) was sold for 2,070.00 EUR but billing charges 2,300.00 EUR for it"
    ]
