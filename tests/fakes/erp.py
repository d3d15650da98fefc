"""`FakeErp`: an in-memory `ErpPort` that books, computes and refuses as NetSuite does.

Records are upserted by external id (NetSuite's idempotency): a repeat with the same external id
lands on the same record, updated with what was sent, and creates nothing. Amounts follow the
NetSuite emulator and mapping: a line's amount is quantity x rate, a transaction's total the sum
of its lines plus their tax: a line may name a tax code (the sandbox's, `demo_data.TAX_CODES`);
sales orders keep the code only, an invoice's line carries its rate (given, else the code's) and
its tax (given, else amount x rate rounded half up); an invoice's amount remaining is its total
less the credit memos created from it and the payments applied to it, in the order they were
booked, and it reads `paid` once nothing remains. Errors are those `NetSuiteClient` raises: an
unknown id is `UpstreamNotFound`, an id that is not a number or a reference NetSuite refuses is
`UpstreamInvalid` (with the field's path), a legal entity, currency or term NetSuite has no id
for is `InvalidRequest` (the client refuses it before calling).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import msgspec

from contracts.errors import (
    FieldError,
    InvalidRequest,
    UpstreamInvalid,
    UpstreamNotFound,
)
from contracts.money import Money
from contracts.v1 import (
    ApprovalDecision,
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
    Page,
    Payment,
    PaymentStatus,
    Product,
    SalesOrder,
    SalesOrderCreate,
    SalesOrderLine,
)
from sandbox.demo_data import TAX_CODES
from system_apis.erp.port import ErpChanges, ReceivablesBalance
from tests.fakes._base import FakePort, operation

__all__ = ["DEFAULT_LEGAL_ENTITIES", "DEFAULT_TERMS", "FakeErp"]

R = TypeVar("R")
S = TypeVar("S", bound=msgspec.Struct)

VENDOR = "netsuite"
DEFAULT_LEGAL_ENTITIES: tuple[LegalEntity, ...] = (
    LegalEntity(id="1", code="US01", name="Northwind Cloud Inc.", country="US", currency="USD",
                refs={VENDOR: "1"}),
    LegalEntity(id="2", code="DE01", name="Northwind Cloud GmbH", country="DE", currency="EUR",
                refs={VENDOR: "2"}),
)
"""The sandbox account's subsidiaries; each books in its own currency only."""
DEFAULT_TERMS: tuple[int, ...] = (15, 30, 60, 0, 14, 45)
"""Days of the payment terms the sandbox account defines."""
DEFAULT_DUE_DAYS = 30
"""NetSuite's due date for a customer without terms."""
_COLLECTIONS_FLAG = "in_collections"
APPROVAL = "customrecord_erpgw_approval"


@dataclass
class _Customer:
    id: str
    external_id: str
    legal_name: str
    legal_entity: str
    currency: str
    email: str | None = None
    phone: str | None = None
    website: str | None = None
    tax_id: str | None = None
    payment_terms_days: int | None = None
    payment_status: PaymentStatus | None = None
    credit_hold: bool = False
    updated_at: dt.datetime | None = None


@dataclass
class _Item:
    id: str
    code: str
    name: str
    description: str | None
    billing_interval: str
    active: bool
    prices: dict[str, int] = field(default_factory=dict)


@dataclass
class _Line:
    item_id: str
    quantity: int
    rate: int
    description: str | None
    tax_code: str | None = None
    tax_rate_bps: int | None = None
    tax_amount: int | None = None

    @property
    def amount(self) -> int:
        return self.quantity * self.rate


@dataclass
class _Order:
    id: str
    number: str
    external_id: str
    customer_id: str
    legal_entity: str
    currency: str
    order_date: dt.date
    lines: list[_Line]
    deal_id: str | None
    memo: str | None


@dataclass
class _Invoice:
    id: str
    number: str
    external_id: str
    customer_id: str
    legal_entity: str
    currency: str
    sales_order_id: str
    lines: list[_Line]
    tran_date: dt.date
    due_date: dt.date
    memo: str | None
    collections_status: str | None = None
    tax_note: str | None = None


@dataclass
class _Memo:
    id: str
    number: str
    external_id: str
    customer_id: str
    invoice_id: str | None
    legal_entity: str
    currency: str
    amount: int
    memo: str | None
    created_on: dt.date


@dataclass
class _Payment:
    id: str
    external_id: str
    customer_id: str
    invoice_id: str | None
    legal_entity: str
    currency: str
    amount: int
    applied: int
    tran_date: dt.date


