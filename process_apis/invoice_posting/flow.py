"""Invoice posting: what Stripe bills is booked in NetSuite, the financial system of record.

The one path every billing invoice takes (first, renewal period, proration, one-time): on
`invoice.finalized` the NetSuite invoice is upserted (externalId = the Stripe invoice id, so it
is posted exactly once however often it is asked for) against the sales order of the
subscription's opportunity (externalId `q2c:{opportunity_id}`), else the customer's latest order
in the invoice's currency, so it lands in that order's subsidiary and currency. It carries the
billing invoice's own lines (`erp_lines`), each under the order line of its product, so its
total is what billing billed. An invoice that credits (a proration below zero) becomes a credit
memo (externalId `credit:{invoice id}`) instead. `invoice.paid`: the invoice is posted if it is
not yet, then a customer payment (externalId `pay:{invoice id}`) applied to it marks it paid in
full; what a credit memo booked before the payment already settled stays on the payment as
unapplied customer credit (the ERP applies at most what the invoice has open). Amendments
post their proration invoices through `post_billing_invoice` and
`credit_billing_invoice` too. No compensation: a failure (no order) waits in the exception
queue for finance.
"""

from __future__ import annotations

from typing import Any, Final

from contracts.errors import UpstreamNotFound
from contracts.v1 import (
    CreditMemo,
    CreditMemoCreate,
    CreditNote,
    Invoice,
    InvoiceLine,
    Payment,
    SalesOrder,
    SalesOrderLine,
)
from process_apis.customer_master.flow import canonical_customer_id
from process_apis.engine.durable import (
    SHORT_OUTAGE,
    FlowInstance,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
    report_money,
)
from process_apis.engine.flow_engine import FlowEngine
from process_apis.webhooks.intake import FlowStart, WebhookDispatcher, WebhookEvent
from system_apis.billing.port import BillingPort
from system_apis.erp.port import ErpPort

__all__ = [
    "CREDIT_FLOW_TYPE",
    "CREDIT_NOTE_CREATED",
    "FINALIZED",
    "FLOW_TYPE",
    "PAID",
    "PAYMENT_FLOW_TYPE",
    "InvoicePostingFlows",
    "book_credit_note",
    "build",
    "credit_billing_invoice",
    "credit_external_id",
    "credit_note_external_id",
    "erp_lines",
    "order_external_id",
    "payment_external_id",
    "post_billing_invoice",
    "stripe_legal_entity",
    "stripe_trace",
]

FLOW_TYPE: Final = "invoice_posting"
PAYMENT_FLOW_TYPE: Final = "payment_posting"
CREDIT_FLOW_TYPE: Final = "credit_posting"
CREDIT_NOTE_CREATED: Final = "credit_note.created"
FINALIZED: Final = "invoice.finalized"
PAID: Final = "invoice.paid"
PAGE: Final = 100



def order_external_id(opportunity_id: str) -> str:
    """The sales order quote-to-cash books for an opportunity."""
    return f"q2c:{opportunity_id}"


def payment_external_id(stripe_invoice_id: str) -> str:
    return f"pay:{stripe_invoice_id}"


def credit_note_external_id(credit_note_id: str) -> str:
    """The ERP credit memo of a billing credit note."""
    return f"cn:{credit_note_id}"


async def book_credit_note(
    erp: ErpPort,
    note: CreditNote,
    *,
    customer_id: str,
    legal_entity: str,
    erp_invoice_id: str | None,
    memo: str | None = None,
) -> CreditMemo:
    """The credit memo of a billing credit note, upserted by `cn:{credit note id}`: whoever
    books it (the `credit_note.created` posting, the service-credit flow) books one memo."""
    return await erp.upsert_credit_memo(
        CreditMemoCreate(
            customer_id=customer_id,
            invoice_id=erp_invoice_id,
            legal_entity=legal_entity,
            currency=note.currency,
            amount=note.amount,
            memo=(memo or note.memo or f"Credit note {note.id}")[:1000],
            external_id=credit_note_external_id(note.id),
        )
    )


def credit_external_id(stripe_invoice_id: str) -> str:
    """The credit memo of a billing invoice that credits the customer (total below zero)."""
    return f"credit:{stripe_invoice_id}"


