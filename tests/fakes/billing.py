"""`FakeBilling`: an in-memory `BillingPort` that bills as the Stripe sandbox does.

Money follows the Stripe emulator: a line's amount is unit amount x quantity (tiered prices
priced by their tiers); an item sold at a unit price of its own (`unit_amount`, Stripe's
`price_data`) is billed through an inactive inline price of the catalog price's product; a
subscription's one-time items (`add_invoice_items`) are pending items of that subscription only,
billed on its first invoice. An invoice's default tax rates (the subscription's, or those it was
created with) tax each line exclusively, amount x rate rounded half up once per line; its
subtotal is the sum of its lines, its tax the sum of the lines' tax, its total both; amount due
is the total less credit balance and pre-payment credit notes, and an invoice whose total is
below zero credits the customer's balance when finalized. An invoice is a draft until finalized
(then numbered `PREFIX-0001` per customer, `open`, or `paid` at once when nothing is due);
paying charges the customer's default test payment method (`pm_card_visa` unless
`default_payment_methods` names a declining one such as `pm_card_chargeDeclined`), and a
subscription's status follows its invoices. A quantity or price change mid-period prorates
(credit for the unused time, charge for the rest, rounded half up), billed at the next invoice
or at once for `always_invoice`.

Every write takes the caller's idempotency key, as Stripe's `Idempotency-Key`: a repeat with the
same key and parameters returns the first answer and changes nothing (a decline or a 404 is
replayed too), the same key with other parameters is `UpstreamConflict`. Errors are
`StripeClient`'s: an unknown id in the path is `UpstreamNotFound`, an unknown id passed as a
parameter or a refused state change is `UpstreamInvalid` (status 400), a card decline is
`UpstreamInvalid` (status 402, code = the decline code), a bad cursor `InvalidRequest`.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

import msgspec
from msgspec import UnsetType

from contracts.errors import FieldError, InvalidRequest, UpstreamInvalid, UpstreamNotFound
from contracts.money import Money
from contracts.v1 import (
    Address,
    AddressInput,
    CollectionMethod,
    CreditNote,
    CreditNoteCreate,
    CreditNoteLine,
    Customer,
    CustomerCreate,
    CustomerPatch,
    EventEnvelope,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Page,
    Price,
    PriceTier,
    Product,
    Subscription,
    SubscriptionCreate,
    SubscriptionItem,
    SubscriptionItemInput,
    SubscriptionPatch,
    TaxRate,
    UsageSummary,
)
from system_apis.billing.port import BillingChanges, ProrationBehavior, SubscriptionFilter
from tests.fakes._base import FakePort, operation

__all__ = ["DECLINING_PAYMENT_METHODS", "FakeBilling"]

R = TypeVar("R")
T = TypeVar("T")

VENDOR = "stripe"
UNASSIGNED_ENTITY = "UNASSIGNED"
DEFAULT_PAYMENT_METHOD = "pm_card_visa"
DECLINING_PAYMENT_METHODS = {
    # Stripe's declining test payment methods -> (decline code, message)
    "pm_card_chargeDeclined": ("generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": ("insufficient_funds",
                                                "Your card has insufficient funds."),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "Your card has expired."),
    "pm_card_chargeCustomerFail": ("generic_decline", "Your card was declined."),
}
_TIMES = "\u00d7"
_STRIPE_REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")


@dataclass
class _Customer:
    id: str
    created: int
    name: str | None
    email: str | None
    phone: str | None
    address: Address | None
    shipping: Address | None
    metadata: dict[str, str]
    invoice_prefix: str
    currency: str | None = None
    delinquent: bool = False
    balance: int = 0
    next_invoice_sequence: int = 1


@dataclass
class _Price:
    price: Price
    lookup_key: str | None = None
    inline: bool = False
    """Made from `price_data` (a sold unit price): inactive, so never found as the catalog
    price (`find_price`), though a listing of all prices shows it, as Stripe's does."""


@dataclass
class _Item:
    """A subscription item."""

    id: str
    price_id: str
    quantity: int


@dataclass
class _Subscription:
    id: str
    customer_id: str
    currency: str
    status: str
    collection_method: str
    days_until_due: int | None
    period_start: int
    period_end: int
    items: list[_Item]
    metadata: dict[str, str]
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    tax_rate_ids: list[str] = field(default_factory=list)


@dataclass
class _Pending:
    """An invoice item (pending until it lands on an invoice)."""

    id: str
    customer_id: str
    currency: str
    amount: int
    quantity: int
    unit_amount: int | None
    description: str | None
    price_id: str | None
    subscription_id: str | None
    period: tuple[int, int]
    proration: bool = False
    invoice_id: str | None = None


@dataclass
class _Invoice:
    id: str
    customer_id: str
    subscription_id: str | None
    currency: str
    collection_method: str
    days_until_due: int | None
    billing_reason: str
    created: int
    auto_advance: bool
    description: str | None
    lines: list[InvoiceLine] = field(default_factory=list)
    status: InvoiceStatus = "draft"
    number: str | None = None
    subtotal: int = 0
    amount_due: int = 0
    amount_paid: int = 0
    amount_remaining: int = 0
    starting_balance: int = 0
    pre_payment_credit: int = 0
    post_payment_credit: int = 0
    due_date: int | None = None
    finalized_at: int | None = None
    paid_at: int | None = None
    attempted: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    subscription_metadata: dict[str, str] | None = None
    default_tax_rates: list[str] = field(default_factory=list)
    tax: int = 0