class FakeErp(FakePort):
    """NetSuite in memory.

    Readable by tests (contracts, as a client would read them back):
        customers, products, sales_orders, invoices, credit_memos, payments, journal_entries,
        approval_tasks  -- dicts by NetSuite internal id
        credit_holds, collections_flags  -- what `set_customer_collections` and
        `mark_invoice_for_collections` wrote that the contracts do not carry
        calls, writes  -- see `FakePort`
    """

    vendor = VENDOR

    def __init__(
        self,
        *,
        legal_entities: Sequence[LegalEntity] = DEFAULT_LEGAL_ENTITIES,
        terms: Iterable[int] = DEFAULT_TERMS,
        credit_item_id: str | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self._entities = {entity.code: entity for entity in legal_entities}
        self._currencies = {entity.currency for entity in legal_entities}
        self._terms = tuple(terms)
        self._credit_item_id = credit_item_id
        self._customers: dict[str, _Customer] = {}
        self._items: dict[str, _Item] = {}
        self._orders: dict[str, _Order] = {}
        self._invoices: dict[str, _Invoice] = {}
        self._memos: dict[str, _Memo] = {}
        self._payments: dict[str, _Payment] = {}
        self.journal_entries: dict[str, JournalEntry] = {}
        self.approval_tasks: dict[str, ApprovalTask] = {}
        self._eids: dict[str, dict[str, str]] = {}
        self._ids = {"customer": 1000, "item": 200, "transaction": 5000, "approval": 0}
        self._tran_numbers: dict[str, int] = {}
        self.tax_codes: dict[str, int] = {code.code: code.rate_bps for code in TAX_CODES}
        """The salesTaxItem records by code (externalId): their rate in basis points."""

    # ------------------------------------------------------------------ seeding (not recorded)

    def seed_product(
        self,
        code: str,
        *,
        name: str | None = None,
        billing_interval: str = "month",
        prices: Mapping[str, int] | None = None,
        item_id: str | None = None,
    ) -> Product:
        """An item as the account already has it (e.g. the demo catalog), keyed by its code."""
        rid = item_id or self._new_id("item")
        self._items[rid] = _Item(id=rid, code=code, name=name or code, description=name,
                                 billing_interval=billing_interval, active=True,
                                 prices=dict(prices or {}))
        self._eids.setdefault("item", {})[code] = rid
        return self._product(self._items[rid])

    # ------------------------------------------------------------------ readable state

    @property
    def customers(self) -> dict[str, Customer]:
        return {rid: self._customer(record) for rid, record in self._customers.items()}

    @property
    def products(self) -> dict[str, Product]:
        return {rid: self._product(item) for rid, item in self._items.items()}

    @property
    def sales_orders(self) -> dict[str, SalesOrder]:
        return {rid: self._sales_order(order) for rid, order in self._orders.items()}

    @property
    def invoices(self) -> dict[str, Invoice]:
        return {rid: self._invoice(record) for rid, record in self._invoices.items()}

    @property
    def credit_memos(self) -> dict[str, CreditMemo]:
        return {rid: self._credit_memo(memo) for rid, memo in self._memos.items()}

    @property
    def payments(self) -> dict[str, Payment]:
        return {rid: self._payment(payment) for rid, payment in self._payments.items()}

    @property
    def credit_holds(self) -> dict[str, bool]:
        return {rid: record.credit_hold for rid, record in self._customers.items()}

    @property
    def collections_flags(self) -> dict[str, str | None]:
        return {rid: record.collections_status for rid, record in self._invoices.items()}

    # ------------------------------------------------------------------ legal entities

    @operation
    async def list_legal_entities(self) -> list[LegalEntity]:
        return sorted(self._entities.values(), key=lambda entity: int(entity.id))

    # ------------------------------------------------------------------ customers

    @operation
    async def get_customer(self, customer_id: str) -> Customer:
        return self._customer(self._get(self._customers, customer_id, "customer"))

    @operation
    async def find_customer(self, *, external_id: str) -> Customer | None:
        rid = self._eids.get("customer", {}).get(external_id)
        return None if rid is None else self._customer(self._customers[rid])

    @operation
    async def upsert_customer(self, customer: CustomerCreate, *, external_id: str) -> Customer:
        self._entity(customer.legal_entity)
        self._currency_enabled(customer.currency)
        if customer.payment_terms_days is not None and \
                customer.payment_terms_days not in self._terms:
            raise InvalidRequest(f"no NetSuite payment term of {customer.payment_terms_days} days")
        self._currency_allowed(customer.legal_entity, customer.currency)
        rid = self._eids.get("customer", {}).get(external_id)
        sent: dict[str, Any] = {
                "legal_name": customer.legal_name, "legal_entity": customer.legal_entity,
                "currency": customer.currency, "email": customer.email,
                "phone": customer.phone, "website": customer.website,
                "tax_id": customer.tax_id, "payment_terms_days": customer.payment_terms_days}
        # NetSuite's upsert writes the fields sent; the client sends no null, so a field the
        # customer lacks keeps its earlier value.
        given = {name: value for name, value in sent.items() if value is not None}
        if rid is None:
            rid = self._new_id("customer")
            fresh = _Customer(id=rid, external_id=external_id, legal_name=customer.legal_name,
                              legal_entity=customer.legal_entity, currency=customer.currency,
                              updated_at=self.now())
            self._customers[rid] = replace(fresh, **given)
            self._eids.setdefault("customer", {})[external_id] = rid
            self._wrote("upsert_customer", external_id)
        else:
            record = self._customers[rid]
            updated = replace(record, **given)
            if updated != record:
                self._customers[rid] = replace(updated, updated_at=self.now())
                self._wrote("upsert_customer", external_id)
        return self._customer(self._customers[rid])

    @operation
    async def set_customer_collections(
        self,
        customer_id: str,
        *,
        payment_status: PaymentStatus | None,
        credit_hold: bool | None = None,
    ) -> Customer:
        record = self._get(self._customers, customer_id, "customer")
        record.payment_status = payment_status
        if credit_hold is not None:
            record.credit_hold = credit_hold
        record.updated_at = self.now()
        self._wrote("set_customer_collections", customer_id)
        return self._customer(record)

    @operation
    async def list_customers(
        self, *, legal_entity: str | None = None, cursor: str | None = None, limit: int = 50
    ) -> Page[Customer]:
        if legal_entity is not None and legal_entity not in self._entities:
            return Page(data=[])
        found = [self._customer(record) for record in self._by_id(self._customers)
                 if legal_entity is None or record.legal_entity == legal_entity]
        return self._page(found, cursor, limit)

    @operation
    async def changed_since(self, since: dt.datetime) -> ErpChanges:
        """The records written at or after `since` (by external id); a payment or credit
        memo marks the invoice it settles as changed, as NetSuite stamps it modified."""
        customers: set[str] = set()
        invoices: set[str] = set()
        memos: set[str] = set()
        for method, key in self._writes_since(since):
            if method in ("upsert_customer", "set_customer_collections"):
                customers.add(self._eids["customer"].get(key, key))
            elif method in ("upsert_invoice", "mark_invoice_for_collections"):
                invoice = self._invoices[self._eids["invoice"].get(key, key)]
                invoices.add(invoice.id)
                customers.add(invoice.customer_id)
            elif method == "upsert_credit_memo":
                memo = self._memos[self._eids["creditMemo"][key]]
                memos.add(memo.id)
                customers.add(memo.customer_id)
                if memo.invoice_id is not None:
                    invoices.add(memo.invoice_id)
            elif method == "upsert_customer_payment":
                payment = self._payments[self._eids["customerPayment"][key]]
                customers.add(payment.customer_id)
                if payment.invoice_id is not None:
                    invoices.add(payment.invoice_id)
        return ErpChanges(customers=sorted(customers), invoices=sorted(invoices),
                          credit_memos=sorted(memos))

    @operation
    async def receivables_balance(self, customer_id: str) -> ReceivablesBalance:
        record = self._get(self._customers, customer_id, "customer")
        today = self._today()
        balance = overdue = 0
        for invoice in self._invoices.values():
            if invoice.customer_id == record.id:
                remaining = self._remaining(invoice.id)
                balance += remaining
                if invoice.due_date < today:
                    overdue += remaining
        for memo in self._memos.values():
            if memo.customer_id == record.id:
                balance -= memo.amount - self._memo_applied(memo.id)
        for payment in self._payments.values():
            if payment.customer_id == record.id:
                balance -= payment.amount - payment.applied
        return ReceivablesBalance(
            customer_id=record.id,
            balance=Money(amount=balance, currency=record.currency),
            overdue=Money(amount=overdue, currency=record.currency),
        )

    # ------------------------------------------------------------------ items

    @operation
    async def list_products(
        self, *, cursor: str | None = None, limit: int = 50
    ) -> Page[Product]:
        return self._page([self._product(item) for item in self._by_id(self._items)],
                          cursor, limit)

    @operation
    async def find_product(self, code: str) -> Product | None:
        item = self._item_by_code(code)
        return None if item is None else self._product(item)

    @operation
    async def upsert_product(
        self, product: Product, *, prices: Mapping[str, int] | None = None
    ) -> Product:
        for currency in prices or {}:
            self._currency_enabled(currency)
        rid = self._eids.get("item", {}).get(product.code)
        if rid is None:
            rid = self._new_id("item")
            self._items[rid] = _Item(id=rid, code=product.code, name=product.name,
                                     description=product.description,
                                     billing_interval=product.billing_interval,
                                     active=product.active, prices=dict(prices or {}))
            self._eids.setdefault("item", {})[product.code] = rid
            self._wrote("upsert_product", product.code)
        else:
            item = self._items[rid]
            updated = replace(
                item, name=product.name, active=product.active,
                billing_interval=product.billing_interval,
                description=product.description if product.description is not None
                else item.description,
                prices=dict(prices) if prices else item.prices,
            )
            if updated != item:
                self._items[rid] = updated
                self._wrote("upsert_product", product.code)
        return self._product(self._items[rid])

    # ------------------------------------------------------------------ sales orders

    @operation
    async def upsert_sales_order(self, order: SalesOrderCreate) -> SalesOrder:
        item_ids = [self._line_item(line) for line in order.lines]
        self._entity(order.legal_entity)
        self._currency_enabled(order.currency)
        self._party(order.customer_id, order.legal_entity, order.currency, "entity")
        lines = []
        for index, (line, item_id) in enumerate(zip(order.lines, item_ids, strict=True)):
            item = self._items.get(item_id)
            if item is None:
                raise _invalid(f"item.items[{index}].item", item_id, "item")
            lines.append(_Line(item_id=item.id, quantity=line.quantity, rate=line.unit_amount,
                               description=line.description or item.name,
                               tax_code=self._tax_code(line.tax_code)))
        rid = self._eids.get("salesOrder", {}).get(order.external_id)
        if rid is None:
            rid = self._new_id("transaction")
            self._orders[rid] = _Order(
                id=rid, number=self._tran_number("SO"), external_id=order.external_id,
                customer_id=order.customer_id, legal_entity=order.legal_entity,
                currency=order.currency, order_date=order.order_date, lines=lines,
                deal_id=order.deal_id, memo=order.memo,
            )
            self._eids.setdefault("salesOrder", {})[order.external_id] = rid
            self._wrote("upsert_sales_order", order.external_id)
        else:
            current = self._orders[rid]
            updated = replace(
                current, customer_id=order.customer_id, legal_entity=order.legal_entity,
                currency=order.currency, order_date=order.order_date, lines=lines,
                deal_id=order.deal_id if order.deal_id is not None else current.deal_id,
                memo=order.memo if order.memo is not None else current.memo,
            )
            if updated != current:
                self._orders[rid] = updated
                self._wrote("upsert_sales_order", order.external_id)
        return self._sales_order(self._orders[rid])

    @operation
    async def get_sales_order(self, order_id: str) -> SalesOrder:
        return self._sales_order(self._get(self._orders, order_id, "salesOrder"))

    @operation
    async def list_sales_orders(
        self,
        *,
        number: str | None = None,
        customer_id: str | None = None,
        legal_entity: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        lines: bool = True,
        customer_ids: Sequence[str] | None = None,
    ) -> Page[SalesOrder]:
        if customer_id:
            _sql_id(customer_id)
        among = _among(customer_ids)
        if legal_entity and legal_entity not in self._entities:
            return Page(data=[])
        found = [
            self._sales_order(order) for order in self._by_id(self._orders)
            if (not number or order.number == number)
            and (not customer_id or order.customer_id == customer_id)
            and (among is None or order.customer_id in among)
            and (not legal_entity or order.legal_entity == legal_entity)
        ]
        if not lines:
            found = [msgspec.structs.replace(order, lines=[]) for order in found]
        return self._page(found, cursor, limit)

    # ------------------------------------------------------------------ invoices

    @operation
    async def upsert_invoice(
        self,
        *,
        sales_order_id: str,
        external_id: str,
        memo: str | None = None,
        lines: Sequence[SalesOrderLine] | None = None,
        tax_note: str | None = None,
    ) -> Invoice:
        order = self._get(self._orders, sales_order_id, "salesOrder")
        rid = self._eids.get("invoice", {}).get(external_id)
        if rid is None:
            customer = self._customers[order.customer_id]
            today = self._today()
            days = customer.payment_terms_days
            rid = self._new_id("transaction")
            self._invoices[rid] = _Invoice(
                id=rid, number=self._tran_number("INV"), external_id=external_id,
                customer_id=order.customer_id, legal_entity=order.legal_entity,
                currency=order.currency, sales_order_id=order.id,
                lines=[
                    self._invoiced(_Line(item_id=self._line_item(line), quantity=line.quantity,
                                         rate=line.unit_amount, description=line.description,
                                         tax_code=self._tax_code(line.tax_code),
                                         tax_rate_bps=line.tax_rate_bps,
                                         tax_amount=line.tax_amount))
                    for line in lines
                ] if lines else [self._invoiced(replace(line)) for line in order.lines],
                tran_date=today,
                due_date=today + dt.timedelta(days=DEFAULT_DUE_DAYS if days is None else days),
                memo=memo, tax_note=tax_note,
            )
            self._eids.setdefault("invoice", {})[external_id] = rid
            self._wrote("upsert_invoice", external_id)
        else:
            current = self._invoices[rid]
            if current.customer_id != order.customer_id:
                raise _invalid("createdFrom", order.id, "createdFrom",
                               "The source transaction belongs to another customer.")
            updated = replace(current, sales_order_id=order.id,
                              memo=memo if memo is not None else current.memo,
                              tax_note=tax_note if tax_note is not None else current.tax_note)
            if updated != current:
                self._invoices[rid] = updated
                self._wrote("upsert_invoice", external_id)
        return self._invoice(self._invoices[rid])

    @operation
    async def get_invoice(self, invoice_id: str) -> Invoice:
        return self._invoice(self._get(self._invoices, invoice_id, "invoice"))

    @operation
    async def find_invoice(self, *, external_id: str) -> Invoice | None:
        rid = self._eids.get("invoice", {}).get(external_id)
        return self._invoice(self._invoices[rid]) if rid is not None else None

    @operation
    async def list_invoices(
        self,
        *,
        customer_id: str | None = None,
        status: InvoiceStatus | None = None,
        cursor: str | None = None,
        limit: int = 50,
        lines: bool = True,
        customer_ids: Sequence[str] | None = None,
    ) -> Page[Invoice]:
        if customer_id:
            _sql_id(customer_id)
        among = _among(customer_ids)
        if status is not None and status not in ("open", "paid"):
            return Page(data=[])
        found = [
            self._invoice(record) for record in self._by_id(self._invoices)
            if (not customer_id or record.customer_id == customer_id)
            and (among is None or record.customer_id in among)
        ]
        found = [invoice for invoice in found if status is None or invoice.status == status]
        if not lines:
            found = [msgspec.structs.replace(invoice, lines=[]) for invoice in found]
        return self._page(found, cursor, limit)

    @operation
    async def mark_invoice_for_collections(
        self, invoice_id: str, *, status: str | None = _COLLECTIONS_FLAG
    ) -> Invoice:
        record = self._get(self._invoices, invoice_id, "invoice")
        record.collections_status = status
        self._wrote("mark_invoice_for_collections", invoice_id)
        return self._invoice(record)

    # ------------------------------------------------------------------ credit memos

    @operation
    async def upsert_credit_memo(self, memo: CreditMemoCreate) -> CreditMemo:
        item_id = self._credit_item_id
        if item_id is None and memo.invoice_id:
            invoice = self._get(self._invoices, memo.invoice_id, "invoice")
            item_id = invoice.lines[0].item_id if invoice.lines else None
        if item_id is None:
            raise InvalidRequest("a credit memo needs an invoice or a configured credit item")
        self._entity(memo.legal_entity)
        self._currency_enabled(memo.currency)
        self._party(memo.customer_id, memo.legal_entity, memo.currency, "entity")
        if memo.invoice_id is not None:
            source = self._invoices.get(memo.invoice_id)
            if source is None:
                raise _invalid("createdFrom", memo.invoice_id, "createdFrom")
            if source.customer_id != memo.customer_id:
                raise _invalid("createdFrom", memo.invoice_id, "createdFrom",
                               "The source transaction belongs to another customer.")
        if item_id not in self._items:
            raise _invalid("item.items[0].item", item_id, "item")
        rid = self._eids.get("creditMemo", {}).get(memo.external_id)
        if rid is None:
            rid = self._new_id("transaction")
            self._memos[rid] = _Memo(
                id=rid, number=self._tran_number("CM"), external_id=memo.external_id,
                customer_id=memo.customer_id, invoice_id=memo.invoice_id,
                legal_entity=memo.legal_entity, currency=memo.currency, amount=memo.amount,
                memo=memo.memo, created_on=self._today(),
            )
            self._eids.setdefault("creditMemo", {})[memo.external_id] = rid
            self._wrote("upsert_credit_memo", memo.external_id)
        else:
            current = self._memos[rid]
            updated = replace(
                current, customer_id=memo.customer_id, legal_entity=memo.legal_entity,
                currency=memo.currency, amount=memo.amount,
                invoice_id=memo.invoice_id if memo.invoice_id else current.invoice_id,
                memo=memo.memo if memo.memo is not None else current.memo,
            )
            if updated != current:
                self._memos[rid] = updated
                self._wrote("upsert_credit_memo", memo.external_id)
        return self._credit_memo(self._memos[rid])

    @operation
    async def list_credit_memos(
        self,
        *,
        customer_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        customer_ids: Sequence[str] | None = None,
    ) -> Page[CreditMemo]:
        if customer_id:
            _sql_id(customer_id)
        among = _among(customer_ids)
        found = [self._credit_memo(memo) for memo in self._by_id(self._memos)
                 if (not customer_id or memo.customer_id == customer_id)
                 and (among is None or memo.customer_id in among)]
        return self._page(found, cursor, limit)

    # ------------------------------------------------------------------ payments and journals

    @operation
    async def upsert_customer_payment(self, payment: Payment, *, external_id: str) -> Payment:
        self._entity(payment.legal_entity)
        self._currency_enabled(payment.currency)
        self._party(payment.customer_id, payment.legal_entity, payment.currency, "customer")
        if payment.amount <= 0:
            raise _invalid("payment", payment.amount, "payment")
        rid = self._eids.get("customerPayment", {}).get(external_id)
        applied = 0
        if payment.invoice_id:
            path = "apply.items[0].doc"
            invoice = self._invoices.get(payment.invoice_id)
            if invoice is None or invoice.customer_id != payment.customer_id:
                raise _invalid(path, payment.invoice_id, "doc")
            # As the NetSuite client posts it: at most what the invoice has open, the rest
            # left on the payment as unapplied customer credit.
            applied = max(min(payment.amount, self._remaining(invoice.id, exclude=rid)), 0)
        tran_date = payment.received_at.date() if payment.received_at else self._today()
        record = _Payment(id=rid or "", external_id=external_id,
                          customer_id=payment.customer_id,
                          invoice_id=payment.invoice_id if applied else None,
                          legal_entity=payment.legal_entity, currency=payment.currency,
                          amount=payment.amount, applied=applied, tran_date=tran_date)
        if rid is None:
            rid = self._new_id("transaction")
            self._tran_number("PYMT")
            self._payments[rid] = replace(record, id=rid)
            self._eids.setdefault("customerPayment", {})[external_id] = rid
            self._wrote("upsert_customer_payment", external_id)
        elif self._payments[rid] != record:
            self._payments[rid] = record
            self._wrote("upsert_customer_payment", external_id)
        return self._payment(self._payments[rid])

    @operation
    async def upsert_journal_entry(self, entry: JournalEntryCreate) -> JournalEntry:
        self._entity(entry.legal_entity)
        self._currency_enabled(entry.currency)
        self._currency_allowed(entry.legal_entity, entry.currency)
        rid = self._eids.get("journalEntry", {}).get(entry.external_id)
        number = self.journal_entries[rid].number if rid else None
        record = JournalEntry(
            id=rid or "", number=number, legal_entity=entry.legal_entity,
            currency=entry.currency, date=entry.date, memo=entry.memo,
            lines=[JournalLine(account=line.account, debit=line.debit, credit=line.credit,
                               memo=line.memo) for line in entry.lines],
            external_id=entry.external_id, refs={VENDOR: rid or ""},
        )
        if rid is None:
            rid = self._new_id("transaction")
            record = replace_struct(record, id=rid, number=self._tran_number("JE"),
                                    refs={VENDOR: rid})
            self._eids.setdefault("journalEntry", {})[entry.external_id] = rid
            self.journal_entries[rid] = record
            self._wrote("upsert_journal_entry", entry.external_id)
        elif self.journal_entries[rid] != record:
            self.journal_entries[rid] = record
            self._wrote("upsert_journal_entry", entry.external_id)
        return self.journal_entries[rid]

    # ------------------------------------------------------------------ approvals

    @operation
    async def upsert_approval_task(
        self, task: ApprovalTask, *, external_id: str
    ) -> ApprovalTask:
        if task.currency is not None:
            self._currency_enabled(task.currency)
        if task.legal_entity is not None:
            self._entity(task.legal_entity)
        rid = self._eids.get("approval", {}).get(external_id)
        current = self.approval_tasks.get(rid) if rid else None
        merged = ApprovalTask(
            id=rid or "", kind=task.kind, subject=task.subject, status=task.status,
            amount=task.amount if task.currency is not None else (
                current.amount if current else None),
            currency=task.currency or (current.currency if current else None),
            requested_at=task.requested_at,
            requested_by=task.requested_by or (current.requested_by if current else None),
            decided_at=task.decided_at or (current.decided_at if current else None),
            decided_by=task.decided_by or (current.decided_by if current else None),
            reason=task.reason or (current.reason if current else None),
            flow_id=task.flow_id or (current.flow_id if current else None),
            legal_entity=task.legal_entity or (current.legal_entity if current else None),
            refs={VENDOR: rid or ""},
        )
        if rid is None:
            rid = self._new_id("approval")
            self._eids.setdefault("approval", {})[external_id] = rid
            self.approval_tasks[rid] = replace_struct(merged, id=rid, refs={VENDOR: rid})
            self._wrote("upsert_approval_task", external_id)
        elif merged != current:
            self.approval_tasks[rid] = merged
            self._wrote("upsert_approval_task", external_id)
        return self.approval_tasks[rid]

    @operation
    async def get_approval_task(self, task_id: str) -> ApprovalTask:
        return self._get(self.approval_tasks, task_id, APPROVAL)

    @operation
    async def decide_approval_task(
        self, task_id: str, decision: ApprovalDecision, *, decided_by: str
    ) -> ApprovalTask:
        return self._set_status(task_id, decision.decision, decided_by=decided_by,
                                reason=decision.reason, method="decide_approval_task")

    @operation
    async def set_approval_status(
        self,
        task_id: str,
        status: ApprovalStatus,
        *,
        decided_by: str | None = None,
        reason: str | None = None,
    ) -> ApprovalTask:
        return self._set_status(task_id, status, decided_by=decided_by, reason=reason,
                                method="set_approval_status")

    @operation
    async def list_approval_tasks(
        self,
        *,
        status: ApprovalStatus | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[ApprovalTask]:
        found = [task for task in self._by_id(self.approval_tasks)
                 if status is None or task.status == status]
        return self._page(found, cursor, limit)

    # ------------------------------------------------------------------ rules

    def _set_status(self, task_id: str, status: ApprovalStatus, *, decided_by: str | None,
                    reason: str | None, method: str) -> ApprovalTask:
        task = self._get(self.approval_tasks, task_id, APPROVAL)
        updated = replace_struct(
            task, status=status, decided_at=self.now(),
            decided_by=decided_by if decided_by is not None else task.decided_by,
            reason=reason if reason is not None else task.reason,
        )
        self.approval_tasks[task.id] = updated
        self._wrote(method, task.id)
        return updated

    def _new_id(self, group: str) -> str:
        self._ids[group] += 1
        return str(self._ids[group])

    def _tran_number(self, prefix: str) -> str:
        number = self._tran_numbers.get(prefix, 1000) + 1
        self._tran_numbers[prefix] = number
        return f"{prefix}{number}"

    def _today(self) -> dt.date:
        return self.now().astimezone(dt.UTC).date()

    def _get(self, records: Mapping[str, R], rid: str, rtype: str) -> R:
        if rid.startswith("eid:") and len(rid) > 4:
            # NetSuite addresses a record by its external id as `eid:<external id>`.
            rid = self._eids.get(rtype, {}).get(rid[4:], "0")
        if not rid.isdigit():
            raise UpstreamInvalid(
                f"NetSuite read {rtype} {rid}: 400 INVALID_ID Invalid record instance ID "
                f"'{rid}'.", vendor=VENDOR, status=400, code="INVALID_ID",
            )
        try:
            return records[rid]
        except KeyError:
            raise UpstreamNotFound(
                f"NetSuite read {rtype} {rid}: 404 NONEXISTENT_ID The record instance does not "
                "exist. Provide a valid record instance ID.",
                vendor=VENDOR, status=404, code="NONEXISTENT_ID",
            ) from None

    def _entity(self, code: str) -> LegalEntity:
        entity = self._entities.get(code)
        if entity is None:
            raise InvalidRequest(f"legal entity {code} is not a NetSuite subsidiary")
        return entity

    def _currency_enabled(self, currency: str) -> None:
        if currency not in self._currencies:
            raise InvalidRequest(f"currency {currency} is not enabled in the NetSuite account")

    def _currency_allowed(self, code: str, currency: str) -> None:
        entity = self._entity(code)
        if entity.currency != currency:
            raise UpstreamInvalid(
                f"NetSuite: 400 USER_ERROR Currency {currency} is not allowed for subsidiary "
                f"{entity.name}.", vendor=VENDOR, status=400, code="USER_ERROR",
                errors=[FieldError(pointer="currency", detail=f"Currency {currency} is not "
                                   f"allowed for subsidiary {entity.name}.")],
            )

    def _party(self, customer_id: str, legal_entity: str, currency: str, path: str) -> None:
        customer = self._customers.get(customer_id)
        if customer is None:
            raise _invalid(path, customer_id, path)
        if customer.legal_entity != legal_entity:
            raise _invalid("subsidiary", legal_entity, "subsidiary",
                           "The customer does not belong to the subsidiary of this transaction.")
        self._currency_allowed(legal_entity, currency)

    def _line_item(self, line: SalesOrderLine) -> str:
        """The item id of a line: its own, else the item of its product code."""
        if line.item_id is not None:
            return line.item_id
        if line.product_code is None:
            raise InvalidRequest("line None has no NetSuite item id")
        item = self._item_by_code(line.product_code)
        if item is None:
            raise InvalidRequest(f"no NetSuite item for product code {line.product_code}")
        return item.id

    def _tax_code(self, code: str | None) -> str | None:
        """A line's tax code, as the client resolves it (its salesTaxItem must exist)."""
        if code is not None and code not in self.tax_codes:
            raise UpstreamNotFound(
                f"NetSuite has no tax code {code} (salesTaxItem externalId); set it up as the "
                "company's tax table names it", vendor=VENDOR)
        return code

    def _invoiced(self, line: _Line) -> _Line:
        """An invoice line's tax: the rate given, else its code's; the tax given, else
        amount x rate rounded half up to the cent."""
        if line.tax_code is None:
            return line
        rate = line.tax_rate_bps if line.tax_rate_bps is not None \
            else self.tax_codes[line.tax_code]
        tax = line.tax_amount if line.tax_amount is not None \
            else _half_up(line.amount * rate, 10_000)
        return replace(line, tax_rate_bps=rate, tax_amount=tax)

    def _item_by_code(self, code: str) -> _Item | None:
        return next((item for item in self._by_id(self._items) if item.code == code), None)

    @staticmethod
    def _by_id(records: Mapping[str, R]) -> list[R]:
        return [records[key] for key in sorted(records, key=int)]

    def _settlements(self, invoice_id: str) -> list[tuple[str, int]]:
        """(record id, amount) credited or paid against one invoice, in booking order."""
        invoice = self._invoices[invoice_id]
        remaining = _total(invoice.lines)
        events: list[tuple[int, str, int]] = []
        for memo in self._memos.values():
            if memo.invoice_id == invoice_id:
                events.append((int(memo.id), "memo", memo.amount))
        for payment in self._payments.values():
            if payment.invoice_id == invoice_id:
                events.append((int(payment.id), "payment", payment.applied))
        settled = []
        for rid, kind, amount in sorted(events):
            if kind == "memo":
                amount = min(amount, max(remaining, 0))
            remaining -= amount
            settled.append((str(rid), amount))
        return settled

    def _remaining(self, invoice_id: str, *, exclude: str | None = None) -> int:
        invoice = self._invoices[invoice_id]
        applied = sum(amount for rid, amount in self._settlements(invoice_id) if rid != exclude)
        return _total(invoice.lines) - applied

    def _memo_applied(self, memo_id: str) -> int:
        memo = self._memos[memo_id]
        if memo.invoice_id is None or memo.invoice_id not in self._invoices:
            return 0
        return sum(amount for rid, amount in self._settlements(memo.invoice_id) if rid == memo_id)

    # ------------------------------------------------------------------ views

    def _customer(self, record: _Customer) -> Customer:
        return Customer(
            id=record.id, legal_name=record.legal_name, legal_entity=record.legal_entity,
            currency=record.currency, tax_id=record.tax_id, email=record.email,
            phone=record.phone, website=record.website,
            payment_terms_days=record.payment_terms_days, payment_status=record.payment_status,
            updated_at=record.updated_at, refs={VENDOR: record.id},
        )

    @staticmethod
    def _product(item: _Item) -> Product:
        interval = item.billing_interval if item.billing_interval in (
            "month", "year", "one_time") else "one_time"
        return Product(id=item.id, code=item.code, name=item.name or item.code,
                       description=item.description,
                       billing_interval=interval,  # type: ignore[arg-type]
                       active=item.active, refs={VENDOR: item.id})

    def _sales_order(self, order: _Order) -> SalesOrder:
        billed = any(invoice.sales_order_id == order.id for invoice in self._invoices.values())
        return SalesOrder(
            id=order.id, number=order.number, customer_id=order.customer_id,
            legal_entity=order.legal_entity, currency=order.currency,
            status="billed" if billed else "pending_fulfillment", order_date=order.order_date,
            lines=[
                SalesOrderLine(item_id=line.item_id, product_code=self._items[line.item_id].code,
                               description=line.description, quantity=line.quantity,
                               unit_amount=line.rate, amount=line.amount,
                               tax_code=line.tax_code)
                for line in order.lines
            ],
            total=_total(order.lines), external_id=order.external_id, deal_id=order.deal_id,
            memo=order.memo, refs={VENDOR: order.id},
        )

    def _invoice(self, record: _Invoice) -> Invoice:
        total = _total(record.lines)
        subtotal = sum(line.amount for line in record.lines)
        remaining = self._remaining(record.id)
        return Invoice(
            id=record.id, customer_id=record.customer_id, number=record.number,
            status="paid" if remaining <= 0 else "open", currency=record.currency,
            lines=[
                InvoiceLine(id=f"{record.id}:{index}", description=line.description,
                            quantity=line.quantity, unit_amount=line.rate, amount=line.amount,
                            product_id=line.item_id, product_code=self._items[line.item_id].code,
                            tax_rate_bps=line.tax_rate_bps, tax_amount=line.tax_amount,
                            tax_code=line.tax_code)
                for index, line in enumerate(record.lines, start=1)
            ],
            subtotal=subtotal, tax=total - subtotal, total=total, amount_due=total,
            amount_paid=total - remaining,
            amount_remaining=remaining, due_date=record.due_date,
            issued_at=dt.datetime.combine(record.tran_date, dt.time(), tzinfo=dt.UTC),
            legal_entity=record.legal_entity, sales_order_id=record.sales_order_id,
            external_id=record.external_id, tax_note=record.tax_note,
            refs={VENDOR: record.id},
        )

    @staticmethod
    def _credit_memo(memo: _Memo) -> CreditMemo:
        return CreditMemo(
            id=memo.id, number=memo.number, customer_id=memo.customer_id,
            invoice_id=memo.invoice_id, legal_entity=memo.legal_entity, currency=memo.currency,
            amount=memo.amount, memo=memo.memo, created_on=memo.created_on,
            external_id=memo.external_id, refs={VENDOR: memo.id},
        )

    @staticmethod
    def _payment(payment: _Payment) -> Payment:
        return Payment(
            id=payment.id, invoice_id=payment.invoice_id, customer_id=payment.customer_id,
            amount=payment.amount, currency=payment.currency, status="succeeded",
            received_at=dt.datetime.combine(payment.tran_date, dt.time(), tzinfo=dt.UTC),
            legal_entity=payment.legal_entity, refs={VENDOR: payment.id},
        )


def _total(lines: Iterable[_Line]) -> int:
    """What a transaction comes to: its lines and their tax (sales orders carry none)."""
    return sum(line.amount + (line.tax_amount or 0) for line in lines)


def _half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up (away from zero), in integers."""
    quotient, rest = divmod(abs(numerator), denominator)
    rounded = quotient + (1 if 2 * rest >= denominator else 0)
    return rounded if numerator >= 0 else -rounded


def _invalid(path: str, value: object, name: str, message: str | None = None) -> UpstreamInvalid:
    detail = message or ("Error while accessing resource: You have entered an Invalid Field "
                         f"Value {value} for the following field: {name}")
    code = "USER_ERROR" if message else "INVALID_CONTENT"
    return UpstreamInvalid(f"NetSuite: 400 {code} {detail}", vendor=VENDOR, status=400, code=code,
                           errors=[FieldError(pointer=path, detail=detail)])


def _among(customer_ids: Sequence[str] | None) -> set[str] | None:
    """The customers a list is limited to (each a NetSuite internal id), None: any."""
    if customer_ids is None:
        return None
    for customer_id in customer_ids:
        _sql_id(customer_id)
    return set(customer_ids)


def _sql_id(value: str) -> str:
    if not value.isdigit():
        raise InvalidRequest(f"{value!r} is not a NetSuite internal id")
    return value


def replace_struct(struct: S, **changes: object) -> S:
    return msgspec.structs.replace(struct, **changes)