def erp_lines(invoice: Invoice, order: SalesOrder) -> list[SalesOrderLine]:
    """The billing invoice's lines as the ERP books them: one line per product, under that
    product's order line (item); a line whose product the order lacks (an ad hoc charge)
    goes under the order's first item. Lines of one product net together (a proration's
    unused and remaining time), so every ERP line is zero or more and they sum to the
    invoice's subtotal. Pure: the amendment flow and tests call it too."""
    if not order.lines:
        raise ValueError(f"sales order {order.number or order.id} has no lines")
    by_code = {line.product_code: line for line in order.lines if line.product_code}
    fallback = order.lines[0]
    groups: dict[str, list[tuple[SalesOrderLine, InvoiceLine]]] = {}
    for line in invoice.lines:
        ordered = by_code.get(line.product_code or "", fallback)
        groups.setdefault(ordered.item_id or ordered.product_code or "", []).append(
            (ordered, line)
        )
    booked = [_booked(parts[0][0], [line for _, line in parts]) for parts in groups.values()]
    if any(line.amount < 0 for line in booked):
        # A credit on one product larger than a charge on another: book the net on one line.
        booked = [_booked(booked[0], [line for _, parts in groups.items() for _, line in parts])]
    return booked


def _booked(ordered: SalesOrderLine, billed: list[InvoiceLine]) -> SalesOrderLine:
    """Billing lines of one product as one ERP line under `ordered`'s item: their amounts and
    their tax (each already rounded on its billing line) added up, never recomputed."""
    amount = sum(line.amount for line in billed)
    quantity = billed[0].quantity if len(billed) == 1 and billed[0].quantity > 0 else 1
    if amount % quantity:
        quantity = 1
    taxes = [line.tax_amount for line in billed if line.tax_amount is not None]
    rate = next((line.tax_rate_bps for line in billed if line.tax_rate_bps is not None), None)
    code = next((line.tax_code for line in billed if line.tax_code), None) or ordered.tax_code
    return SalesOrderLine(
        item_id=ordered.item_id,
        product_code=ordered.product_code,
        description="; ".join(line.description or "" for line in billed)[:1000] or None,
        quantity=quantity,
        unit_amount=amount // quantity,
        amount=amount,
        tax_code=code,
        tax_rate_bps=rate if rate is not None else ordered.tax_rate_bps,
        # Untaxed in billing is untaxed in the ERP too, whatever the code's own rate.
        tax_amount=sum(taxes) if taxes else (0 if code else None),
    )


async def post_billing_invoice(erp: ErpPort, order: SalesOrder, invoice: Invoice) -> Invoice:
    """The ERP invoice of a billing invoice (total zero or more), upserted by the billing
    invoice's id: the same billing invoice is one ERP invoice whoever posts it."""
    return await erp.upsert_invoice(
        sales_order_id=order.id,
        external_id=invoice.id,
        memo=f"Stripe invoice {invoice.number or invoice.id}",
        lines=erp_lines(invoice, order),
        tax_note=invoice.tax_note,
    )


async def credit_billing_invoice(
    erp: ErpPort, *, customer_id: str, legal_entity: str, invoice: Invoice
) -> CreditMemo:
    """The credit memo of a billing invoice below zero, upserted by `credit:{invoice id}`,
    against the customer's latest ERP invoice in the currency."""
    page = await erp.list_invoices(customer_id=customer_id, limit=100)
    credited = [i for i in page.data if i.currency == invoice.currency]
    return await erp.upsert_credit_memo(
        CreditMemoCreate(
            customer_id=customer_id,
            invoice_id=credited[-1].id if credited else None,
            legal_entity=legal_entity,
            currency=invoice.currency,
            amount=-invoice.total,
            memo=f"Proration credit {invoice.number or invoice.id}",
            external_id=credit_external_id(invoice.id),
        )
    )


def stripe_legal_entity(event: WebhookEvent) -> str | None:
    """The legal entity a Stripe invoice event names (its own or its subscription's metadata),
    for the flow record; the flow itself reads the entity from the platforms."""
    for holder in (event.object, event.object.get("subscription_details") or {}):
        metadata = holder.get("metadata") if isinstance(holder, dict) else None
        if isinstance(metadata, dict) and isinstance(metadata.get("legal_entity"), str):
            return str(metadata["legal_entity"])
    return None


