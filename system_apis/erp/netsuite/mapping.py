"""NetSuite records <-> canonical contracts: pure functions, exact money.

NetSuite names subsidiaries, currencies and terms by internal id; a `Directory` (read once by
the client) turns them into legal-entity codes, ISO 4217 codes and days. Amounts travel as
decimals in the record's currency and become integer minor units with `contracts.money`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, get_args

import msgspec

from contracts.money import Money, from_decimal, to_decimal
from contracts.v1 import (
    ApprovalStatus,
    ApprovalTask,
    CreditMemo,
    CreditMemoCreate,
    Customer,
    CustomerCreate,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    JournalEntry,
    JournalEntryCreate,
    JournalLine,
    LegalEntity,
    Payment,
    PaymentStatus,
    Product,
    RiskLevel,
    SalesOrder,
    SalesOrderCreate,
    SalesOrderLine,
    SalesOrderStatus,
)
from contracts.v1.catalog import BillingInterval
from system_apis.erp.netsuite._wire import (
    ApprovalRecord,
    CreditMemoRecord,
    CustomerPaymentRecord,
    CustomerRecord,
    InvoiceRecord,
    ItemLine,
    ItemRecord,
    JournalEntryRecord,
    Ref,
    SalesOrderRecord,
    SubsidiaryRecord,
)

__all__ = [
    "SYSTEM",
    "Directory",
    "from_approval_task",
    "from_credit_memo_create",
    "from_customer_create",
    "from_journal_entry_create",
    "from_payment",
    "from_product",
    "from_sales_order_create",
    "item_line",
    "to_approval_task",
    "to_credit_memo",
    "to_customer",
    "to_invoice",
    "to_journal_entry",
    "to_legal_entity",
    "to_payment",
    "to_product",
    "to_sales_order",
]

SYSTEM = "netsuite"

_ORDER_STATUS: dict[str, SalesOrderStatus] = {
    "a": "pending_approval", "pending approval": "pending_approval",
    "b": "pending_fulfillment", "pending fulfillment": "pending_fulfillment",
    "c": "cancelled", "cancelled": "cancelled",
    "d": "pending_fulfillment", "partially fulfilled": "pending_fulfillment",
    "e": "pending_billing", "pending billing/partially fulfilled": "pending_billing",
    "f": "pending_billing", "pending billing": "pending_billing",
    "g": "billed", "billed": "billed",
    "h": "closed", "closed": "closed",
}
_INTERVALS: tuple[str, ...] = get_args(BillingInterval)
_PAYMENT_STATUSES: tuple[str, ...] = get_args(PaymentStatus)
_RISK_LEVELS: tuple[str, ...] = get_args(RiskLevel)
_APPROVAL_STATUSES: tuple[str, ...] = get_args(ApprovalStatus)


class Directory(msgspec.Struct, frozen=True, kw_only=True):
    """The account's reference data: internal ids of subsidiaries, currencies and terms."""

    currencies: Mapping[str, str]
    """Currency internal id -> ISO 4217 code."""
    subsidiaries: Mapping[str, str]
    """Subsidiary internal id -> legal-entity code (the subsidiary's external id)."""
    terms: Mapping[str, int] = {}
    """Term internal id -> days until net due."""

    def currency_code(self, ref: Ref | None) -> str:
        if ref is None or ref.id not in self.currencies:
            raise ValueError(f"unknown NetSuite currency {ref.id if ref else None!r}")
        return self.currencies[ref.id]

    def currency_id(self, code: str) -> str:
        for rid, symbol in self.currencies.items():
            if symbol == code:
                return rid
        raise ValueError(f"currency {code} is not enabled in the NetSuite account")

    def entity_code(self, ref: Ref | None) -> str:
        if ref is None or ref.id not in self.subsidiaries:
            raise ValueError(f"unknown NetSuite subsidiary {ref.id if ref else None!r}")
        return self.subsidiaries[ref.id]

    def subsidiary_id(self, code: str) -> str:
        for rid, entity in self.subsidiaries.items():
            if entity == code:
                return rid
        raise ValueError(f"legal entity {code} is not a NetSuite subsidiary")

    def term_id(self, days: int) -> str:
        for rid, term_days in sorted(self.terms.items(), key=lambda pair: int(pair[0])):
            if term_days == days:
                return rid
        raise ValueError(f"no NetSuite payment term of {days} days")