class FakeBilling(FakePort):
    """Stripe Billing in memory.

    Readable by tests (contracts as the client reads them back): customers, products, prices,
    subscriptions, invoices, pending_items (InvoiceLine by invoice item id, not yet invoiced),
    credit_notes, events (EventEnvelope by id, Stripe's event types); `default_payment_methods`
    (customer id -> test payment method, to make charges decline); calls and writes (see
    `FakePort`). Seed the catalog with `seed_price` (not recorded).
    """

    vendor = VENDOR

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(clock=clock)
        self._customers: dict[str, _Customer] = {}
        self._products: dict[str, Product] = {}
        self._prices: dict[str, _Price] = {}
        self._tax_rates: dict[str, TaxRate] = {}
        self._subs: dict[str, _Subscription] = {}
        self._pending: dict[str, _Pending] = {}
        self._invoices: dict[str, _Invoice] = {}
        self.credit_notes: dict[str, CreditNote] = {}
        self.events: dict[str, EventEnvelope] = {}
        self.default_payment_methods: dict[str, str] = {}
        self.usage: dict[str, list[tuple[int, int, str]]] = {}
        """Reported usage by subscription item: (unix time, quantity, action), oldest first."""

    # ------------------------------------------------------------------ seeding (not recorded)

    def seed_price(
        self,
        code: str,
        *,
        currency: str,
        unit_amount: int,
        billing_interval: str = "month",
        name: str | None = None,
    ) -> Price:
        """A catalog price (and its product, made once per code), as the sandbox seeds them."""
        product = next((p for p in self._products.values() if p.code == code), None)
        if product is None:
            pid = self._mint("prod")
            product = Product(id=pid, code=code, name=name or code,
                              billing_interval=billing_interval,  # type: ignore[arg-type]
                              refs={VENDOR: pid})
            self._products[pid] = product
        rid = self._mint("price")
        recurring = None if billing_interval == "one_time" else billing_interval
        price = Price(id=rid, product_id=product.id, currency=currency.upper(),
                      unit_amount=unit_amount,
                      recurring_interval=recurring,  # type: ignore[arg-type]
                      product_code=code, refs={VENDOR: rid})
        self._prices[rid] = _Price(price=price, lookup_key=f"{code.lower()}_{currency.lower()}")
        return price

    # ------------------------------------------------------------------ readable state

    @property
    def customers(self) -> dict[str, Customer]:
        return {rid: self._customer(c) for rid, c in self._customers.items()}

    @property
    def products(self) -> dict[str, Product]:
        return dict(self._products)

    @property
    def prices(self) -> dict[str, Price]:
        return {rid: p.price for rid, p in self._prices.items()}

    @property
    def subscriptions(self) -> dict[str, Subscription]:
        return {rid: self._subscription(s) for rid, s in self._subs.items()}

    @property
    def invoices(self) -> dict[str, Invoice]:
        return {rid: self._invoice(i) for rid, i in self._invoices.items()}

    @property
    def pending_items(self) -> dict[str, InvoiceLine]:
        return {rid: self._pending_line(p) for rid, p in self._pending.items()
                if p.invoice_id is None}

    # ------------------------------------------------------------------ customers

    @operation
    async def get_customer(self, customer_id: str) -> Customer:
        return self._customer(self._get(self._customers, customer_id, "customer"))

    @operation
    async def find_customer(self, *, crm_account_id: str) -> Customer | None:
        found = [c for c in self._newest(self._customers)
                 if c.metadata.get("crm_account_id") == crm_account_id]
        return self._customer(found[0]) if found else None

    @operation
    async def create_customer(
        self,
        customer: CustomerCreate,
        *,
        crm_account_id: str | None = None,
        canonical_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Customer:
        key = ("create_customer", customer, crm_account_id, canonical_id)

        def create() -> Customer:
            rid = self._mint("cus")
            metadata = {"legal_entity": customer.legal_entity, "currency": customer.currency,
                        "crm_account_id": crm_account_id, "canonical_id": canonical_id,
                        "tax_id": customer.tax_id, "website": customer.website,
                        "payment_terms_days": None if customer.payment_terms_days is None
                        else str(customer.payment_terms_days)}
            address = _address(customer.billing_address, country=customer.country)
            self._customers[rid] = _Customer(
                id=rid, created=self._stamp(), name=customer.legal_name, email=customer.email,
                phone=customer.phone, address=address,
                shipping=_address(customer.shipping_address, country=None),
                metadata={k: v for k, v in metadata.items() if v is not None},
                invoice_prefix=hashlib.sha256(rid.encode()).hexdigest()[:8].upper(),
            )
            self._wrote("create_customer", rid)
            return self._customer(self._customers[rid])

        return self._once(idempotency_key, key, create)

    @operation
    async def update_customer(
        self, customer_id: str, patch: CustomerPatch, *, idempotency_key: str | None = None
    ) -> Customer:
        current = self._get(self._customers, customer_id, "customer")
        fields = set(patch.fields_set())
        refused = sorted(fields & {"payment_status", "risk_level"})
        if refused:
            raise InvalidRequest(
                "Stripe does not take these customer fields",
                errors=[FieldError(pointer=f"/{name}", detail="not writable in Stripe")
                        for name in refused],
            )

        def update() -> Customer:
            changes: dict[str, Any] = {}
            for attr, name in (("name", "legal_name"), ("phone", "phone"), ("email", "email")):
                if name in fields:
                    changes[attr] = getattr(patch, name) or None
            metadata = dict(current.metadata)
            for name in ("website", "tax_id", "legal_entity", "payment_terms_days"):
                if name in fields:
                    value = getattr(patch, name)
                    if value is None or value == "":
                        metadata.pop(name, None)
                    else:
                        metadata[name] = str(value)
            changes["metadata"] = metadata
            if "billing_address" in fields:
                given = patch.billing_address
                country = patch.country if isinstance(patch.country, str) else None
                changes["address"] = _address(
                    given if isinstance(given, AddressInput) else None, country=country)
            elif "country" in fields:
                base = current.address or Address()
                changes["address"] = _address_of(msgspec.structs.replace(
                    base, country=patch.country if isinstance(patch.country, str) else None))
            if "shipping_address" in fields:
                shipping = patch.shipping_address
                changes["shipping"] = _address(
                    shipping if isinstance(shipping, AddressInput) else None, country=None)
            updated = replace(current, **changes)
            if updated != current:
                self._customers[current.id] = updated
                self._wrote("update_customer", current.id)
            return self._customer(updated)

        return self._once(idempotency_key, ("update_customer", customer_id, patch), update)

    @operation
    async def list_customers(
        self, *, email: str | None = None, cursor: str | None = None, limit: int = 50
    ) -> Page[Customer]:
        found = [self._customer(c) for c in self._newest(self._customers)
                 if email is None or c.email == email]
        return self._page(found, cursor, min(limit, 100))

    # ------------------------------------------------------------------ catalog

    @operation
    async def list_products(
        self, *, active: bool | None = None, cursor: str | None = None, limit: int = 50
    ) -> Page[Product]:
        found = [p for p in self._newest(self._products) if active is None or p.active == active]
        return self._page(found, cursor, min(limit, 100))

    @operation
    async def find_product(self, code: str) -> Product | None:
        return self._product_by_code(code)

    @operation
    async def create_product(
        self, product: Product, *, idempotency_key: str | None = None
    ) -> Product:
        def create() -> Product:
            rid = self._mint("prod")
            refs = {VENDOR: rid}
            if "netsuite" in product.refs:
                refs["netsuite"] = product.refs["netsuite"]
            self._products[rid] = Product(
                id=rid, code=product.code, name=product.name, description=product.description,
                billing_interval=product.billing_interval, active=product.active, refs=refs,
            )
            self._wrote("create_product", rid)
            return self._products[rid]

        return self._once(idempotency_key, ("create_product", product), create)

    @operation
    async def get_price(self, price_id: str) -> Price:
        return self._get(self._prices, price_id, "price").price

    @operation
    async def list_prices(
        self,
        *,
        product_id: str | None = None,
        currency: str | None = None,
        active: bool | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Price]:
        found = [
            p.price for p in self._newest(self._prices)
            if (product_id is None or p.price.product_id == product_id)
            and (currency is None or p.price.currency == currency.upper())
            and (active is None or p.price.active == active)
        ]
        return self._page(found, cursor, min(limit, 100))

    @operation
    async def find_price(self, *, product_code: str, currency: str) -> Price | None:
        product = self._product_by_code(product_code)
        if product is None:
            return None
        return next((p.price for p in self._newest(self._prices)
                     if p.price.product_id == product.id and p.price.active
                     and p.price.currency == currency.upper()), None)

    @operation
    async def create_price(
        self, price: Price, *, lookup_key: str | None = None, idempotency_key: str | None = None
    ) -> Price:
        def create() -> Price:
            if price.product_id not in self._products:
                raise _param_missing("product", price.product_id, "product")
            if lookup_key is not None:
                holder = next((p for p in self._prices.values() if p.lookup_key == lookup_key),
                              None)
                if holder is not None:
                    raise _invalid(f"A price (`{holder.price.id}`) already uses that lookup "
                                   "key.", param="lookup_key")
            rid = self._mint("price")
            tiered = price.billing_scheme == "tiered"
            stored = Price(
                id=rid, product_id=price.product_id, currency=price.currency,
                unit_amount=None if tiered else (price.unit_amount or 0),
                billing_scheme=price.billing_scheme, tiers=list(price.tiers) if tiered else [],
                tiers_mode=price.tiers_mode if tiered else None,
                recurring_interval=price.recurring_interval,
                interval_count=price.interval_count if price.recurring_interval else 1,
                product_code=price.product_code, active=price.active, refs={VENDOR: rid},
            )
            self._prices[rid] = _Price(price=stored, lookup_key=lookup_key)
            self._wrote("create_price", rid)
            return stored

        return self._once(idempotency_key, ("create_price", price, lookup_key), create)

    # ------------------------------------------------------------------ subscriptions

    @operation
    async def create_subscription(
        self,
        subscription: SubscriptionCreate,
        *,
        canonical_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Subscription:
        return self._once(idempotency_key, ("create_subscription", subscription, canonical_id),
                          lambda: self._create_subscription(subscription, canonical_id))

    @operation
    async def report_usage(
        self,
        subscription_item_id: str,
        *,
        quantity: int,
        at: datetime,
        action: str = "increment",
        idempotency_key: str | None = None,
    ) -> str:
        def write() -> str:
            records = self.usage.setdefault(subscription_item_id, [])
            records.append((int(at.timestamp()), quantity, action))
            return f"mbur_{subscription_item_id}_{len(records)}"

        key = ("report_usage", subscription_item_id, quantity, at, action)
        return self._once(idempotency_key, key, write)

    @operation
    async def list_usage_summaries(self, subscription_item_id: str) -> list[UsageSummary]:
        """The open period's total only (the fake does not renew subscriptions)."""
        sub = next(s for s in self._subs.values()
                   if any(item.id == subscription_item_id for item in s.items))
        at_moment: dict[int, int] = {}
        for moment, quantity, action in self.usage.get(subscription_item_id, []):
            if sub.period_start <= moment < sub.period_end:
                base = 0 if action == "set" else at_moment.get(moment, 0)
                at_moment[moment] = base + quantity
        return [UsageSummary(
            subscription_item_id=subscription_item_id,
            period_start=datetime.fromtimestamp(sub.period_start, UTC),
            period_end=datetime.fromtimestamp(sub.period_end, UTC),
            total_usage=sum(at_moment.values()),
        )]

    @operation
    async def get_subscription(self, subscription_id: str) -> Subscription:
        return self._subscription(self._get(self._subs, subscription_id, "subscription"))

    @operation
    async def list_subscriptions(
        self,
        *,
        customer_id: str | None = None,
        status: SubscriptionFilter | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Subscription]:
        def wanted(sub: _Subscription) -> bool:
            if status is None:
                return sub.status != "canceled"
            return status == "all" or sub.status == status

        found = [self._subscription(s) for s in self._newest(self._subs)
                 if (customer_id is None or s.customer_id == customer_id) and wanted(s)]
        return self._page(found, cursor, min(limit, 100))

    @operation
    async def update_subscription(
        self,
        subscription_id: str,
        patch: SubscriptionPatch,
        *,
        proration_behavior: ProrationBehavior = "create_prorations",
        idempotency_key: str | None = None,
    ) -> Subscription:
        sub = self._get(self._subs, subscription_id, "subscription")
        wanted: dict[str, int] | None = None
        if not isinstance(patch.items, UnsetType):
            wanted = {item.price_id: item.quantity for item in patch.items}
            current = {item.price_id: item.quantity for item in sub.items}
            if wanted == current:
                wanted = None
        cancel = None if isinstance(patch.cancel_at_period_end, UnsetType) \
            else patch.cancel_at_period_end
        if wanted is None and cancel is None:
            return self._subscription(sub)
        key = ("update_subscription", subscription_id, patch, proration_behavior)
        return self._once(idempotency_key, key,
                          lambda: self._amend(sub, wanted, cancel, proration_behavior))

    @operation
    async def cancel_subscription(
        self,
        subscription_id: str,
        *,
        prorate: bool = False,
        invoice_now: bool = False,
        idempotency_key: str | None = None,
    ) -> Subscription:
        def cancel() -> Subscription:
            sub = self._get(self._subs, subscription_id, "subscription")
            if sub.status == "canceled":
                raise _invalid(f"The subscription {sub.id} is already canceled.")
            at = self._stamp()
            if prorate:
                for item in sub.items:
                    self._prorate(sub, (self._price(item.price_id), item.quantity), None, at=at)
            sub.status, sub.canceled_at, sub.cancel_at_period_end = "canceled", at, False
            self._event("customer.subscription.deleted", self._sub_object(sub), at)
            if invoice_now:
                invoice = self._subscription_invoice(sub, reason="subscription_update", at=at,
                                                     item_lines=False)
                self._bill_now(sub, invoice, at=at)
            self._wrote("cancel_subscription", sub.id)
            return self._subscription(sub)

        return self._once(idempotency_key,
                          ("cancel_subscription", subscription_id, prorate, invoice_now), cancel)

    # ------------------------------------------------------------------ invoices

    @operation
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
        if (price_id is None) == (amount is None):
            raise InvalidRequest(
                "an invoice item needs either a price or an amount",
                errors=[FieldError(pointer="price_id", detail="give price_id or amount")],
            )
        key = ("create_invoice_item", customer_id, price_id, amount, quantity, description,
               subscription_id, invoice_id, unit_amount, deal_id)

        def create() -> InvoiceLine:
            customer = self._param(self._customers, customer_id, "customer", "customer")
            at = self._stamp()
            text: str | None
            billed_price: str | None = None
            if price_id is not None:
                price = self._param(self._prices, price_id, "price", "price").price
                if unit_amount is not None:
                    # `price_data`: the price's product at the sold unit price.
                    price = self._inline_price(price, unit_amount, recurring=False)
                elif price.recurring_interval is not None:
                    raise _invalid("The price specified is set to `type=recurring` but this "
                                   "field only accepts prices with `type=one_time`.",
                                   param="price")
                units, unit = quantity, price.unit_amount
                line_amount = _line_amount(price, quantity)
                currency, billed_price = price.currency, price.id
                text = description or self._products[price.product_id].name
            else:
                assert amount is not None
                units, unit, line_amount = 1, amount.amount, amount.amount
                currency, text = amount.currency, description
            if subscription_id:
                self._param(self._subs, subscription_id, "subscription", "subscription")
            item = _Pending(id=self._mint("ii"), customer_id=customer.id, currency=currency,
                            amount=line_amount, quantity=units, unit_amount=unit,
                            description=text, price_id=billed_price,
                            subscription_id=subscription_id, period=(at, at))
            if invoice_id:
                invoice = self._param(self._invoices, invoice_id, "invoice", "invoice")
                if invoice.status != "draft" or invoice.customer_id != customer.id:
                    raise _invalid("Invoice items can only be added to draft invoices of the "
                                   "same customer.", param="invoice")
                self._attach(invoice, item)
            _set_currency(customer, currency, param="currency")
            self._pending[item.id] = item
            self._wrote("create_invoice_item", item.id)
            # Stripe's invoice item answer carries no period the client reads.
            return msgspec.structs.replace(self._pending_line(item), period_start=None,
                                           period_end=None)

        return self._once(idempotency_key, key, create)

    @operation
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
        for rate_id in tax_rate_ids:
            self._param(self._tax_rates, rate_id, "tax_rate", "default_tax_rates")
        key = ("create_invoice", customer_id, collection_method, days_until_due,
               subscription_id, include_pending_items, auto_advance, description,
               tuple(tax_rate_ids), deal_id, legal_entity, correlation_id, currency)

        def create() -> Invoice:
            customer = self._param(self._customers, customer_id, "customer", "customer")
            sub = self._param(self._subs, subscription_id, "subscription", "subscription") \
                if subscription_id else None
            _due_terms(collection_method, days_until_due)
            pending = [p for p in self._oldest(self._pending)
                       if include_pending_items and p.customer_id == customer.id
                       and p.invoice_id is None
                       and (subscription_id is None or p.subscription_id == subscription_id)]
            billed_in = (currency.upper() if currency else None) or customer.currency or (
                pending[0].currency if pending else "USD")
            at = self._stamp()
            invoice = self._new_invoice(customer, sub, currency=billed_in,
                                        collection_method=collection_method,
                                        days_until_due=days_until_due, reason="manual", at=at,
                                        auto_advance=bool(auto_advance),
                                        tax_rates=list(tax_rate_ids))
            invoice.description = description
            invoice.metadata.update({key: value for key, value in (
                ("deal_id", deal_id), ("legal_entity", legal_entity),
                ("correlation_id", correlation_id)) if value is not None})
            for item in pending:
                self._attach(invoice, item)
            _set_currency(customer, billed_in, param="currency")
            self._wrote("create_invoice", invoice.id)
            return self._invoice(invoice)

        return self._once(idempotency_key, key, create)

    @operation
    async def finalize_invoice(
        self, invoice_id: str, *, idempotency_key: str | None = None
    ) -> Invoice:
        def finalize() -> Invoice:
            invoice = self._get(self._invoices, invoice_id, "invoice")
            self._finalize(invoice, at=self._stamp())
            self._wrote("finalize_invoice", invoice.id)
            return self._invoice(invoice)

        return self._once(idempotency_key, ("finalize_invoice", invoice_id), finalize)

    @operation
    async def pay_invoice(
        self,
        invoice_id: str,
        *,
        payment_method: str | None = None,
        paid_out_of_band: bool = False,
        idempotency_key: str | None = None,
    ) -> Invoice:
        def pay() -> Invoice:
            invoice = self._get(self._invoices, invoice_id, "invoice")
            at = self._stamp()
            if invoice.status == "paid":
                raise _invalid("Invoice is already paid", code="invoice_already_paid")
            if invoice.status == "void":
                raise _invalid("This invoice has been voided and cannot be paid.",
                               code="invoice_not_editable")
            if invoice.status == "draft":
                self._finalize(invoice, at=at)
            settled: str = invoice.status  # finalizing may have paid it (nothing due)
            if settled != "paid":
                if paid_out_of_band:
                    self._mark_paid(invoice, at=at)
                else:
                    self._collect(invoice, at=at, payment_method=payment_method, raise_on=True)
            self._wrote("pay_invoice", invoice.id)
            return self._invoice(invoice)

        return self._once(idempotency_key, ("pay_invoice", invoice_id, payment_method,
                                            paid_out_of_band), pay)

    @operation
    async def void_invoice(
        self, invoice_id: str, *, idempotency_key: str | None = None
    ) -> Invoice:
        def void() -> Invoice:
            invoice = self._get(self._invoices, invoice_id, "invoice")
            if invoice.status not in ("open", "uncollectible"):
                raise _invalid("You can only void an open or uncollectible invoice; this one "
                               f"is {invoice.status}.", code="invoice_not_editable")
            invoice.status = "void"
            self._event("invoice.voided", self._invoice_object(invoice), self._stamp())
            self._wrote("void_invoice", invoice.id)
            return self._invoice(invoice)

        return self._once(idempotency_key, ("void_invoice", invoice_id), void)

    @operation
    async def get_invoice(self, invoice_id: str) -> Invoice:
        return self._invoice(self._get(self._invoices, invoice_id, "invoice"))

    @operation
    async def list_invoices(
        self,
        *,
        customer_id: str | None = None,
        status: InvoiceStatus | None = None,
        subscription_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Invoice]:
        found = [
            self._invoice(i) for i in self._newest(self._invoices)
            if (customer_id is None or i.customer_id == customer_id)
            and (status is None or i.status == status)
            and (subscription_id is None or i.subscription_id == subscription_id)
        ]
        return self._page(found, cursor, min(limit, 100))

    # ------------------------------------------------------------------ credit notes

    @operation
    async def find_tax_rate(self, code: str) -> TaxRate | None:
        return next(
            (r for r in self._tax_rates.values() if r.code == code and r.active), None
        )

    @operation
    async def create_tax_rate(
        self, rate: TaxRate, *, idempotency_key: str | None = None
    ) -> TaxRate:
        def create() -> TaxRate:
            created = msgspec.structs.replace(rate, id=self._mint("txr"))
            self._tax_rates[created.id] = created
            self._wrote("create_tax_rate", created.id)
            return created

        return self._once(idempotency_key, ("create_tax_rate", rate), create)

    @operation
    async def create_credit_note(
        self, credit_note: CreditNoteCreate, *, idempotency_key: str | None = None
    ) -> CreditNote:
        invoice = self._get(self._invoices, credit_note.invoice_id, "invoice")
        if credit_note.currency != invoice.currency:
            raise InvalidRequest(
                f"credit note currency {credit_note.currency} is not that of invoice "
                f"{invoice.id}",
                errors=[FieldError(pointer="/currency",
                                   detail=f"the invoice is in {invoice.currency}")],
            )
        return self._once(idempotency_key, ("create_credit_note", credit_note),
                          lambda: self._credit(invoice, credit_note))

    @operation
    async def get_credit_note(self, credit_note_id: str) -> CreditNote:
        return self._get(self.credit_notes, credit_note_id, "credit note")

    @operation
    async def list_credit_notes(
        self,
        *,
        invoice_id: str | None = None,
        customer_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[CreditNote]:
        found = [n for n in self._newest(self.credit_notes)
                 if (invoice_id is None or n.invoice_id == invoice_id)
                 and (customer_id is None or n.customer_id == customer_id)]
        return self._page(found, cursor, min(limit, 100))

    # ------------------------------------------------------------------ events

    @operation
    async def get_event(self, event_id: str) -> EventEnvelope:
        return self._get(self.events, event_id, "event")

    @operation
    async def changed_since(self, since: datetime) -> BillingChanges:
        """The writes made at or after `since` (this fake keeps every one: no history limit)."""
        customers: set[str] = set()
        invoices: set[str] = set()
        notes: set[str] = set()
        for method, key in self._writes_since(since):
            if method in ("create_customer", "update_customer"):
                customers.add(key)
            elif method in ("create_invoice", "finalize_invoice", "pay_invoice", "void_invoice"):
                invoices.add(key)
                customers.add(self._invoices[key].customer_id)
            elif method == "create_credit_note":
                notes.add(key)
                customers.add(self.credit_notes[key].customer_id)
        return BillingChanges(customers=sorted(customers), invoices=sorted(invoices),
                              credit_notes=sorted(notes))

    # ================================================================== engine

    def _create_subscription(self, create: SubscriptionCreate,
                             canonical_id: str | None) -> Subscription:
        customer = self._param(self._customers, create.customer_id, "customer", "customer")
        for rate_id in create.tax_rate_ids:
            self._param(self._tax_rates, rate_id, "tax_rate", "default_tax_rates")
        prices = [self._sold_price(item, f"items[{index}]", recurring=True)
                  for index, item in enumerate(create.items)]
        extras = [self._sold_price(item, f"add_invoice_items[{index}]", recurring=False)
                  for index, item in enumerate(create.one_time_items)]
        _due_terms_subscription(create.collection_method, create.days_until_due)
        first = prices[0]
        if create.currency != first.currency:
            raise _invalid(f"The subscription currency ({create.currency.lower()}) does not "
                           f"match its prices ({first.currency.lower()}).", param="currency")
        for index, price in enumerate(prices):
            _check_price(price, first, param=f"items[{index}][price]",
                         inline=self._prices[price.id].inline)
        _set_currency(customer, first.currency, param="items[0][price]")
        at = self._stamp()
        metadata = {"deal_id": create.deal_id, "legal_entity": create.legal_entity,
                    "canonical_id": canonical_id, "correlation_id": create.correlation_id}
        sub = _Subscription(
            id=self._mint("sub"), customer_id=customer.id, currency=first.currency,
            status="incomplete" if create.collection_method == "charge_automatically"
            else "active",
            collection_method=create.collection_method, days_until_due=create.days_until_due,
            period_start=at, period_end=_add_interval(at, first),
            items=[_Item(id=self._mint("si"), price_id=price.id, quantity=item.quantity)
                   for item, price in zip(create.items, prices, strict=True)],
            metadata={k: v for k, v in metadata.items() if v is not None},
            tax_rate_ids=list(create.tax_rate_ids),
        )
        self._subs[sub.id] = sub
        # `add_invoice_items`: pending items of this subscription only, so its first invoice
        # bills them and no other subscription's invoice can.
        for item, price in zip(create.one_time_items, extras, strict=True):
            if price.currency != sub.currency:
                raise _invalid("The currency of an invoice item must match the currency of its "
                               f"invoice ({sub.currency.lower()}).", param="add_invoice_items")
            pending = _Pending(
                id=self._mint("ii"), customer_id=customer.id, currency=price.currency,
                amount=_line_amount(price, item.quantity), quantity=item.quantity,
                unit_amount=price.unit_amount,
                description=item.description or self._products[price.product_id].name,
                price_id=price.id, subscription_id=sub.id, period=(at, at))
            self._pending[pending.id] = pending
        self._event("customer.subscription.created", self._sub_object(sub), at)
        invoice = self._subscription_invoice(sub, reason="subscription_create", at=at,
                                             item_lines=True, include_unattached=True)
        self._bill_now(sub, invoice, at=at)
        self._wrote("create_subscription", sub.id)
        return self._subscription(sub)

    def _sold_price(self, item: SubscriptionItemInput, param: str, *, recurring: bool) -> Price:
        """The item's catalog price, or (sold at a unit price of its own) the inline price
        Stripe makes from `price_data`: the catalog price's product and interval, inactive."""
        catalog = self._param(self._prices, item.price_id, "price", f"{param}[price]").price
        if item.unit_amount is None:
            if not recurring and catalog.recurring_interval is not None:
                raise _invalid("The price specified is set to `type=recurring` but this field "
                               "only accepts prices with `type=one_time`.",
                               param=f"{param}[price]")
            return catalog
        return self._inline_price(catalog, item.unit_amount, recurring=recurring,
                                  product_code=item.product_code)

    def _inline_price(self, catalog: Price, unit_amount: int, *, recurring: bool,
                      product_code: str | None = None) -> Price:
        if recurring and catalog.recurring_interval is None:
            raise _invalid("Missing required param: price_data[recurring].",
                           param="price_data[recurring]", code="parameter_missing")
        rid = self._mint("price")
        price = Price(
            id=rid, product_id=catalog.product_id, currency=catalog.currency,
            unit_amount=unit_amount,
            recurring_interval=catalog.recurring_interval if recurring else None,
            interval_count=catalog.interval_count if recurring else 1,
            product_code=product_code or catalog.product_code, active=False,
            refs={VENDOR: rid},
        )
        self._prices[rid] = _Price(price=price, inline=True)
        return price

    def _amend(self, sub: _Subscription, wanted: dict[str, int] | None, cancel: bool | None,
               behavior: str) -> Subscription:
        if sub.status == "canceled":
            raise _invalid("A canceled subscription can only update its cancellation_details "
                           "and metadata.")
        at = self._stamp()
        before = self._subscription(sub)
        prorations = []
        if wanted is not None:
            reference = self._price(sub.items[0].price_id)
            held = {item.price_id for item in sub.items}
            for index, price_id in enumerate(wanted):
                if price_id in held:
                    continue  # an item kept: only its quantity is sent, not its price
                price = self._param(self._prices, price_id, "price",
                                    f"items[{index}][price]").price
                if price.currency != sub.currency:
                    raise _invalid(f"The price specified ({price.currency.lower()}) does not "
                                   f"match the subscription currency ({sub.currency.lower()}).",
                                   param=f"items[{index}][price]")
                _check_price(price, reference, param=f"items[{index}][price]")
            kept: list[_Item] = []
            for item in sub.items:
                old = (self._price(item.price_id), item.quantity)
                if item.price_id not in wanted:
                    new = None
                else:
                    new = (old[0], wanted[item.price_id])
                    kept.append(replace(item, quantity=wanted[item.price_id]))
                if behavior != "none" and (new is None or new[1] != old[1]):
                    prorations += self._prorate(sub, old, new, at=at)
            for price_id, quantity in wanted.items():
                if all(item.price_id != price_id for item in sub.items):
                    new_item = _Item(id=self._mint("si"), price_id=price_id, quantity=quantity)
                    kept.append(new_item)
                    if behavior != "none":
                        prorations += self._prorate(
                            sub, None, (self._price(price_id), quantity), at=at)
            sub.items = kept
        if cancel is not None:
            sub.cancel_at_period_end = cancel
        if self._subscription(sub) != before:
            self._event("customer.subscription.updated", self._sub_object(sub), at)
            self._wrote("update_subscription", sub.id)
        if behavior == "always_invoice" and prorations:
            invoice = self._subscription_invoice(sub, reason="subscription_update", at=at,
                                                 item_lines=False)
            self._bill_now(sub, invoice, at=at)
        return self._subscription(sub)

    def _prorate(self, sub: _Subscription, old: tuple[Price, int] | None,
                 new: tuple[Price, int] | None, *, at: int) -> list[_Pending]:
        start, end = sub.period_start, sub.period_end
        stamp = datetime.fromtimestamp(at, tz=UTC).strftime("%d %b %Y")
        created = []
        for sign, side, words in ((-1, old, "Unused"), (1, new, "Remaining")):
            if side is None:
                continue
            price, quantity = side
            amount = sign * _prorated(_line_amount(price, quantity), start=start, end=end, at=at)
            unit = Decimal(amount) / quantity if quantity else Decimal(0)
            item = _Pending(
                id=self._mint("ii"), customer_id=sub.customer_id, currency=price.currency,
                amount=amount, quantity=quantity,
                unit_amount=int(unit) if unit == unit.to_integral_value() else None,
                description=f"{words} time on {quantity} {_TIMES} "
                            f"{self._products[price.product_id].name} after {stamp}",
                price_id=price.id, subscription_id=sub.id, period=(at, end), proration=True,
            )
            self._pending[item.id] = item
            created.append(item)
        return created

    def _subscription_invoice(self, sub: _Subscription, *, reason: str, at: int,
                              item_lines: bool, include_unattached: bool = False) -> _Invoice:
        customer = self._customers[sub.customer_id]
        invoice = self._new_invoice(customer, sub, currency=sub.currency,
                                    collection_method=sub.collection_method,
                                    days_until_due=sub.days_until_due, reason=reason, at=at,
                                    auto_advance=True, tax_rates=list(sub.tax_rate_ids))
        for pending in self._oldest(self._pending):
            ours = pending.subscription_id == sub.id
            loose = include_unattached and pending.subscription_id is None
            if pending.customer_id == customer.id and pending.invoice_id is None and \
                    (ours or loose):
                self._attach(invoice, pending)
        if item_lines:
            for item in sub.items:
                price = self._price(item.price_id)
                amount = _line_amount(price, item.quantity)
                line_id = self._mint("il")
                invoice.lines.append(self._taxed(invoice, InvoiceLine(
                    id=line_id,
                    description=f"{item.quantity} {_TIMES} "
                                f"{self._products[price.product_id].name}",
                    quantity=item.quantity, unit_amount=price.unit_amount, amount=amount,
                    period_start=_time(sub.period_start), period_end=_time(sub.period_end),
                    product_id=price.product_id, price_id=price.id,
                    product_code=price.product_code, refs={VENDOR: line_id},
                )))
        _recompute(invoice)
        return invoice

    def _new_invoice(self, customer: _Customer, sub: _Subscription | None, *, currency: str,
                     collection_method: str, days_until_due: int | None, reason: str, at: int,
                     auto_advance: bool, tax_rates: list[str]) -> _Invoice:
        invoice = _Invoice(
            id=self._mint("in"), customer_id=customer.id,
            subscription_id=sub.id if sub else None, currency=currency,
            collection_method=collection_method, days_until_due=days_until_due,
            billing_reason=reason, created=at, auto_advance=auto_advance, description=None,
            subscription_metadata=dict(sub.metadata) if sub else None,
            default_tax_rates=tax_rates,
        )
        self._invoices[invoice.id] = invoice
        self._event("invoice.created", self._invoice_object(invoice), at)
        return invoice

    def _attach(self, invoice: _Invoice, item: _Pending) -> None:
        if item.currency != invoice.currency:
            raise _invalid("The currency of an invoice item must match the currency of its "
                           f"invoice ({invoice.currency.lower()}).", param="currency")
        item.invoice_id = invoice.id
        line = self._pending_line(item)
        invoice.lines.append(self._taxed(invoice, msgspec.structs.replace(line,
                                                                          id=self._mint("il"))))
        _recompute(invoice)

    def _taxed(self, invoice: _Invoice, line: InvoiceLine) -> InvoiceLine:
        """The line taxed by the invoice's default tax rates (exclusive: each rate adds
        amount x percentage, rounded half up once per line, as Stripe rounds it)."""
        rates = [self._tax_rates[rid] for rid in invoice.default_tax_rates]
        if not rates:
            return line
        return msgspec.structs.replace(
            line,
            tax_rate_bps=sum(rate.rate_bps for rate in rates),
            tax_amount=sum(_to_minor(Decimal(line.amount) * rate.rate_bps / 10_000)
                           for rate in rates),
            tax_code=rates[0].code,
        )

    def _finalize(self, invoice: _Invoice, *, at: int) -> None:
        if invoice.status != "draft":
            raise _invalid("This invoice is already finalized, you can't re-finalize a "
                           "non-draft invoice.", code="invoice_not_editable")
        customer = self._customers[invoice.customer_id]
        total = invoice.subtotal + invoice.tax
        if total < 0:
            # A crediting invoice (a proration down) adds its credit to the customer balance.
            invoice.starting_balance = customer.balance
            customer.balance += total
        elif customer.balance < 0:
            applied = min(-customer.balance, total)
            invoice.starting_balance = customer.balance
            customer.balance += applied
            _recompute(invoice)
        invoice.number = f"{customer.invoice_prefix}-{customer.next_invoice_sequence:04d}"
        customer.next_invoice_sequence += 1
        invoice.status = "open"
        invoice.finalized_at = at
        if invoice.collection_method == "send_invoice" and invoice.due_date is None:
            invoice.due_date = at + 86_400 * (invoice.days_until_due or 0)
        self._event("invoice.finalized", self._invoice_object(invoice), at)
        if invoice.amount_due == 0:
            self._mark_paid(invoice, at=at)

    def _bill_now(self, sub: _Subscription, invoice: _Invoice, *, at: int) -> None:
        self._finalize(invoice, at=at)
        if invoice.status == "open" and sub.collection_method == "charge_automatically":
            self._collect(invoice, at=at, payment_method=None, raise_on=False)

    def _collect(self, invoice: _Invoice, *, at: int, payment_method: str | None,
                 raise_on: bool) -> None:
        if invoice.amount_remaining == 0:
            self._mark_paid(invoice, at=at)
            return
        method = payment_method or self.default_payment_methods.get(
            invoice.customer_id, DEFAULT_PAYMENT_METHOD)
        if not method.startswith("pm_card_"):
            raise _invalid(f"No such PaymentMethod: '{method}'", param="payment_method",
                           code="resource_missing")
        invoice.attempted = True
        decline = DECLINING_PAYMENT_METHODS.get(method)
        if decline is None:
            self._mark_paid(invoice, at=at)
            return
        self._customers[invoice.customer_id].delinquent = True
        self._event("invoice.payment_failed", self._invoice_object(invoice), at)
        self._subscription_follows(invoice, paid=False, at=at)
        if raise_on:
            code, message = decline
            raise UpstreamInvalid(
                f"Stripe invoice {invoice.id} pay answered 402 (card_error/card_declined): "
                f"{message}", vendor=VENDOR, status=402, code=code,
                errors=[FieldError(pointer="payment_method", detail=message)],
            )

    def _mark_paid(self, invoice: _Invoice, *, at: int) -> None:
        invoice.amount_paid += invoice.amount_remaining
        invoice.amount_remaining = 0
        invoice.status = "paid"
        invoice.paid_at = at
        customer = self._customers[invoice.customer_id]
        customer.delinquent = any(
            other.customer_id == customer.id and other.status == "open" and other.attempted
            for other in self._invoices.values()
        )
        self._event("invoice.paid", self._invoice_object(invoice), at)
        self._subscription_follows(invoice, paid=True, at=at)

    def _subscription_follows(self, invoice: _Invoice, *, paid: bool, at: int) -> None:
        sub = self._subs.get(invoice.subscription_id or "")
        if sub is None or sub.status == "canceled":
            return
        status: str | None
        if paid:
            status = "active" if sub.status in ("incomplete", "past_due", "unpaid") else None
        elif invoice.billing_reason == "subscription_create":
            status = "incomplete"
        else:
            status = "past_due" if sub.status == "active" else None
        if status is not None and status != sub.status:
            sub.status = status
            self._event("customer.subscription.updated", self._sub_object(sub), at)

    def _credit(self, invoice: _Invoice, create: CreditNoteCreate) -> CreditNote:
        if invoice.status not in ("open", "paid", "uncollectible"):
            raise _invalid("You can only create a credit note for an open or paid invoice.",
                           param="invoice")
        lines: list[CreditNoteLine] = []
        if create.amount is not None:
            lines.append(self._custom_credit_line(create.memo or "Credit", 1, create.amount))
        for entry in create.lines:
            if entry.invoice_line_id:
                line = next((ln for ln in invoice.lines if ln.id == entry.invoice_line_id), None)
                if line is None:
                    raise _invalid(f"No such invoice line item: '{entry.invoice_line_id}'",
                                   param="lines[0][invoice_line_item]", code="resource_missing")
                if entry.amount > line.amount:
                    raise _invalid("The credit amount for a line cannot exceed the line's "
                                   "amount.", param="lines[0][amount]")
                rid = self._mint("cnli")
                lines.append(CreditNoteLine(id=rid, description=line.description,
                                            quantity=line.quantity or 1, unit_amount=None,
                                            amount=entry.amount, invoice_line_id=line.id,
                                            refs={VENDOR: rid}))
            else:
                quantity = entry.quantity if entry.amount % entry.quantity == 0 else 1
                lines.append(self._custom_credit_line(entry.description or "Credit", quantity,
                                                      entry.amount // quantity))
        total = sum(line.amount for line in lines)
        available = invoice.amount_paid - invoice.post_payment_credit \
            if invoice.status == "paid" else invoice.amount_remaining
        if total <= 0 or total > available:
            raise _invalid(f"The credit note amount ({total}) must be positive and at most the "
                           "amount that can still be credited on this invoice "
                           f"({available}).", param="amount")
        at = self._stamp()
        customer = self._customers[invoice.customer_id]
        if invoice.status == "paid":
            invoice.post_payment_credit += total
            customer.balance -= total
        else:
            invoice.pre_payment_credit += total
            _recompute(invoice)
            if invoice.amount_remaining == 0:
                self._mark_paid(invoice, at=at)
        rid = self._mint("cn")
        reason = create.reason
        note = CreditNote(
            id=rid, invoice_id=invoice.id, customer_id=invoice.customer_id,
            currency=invoice.currency, amount=total, reason=reason, status="issued",
            lines=lines, memo=create.memo, created_at=_time(at),
            legal_entity=customer.metadata.get("legal_entity") or UNASSIGNED_ENTITY,
            refs={VENDOR: rid},
        )
        self.credit_notes[rid] = note
        self._event("credit_note.created", {"id": rid, "object": "credit_note",
                                            "invoice": invoice.id,
                                            "customer": invoice.customer_id, "amount": total,
                                            "currency": invoice.currency.lower()}, at)
        self._wrote("create_credit_note", rid)
        return note

    def _custom_credit_line(self, description: str, quantity: int, unit: int) -> CreditNoteLine:
        rid = self._mint("cnli")
        return CreditNoteLine(id=rid, description=description, quantity=quantity,
                              unit_amount=unit, amount=unit * quantity, refs={VENDOR: rid})

    # ================================================================== plumbing

    def _once(self, key: str | None, fingerprint: Hashable, write: Callable[[], R]) -> R:
        """Run `write` once per idempotency key; a 402 or 404 answer is replayed as well."""
        fingerprint = _hashable(fingerprint)
        replayed = self._replayed(key, fingerprint)
        if replayed is not None:
            return replayed  # type: ignore[no-any-return]
        try:
            outcome = write()
        except (UpstreamNotFound, UpstreamInvalid) as error:
            if isinstance(error, UpstreamNotFound) or error.status == 402:
                self._remember(key, fingerprint, error)
            raise
        self._remember(key, fingerprint, outcome)
        return outcome

    def _mint(self, prefix: str) -> str:
        return f"{prefix}_F{self._next(prefix):013d}"

    def _stamp(self) -> int:
        return int(self.now().timestamp())

    def _get(self, records: dict[str, T], rid: str, label: str) -> T:
        if rid not in records:
            raise UpstreamNotFound(
                f"Stripe {label} {rid} answered 404 (invalid_request_error/resource_missing): "
                f"No such {label}: '{rid}'", vendor=VENDOR, status=404, code="resource_missing",
            )
        return records[rid]

    def _param(self, records: dict[str, T], rid: str, label: str, param: str) -> T:
        if rid not in records:
            raise _param_missing(label, rid, param)
        return records[rid]

    def _price(self, price_id: str) -> Price:
        return self._prices[price_id].price

    def _product_by_code(self, code: str) -> Product | None:
        return next((p for p in self._newest(self._products) if p.code == code), None)

    def _newest(self, records: dict[str, T]) -> list[T]:
        return list(reversed(records.values()))

    @staticmethod
    def _oldest(records: dict[str, T]) -> list[T]:
        return list(records.values())

    def _event(self, kind: str, obj: dict[str, Any], at: int) -> None:
        rid = self._mint("evt")
        self.events[rid] = EventEnvelope(
            specversion="1.0", id=rid, source=VENDOR, type=kind, subject=obj.get("id"),
            time=_time(at), datacontenttype="application/json", data={"object": obj},
        )

    def _invoice_object(self, invoice: _Invoice) -> dict[str, Any]:
        return {"id": invoice.id, "object": "invoice", "customer": invoice.customer_id,
                "subscription": invoice.subscription_id, "status": invoice.status,
                "currency": invoice.currency.lower(), "number": invoice.number,
                "total": invoice.subtotal + invoice.tax, "amount_due": invoice.amount_due,
                "amount_paid": invoice.amount_paid,
                "amount_remaining": invoice.amount_remaining,
                "billing_reason": invoice.billing_reason, "attempted": invoice.attempted,
                "metadata": dict(invoice.metadata)}

    def _sub_object(self, sub: _Subscription) -> dict[str, Any]:
        return {"id": sub.id, "object": "subscription", "customer": sub.customer_id,
                "status": sub.status, "currency": sub.currency.lower(),
                "cancel_at_period_end": sub.cancel_at_period_end,
                "metadata": dict(sub.metadata)}

    # ------------------------------------------------------------------ views

    def _customer(self, c: _Customer) -> Customer:
        meta = c.metadata
        refs = {VENDOR: c.id}
        for system, key in (("salesforce", "crm_account_id"), ("netsuite", "netsuite_id"),
                            ("canonical", "canonical_id")):
            if meta.get(key):
                refs[system] = meta[key]
        terms = meta.get("payment_terms_days")
        return Customer(
            id=c.id, legal_name=c.name or c.email or c.id,
            legal_entity=meta.get("legal_entity") or UNASSIGNED_ENTITY,
            currency=(c.currency or meta.get("currency") or "USD").upper(),
            country=c.address.country if c.address else None, billing_address=c.address,
            shipping_address=c.shipping, tax_id=meta.get("tax_id"), email=c.email,
            phone=c.phone, website=meta.get("website"),
            payment_terms_days=int(terms) if terms and terms.isdigit() else None,
            payment_status="past_due" if c.delinquent else "current", refs=refs,
        )

    def _subscription(self, sub: _Subscription) -> Subscription:
        customer = self._customers[sub.customer_id]
        return Subscription(
            id=sub.id, customer_id=sub.customer_id, status=sub.status,  # type: ignore[arg-type]
            currency=sub.currency, current_period_start=_time(sub.period_start),
            current_period_end=_time(sub.period_end),
            cancel_at_period_end=sub.cancel_at_period_end, canceled_at=_time(sub.canceled_at),
            collection_method=sub.collection_method,  # type: ignore[arg-type]
            days_until_due=sub.days_until_due,
            items=[self._sub_item(item) for item in sub.items], deal_id=sub.metadata.get(
                "deal_id"), correlation_id=sub.metadata.get("correlation_id"),
            legal_entity=sub.metadata.get("legal_entity")
            or customer.metadata.get("legal_entity") or UNASSIGNED_ENTITY,
            refs={VENDOR: sub.id},
        )

    def _sub_item(self, item: _Item) -> SubscriptionItem:
        price = self._price(item.price_id)
        return SubscriptionItem(id=item.id, price_id=price.id, product_id=price.product_id,
                                product_code=price.product_code, quantity=item.quantity,
                                unit_amount=price.unit_amount, refs={VENDOR: item.id})

    def _invoice(self, invoice: _Invoice) -> Invoice:
        customer = self._customers[invoice.customer_id]
        metadata = {**(invoice.subscription_metadata or {}), **invoice.metadata}
        refs = {VENDOR: invoice.id}
        if invoice.metadata.get("netsuite_id"):
            refs["netsuite"] = invoice.metadata["netsuite_id"]
        return Invoice(
            id=invoice.id, customer_id=invoice.customer_id,
            subscription_id=invoice.subscription_id, deal_id=metadata.get("deal_id"),
            correlation_id=metadata.get("correlation_id"), number=invoice.number,
            status=invoice.status, currency=invoice.currency, lines=list(invoice.lines),
            subtotal=invoice.subtotal, tax=invoice.tax, total=invoice.subtotal + invoice.tax,
            amount_due=invoice.amount_due, amount_paid=invoice.amount_paid,
            amount_remaining=invoice.amount_remaining,
            due_date=None if invoice.due_date is None
            else datetime.fromtimestamp(invoice.due_date, tz=UTC).date(),
            issued_at=_time(invoice.finalized_at), paid_at=_time(invoice.paid_at),
            legal_entity=metadata.get("legal_entity")
            or customer.metadata.get("legal_entity") or UNASSIGNED_ENTITY,
            sales_order_id=invoice.metadata.get("netsuite_sales_order_id"),
            tax_note=self._tax_note(invoice), refs=refs,
        )

    def _tax_note(self, invoice: _Invoice) -> str | None:
        """Why a line is not taxed, as printed: the reasons of the zero rates it applies."""
        notes = [rate.reason for rid in invoice.default_tax_rates
                 if (rate := self._tax_rates[rid]).rate_bps == 0 and rate.reason]
        return "; ".join(dict.fromkeys(notes)) if notes and invoice.lines else None

    def _pending_line(self, item: _Pending) -> InvoiceLine:
        price = self._prices[item.price_id].price if item.price_id else None
        unit = price.unit_amount if price is not None and not item.proration \
            else item.unit_amount
        return InvoiceLine(
            id=item.id, description=item.description, quantity=item.quantity, unit_amount=unit,
            amount=item.amount, period_start=_time(item.period[0]),
            period_end=_time(item.period[1]),
            product_id=price.product_id if price else None,
            price_id=price.id if price else None,
            product_code=price.product_code if price else None, refs={VENDOR: item.id},
        )


# ---------------------------------------------------------------------- pure helpers


def _time(stamp: int | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, tz=UTC)


def _recompute(invoice: _Invoice) -> None:
    invoice.subtotal = sum(line.amount for line in invoice.lines)
    invoice.tax = sum(line.tax_amount or 0 for line in invoice.lines)
    due = max(0, invoice.subtotal + invoice.tax + invoice.starting_balance
              - invoice.pre_payment_credit)
    invoice.amount_due = due
    invoice.amount_remaining = max(0, due - invoice.amount_paid)


def _to_minor(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _line_amount(price: Price, quantity: int) -> int:
    """What `quantity` units of `price` cost for one period (per unit or by its tiers)."""
    if price.billing_scheme != "tiered":
        return (price.unit_amount or 0) * quantity
    tiers: list[PriceTier] = price.tiers
    if price.tiers_mode == "volume":
        for tier in tiers:
            if tier.up_to is None or quantity <= tier.up_to:
                return (tier.unit_amount or 0) * quantity + (tier.flat_amount or 0)
        return 0
    total, floor = 0, 0
    for tier in tiers:
        if quantity <= floor:
            break
        ceiling = quantity if tier.up_to is None else min(quantity, tier.up_to)
        total += (tier.unit_amount or 0) * (ceiling - floor) + (tier.flat_amount or 0)
        floor = ceiling
    return total


def _prorated(amount: int, *, start: int, end: int, at: int) -> int:
    if end <= start:
        return 0
    moment = min(max(at, start), end)
    return _to_minor(Decimal(amount) * Decimal(end - moment) / Decimal(end - start))


def _add_interval(stamp: int, price: Price) -> int:
    interval, count = price.recurring_interval or "month", price.interval_count
    moment = datetime.fromtimestamp(stamp, tz=UTC)
    if interval == "day":
        return stamp + 86_400 * count
    if interval == "week":
        return stamp + 7 * 86_400 * count
    months = count if interval == "month" else 12 * count
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def _check_price(price: Price, reference: Price, *, param: str, inline: bool = False) -> None:
    if price.recurring_interval is None:
        raise _invalid("The price specified is set to `type=one_time` but this field only "
                       "accepts prices with `type=recurring`.", param=param)
    if not price.active and not inline:  # an inline (`price_data`) price is made inactive
        raise _invalid(f"The price specified ({price.id}) is inactive.", param=param)
    if price.currency != reference.currency:
        raise _invalid(f"The price specified ({price.currency.lower()}) does not match the "
                       f"subscription currency ({reference.currency.lower()}).", param=param)
    if (price.recurring_interval, price.interval_count) != (reference.recurring_interval,
                                                            reference.interval_count):
        raise _invalid("All prices on a subscription must have the same `recurring.interval` "
                       "and `recurring.interval_count`.", param=param)


def _set_currency(customer: _Customer, currency: str, *, param: str) -> None:
    if customer.currency is None:
        customer.currency = currency
    elif customer.currency != currency:
        raise _invalid(
            "You cannot combine currencies on a single customer. This customer has had a "
            f"subscription or payment in {customer.currency.lower()}, but you are trying to "
            f"pay in {currency.lower()}.", param=param)


def _due_terms(method: str, days: int | None) -> None:
    if method == "charge_automatically" and days is not None:
        raise _invalid("Invoices with collection_method=charge_automatically cannot have a due "
                       "date.", param="days_until_due")
    if method == "send_invoice" and days is None:
        raise _invalid("Missing required param: days_until_due (or due_date) for send_invoice.",
                       param="days_until_due", code="parameter_missing")


def _due_terms_subscription(method: str, days: int | None) -> None:
    if method == "send_invoice" and days is None:
        raise _invalid("Missing required param: days_until_due (needed with "
                       "collection_method=send_invoice).", param="days_until_due",
                       code="parameter_missing")
    if method == "charge_automatically" and days is not None:
        raise _invalid("days_until_due can only be set when collection_method=send_invoice.",
                       param="days_until_due")


def _address(given: AddressInput | None, *, country: str | None) -> Address | None:
    if given is None and country is None:
        return None
    return _address_of(Address(
        line1=given.line1 if given else None, line2=given.line2 if given else None,
        city=given.city if given else None, region=given.region if given else None,
        postal_code=given.postal_code if given else None,
        country=(given.country if given and given.country else None) or country,
    ))


def _address_of(address: Address) -> Address | None:
    values = (address.line1, address.line2, address.city, address.region, address.postal_code,
              address.country)
    return address if any(values) else None


def _invalid(message: str, *, param: str | None = None, code: str | None = None,
             status: int = 400) -> UpstreamInvalid:
    return UpstreamInvalid(
        f"Stripe answered {status} (invalid_request_error{'/' + code if code else ''}): "
        f"{message}", vendor=VENDOR, status=status, code=code,
        errors=[FieldError(pointer=param, detail=message)] if param else [],
    )


def _param_missing(label: str, rid: str, param: str) -> UpstreamInvalid:
    return _invalid(f"No such {label}: '{rid}'", param=param, code="resource_missing")


def _hashable(value: object) -> Hashable:
    """A request's parameters as a comparable key (Structs by their encoding)."""
    if isinstance(value, tuple):
        return tuple(_hashable(part) for part in value)
    if isinstance(value, msgspec.Struct):
        return msgspec.json.encode(value)
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return tuple(_hashable(part) for part in value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value
