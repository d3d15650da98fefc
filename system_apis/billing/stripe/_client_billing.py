"""Stripe subscriptions, invoice items, invoices and credit notes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from contracts.errors import FieldError, InvalidRequest
from contracts.money import Money
from contracts.v1 import (
    CollectionMethod,
    CreditNote,
    CreditNoteCreate,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Page,
    Subscription,
    SubscriptionCreate,
    SubscriptionPatch,
    TaxRate,
)
from system_apis.billing.port import ProrationBehavior, SubscriptionFilter
from system_apis.billing.stripe import mapping
from system_apis.billing.stripe._client_base import ClientBase, created_range, to_page
from system_apis.billing.stripe._client_http import Transport
from system_apis.billing.stripe._form import FormParams
from system_apis.billing.stripe._wire import (
    CreditNoteWire,
    InvoiceLineWire,
    InvoiceWire,
    PriceWire,
    ProductWire,
    SubscriptionWire,
    TaxRateWire,
)

__all__ = ["BillingOperations", "ProrationBehavior"]


class BillingOperations(ClientBase):
    """Billing operations of `StripeClient`."""

    # subscriptions -----------------------------------------------------------------------------

    async def create_subscription(
        self,
        subscription: SubscriptionCreate,
        *,
        canonical_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Subscription:
        priced = {
            item.price_id
            for item in (*subscription.items, *subscription.one_time_items)
            if item.unit_amount is not None
        }
        # An inline price needs the catalog price's product and interval.
        catalog = {price_id: await self._price_wire(price_id) for price_id in sorted(priced)}
        params = {
            **mapping.from_subscription_create(
                subscription, canonical_id=canonical_id, catalog=catalog
            ),
            "expand": ["customer"],
        }
        wire = await self.post_json(
            "/v1/subscriptions", params, SubscriptionWire, idempotency_key, "subscription create"
        )
        return mapping.to_subscription(wire)

    async def get_subscription(self, subscription_id: str) -> Subscription:
        return mapping.to_subscription(await self._subscription_wire(subscription_id))

    async def list_subscriptions(
        self,
        *,
        customer_id: str | None = None,
        status: SubscriptionFilter | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Subscription]:
        query = {"customer": customer_id, "status": status, "expand": ["data.customer"]}
        wire = await self.list_page(
            "/v1/subscriptions", query, SubscriptionWire, cursor, limit, "subscriptions"
        )
        return to_page(wire, mapping.to_subscription)

    async def update_subscription(
        self,
        subscription_id: str,
        patch: SubscriptionPatch,
        *,
        proration_behavior: ProrationBehavior = "create_prorations",
        idempotency_key: str | None = None,
    ) -> Subscription:
        """Apply an amendment: item quantities and prices (prorated as asked), period-end cancel."""
        current = await self._subscription_wire(subscription_id)
        params = mapping.from_subscription_patch(
            patch, current=current, proration_behavior=proration_behavior
        )
        if not params:
            return mapping.to_subscription(current)
        wire = await self.post_json(
            f"/v1/subscriptions/{subscription_id}",
            {**params, "expand": ["customer"]},
            SubscriptionWire,
            idempotency_key,
            f"subscription {subscription_id} update",
            template="/v1/subscriptions/{id}",
        )
        return mapping.to_subscription(wire)

    async def cancel_subscription(
        self,
        subscription_id: str,
        *,
        prorate: bool = False,
        invoice_now: bool = False,
        idempotency_key: str | None = None,
    ) -> Subscription:
        params = {
            "prorate": prorate or None,
            "invoice_now": invoice_now or None,
            "expand": ["customer"],
        }
        content = await self.transport.call(
            "DELETE",
            f"/v1/subscriptions/{subscription_id}",
            template="/v1/subscriptions/{id}",
            params=params,
            idempotency_key=idempotency_key,
            what=f"subscription {subscription_id} cancel",
        )
        return mapping.to_subscription(
            Transport.decode(content, SubscriptionWire, "subscription cancel")
        )

    # invoices ----------------------------------------------------------------------------------

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
        """A one-off charge (a one-time price, or an amount) for the customer's next invoice,
        or for `invoice_id`; `unit_amount` prices `price_id`'s product inline."""
        if (price_id is None) == (amount is None):
            raise InvalidRequest(
                "an invoice item needs either a price or an amount",
                errors=[FieldError(pointer="price_id", detail="give price_id or amount")],
            )
        params: dict[str, Any] = {
            "customer": customer_id,
            "price": price_id,
            "quantity": quantity,
            "description": description,
            "subscription": subscription_id,
            "invoice": invoice_id,
            "metadata": {mapping.META_DEAL: deal_id} if deal_id else None,
            "expand": ["price"],
        }
        if price_id is not None and unit_amount is not None:
            listed = await self._price_wire(price_id)
            product = listed.product.id if isinstance(listed.product, ProductWire) else (
                listed.product
            )
            params["price"] = None
            params["price_data"] = {
                "currency": listed.currency,
                "product": product,
                "unit_amount": mapping.to_stripe_amount(unit_amount, listed.currency.upper()),
            }
        if amount is not None:
            params.update(
                quantity=None,
                amount=mapping.to_stripe_amount(amount.amount, amount.currency),
                currency=amount.currency.lower(),
            )
        wire = await self.post_json(
            "/v1/invoiceitems", params, _InvoiceItemWire, idempotency_key, "invoice item create"
        )
        line = InvoiceLineWire(
            id=wire.id,
            amount=wire.amount,
            currency=wire.currency,
            description=wire.description,
            quantity=wire.quantity,
            price=wire.price,
            proration=wire.proration,
            subscription=wire.subscription,
            invoice_item=wire.id,
            unit_amount_excluding_tax=wire.unit_amount_decimal,
        )
        return mapping.to_invoice_line(line, wire.currency)

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
        metadata = {
            mapping.META_DEAL: deal_id,
            mapping.META_LEGAL_ENTITY: legal_entity,
            mapping.META_CORRELATION: correlation_id,
        }
        params = {
            "currency": currency.lower() if currency else None,
            "metadata": {k: v for k, v in metadata.items() if v is not None} or None,
            "default_tax_rates": list(tax_rate_ids) or None,
            "customer": customer_id,
            "collection_method": collection_method,
            "days_until_due": days_until_due,
            "subscription": subscription_id,
            "pending_invoice_items_behavior": "include" if include_pending_items else "exclude",
            "auto_advance": auto_advance,
            "description": description,
        }
        return await self._invoice_post(
            "/v1/invoices", params, idempotency_key, "invoice create", "/v1/invoices"
        )

    # tax rates ---------------------------------------------------------------------------------

    async def find_tax_rate(self, code: str) -> TaxRate | None:
        """The active tax rate standing for the company's tax code `code` (metadata)."""
        async for wire in self.iterate(
            "/v1/tax_rates", {"active": True}, TaxRateWire, "tax rates"
        ):
            if wire.metadata.get(mapping.META_TAX_CODE) == code:
                return mapping.to_tax_rate(wire)
        return None

    async def create_tax_rate(
        self, rate: TaxRate, *, idempotency_key: str | None = None
    ) -> TaxRate:
        wire = await self.post_json(
            "/v1/tax_rates", mapping.from_tax_rate(rate), TaxRateWire, idempotency_key,
            f"tax rate {rate.code or rate.display_name} create",
        )
        return mapping.to_tax_rate(wire)

    async def get_invoice(self, invoice_id: str) -> Invoice:
        wire = await self.get_json(
            f"/v1/invoices/{invoice_id}",
            InvoiceWire,
            f"invoice {invoice_id}",
            template="/v1/invoices/{id}",
            # The lines' products carry the catalog product codes the ERP books them under.
            expand=["customer", "lines.data.price.product"],
        )
        return await self._full_invoice(wire)

    async def list_invoices(
        self,
        *,
        customer_id: str | None = None,
        status: InvoiceStatus | None = None,
        subscription_id: str | None = None,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Invoice]:
        query = {
            "customer": customer_id,
            "status": status,
            "subscription": subscription_id,
            "created": created_range(created_gte, created_lte),
            "expand": ["data.customer"],
        }
        wire = await self.list_page("/v1/invoices", query, InvoiceWire, cursor, limit, "invoices")
        invoices = [await self._full_invoice(item) for item in wire.data]
        return Page(data=invoices, next_cursor=wire.next_cursor)

    async def finalize_invoice(
        self, invoice_id: str, *, idempotency_key: str | None = None
    ) -> Invoice:
        return await self._invoice_action(invoice_id, "finalize", {}, idempotency_key)

    async def pay_invoice(
        self,
        invoice_id: str,
        *,
        payment_method: str | None = None,
        paid_out_of_band: bool = False,
        idempotency_key: str | None = None,
    ) -> Invoice:
        """Collect an open invoice now; a decline raises `UpstreamInvalid` (code: decline code)."""
        params = {"payment_method": payment_method, "paid_out_of_band": paid_out_of_band or None}
        return await self._invoice_action(invoice_id, "pay", params, idempotency_key)

    async def void_invoice(self, invoice_id: str, *, idempotency_key: str | None = None) -> Invoice:
        return await self._invoice_action(invoice_id, "void", {}, idempotency_key)

    async def mark_invoice_uncollectible(
        self, invoice_id: str, *, idempotency_key: str | None = None
    ) -> Invoice:
        return await self._invoice_action(invoice_id, "mark_uncollectible", {}, idempotency_key)

    async def send_invoice(self, invoice_id: str, *, idempotency_key: str | None = None) -> Invoice:
        return await self._invoice_action(invoice_id, "send", {}, idempotency_key)

    # credit notes ------------------------------------------------------------------------------

    async def create_credit_note(
        self, credit_note: CreditNoteCreate, *, idempotency_key: str | None = None
    ) -> CreditNote:
        invoice = await self.get_json(
            f"/v1/invoices/{credit_note.invoice_id}",
            InvoiceWire,
            f"invoice {credit_note.invoice_id}",
            template="/v1/invoices/{id}",
        )
        params = {
            **mapping.from_credit_note_create(credit_note, invoice=invoice),
            "expand": ["customer"],
        }
        wire = await self.post_json(
            "/v1/credit_notes", params, CreditNoteWire, idempotency_key, "credit note create"
        )
        return mapping.to_credit_note(wire)

    async def get_credit_note(self, credit_note_id: str) -> CreditNote:
        wire = await self.get_json(
            f"/v1/credit_notes/{credit_note_id}",
            CreditNoteWire,
            f"credit note {credit_note_id}",
            template="/v1/credit_notes/{id}",
            expand=["customer"],
        )
        return mapping.to_credit_note(wire)

    async def list_credit_notes(
        self,
        *,
        invoice_id: str | None = None,
        customer_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[CreditNote]:
        query = {"invoice": invoice_id, "customer": customer_id, "expand": ["data.customer"]}
        wire = await self.list_page(
            "/v1/credit_notes", query, CreditNoteWire, cursor, limit, "credit notes"
        )
        return to_page(wire, mapping.to_credit_note)

    async def _price_wire(self, price_id: str) -> PriceWire:
        return await self.get_json(
            f"/v1/prices/{price_id}", PriceWire, f"price {price_id}", template="/v1/prices/{id}"
        )

    async def _subscription_wire(self, subscription_id: str) -> SubscriptionWire:
        return await self.get_json(
            f"/v1/subscriptions/{subscription_id}",
            SubscriptionWire,
            f"subscription {subscription_id}",
            template="/v1/subscriptions/{id}",
            expand=["customer"],
        )

    async def _invoice_action(
        self, invoice_id: str, action: str, params: FormParams, idempotency_key: str | None
    ) -> Invoice:
        return await self._invoice_post(
            f"/v1/invoices/{invoice_id}/{action}",
            params,
            idempotency_key,
            f"invoice {invoice_id} {action}",
            f"/v1/invoices/{{id}}/{action}",
        )

    async def _invoice_post(
        self, path: str, params: FormParams, idempotency_key: str | None, what: str, template: str
    ) -> Invoice:
        wire = await self.post_json(
            path,
            {**params, "expand": ["customer"]},
            InvoiceWire,
            idempotency_key,
            what,
            template=template,
        )
        return await self._full_invoice(wire)

    async def _full_invoice(self, wire: InvoiceWire) -> Invoice:
        """The invoice with every line: Stripe embeds the first page and pages the rest."""
        if not wire.lines.has_more:
            return mapping.to_invoice(wire)
        path = f"/v1/invoices/{wire.id}/lines"
        lines = [
            line
            async for line in self.iterate(
                path,
                {},
                InvoiceLineWire,
                f"invoice {wire.id} lines",
                template="/v1/invoices/{id}/lines",
            )
        ]
        return mapping.to_invoice(wire, lines=lines)


class _InvoiceItemWire(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    amount: int = 0
    currency: str = ""
    description: str | None = None
    quantity: int | None = None
    price: PriceWire | None = None
    proration: bool = False
    subscription: str | None = None
    unit_amount_decimal: str | None = None
