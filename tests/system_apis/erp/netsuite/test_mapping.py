"""Mapping round trips: contract -> NetSuite body -> record as NetSuite reads it -> contract."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.v1 import (
    ApprovalTask,
    CreditMemoCreate,
    CustomerCreate,
    JournalEntryCreate,
    JournalLine,
    Payment,
    SalesOrderCreate,
    SalesOrderLine,
)
from system_apis.erp.netsuite import mapping
from system_apis.erp.netsuite._wire import (
    ApprovalRecord,
    CreditMemoRecord,
    CustomerPaymentRecord,
    CustomerRecord,
    JournalEntryRecord,
    SalesOrderRecord,
)

DIRECTORY = mapping.Directory(
    currencies={"1": "USD", "4": "EUR", "5": "JPY", "6": "KWD"},
    subsidiaries={"1": "US01", "2": "DE01", "3": "JP01"},
    terms={"2": 30, "7": 14, "8": 45},
)
currencies = st.sampled_from(["USD", "EUR", "JPY", "KWD"])
entities = st.sampled_from(["US01", "DE01", "JP01"])
amounts = st.integers(min_value=1, max_value=10**12)
texts = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=1,
                max_size=40)
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))


def _as_read(body: dict[str, Any], **computed: Any) -> dict[str, Any]:
    """A body as NetSuite would answer it after the write (JSON decimals kept exact)."""
    encoded = msgspec.json.Encoder(decimal_format="number").encode({**body, **computed})
    decoded: dict[str, Any] = msgspec.json.Decoder(float_hook=Decimal).decode(encoded)
    return decoded


@given(name=texts, entity=entities, currency=currencies, terms=st.sampled_from([None, 14, 30]),
       email=st.none() | st.just("ap@example.test"), tax=st.none() | texts)
def test_customer_round_trip(name: str, entity: str, currency: str, terms: int | None,
                             email: str | None, tax: str | None) -> None:
    create = CustomerCreate(legal_name=name, legal_entity=entity, currency=currency,
                            email=email, tax_id=tax, payment_terms_days=terms)
    body = mapping.from_customer_create(create, DIRECTORY)
    record = msgspec.convert(_as_read(body, id="42"), CustomerRecord)
    customer = mapping.to_customer(record, DIRECTORY)
    assert (customer.legal_name, customer.legal_entity, customer.currency, customer.email,
            customer.tax_id, customer.payment_terms_days) == (name, entity, currency, email,
                                                              tax, terms)
    assert customer.refs == {"netsuite": "42"}


lines = st.lists(st.tuples(st.integers(1, 500), st.integers(0, 10**9)), min_size=1,
                 max_size=5)


@given(currency=currencies, entity=entities, day=dates, items=lines, memo=st.none() | texts)
def test_sales_order_round_trip(currency: str, entity: str, day: dt.date,
                                items: list[tuple[int, int]], memo: str | None) -> None:
    order = SalesOrderCreate(
        customer_id="7", legal_entity=entity, currency=currency, order_date=day,
        external_id="so-1", deal_id="006X", memo=memo,
        lines=[SalesOrderLine(item_id=str(100 + i), quantity=q, unit_amount=u, amount=q * u)
               for i, (q, u) in enumerate(items)],
    )
    body = mapping.from_sales_order_create(order, DIRECTORY)
    for line in body["item"]["items"]:
        line["amount"] = line["rate"] * line["quantity"]
    total = sum(line["amount"] for line in body["item"]["items"])
    record = msgspec.convert(_as_read(body, id="5001", tranId="SO1001", total=total,
                                      status={"id": "B", "refName": "Pending Fulfillment"}),
                             SalesOrderRecord)
    back = mapping.to_sales_order(record, DIRECTORY)
    assert [(x.item_id, x.quantity, x.unit_amount, x.amount) for x in back.lines] == [
        (x.item_id, x.quantity, x.unit_amount, x.amount) for x in order.lines]
    assert (back.total, back.currency, back.legal_entity, back.order_date, back.memo,
            back.deal_id, back.status) == (
        sum(x.amount for x in order.lines), currency, entity, day, memo, "006X",
        "pending_fulfillment")


@given(currency=currencies, entity=entities, amount=amounts, day=dates,
       pairs=st.lists(st.tuples(st.text("0123456789", min_size=1, max_size=6), amounts),
                      min_size=1, max_size=4))
def test_journal_round_trip(currency: str, entity: str, amount: int, day: dt.date,
                            pairs: list[tuple[str, int]]) -> None:
    journal_lines = [JournalLine(account=account, debit=value) for account, value in pairs]
    journal_lines.append(JournalLine(account="4000", credit=sum(v for _, v in pairs)))
    entry = JournalEntryCreate(legal_entity=entity, currency=currency, date=day,
                               lines=journal_lines, external_id="je")
    body = mapping.from_journal_entry_create(entry, DIRECTORY)
    back = mapping.to_journal_entry(msgspec.convert(_as_read(body, id="9"),
                                                    JournalEntryRecord), DIRECTORY)
    assert back.lines == journal_lines
    assert (back.currency, back.legal_entity, back.date) == (currency, entity, day)


@given(currency=currencies, entity=entities, amount=amounts, day=dates)
def test_payment_and_credit_memo_round_trip(currency: str, entity: str, amount: int,
                                            day: dt.date) -> None:
    payment = Payment(id="", invoice_id="5002", customer_id="7", amount=amount,
                      currency=currency, status="succeeded", legal_entity=entity,
                      received_at=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
    body = mapping.from_payment(payment, DIRECTORY)
    back = mapping.to_payment(msgspec.convert(_as_read(body, id="11"), CustomerPaymentRecord),
                              DIRECTORY)
    assert msgspec.structs.replace(back, id="", refs={}) == payment
    memo = CreditMemoCreate(customer_id="7", invoice_id="5002", legal_entity=entity,
                            currency=currency, amount=amount, memo="credit", external_id="cm")
    body = mapping.from_credit_memo_create(memo, DIRECTORY, item_id="101")
    total = body["item"]["items"][0]["rate"]
    credit = mapping.to_credit_memo(
        msgspec.convert(_as_read(body, id="12", total=total), CreditMemoRecord), DIRECTORY)
    assert (credit.amount, credit.currency, credit.invoice_id, credit.legal_entity) == (
        amount, currency, "5002", entity)


@settings(max_examples=50)
@given(currency=st.none() | currencies, entity=st.none() | entities, amount=amounts,
       subject=texts, status=st.sampled_from(["pending", "approved", "rejected", "expired"]))
def test_approval_round_trip(currency: str | None, entity: str | None, amount: int,
                             subject: str, status: str) -> None:
    task = ApprovalTask(id="3", kind="write_off", subject=subject, status=status,  # type: ignore[arg-type]
                        amount=amount if currency else None, currency=currency,
                        requested_at=dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC),
                        requested_by="flow", decided_by=None, reason=None, flow_id="f-1",
                        legal_entity=entity, refs={"netsuite": "3"})
    body = mapping.from_approval_task(task, DIRECTORY)
    back = mapping.to_approval_task(msgspec.convert(_as_read(body, id="3"), ApprovalRecord),
                                    DIRECTORY)
    assert back == task


def test_sub_minor_amounts_are_refused() -> None:
    record = msgspec.convert({"id": "1", "entity": {"id": "7"}, "subsidiary": {"id": "1"},
                              "currency": {"id": "5"}, "tranDate": "2026-01-01",
                              "total": Decimal("1.5")}, SalesOrderRecord)
    try:
        mapping.to_sales_order(record, DIRECTORY)
    except ValueError as exc:
        assert "JPY" in str(exc)
    else:
        raise AssertionError("1.5 JPY must not be rounded")
