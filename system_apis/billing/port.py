"""What the layers above need from the billing platform (Stripe), in canonical contracts.

The Stripe client implements this structurally; flows and routes depend on it only. Every write
takes the caller's idempotency key (a flow passes `{workflow_id}:{step}`), so a repeated step is
the same billing request, not a second one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

import msgspec

from contracts.money import Money
from contracts.v1 import (
    CollectionMethod,
    CreditNote,
    CreditNoteCreate,
    Customer,
    CustomerCreate,
    CustomerPatch,
    EventEnvelope,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Page,
    Price,
    Product,
    Subscription,
    SubscriptionCreate,
    SubscriptionItemInput,
    SubscriptionPatch,
    SubscriptionStatus,
    TaxRate,
    UsageSummary,
)

__all__ = [
    "BillingChanges",
    "BillingPort",
    "ProrationBehavior",
    "SubscriptionFilter",
    "SubscriptionRenewals",
]

ProrationBehavior = Literal["create_prorations", "none", "always_invoice"]
"""How a mid-period change is billed: prorations on the next invoice, none, or invoiced now."""
SubscriptionFilter = SubscriptionStatus | Literal["all"]
"""A subscription status to list by; `all` includes canceled ones (left out by default)."""


class BillingChanges(msgspec.Struct, frozen=True, kw_only=True):
    """What billing's change feed shows since a time: the ids that changed."""

    customers: list[str] = []
    """Customers whose record, invoices, credit notes or payments changed (deleted included)."""
    deleted_customers: list[str] = []
    invoices: list[str] = []
    """Invoices created, finalized, paid, voided, edited or deleted."""
    credit_notes: list[str] = []


