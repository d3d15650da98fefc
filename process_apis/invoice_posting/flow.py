"""Invoice posting: what Stripe bills is booked in NetSuite, the financial system of record.

`invoice.finalized`: the NetSuite invoice is upserted (externalId = the Stripe invoice id) from
the sales order of the subscription's opportunity (externalId `q2c:{opportunity_id}`), else the
customer's latest order in the invoice's currency, so it lands in that order's subsidiary and
currency. `invoice.paid`: the invoice is posted if it is not yet, then a customer payment
(externalId `pay:{invoice id}`) applied to it marks it paid in full. Both are upserts, so a
replayed flow writes nothing twice. No compensation: a failure (no order, amounts that differ
from the order's) waits in the exception queue for finance.
"""

from __future__ import annotations

from typing import Any, Final

from contracts.errors import Conflict, UpstreamNotFound
from contracts.v1 import Invoice, Payment, SalesOrder
from process_apis.customer_master.flow import canonical_customer_id
from process_apis.engine.durable import (
    SHORT_OUTAGE,
    FlowInstance,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
)
from process_apis.engine.flow_engine import FlowEngine
from process_apis.webhooks.intake import FlowStart, WebhookDispatcher, WebhookEvent
from system_apis.billing.port import BillingPort
from system_apis.erp.port import ErpPort

__all__ = [
    "FINALIZED",
    "FLOW_TYPE",
    "PAID",
    "PAYMENT_FLOW_TYPE",
    "InvoicePostingFlows",
    "build",
    "order_external_id",
    "payment_external_id",
    "stripe_legal_entity",
]

FLOW_TYPE: Final = "invoice_posting"
PAYMENT_FLOW_TYPE: Final = "payment_posting"
FINALIZED: Final = "invoice.finalized"
PAID: Final = "invoice.paid"
PAGE: Final = 100



def order_external_id(opportunity_id: str) -> str:
    """The sales order quote-to-cash books for an opportunity."""
    return f"q2c:{opportunity_id}"


def payment_external_id(stripe_invoice_id: str) -> str:
    return f"pay:{stripe_invoice_id}"


def stripe_legal_entity(event: WebhookEvent) -> str | None:
    """The legal entity a Stripe invoice event names (its own or its subscription's metadata),
    for the flow record; the flow itself reads the entity from the platforms."""
    for holder in (event.object, event.object.get("subscription_details") or {}):
        metadata = holder.get("metadata") if isinstance(holder, dict) else None
        if isinstance(metadata, dict) and isinstance(metadata.get("legal_entity"), str):
            return str(metadata["legal_entity"])
    return None


