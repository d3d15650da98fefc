"""Subscription amendment: new quantities (or prices added or removed) on a billing
subscription from its effective date, prorated or not; a proration is invoiced in billing at
once and booked in the ERP (an invoice from a change order when the customer owes more, a
credit memo when it owes less), and the subscription's deal in the CRM is marked synced.

No compensation: the billing update is the amendment; every later write is an idempotent
upsert keyed by the flow, so a failing step waits in the exception queue and resumes there.

Replay-safe: the workflow id is `amend:{subscription}:{hash of the change}` (the resolved
prices and quantities, the effective date and the proration choice), so the same request,
however often it comes, is one flow and one update.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime

import msgspec

from contracts.errors import UpstreamInvalid, UpstreamNotFound
from contracts.ownership import check_write
from contracts.v1 import (
    CreditMemoCreate,
    DealPatch,
    Invoice,
    SalesOrderCreate,
    SalesOrderLine,
    Subscription,
    SubscriptionItemInput,
    SubscriptionPatch,
)
from process_apis.customer_master.flow import canonical_customer_id
from process_apis.engine.durable import (
    FlowInstance,
    current_idempotency_key,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
)
from process_apis.engine.published import pause
from process_apis.engine.store import utcnow
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort

__all__ = [
    "FLOW_TYPE",
    "Amendment",
    "AmendmentOutcome",
    "ErpCustomer",
    "ItemChange",
    "SubscriptionAmendments",
    "amendment_id",
    "new_items",
]

FLOW_TYPE = "subscription_amendment"
NOTHING_TO_INVOICE = "invoice_no_customer_line_items"
"""Stripe's error code for an invoice with no pending items to bill."""
_HASH_LENGTH = 16



class ItemChange(msgspec.Struct, frozen=True, kw_only=True):
    """One resolved change: the price and its new quantity (0 removes it)."""

    price_id: str
    product_code: str | None = None
    quantity: int


class Amendment(msgspec.Struct, frozen=True, kw_only=True):
    """What the flow applies (validated and resolved to prices by the route)."""

    subscription_id: str
    changes: list[ItemChange]
    effective_date: date
    prorate: bool = True