def _refs(rid: str) -> dict[str, str]:
    return {SYSTEM: rid}


def _minor(value: Decimal | None, currency: str) -> int:
    return from_decimal(value if value is not None else Decimal(0), currency).amount


def _decimal(amount: int, currency: str) -> Decimal:
    return to_decimal(Money(amount=amount, currency=currency))


def _whole(quantity: Decimal) -> int:
    if quantity != quantity.to_integral_value():
        raise ValueError(f"quantity {quantity} is not a whole number")
    return int(quantity)


def _ref(rid: str) -> dict[str, str]:
    return {"id": rid}


def _midnight(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _select_id(value: Ref | str | None) -> str | None:
    return value.id if isinstance(value, Ref) else value


# ---------------------------------------------------------------------------- parties


def to_legal_entity(record: SubsidiaryRecord, directory: Directory) -> LegalEntity:
    return LegalEntity(
        id=record.id,
        code=record.external_id or record.id,
        name=record.name,
        country=(record.country or "").upper()[:2],
        currency=directory.currency_code(record.currency),
        refs=_refs(record.id),
    )


def to_customer(record: CustomerRecord, directory: Directory) -> Customer:
    status = record.collections_status
    risk = record.risk_level
    return Customer(
        id=record.id,
        legal_name=record.company_name or record.entity_id or record.id,
        legal_entity=directory.entity_code(record.subsidiary),
        currency=directory.currency_code(record.currency),
        tax_id=record.tax_id,
        email=record.email,
        phone=record.phone,
        website=record.url,
        payment_terms_days=directory.terms.get(record.terms.id) if record.terms else None,
        payment_status=status if status in _PAYMENT_STATUSES else None,  # type: ignore[arg-type]
        risk_level=risk if risk in _RISK_LEVELS else None,  # type: ignore[arg-type]
        updated_at=record.last_modified_date,
        refs=_refs(record.id),
    )


def from_customer_create(customer: CustomerCreate, directory: Directory) -> dict[str, Any]:
    """The customer body (the external id travels in the upsert URL)."""
    body: dict[str, Any] = {
        "companyName": customer.legal_name,
        "subsidiary": _ref(directory.subsidiary_id(customer.legal_entity)),
        "currency": _ref(directory.currency_id(customer.currency)),
        "email": customer.email,
        "phone": customer.phone,
        "url": customer.website,
        "custentity_tax_id": customer.tax_id,
    }
    if customer.payment_terms_days is not None:
        body["terms"] = _ref(directory.term_id(customer.payment_terms_days))
    return {key: value for key, value in body.items() if value is not None}


# ---------------------------------------------------------------------------- catalog


def to_product(record: ItemRecord) -> Product:
    interval = record.billing_interval if record.billing_interval in _INTERVALS else "one_time"
    return Product(
        id=record.id,
        code=record.item_id,
        name=record.display_name or record.item_id,
        description=record.sales_description,
        billing_interval=interval,  # type: ignore[arg-type]
        active=not record.is_inactive,
        refs=_refs(record.id),
    )


def from_product(
    product: Product, directory: Directory, prices: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """An item body; `prices` maps ISO currency -> unit price in minor units."""
    body: dict[str, Any] = {
        "itemId": product.code,
        "displayName": product.name,
        "salesDescription": product.description,
        "isInactive": not product.active,
        "custitem_erpgw_billing_interval": product.billing_interval,
    }
    if prices:
        body["price"] = {"items": [
            {"currency": _ref(directory.currency_id(code)), "price": _decimal(amount, code)}
            for code, amount in sorted(prices.items())
        ]}
    return {key: value for key, value in body.items() if value is not None}


# ------------------------------------------------------------------------------ sales


def _order_status(value: Ref | str | None) -> SalesOrderStatus:
    key = (value.ref_name or value.id) if isinstance(value, Ref) else (value or "")
    return _ORDER_STATUS.get(key.strip().lower(), "pending_fulfillment")


def _order_line(line: ItemLine, currency: str) -> SalesOrderLine:
    quantity = _whole(line.quantity)
    rate = line.rate if line.rate is not None else (
        line.amount / line.quantity if line.quantity else line.amount
    )
    return SalesOrderLine(
        item_id=line.item.id,
        product_code=line.item.ref_name,
        description=line.description,
        quantity=quantity,
        unit_amount=_minor(rate, currency),
        amount=_minor(line.amount, currency),
        tax_code=line.tax_code.ref_name if line.tax_code else None,
    )


def to_sales_order(record: SalesOrderRecord, directory: Directory) -> SalesOrder:
    currency = directory.currency_code(record.currency)
    lines = record.item.items if record.item else []
    return SalesOrder(
        id=record.id,
        number=record.tran_id,
        customer_id=record.entity.id,
        legal_entity=directory.entity_code(record.subsidiary),
        currency=currency,
        status=_order_status(record.status),
        order_date=record.tran_date,
        lines=[_order_line(line, currency) for line in lines],
        total=_minor(record.total, currency),
        external_id=record.external_id,
        deal_id=record.other_ref_num,
        memo=record.memo,
        refs=_refs(record.id),
    )


def item_line(
    line: SalesOrderLine,
    currency: str,
    tax_codes: Mapping[str, str] | None = None,
    *,
    invoiced: bool = False,
) -> dict[str, Any]:
    """One `item` sublist line of a transaction; the line must carry its NetSuite item id.
    A line with a tax code names the code's record (`tax_codes`: code -> internal id); an
    invoiced line also carries its rate (percent) and the tax billing computed for it, so
    the ERP's tax is billing's to the cent."""
    if line.item_id is None:
        raise ValueError(f"line {line.product_code!r} has no NetSuite item id")
    entry: dict[str, Any] = {
        "item": _ref(line.item_id),
        "quantity": line.quantity,
        "rate": _decimal(line.unit_amount, currency),
    }
    if line.description is not None:
        entry["description"] = line.description
    if line.tax_code is not None:
        code_id = (tax_codes or {}).get(line.tax_code)
        if code_id is None:
            raise ValueError(f"no NetSuite tax code {line.tax_code}")
        entry["taxCode"] = _ref(code_id)
        if invoiced and line.tax_rate_bps is not None:
            entry["taxRate1"] = str(Decimal(line.tax_rate_bps).scaleb(-2))
        if invoiced and line.tax_amount is not None:
            entry["tax1Amt"] = _decimal(line.tax_amount, currency)
    return entry


def from_sales_order_create(
    order: SalesOrderCreate, directory: Directory, tax_codes: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A sales order body; every line must carry its NetSuite `item_id` (and the internal
    id of its tax code in `tax_codes`, when it has one). Its lines are pre-tax: the tax is
    on the invoices."""
    lines = [item_line(line, order.currency, tax_codes) for line in order.lines]
    body: dict[str, Any] = {
        "entity": _ref(order.customer_id),
        "subsidiary": _ref(directory.subsidiary_id(order.legal_entity)),
        "currency": _ref(directory.currency_id(order.currency)),
        "tranDate": order.order_date.isoformat(),
        "memo": order.memo,
        "otherRefNum": order.deal_id,
        "item": {"items": lines},
    }
    return {key: value for key, value in body.items() if value is not None}


# ---------------------------------------------------------------------------- billing


def _invoice_line(record_id: str, index: int, line: ItemLine, currency: str) -> InvoiceLine:
    rate = line.rate if line.rate is not None else None
    return InvoiceLine(
        id=f"{record_id}:{line.line or index + 1}",
        description=line.description,
        quantity=_whole(line.quantity),
        unit_amount=_minor(rate, currency) if rate is not None else None,
        amount=_minor(line.amount, currency),
        product_id=line.item.id,
        product_code=line.item.ref_name,
        tax_rate_bps=int(line.tax_rate1 * 100) if line.tax_rate1 is not None else None,
        tax_amount=_minor(line.tax1_amt, currency) if line.tax1_amt is not None else None,
        tax_code=line.tax_code.ref_name if line.tax_code else None,
    )


def _invoice_status(record: InvoiceRecord, remaining: int) -> InvoiceStatus:
    status = record.status
    text = ((status.ref_name or status.id) if isinstance(status, Ref) else (status or "")).lower()
    if "void" in text:
        return "void"
    if "paid" in text or remaining <= 0:
        return "paid"
    return "open"


def to_invoice(record: InvoiceRecord, directory: Directory) -> Invoice:
    currency = directory.currency_code(record.currency)
    total = _minor(record.total, currency)
    remaining = _minor(record.amount_remaining, currency) if record.amount_remaining is not None \
        else total
    lines = record.item.items if record.item else []
    return Invoice(
        id=record.id,
        customer_id=record.entity.id,
        number=record.tran_id,
        status=_invoice_status(record, remaining),
        currency=currency,
        lines=[_invoice_line(record.id, i, line, currency) for i, line in enumerate(lines)],
        subtotal=_minor(record.subtotal, currency) if record.subtotal is not None else total,
        tax=_minor(record.tax_total, currency) if record.tax_total is not None else 0,
        total=total,
        amount_due=total,
        amount_paid=total - remaining,
        amount_remaining=remaining,
        due_date=record.due_date,
        issued_at=_midnight(record.tran_date),
        legal_entity=directory.entity_code(record.subsidiary),
        sales_order_id=record.created_from.id if record.created_from else None,
        external_id=record.external_id,
        tax_note=record.tax_note,
        refs=_refs(record.id),
    )


def to_credit_memo(record: CreditMemoRecord, directory: Directory) -> CreditMemo:
    currency = directory.currency_code(record.currency)
    return CreditMemo(
        id=record.id,
        number=record.tran_id,
        customer_id=record.entity.id,
        invoice_id=record.created_from.id if record.created_from else None,
        legal_entity=directory.entity_code(record.subsidiary),
        currency=currency,
        amount=_minor(record.total, currency),
        memo=record.memo,
        created_on=record.tran_date,
        external_id=record.external_id,
        refs=_refs(record.id),
    )


def from_credit_memo_create(
    memo: CreditMemoCreate, directory: Directory, *, item_id: str
) -> dict[str, Any]:
    """A credit memo of one line of `item_id` for the whole amount."""
    line: dict[str, Any] = {
        "item": _ref(item_id),
        "quantity": 1,
        "rate": _decimal(memo.amount, memo.currency),
    }
    if memo.memo:
        line["description"] = memo.memo
    body: dict[str, Any] = {
        "entity": _ref(memo.customer_id),
        "subsidiary": _ref(directory.subsidiary_id(memo.legal_entity)),
        "currency": _ref(directory.currency_id(memo.currency)),
        "memo": memo.memo,
        "item": {"items": [line]},
    }
    if memo.invoice_id:
        body["createdFrom"] = _ref(memo.invoice_id)
    return {key: value for key, value in body.items() if value is not None}


def to_payment(record: CustomerPaymentRecord, directory: Directory) -> Payment:
    currency = directory.currency_code(record.currency)
    applied = [line for line in (record.apply.items if record.apply else []) if line.apply]
    return Payment(
        id=record.id,
        invoice_id=applied[0].doc.id if applied else None,
        customer_id=record.customer.id,
        amount=_minor(record.payment, currency),
        currency=currency,
        status="succeeded",
        received_at=_midnight(record.tran_date),
        legal_entity=directory.entity_code(record.subsidiary),
        refs=_refs(record.id),
    )


def from_payment(
    payment: Payment, directory: Directory, *, invoice_open: int | None = None
) -> dict[str, Any]:
    """A customer payment applied to `payment.invoice_id`: the whole amount, or at most
    `invoice_open` (what the invoice still has open to it). NetSuite refuses to apply more than
    an invoice has remaining, so the rest stays on the payment as unapplied customer credit;
    with nothing open the whole payment does."""
    amount = _decimal(payment.amount, payment.currency)
    applied = amount if invoice_open is None else min(
        amount, _decimal(max(invoice_open, 0), payment.currency)
    )
    body: dict[str, Any] = {
        "customer": _ref(payment.customer_id),
        "subsidiary": _ref(directory.subsidiary_id(payment.legal_entity)),
        "currency": _ref(directory.currency_id(payment.currency)),
        "payment": amount,
    }
    if payment.received_at is not None:
        body["tranDate"] = payment.received_at.date().isoformat()
    if payment.invoice_id and applied > 0:
        body["apply"] = {"items": [{"doc": _ref(payment.invoice_id), "apply": True,
                                    "amount": applied}]}
    return body


# --------------------------------------------------------------------------- journals


def to_journal_entry(record: JournalEntryRecord, directory: Directory) -> JournalEntry:
    currency = directory.currency_code(record.currency)
    lines = [
        JournalLine(
            account=line.account.id,
            debit=_minor(line.debit, currency),
            credit=_minor(line.credit, currency),
            memo=line.memo,
        )
        for line in (record.line.items if record.line else [])
    ]
    return JournalEntry(
        id=record.id,
        number=record.tran_id,
        legal_entity=directory.entity_code(record.subsidiary),
        currency=currency,
        date=record.tran_date,
        memo=record.memo,
        lines=lines,
        external_id=record.external_id,
        refs=_refs(record.id),
    )


def from_journal_entry_create(entry: JournalEntryCreate, directory: Directory) -> dict[str, Any]:
    lines = []
    for line in entry.lines:
        item: dict[str, Any] = {"account": _ref(line.account)}
        if line.debit:
            item["debit"] = _decimal(line.debit, entry.currency)
        if line.credit:
            item["credit"] = _decimal(line.credit, entry.currency)
        if line.memo is not None:
            item["memo"] = line.memo
        lines.append(item)
    body: dict[str, Any] = {
        "subsidiary": _ref(directory.subsidiary_id(entry.legal_entity)),
        "currency": _ref(directory.currency_id(entry.currency)),
        "tranDate": entry.date.isoformat(),
        "memo": entry.memo,
        "line": {"items": lines},
    }
    return {key: value for key, value in body.items() if value is not None}


# -------------------------------------------------------------------------- approvals


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _time_text(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def to_approval_task(record: ApprovalRecord, directory: Directory) -> ApprovalTask:
    status = _select_id(record.status) or "pending"
    currency = directory.currency_code(record.currency) if record.currency else None
    requested = _parse_time(record.requested_at) or record.created
    return ApprovalTask(
        id=record.id,
        kind=record.kind,
        subject=record.subject,
        status=status if status in _APPROVAL_STATUSES else "pending",  # type: ignore[arg-type]
        amount=_minor(record.amount, currency) if currency and record.amount is not None
        else None,
        currency=currency,
        requested_at=requested or dt.datetime.now(dt.UTC),
        requested_by=record.requested_by,
        decided_at=_parse_time(record.decided_at),
        decided_by=record.decided_by,
        reason=record.reason,
        flow_id=record.flow_id,
        legal_entity=directory.entity_code(record.subsidiary) if record.subsidiary else None,
        refs=_refs(record.id),
    )


def from_approval_task(task: ApprovalTask, directory: Directory) -> dict[str, Any]:
    """The custom record body for a task (its id and refs are NetSuite's business)."""
    body: dict[str, Any] = {
        "name": task.subject[:80],
        "custrecord_kind": task.kind,
        "custrecord_subject": task.subject,
        "custrecord_status": task.status,
        "custrecord_requested_at": _time_text(task.requested_at),
        "custrecord_requested_by": task.requested_by,
        "custrecord_decided_at": _time_text(task.decided_at),
        "custrecord_decided_by": task.decided_by,
        "custrecord_reason": task.reason,
        "custrecord_flow_id": task.flow_id,
    }
    if task.amount is not None and task.currency is not None:
        body["custrecord_amount"] = _decimal(task.amount, task.currency)
    if task.currency is not None:
        body["custrecord_currency"] = _ref(directory.currency_id(task.currency))
    if task.legal_entity is not None:
        body["subsidiary"] = _ref(directory.subsidiary_id(task.legal_entity))
    return {key: value for key, value in body.items() if value is not None}
