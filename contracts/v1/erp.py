"""ERP, the financial system of record: sales orders, credit memos, journals and approvals."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec

from contracts.v1.base import (
    CurrencyCode,
    Entity,
    InputStruct,
    LegalEntityCode,
    MinorUnits,
    Refs,
    TaxRateBps,
    UtcDateTime,
    ValueObject,
)

__all__ = [
    "ApprovalDecision",
    "ApprovalStatus",
    "ApprovalTask",
    "CreditMemo",
    "CreditMemoCreate",
    "JournalEntry",
    "JournalEntryCreate",
    "JournalLine",
    "SalesOrder",
    "SalesOrderCreate",
    "SalesOrderLine",
    "SalesOrderStatus",
]

SalesOrderStatus = Literal[
    "pending_approval",
    "pending_fulfillment",
    "pending_billing",
    "billed",
    "closed",
    "cancelled",
]
ApprovalStatus = Literal["pending", "approved", "rejected", "expired"]

_Quantity = Annotated[int, msgspec.Meta(ge=0)]
_NonNegative = Annotated[int, msgspec.Meta(ge=0, description="Minor units, zero or more.")]
_PositiveAmount = Annotated[int, msgspec.Meta(ge=1, description="Minor units, above zero.")]
_ExternalId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=255,
        description="The caller's idempotent key for the record (the ERP upserts by it).",
    ),
]


class SalesOrderLine(ValueObject, frozen=True, kw_only=True):
    """One item on a sales order; amounts are in the order's currency."""

    item_id: str | None = None
    """The ERP's item id."""
    product_code: str | None = None
    description: str | None = None
    quantity: _Quantity
    unit_amount: MinorUnits
    amount: MinorUnits
    tax_rate_bps: TaxRateBps | None = None
    tax_code: str | None = None
    """The company's tax code of the line (the ERP's tax code record by external id)."""
    tax_amount: MinorUnits | None = None
    """Invoices only: the line's tax as billing computed it; sales orders carry none."""


class SalesOrder(Entity, frozen=True, kw_only=True):
    """A booked order in the ERP, created from a won deal."""

    id: str
    number: str | None = None
    """The ERP's document number (e.g. SO-1042)."""
    customer_id: str
    legal_entity: LegalEntityCode
    currency: CurrencyCode
    status: SalesOrderStatus
    order_date: date
    lines: list[SalesOrderLine] = []
    total: MinorUnits
    external_id: str | None = None
    deal_id: str | None = None
    memo: str | None = None
    refs: Refs = {}


class SalesOrderCreate(InputStruct, frozen=True, kw_only=True):
    """A sales order to book; `external_id` makes a repeat of the same request a no-op."""

    customer_id: str
    legal_entity: LegalEntityCode
    currency: CurrencyCode
    order_date: date
    lines: Annotated[list[SalesOrderLine], msgspec.Meta(min_length=1)]
    external_id: _ExternalId
    deal_id: str | None = None
    memo: str | None = None


class CreditMemo(Entity, frozen=True, kw_only=True):
    """The ERP's record of a credit against an invoice."""

    id: str
    number: str | None = None
    customer_id: str
    invoice_id: str | None = None
    legal_entity: LegalEntityCode
    currency: CurrencyCode
    amount: MinorUnits
    memo: str | None = None
    created_on: date | None = None
    external_id: str | None = None
    refs: Refs = {}


class CreditMemoCreate(InputStruct, frozen=True, kw_only=True):
    """A credit memo to book in the ERP."""

    customer_id: str
    invoice_id: str | None = None
    legal_entity: LegalEntityCode
    currency: CurrencyCode
    amount: _PositiveAmount
    memo: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    external_id: _ExternalId


class JournalLine(ValueObject, frozen=True, kw_only=True):
    """One side of a journal posting; exactly one of `debit` and `credit` is non-zero."""

    account: str
    """The ERP's general-ledger account number."""
    debit: _NonNegative = 0
    credit: _NonNegative = 0
    memo: str | None = None


class JournalEntry(Entity, frozen=True, kw_only=True):
    """A general-ledger posting; its debits equal its credits."""

    id: str
    number: str | None = None
    legal_entity: LegalEntityCode
    currency: CurrencyCode
    date: date
    memo: str | None = None
    lines: list[JournalLine] = []
    external_id: str | None = None
    refs: Refs = {}


class JournalEntryCreate(InputStruct, frozen=True, kw_only=True):
    """A journal entry to post; refused unless it balances."""

    legal_entity: LegalEntityCode
    currency: CurrencyCode
    date: date
    memo: str | None = None
    lines: Annotated[list[JournalLine], msgspec.Meta(min_length=2)]
    external_id: _ExternalId

    def __post_init__(self) -> None:
        super().__post_init__()
        for line in self.lines:
            if (line.debit == 0) == (line.credit == 0):
                raise ValueError(f"line on account {line.account} needs a debit or a credit")
        debits = sum(line.debit for line in self.lines)
        credits = sum(line.credit for line in self.lines)
        if debits != credits:
            raise ValueError(f"journal does not balance: debits {debits}, credits {credits}")


class ApprovalTask(Entity, frozen=True, kw_only=True):
    """A finance decision a flow waits for (a credit over a threshold, a write-off, ...)."""

    id: str
    kind: str
    """What is to be approved, e.g. `credit_memo`, `credit_note`, `write_off`, `discount`."""
    subject: str
    """One line a person reads in the queue: what, for whom, how much."""
    status: ApprovalStatus = "pending"
    amount: MinorUnits | None = None
    currency: CurrencyCode | None = None
    requested_at: UtcDateTime
    requested_by: str | None = None
    decided_at: UtcDateTime | None = None
    decided_by: str | None = None
    reason: str | None = None
    flow_id: str | None = None
    """The flow waiting on this decision."""
    legal_entity: LegalEntityCode | None = None
    refs: Refs = {}


class ApprovalDecision(InputStruct, frozen=True, kw_only=True):
    """An approver's answer to an approval task; a rejection must say why."""

    decision: Literal["approved", "rejected"]
    reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None

    def __post_init__(self) -> None:
        if self.decision == "rejected" and not (self.reason and self.reason.strip()):
            raise ValueError("a rejection needs a reason")
