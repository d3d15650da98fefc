"""What the layers above need from the ERP (the financial system of record), in contracts.

The NetSuite client implements this structurally; process flows and routes depend on it only.
Every write that may be repeated (a retried flow step) carries the caller's external id, which
the ERP upserts by, so a repeat is the same record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec

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
    InvoiceStatus,
    JournalEntry,
    JournalEntryCreate,
    LegalEntity,
    Page,
    Payment,
    PaymentStatus,
    Product,
    SalesOrder,
    SalesOrderCreate,
    SalesOrderLine,
)

__all__ = ["ErpChanges", "ErpPort", "ReceivablesBalance"]


class ErpChanges(msgspec.Struct, frozen=True, kw_only=True):
    """What the ERP shows modified since a time (a deleted record shows nowhere)."""

    customers: list[str] = []
    """Customers whose record or transactions (orders, invoices, credit memos, payments)
    were modified."""
    invoices: list[str] = []
    credit_memos: list[str] = []


class ReceivablesBalance(msgspec.Struct, frozen=True, kw_only=True):
    """What a customer owes, in the customer's currency."""

    customer_id: str
    balance: Money
    overdue: Money


@runtime_checkable
class ErpPort(Protocol):
    """The ERP operations flows and routes call (runtime-checkable: Litestar validates the
    injected dependency against it)."""

    async def list_legal_entities(self) -> list[LegalEntity]: ...

    async def get_customer(self, customer_id: str) -> Customer: ...

    async def find_customer(self, *, external_id: str) -> Customer | None: ...

    async def upsert_customer(self, customer: CustomerCreate, *, external_id: str) -> Customer: ...

    async def set_customer_collections(
        self,
        customer_id: str,
        *,
        payment_status: PaymentStatus | None,
        credit_hold: bool | None = None,
    ) -> Customer: ...

    async def list_customers(
        self, *, legal_entity: str | None = None, cursor: str | None = None, limit: int = 50
    ) -> Page[Customer]: ...

    async def list_products(
        self, *, cursor: str | None = None, limit: int = 50
    ) -> Page[Product]: ...

    async def find_product(self, code: str) -> Product | None: ...

    async def upsert_product(
        self, product: Product, *, prices: Mapping[str, int] | None = None
    ) -> Product:
        """Create or update the item whose external id is the product code; `prices` maps
        ISO currency -> unit price in minor units."""
        ...

    async def upsert_sales_order(self, order: SalesOrderCreate) -> SalesOrder: ...

    async def get_sales_order(self, order_id: str) -> SalesOrder: ...

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
        """Sales orders by id; `lines=False` answers them with no lines (their totals
        intact), which an adapter may read in bulk. `customer_ids`: of any of these customers
        (one read for many)."""
        ...

    async def upsert_invoice(
        self,
        *,
        sales_order_id: str,
        external_id: str,
        memo: str | None = None,
        lines: Sequence[SalesOrderLine] | None = None,
        tax_note: str | None = None,
    ) -> Invoice:
        """Bill a sales order, upserted by `external_id`: with `lines` (each naming its ERP
        item, tax code and tax) the invoice carries those lines, as billed; without, the
        order's lines. `tax_note` is why no tax is charged, printed on the invoice."""
        ...

    async def get_invoice(self, invoice_id: str) -> Invoice: ...

    async def find_invoice(self, *, external_id: str) -> Invoice | None:
        """The invoice posted under `external_id` (a billing invoice's id), if any."""
        ...

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
        """Invoices by id; `lines=False` answers them with no lines (their totals and tax
        intact), which an adapter may read in bulk. `customer_ids`: of any of these customers
        (one read for many)."""
        ...

    async def mark_invoice_for_collections(
        self, invoice_id: str, *, status: str | None = "in_collections"
    ) -> Invoice: ...

    async def upsert_credit_memo(self, memo: CreditMemoCreate) -> CreditMemo: ...

    async def list_credit_memos(
        self,
        *,
        customer_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        customer_ids: Sequence[str] | None = None,
    ) -> Page[CreditMemo]:
        """Credit memos by id; `customer_ids`: of any of these customers."""
        ...

    async def upsert_customer_payment(self, payment: Payment, *, external_id: str) -> Payment: ...

    async def upsert_journal_entry(self, entry: JournalEntryCreate) -> JournalEntry: ...

    async def upsert_approval_task(
        self, task: ApprovalTask, *, external_id: str
    ) -> ApprovalTask: ...

    async def get_approval_task(self, task_id: str) -> ApprovalTask: ...

    async def decide_approval_task(
        self, task_id: str, decision: ApprovalDecision, *, decided_by: str
    ) -> ApprovalTask: ...

    async def set_approval_status(
        self,
        task_id: str,
        status: ApprovalStatus,
        *,
        decided_by: str | None = None,
        reason: str | None = None,
    ) -> ApprovalTask:
        """Move a task to any status (e.g. `expired` when nobody decided in time, or back to
        `pending` when the wait is reopened)."""
        ...

    async def list_approval_tasks(
        self,
        *,
        status: ApprovalStatus | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[ApprovalTask]: ...

    async def receivables_balance(self, customer_id: str) -> ReceivablesBalance: ...

    async def changed_since(self, since: datetime) -> ErpChanges:
        """Customers, invoices and credit memos modified at or after `since` (payments show
        as the invoices they settle)."""
        ...