def stripe_trace(event: WebhookEvent) -> tuple[dict[str, str], str | None]:
    """What a Stripe billing event is about, for the trace its flow joins: the invoice, its
    subscription, customer and deal (`trace_keys`), and the correlation id the object or its
    subscription carries in metadata (None when neither does)."""
    obj = event.object
    keys: dict[str, str] = {}
    kind = {"invoice": "invoice", "subscription": "subscription", "credit_note": "credit_note"}
    own = kind.get(str(obj.get("object")))
    if own in ("invoice", "subscription") and event.subject:
        keys[own] = event.subject
    for field_name, key in (("invoice", "invoice"), ("subscription", "subscription"),
                            ("customer", "customer")):
        value = _id_of(obj.get(field_name))
        if value and key not in keys:
            keys[key] = value
    correlation_id: str | None = None
    for holder in (obj, obj.get("subscription_details") or {}):
        metadata = holder.get("metadata") if isinstance(holder, dict) else None
        if not isinstance(metadata, dict):
            continue
        if isinstance(metadata.get("deal_id"), str):
            keys.setdefault("deal", metadata["deal_id"])
        if correlation_id is None and isinstance(metadata.get("correlation_id"), str):
            correlation_id = str(metadata["correlation_id"])
    return keys, correlation_id


