"""Sales: deals (CRM opportunities) with their lines, and the contracts they turn into."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from contracts.money import Money
from contracts.v1.base import (
    CurrencyCode,
    Entity,
    InputStruct,
    LegalEntityCode,
    MinorUnits,
    Refs,
    UtcDateTime,
)

__all__ = [
    "Contract",
    "ContractLine",
    "ContractStatus",
    "Deal",
    "DealLine",
    "DealPatch",
    "IntegrationStatus",
    "RenewalRisk",
]

IntegrationStatus = Literal["pending", "in_progress", "synced", "failed"]
"""Where the gateway's order flow stands for a deal: `pending` (won, not started yet),
`in_progress`, `synced` (order and subscription exist downstream), `failed` (in the
exception queue)."""

ContractStatus = Literal["draft", "in_approval", "activated", "expired", "terminated"]
RenewalRisk = Literal["low", "medium", "high"]
"""How likely a renewal is to be lost, as the gateway's renewal rules rate it."""

_Quantity = Annotated[int, msgspec.Meta(ge=0)]


class DealLine(Entity, frozen=True, kw_only=True):
    """One product on a deal; amounts are in the deal's currency."""

    id: str
    product_id: str | None = None
    product_code: str | None = None
    quantity: _Quantity
    unit_amount: MinorUnits
    total_amount: MinorUnits
    """quantity x unit_amount, less any discount, as the CRM computed it."""
    refs: Refs = {}


class Deal(Entity, frozen=True, kw_only=True):
    """A sales opportunity; once won it drives the order, the subscription and the invoice."""

    id: str
    customer_id: str
    name: str
    stage: str
    """The CRM's own stage name (e.g. "Prospecting", "Closed Won"): stages are configurable
    per CRM org, so use `won` and `closed` for decisions."""
    won: bool = False
    closed: bool = False
    close_date: date | None = None
    currency: CurrencyCode
    amount: MinorUnits | None = None
    lines: list[DealLine] = []
    legal_entity: LegalEntityCode | None = None
    erp_order_number: str | None = None
    """Document number of the sales order the ERP booked for this deal."""
    billing_subscription_id: str | None = None
    """The billing platform's subscription id created for this deal."""
    contract_amount: MinorUnits | None = None
    """What the deal is booked at now, amendments included (the total of its ERP sales
    order); a mirror the gateway writes back, like `erp_order_number`."""
    integration_status: IntegrationStatus | None = None
    updated_at: UtcDateTime | None = None
    deal_type: str | None = None
    """The CRM's opportunity type ("New Business", "Renewal", ...)."""
    contract_term_months: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """The term the deal sells; its contract runs that long from the close date."""
    renewal_of: str | None = None
    """The deal this one renews (a renewal opportunity only)."""
    renewal_risk: RenewalRisk | None = None
    renewal_context: str | None = None
    """A short summary of the signals behind `renewal_risk` (usage, support, credits,
    payments), as the renewal scan wrote it."""
    refs: Refs = {}


class DealPatch(InputStruct, frozen=True, kw_only=True):
    """A partial update of a deal: only the fields present are written."""

    name: str | UnsetType = UNSET
    stage: str | UnsetType = UNSET
    close_date: date | UnsetType | None = UNSET
    legal_entity: LegalEntityCode | UnsetType | None = UNSET
    erp_order_number: str | UnsetType | None = UNSET
    billing_subscription_id: str | UnsetType | None = UNSET
    contract_amount: Money | UnsetType | None = UNSET
    """In the deal's currency."""
    integration_status: IntegrationStatus | UnsetType | None = UNSET

    def fields_set(self) -> tuple[str, ...]:
        """Names of the fields this patch writes, in declaration order."""
        return tuple(
            name for name in self.__struct_fields__ if getattr(self, name) is not UNSET
        )


class ContractLine(Entity, frozen=True, kw_only=True):
    """One product under contract; amounts are in the contract's currency."""

    id: str
    product_id: str | None = None
    product_code: str | None = None
    quantity: _Quantity
    unit_amount: MinorUnits
    refs: Refs = {}


class Contract(Entity, frozen=True, kw_only=True):
    """A signed agreement with a customer for a term, renewed by the renewal flow."""

    id: str
    number: str | None = None
    """The CRM's contract number."""
    customer_id: str
    deal_id: str | None = None
    status: ContractStatus
    start_date: date
    end_date: date | None = None
    term_months: Annotated[int, msgspec.Meta(ge=1)] | None = None
    currency: CurrencyCode
    auto_renew: bool = False
    lines: list[ContractLine] = []
    legal_entity: LegalEntityCode | None = None
    refs: Refs = {}