@flow_class("invoice_posting")
class InvoicePostingFlows(FlowInstance):
    """Stripe invoices and payments into NetSuite."""

    def __init__(self, *, billing: BillingPort, erp: ErpPort) -> None:
        super().__init__()
        self.billing = billing
        self.erp = erp

    # -- steps ---------------------------------------------------------------------------

    @flow_step(system="stripe", retry=SHORT_OUTAGE)
    async def fetch_invoice(self, invoice_id: str) -> Invoice:
        return await self.billing.get_invoice(invoice_id)

    @flow_step(system="stripe", retry=SHORT_OUTAGE)
    async def fetch_opportunity(self, subscription_id: str) -> str | None:
        """The opportunity the subscription was sold in (its metadata), if any."""
        return (await self.billing.get_subscription(subscription_id)).deal_id

    @flow_step(system="stripe", retry=SHORT_OUTAGE)
    async def fetch_crm_account(self, customer_id: str) -> str:
        """The CRM account a Stripe customer mirrors (the customer master links them)."""
        customer = await self.billing.get_customer(customer_id)
        account = customer.refs.get("salesforce")
        if not account:
            raise UpstreamNotFound(
                f"Stripe customer {customer_id} names no CRM account (metadata crm_account_id)",
                vendor="stripe",
            )
        return account

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def find_erp_customer(self, crm_account_id: str) -> str:
        canonical = canonical_customer_id(crm_account_id)
        customer = await self.erp.find_customer(external_id=canonical)
        if customer is None:
            raise UpstreamNotFound(
                f"No NetSuite customer with externalId {canonical} (CRM account "
                f"{crm_account_id}); run the customer master first",
                vendor="netsuite",
            )
        return customer.id

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def find_sales_order(
        self, erp_customer_id: str, opportunity_id: str | None, invoice: Invoice
    ) -> SalesOrder:
        """The order the invoice bills: quote-to-cash's order of the opportunity, else the
        customer's latest order in the invoice's currency. NetSuite bills an order with the
        order's lines, so its total must be the Stripe invoice's."""
        orders = await self._orders_of(erp_customer_id)
        wanted = order_external_id(opportunity_id) if opportunity_id else None
        chosen = next((o for o in orders if wanted and o.external_id == wanted), None)
        if chosen is None and wanted is None:
            same_currency = [o for o in orders if o.currency == invoice.currency]
            chosen = same_currency[-1] if same_currency else None
        if chosen is None:
            raise UpstreamNotFound(
                f"No NetSuite sales order {wanted or 'in ' + invoice.currency} for Stripe "
                f"invoice {invoice.id} (customer {erp_customer_id})",
                vendor="netsuite",
            )
        _check_billable(chosen, invoice)
        return chosen

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def post_invoice(self, sales_order_id: str, invoice: Invoice) -> Invoice:
        posted = await self.erp.upsert_invoice(
            sales_order_id=sales_order_id,
            external_id=invoice.id,
            memo=f"Stripe invoice {invoice.number or invoice.id}",
        )
        report_external_ids(netsuite_invoice=posted.id)
        return posted

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def apply_payment(self, invoice: Invoice, posted: Invoice) -> Payment:
        """A customer payment of what Stripe collected, applied to the NetSuite invoice."""
        payment = await self.erp.upsert_customer_payment(
            Payment(
                id=payment_external_id(invoice.id),
                invoice_id=posted.id,
                customer_id=posted.customer_id,
                amount=invoice.amount_paid,
                currency=invoice.currency,
                status="succeeded",
                received_at=invoice.paid_at,
                legal_entity=posted.legal_entity,
            ),
            external_id=payment_external_id(invoice.id),
        )
        report_external_ids(netsuite_payment=payment.id)
        return payment

    # -- flows ---------------------------------------------------------------------------

    @flow()
    async def invoice_finalized(self, event: WebhookEvent) -> str:
        """Returns the NetSuite invoice id."""
        invoice = await self.fetch_invoice(_subject(event))
        account = await self.fetch_crm_account(invoice.customer_id)
        return (await self.book(invoice, account)).id

    @flow()
    async def invoice_paid(self, event: WebhookEvent) -> str | None:
        """Returns the NetSuite payment id (None when Stripe collected nothing)."""
        invoice = await self.fetch_invoice(_subject(event))
        account = await self.fetch_crm_account(invoice.customer_id)
        posted = await self.book(invoice, account)
        if invoice.amount_paid <= 0:
            return None
        return (await self.apply_payment(invoice, posted)).id

    async def book(self, invoice: Invoice, crm_account: str) -> Invoice:
        """The NetSuite invoice of a Stripe invoice of the customer of `crm_account`, posted
        now unless it already is (steps of the calling flow; the payment-failure flows use it
        too)."""
        opportunity = (
            await self.fetch_opportunity(invoice.subscription_id)
            if invoice.subscription_id
            else None
        )
        erp_customer = await self.find_erp_customer(crm_account)
        order = await self.find_sales_order(erp_customer, opportunity, invoice)
        return await self.post_invoice(order.id, invoice)

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, dispatcher: WebhookDispatcher) -> None:
        dispatcher.register("stripe", FINALIZED, self._on_finalized)
        dispatcher.register("stripe", PAID, self._on_paid)

    def _on_finalized(self, event: WebhookEvent) -> FlowStart | None:
        return self._start(event, FLOW_TYPE, self.invoice_finalized)

    def _on_paid(self, event: WebhookEvent) -> FlowStart | None:
        return self._start(event, PAYMENT_FLOW_TYPE, self.invoice_paid)

    @staticmethod
    def _start(event: WebhookEvent, flow_type: str, fn: Any) -> FlowStart | None:
        if event.type not in (FINALIZED, PAID) or not event.subject:
            return None
        return FlowStart(
            flow_type=flow_type,
            business_key=f"stripe:{event.id}",
            fn=fn,
            args=(event,),
            legal_entity=stripe_legal_entity(event),
        )

    async def _orders_of(self, erp_customer_id: str) -> list[SalesOrder]:
        orders: list[SalesOrder] = []
        cursor: str | None = None
        while True:
            page = await self.erp.list_sales_orders(
                customer_id=erp_customer_id, cursor=cursor, limit=PAGE
            )
            orders.extend(page.data)
            if not page.next_cursor or page.next_cursor == cursor:
                return orders
            cursor = page.next_cursor


def build(
    *, engine: FlowEngine, billing: BillingPort, erp: ErpPort, dispatcher: WebhookDispatcher
) -> InvoicePostingFlows:
    """The flows, subscribed to Stripe's invoice events (build before the engine launches)."""
    flows = engine.register(InvoicePostingFlows, billing=billing, erp=erp)
    flows.subscribe(dispatcher)
    return flows


def _subject(event: WebhookEvent) -> str:
    if not event.subject:
        raise ValueError(f"event {event.id} names no object")
    return event.subject


def _check_billable(order: SalesOrder, invoice: Invoice) -> None:
    if order.currency != invoice.currency or order.total != invoice.total:
        raise Conflict(
            f"Stripe invoice {invoice.id} is {invoice.total} {invoice.currency} (minor units) "
            f"but sales order {order.number} is {order.total} {order.currency}; NetSuite bills "
            "an order with the order's lines, so this invoice needs posting by hand",
            code="invoice_differs_from_order",
        )