def _id_of(value: Any) -> str | None:
    """A Stripe reference as an id, expanded or not."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


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
        return chosen

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def post_invoice(
        self, order: SalesOrder, invoice: Invoice, measured: bool = False
    ) -> Invoice:
        """The ERP invoice with the billing invoice's own lines (see `erp_lines`). `measured`:
        this posting counts the invoice as invoiced (only the `invoice.finalized` one does,
        since the other flows posting the same invoice find it posted)."""
        posted = await post_billing_invoice(self.erp, order, invoice)
        report_external_ids(netsuite_invoice=posted.id)
        if measured:
            report_money(
                "invoiced", legal_entity=posted.legal_entity, currency=invoice.currency,
                amount=invoice.total,
            )
        return posted

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def post_credit(self, order: SalesOrder, invoice: Invoice, measured: bool = False) -> str:
        """A billing invoice below zero: the credit memo of what it credits (`measured`: as
        `post_invoice`)."""
        memo = await credit_billing_invoice(
            self.erp, customer_id=order.customer_id, legal_entity=order.legal_entity,
            invoice=invoice,
        )
        report_external_ids(netsuite_credit_memo=memo.id)
        if measured:
            report_money(
                "credited", legal_entity=order.legal_entity, currency=invoice.currency,
                amount=-invoice.total,
            )
        return memo.id

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def apply_payment(self, invoice: Invoice, posted: Invoice) -> Payment:
        """A customer payment of all Stripe collected, applied to the NetSuite invoice up to
        what it has open (a credit memo may have settled part of it first)."""
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
        report_money(
            "collected", legal_entity=posted.legal_entity, currency=invoice.currency,
            amount=invoice.amount_paid,
        )
        return payment

    @flow_step(system="stripe", retry=SHORT_OUTAGE)
    async def fetch_credit_note(self, credit_note_id: str) -> CreditNote:
        return await self.billing.get_credit_note(credit_note_id)

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def find_credited_invoice(self, note: CreditNote) -> Invoice:
        """The ERP invoice posted for the billing invoice the note credits."""
        posted = await self.erp.find_invoice(external_id=note.invoice_id)
        if posted is None:
            raise UpstreamNotFound(
                f"Billing invoice {note.invoice_id} credited by {note.id} is not posted in the "
                "ERP yet",
                vendor="netsuite",
            )
        return posted

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def post_credit_note(self, note: CreditNote, credited: Invoice) -> str:
        memo = await book_credit_note(
            self.erp, note, customer_id=credited.customer_id,
            legal_entity=credited.legal_entity, erp_invoice_id=credited.id,
        )
        report_external_ids(netsuite_credit_memo=memo.id)
        report_money(
            "credited", legal_entity=credited.legal_entity, currency=note.currency,
            amount=note.amount,
        )
        return memo.id

    # -- flows ---------------------------------------------------------------------------

    @flow()
    async def invoice_finalized(self, event: WebhookEvent) -> str:
        """Returns the NetSuite invoice id (or credit memo id, for an invoice that credits)."""
        invoice = await self.fetch_invoice(_subject(event))
        account = await self.fetch_crm_account(invoice.customer_id)
        order = await self.order_of(invoice, account)
        # The one posting of each billing invoice that counts it (invoiced or credited).
        if invoice.total < 0:
            return await self.post_credit(order, invoice, measured=True)
        return (await self.post_invoice(order, invoice, measured=True)).id

    @flow()
    async def credit_note_created(self, event: WebhookEvent) -> str:
        """Returns the ERP credit memo id of the billing credit note."""
        note = await self.fetch_credit_note(_subject(event))
        credited = await self.find_credited_invoice(note)
        return await self.post_credit_note(note, credited)

    @flow()
    async def invoice_paid(self, event: WebhookEvent) -> str | None:
        """Returns the NetSuite payment id (None when Stripe collected nothing)."""
        invoice = await self.fetch_invoice(_subject(event))
        account = await self.fetch_crm_account(invoice.customer_id)
        if invoice.total < 0:
            # Stripe marks a crediting invoice paid at once: nothing was collected.
            await self.post_credit(await self.order_of(invoice, account), invoice)
            return None
        posted = await self.book(invoice, account)
        if invoice.amount_paid <= 0:
            return None
        return (await self.apply_payment(invoice, posted)).id

    async def book(self, invoice: Invoice, crm_account: str) -> Invoice:
        """The NetSuite invoice of a Stripe invoice of the customer of `crm_account`, posted
        now unless it already is (steps of the calling flow; the payment-failure flows use it
        too)."""
        return await self.post_invoice(await self.order_of(invoice, crm_account), invoice)

    async def order_of(self, invoice: Invoice, crm_account: str) -> SalesOrder:
        """The sales order a billing invoice is posted against (steps of the calling flow)."""
        # The invoice names its deal (subscription or one-time invoice metadata); an invoice
        # made before it did is traced through its subscription.
        opportunity = invoice.deal_id or (
            await self.fetch_opportunity(invoice.subscription_id)
            if invoice.subscription_id
            else None
        )
        erp_customer = await self.find_erp_customer(crm_account)
        return await self.find_sales_order(erp_customer, opportunity, invoice)

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, dispatcher: WebhookDispatcher) -> None:
        dispatcher.register("stripe", FINALIZED, self._on_finalized)
        dispatcher.register("stripe", PAID, self._on_paid)
        dispatcher.register("stripe", CREDIT_NOTE_CREATED, self._on_credit_note)

    def _on_credit_note(self, event: WebhookEvent) -> FlowStart | None:
        if event.type != CREDIT_NOTE_CREATED or not event.subject:
            return None
        keys, correlation_id = stripe_trace(event)
        return FlowStart(
            flow_type=CREDIT_FLOW_TYPE,
            business_key=f"stripe:{event.id}",
            fn=self.credit_note_created,
            args=(event,),
            legal_entity=stripe_legal_entity(event),
            trace_keys=keys,
            correlation_id=correlation_id,
        )

    def _on_finalized(self, event: WebhookEvent) -> FlowStart | None:
        return self._start(event, FLOW_TYPE, self.invoice_finalized)

    def _on_paid(self, event: WebhookEvent) -> FlowStart | None:
        return self._start(event, PAYMENT_FLOW_TYPE, self.invoice_paid)

    @staticmethod
    def _start(event: WebhookEvent, flow_type: str, fn: Any) -> FlowStart | None:
        if event.type not in (FINALIZED, PAID) or not event.subject:
            return None
        keys, correlation_id = stripe_trace(event)
        return FlowStart(
            flow_type=flow_type,
            business_key=f"stripe:{event.id}",
            fn=fn,
            args=(event,),
            legal_entity=stripe_legal_entity(event),
            trace_keys=keys,
            correlation_id=correlation_id,
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