@runtime_checkable
class BillingPort(Protocol):
    """The billing operations flows and routes call.

    Runtime-checkable because Litestar checks an injected dependency against its annotation.
    """

    # customers

    async def get_customer(self, customer_id: str) -> Customer: ...

    async def find_customer(self, *, crm_account_id: str) -> Customer | None: ...

    async def create_customer(
        self,
        customer: CustomerCreate,
        *,
        crm_account_id: str | None = None,
        canonical_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Customer: ...

    async def update_customer(
        self, customer_id: str, patch: CustomerPatch, *, idempotency_key: str | None = None
    ) -> Customer: ...

    async def list_customers(
        self, *, email: str | None = None, cursor: str | None = None, limit: int = 50
    ) -> Page[Customer]: ...

    # catalog

    async def list_products(
        self, *, active: bool | None = None, cursor: str | None = None, limit: int = 50
    ) -> Page[Product]: ...

    async def find_product(self, code: str) -> Product | None: ...

    async def create_product(
        self, product: Product, *, idempotency_key: str | None = None
    ) -> Product: ...

    async def get_price(self, price_id: str) -> Price: ...

    async def list_prices(
        self,
        *,
        product_id: str | None = None,
        currency: str | None = None,
        active: bool | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Price]: ...

    async def find_price(self, *, product_code: str, currency: str) -> Price | None: ...

    async def create_price(
        self, price: Price, *, lookup_key: str | None = None, idempotency_key: str | None = None
    ) -> Price: ...

    # subscriptions

    async def create_subscription(
        self,
        subscription: SubscriptionCreate,
        *,
        canonical_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Subscription: ...

    async def get_subscription(self, subscription_id: str) -> Subscription: ...

    async def list_subscriptions(
        self,
        *,
        customer_id: str | None = None,
        status: SubscriptionFilter | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Subscription]: ...

    async def update_subscription(
        self,
        subscription_id: str,
        patch: SubscriptionPatch,
        *,
        proration_behavior: ProrationBehavior = "create_prorations",
        idempotency_key: str | None = None,
    ) -> Subscription: ...

    async def cancel_subscription(
        self,
        subscription_id: str,
        *,
        prorate: bool = False,
        invoice_now: bool = False,
        idempotency_key: str | None = None,
    ) -> Subscription: ...

    # invoices

    async def create_invoice_item(
        self,
        *,
        customer_id: str,
        price_id: str | None = None,
        amount: Money | None = None,
        quantity: int = 1,
        description: str | None = None,
        subscription_id: str | None = None,
        invoice_id: str | None = None,
        idempotency_key: str | None = None,
        unit_amount: int | None = None,
        deal_id: str | None = None,
    ) -> InvoiceLine:
        """A one-off charge. `unit_amount` bills `price_id`'s product at the sold unit price
        instead of the catalog's; `deal_id` names the deal the charge was sold in."""
        ...

    async def create_invoice(
        self,
        *,
        customer_id: str,
        collection_method: CollectionMethod = "charge_automatically",
        days_until_due: int | None = None,
        subscription_id: str | None = None,
        include_pending_items: bool = True,
        auto_advance: bool | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
        tax_rate_ids: Sequence[str] = (),
        deal_id: str | None = None,
        legal_entity: str | None = None,
        correlation_id: str | None = None,
        currency: str | None = None,
    ) -> Invoice:
        """A draft invoice; `tax_rate_ids` tax every line without tax rates of its own;
        `deal_id` and `legal_entity` name the deal it bills and the entity it is billed by,
        `correlation_id` the trace it belongs to. `currency` is the one it bills in; absent,
        the customer's, and for a customer not yet billed the platform's default, which fixes
        that customer's currency from then on."""
        ...

    async def finalize_invoice(
        self, invoice_id: str, *, idempotency_key: str | None = None
    ) -> Invoice: ...

    async def pay_invoice(
        self,
        invoice_id: str,
        *,
        payment_method: str | None = None,
        paid_out_of_band: bool = False,
        idempotency_key: str | None = None,
    ) -> Invoice: ...

    async def void_invoice(
        self, invoice_id: str, *, idempotency_key: str | None = None
    ) -> Invoice: ...

    async def get_invoice(self, invoice_id: str) -> Invoice: ...

    async def list_invoices(
        self,
        *,
        customer_id: str | None = None,
        status: InvoiceStatus | None = None,
        subscription_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Invoice]: ...

    # tax rates

    async def find_tax_rate(self, code: str) -> TaxRate | None:
        """The active billing tax rate of the company's tax code `code`, if any."""
        ...

    async def create_tax_rate(
        self, rate: TaxRate, *, idempotency_key: str | None = None
    ) -> TaxRate: ...

    # credit notes

    async def create_credit_note(
        self, credit_note: CreditNoteCreate, *, idempotency_key: str | None = None
    ) -> CreditNote: ...

    async def get_credit_note(self, credit_note_id: str) -> CreditNote: ...

    async def list_credit_notes(
        self,
        *,
        invoice_id: str | None = None,
        customer_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[CreditNote]: ...

    # usage of metered items

    async def report_usage(
        self,
        subscription_item_id: str,
        *,
        quantity: int,
        at: datetime,
        action: Literal["increment", "set"] = "increment",
        idempotency_key: str | None = None,
    ) -> str:
        """Add (or set) usage of a metered item at `at`, inside its current period; returns
        billing's record id. The same key is the same report, never counted twice."""
        ...

    async def list_usage_summaries(self, subscription_item_id: str) -> list[UsageSummary]:
        """The item's usage total per period, newest first; billed periods name their invoice."""
        ...

    # events

    async def get_event(self, event_id: str) -> EventEnvelope: ...

    async def changed_since(self, since: datetime) -> BillingChanges:
        """Customers, invoices (payments included) and credit notes changed at or after
        `since`, from the change feed (which keeps a limited history: the caller reads in
        full when `since` is older)."""
        ...


@runtime_checkable
class SubscriptionRenewals(Protocol):
    """Changes of a subscription that take effect at a future period boundary (a renewal).

    A separate port from `BillingPort`, so only the renewal flow depends on it; the Stripe
    client implements both. Nothing is prorated: the periods before `at` are billed as they
    were, the ones from `at` on as asked.
    """

    async def continue_subscription(
        self,
        subscription_id: str,
        *,
        at: datetime,
        items: Sequence[SubscriptionItemInput],
        deal_id: str,
        idempotency_key: str,
    ) -> Subscription:
        """From `at` on, bill `items` (quantities and sold unit prices) under deal `deal_id`."""
        ...

    async def cancel_subscription_at(
        self, subscription_id: str, *, at: datetime, idempotency_key: str
    ) -> Subscription:
        """End the subscription at `at`, billing nothing for the time after it."""
        ...