class ErpCustomer(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    legal_entity: str


class AmendmentOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the amendment produced in each platform."""

    subscription_id: str
    proration_invoice_id: str | None = None
    proration_amount: int = 0
    """The proration invoice's total in minor units: above zero billed, below zero credited."""
    currency: str | None = None
    erp_invoice_id: str | None = None
    erp_credit_memo_id: str | None = None
    deal_id: str | None = None


def amendment_id(amendment: Amendment) -> str:
    """The flow id: the same change of the same subscription is the same amendment."""
    change = msgspec.json.encode(
        {
            "changes": sorted(
                ([c.price_id, c.quantity] for c in amendment.changes), key=lambda pair: pair[0]
            ),
            "effective_date": amendment.effective_date.isoformat(),
            "prorate": amendment.prorate,
        }
    )
    digest = hashlib.sha256(change).hexdigest()[:_HASH_LENGTH]
    return f"amend:{amendment.subscription_id}:{digest}"


def new_items(subscription: Subscription, changes: Sequence[ItemChange]) -> list[ItemChange]:
    """The subscription's whole item list after `changes` (billing replaces the list)."""
    wanted = {item.price_id: item.quantity for item in subscription.items}
    codes = {item.price_id: item.product_code for item in subscription.items}
    for change in changes:
        wanted[change.price_id] = change.quantity
        codes[change.price_id] = change.product_code or codes.get(change.price_id)
    return [
        ItemChange(price_id=price, product_code=codes.get(price), quantity=quantity)
        for price, quantity in wanted.items()
        if quantity > 0
    ]


@flow_class("subscription-amendment")
class SubscriptionAmendments(FlowInstance):
    """The amendment flow and its steps."""

    def __init__(self, *, crm: CrmPort, billing: BillingPort, erp: ErpPort) -> None:
        super().__init__()
        self.crm = crm
        self.billing = billing
        self.erp = erp

    # -- steps -------------------------------------------------------------------------

    @flow_step(system="gateway")
    async def time_until_effective(self, effective_date: date) -> float:
        """Seconds from now to the start (UTC) of the effective date; 0 once it has begun."""
        start = datetime.combine(effective_date, datetime.min.time(), tzinfo=UTC)
        return max((start - utcnow()).total_seconds(), 0.0)

    @flow_step(system="stripe", owner="revenue_ops")
    async def update_subscription(self, amendment: Amendment) -> Subscription:
        # Read and write together: the update replaces the whole item list, and the billing
        # client sends only what differs, so a repeat after success changes nothing.
        current = await self.billing.get_subscription(amendment.subscription_id)
        items = [
            SubscriptionItemInput(price_id=item.price_id, quantity=item.quantity)
            for item in new_items(current, amendment.changes)
        ]
        updated = await self.billing.update_subscription(
            amendment.subscription_id,
            SubscriptionPatch(items=items),
            proration_behavior="create_prorations" if amendment.prorate else "none",
            idempotency_key=current_idempotency_key(),
        )
        report_external_ids(stripe_subscription=updated.id)
        return updated

    @flow_step(system="stripe", owner="finance")
    async def invoice_prorations(
        self, subscription: Subscription, description: str
    ) -> Invoice | None:
        """The pending prorations billed now (a draft); None when there is nothing to bill."""
        try:
            draft = await self.billing.create_invoice(
                customer_id=subscription.customer_id,
                subscription_id=subscription.id,
                collection_method=subscription.collection_method,
                days_until_due=subscription.days_until_due,
                include_pending_items=True,
                description=description,
                idempotency_key=current_idempotency_key(),
            )
        except UpstreamInvalid as exc:
            if exc.code == NOTHING_TO_INVOICE:
                return None
            raise
        return draft if draft.lines else None

    @flow_step(system="stripe", owner="finance")
    async def finalize_proration_invoice(self, invoice_id: str) -> Invoice:
        invoice = await self.billing.finalize_invoice(
            invoice_id, idempotency_key=current_idempotency_key()
        )
        report_external_ids(stripe_invoice=invoice.id)
        return invoice

    @flow_step(system="stripe", owner="finance")
    async def find_crm_account(self, customer_id: str) -> str:
        account = (await self.billing.get_customer(customer_id)).refs.get("salesforce")
        if not account:
            raise UpstreamNotFound(
                f"Billing customer {customer_id} names no CRM account", vendor="stripe"
            )
        return account

    @flow_step(system="netsuite", owner="finance")
    async def find_erp_customer(self, crm_account_id: str) -> ErpCustomer:
        canonical = canonical_customer_id(crm_account_id)
        customer = await self.erp.find_customer(external_id=canonical)
        if customer is None:
            raise UpstreamNotFound(
                f"No ERP customer with external id {canonical}; run the customer master first",
                vendor="netsuite",
            )
        return ErpCustomer(customer_id=customer.id, legal_entity=customer.legal_entity)

    @flow_step(system="netsuite", owner="finance")
    async def book_change_order(
        self, customer: ErpCustomer, invoice: Invoice, amendment: Amendment
    ) -> str:
        order = await self.erp.upsert_sales_order(
            SalesOrderCreate(
                customer_id=customer.customer_id,
                legal_entity=customer.legal_entity,
                currency=invoice.currency,
                order_date=amendment.effective_date,
                lines=_order_lines(invoice, amendment),
                external_id=current_idempotency_key(),
                memo=f"Amendment of subscription {amendment.subscription_id}",
            )
        )
        report_external_ids(netsuite_sales_order=order.id)
        return order.id

    @flow_step(system="netsuite", owner="finance")
    async def post_erp_invoice(self, sales_order_id: str, invoice: Invoice) -> str:
        posted = await self.erp.upsert_invoice(
            sales_order_id=sales_order_id,
            external_id=invoice.id,
            memo=f"Proration invoice {invoice.number or invoice.id}",
        )
        report_external_ids(netsuite_invoice=posted.id)
        return posted.id

    @flow_step(system="netsuite", owner="finance")
    async def book_erp_credit(self, customer: ErpCustomer, invoice: Invoice) -> str:
        """A credit memo for what the customer owes less, against its latest ERP invoice in
        the currency (the ERP takes the credited item from it)."""
        page = await self.erp.list_invoices(customer_id=customer.customer_id, limit=100)
        credited = [i for i in page.data if i.currency == invoice.currency]
        memo = await self.erp.upsert_credit_memo(
            CreditMemoCreate(
                customer_id=customer.customer_id,
                invoice_id=credited[-1].id if credited else None,
                legal_entity=customer.legal_entity,
                currency=invoice.currency,
                amount=-invoice.total,
                memo=f"Proration credit {invoice.number or invoice.id}",
                external_id=current_idempotency_key(),
            )
        )
        report_external_ids(netsuite_credit_memo=memo.id)
        return memo.id

    @flow_step(system="salesforce", owner="revenue_ops")
    async def mark_deal_synced(self, deal_id: str) -> None:
        check_write("Deal", "salesforce", ["integration_status"], mirror=True)
        await self.crm.update_deal(deal_id, DealPatch(integration_status="synced"))

    # -- the flow ----------------------------------------------------------------------

    @flow()
    async def amend(self, amendment: Amendment) -> AmendmentOutcome:
        wait = await self.time_until_effective(amendment.effective_date)
        if wait > 0:
            await pause(wait)
        subscription = await self.update_subscription(amendment)
        outcome = AmendmentOutcome(
            subscription_id=subscription.id, deal_id=subscription.deal_id
        )
        if amendment.prorate:
            outcome = await self._book_proration(subscription, amendment, outcome)
        if subscription.deal_id is not None:
            await self.mark_deal_synced(subscription.deal_id)
        return outcome

    async def _book_proration(
        self, subscription: Subscription, amendment: Amendment, outcome: AmendmentOutcome
    ) -> AmendmentOutcome:
        draft = await self.invoice_prorations(
            subscription, f"Proration of amendment {amendment_id(amendment)}"
        )
        if draft is None:
            return outcome
        invoice = await self.finalize_proration_invoice(draft.id)
        outcome = msgspec.structs.replace(
            outcome,
            proration_invoice_id=invoice.id,
            proration_amount=invoice.total,
            currency=invoice.currency,
        )
        if invoice.total == 0:
            return outcome
        crm_account = await self.find_crm_account(subscription.customer_id)
        customer = await self.find_erp_customer(crm_account)
        if invoice.total > 0:
            order_id = await self.book_change_order(customer, invoice, amendment)
            posted = await self.post_erp_invoice(order_id, invoice)
            return msgspec.structs.replace(outcome, erp_invoice_id=posted)
        memo = await self.book_erp_credit(customer, invoice)
        return msgspec.structs.replace(outcome, erp_credit_memo_id=memo)


def _order_lines(invoice: Invoice, amendment: Amendment) -> list[SalesOrderLine]:
    """The change order bills the proration's net total on the first changed product (the
    ERP needs an item; the proration lines net to one amount)."""
    codes = [c.product_code for c in amendment.changes if c.product_code]
    description = "; ".join(line.description or "" for line in invoice.lines)[:1000]
    return [
        SalesOrderLine(
            product_code=codes[0] if codes else None,
            description=description or None,
            quantity=1,
            unit_amount=invoice.total,
            amount=invoice.total,
        )
    ]
