"""Subscription amendment: new quantities (or prices added or removed) on a billing
subscription from its effective date, prorated or not. The deal's ERP sales order follows the
new quantities; a proration is invoiced in billing at once and booked in the ERP through the
invoice posting's one path (the ERP invoice carries the proration lines and is keyed by the
billing invoice's id, so the `invoice.finalized` posting of it is the same record; a credit
memo keyed `credit:{invoice id}` when the customer owes less), and the deal in the CRM shows
it is synced and its amended amount (`contract_amount`).

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
from contracts.money import Money
from contracts.ownership import check_write
from contracts.v1 import (
    DealPatch,
    Invoice,
    SalesOrder,
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
from process_apis.invoice_posting.flow import (
    credit_billing_invoice,
    order_external_id,
    post_billing_invoice,
)
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
    async def find_deal_order(
        self, customer: ErpCustomer, deal_id: str | None, currency: str
    ) -> SalesOrder | None:
        """The sales order quote-to-cash booked for the deal (else the customer's latest in
        the currency): amendments change it and their invoices are posted against it."""
        orders = (await self.erp.list_sales_orders(customer_id=customer.customer_id,
                                                   limit=100)).data
        wanted = order_external_id(deal_id) if deal_id else None
        chosen = next((o for o in orders if wanted and o.external_id == wanted), None)
        if chosen is None:
            same = [o for o in orders if o.currency == currency]
            chosen = same[-1] if same else None
        return chosen

    @flow_step(system="netsuite", owner="finance")
    async def amend_sales_order(
        self,
        customer: ErpCustomer,
        order: SalesOrder,
        subscription: Subscription,
        amendment: Amendment,
    ) -> SalesOrder:
        """The deal's order follows the subscription: each recurring line takes the new
        quantity at its sold unit price; a product new to the order is added, one removed
        is dropped; one-time lines stay."""
        removed = {c.product_code for c in amendment.changes if c.product_code and not c.quantity}
        amended = _amended_lines(order, subscription, removed)
        for index, line in enumerate(amended):
            if line.item_id is None and line.product_code:
                product = await self.erp.find_product(line.product_code)
                if product is None:
                    raise UpstreamNotFound(
                        f"No ERP item {line.product_code} for the amended order", vendor="netsuite"
                    )
                amended[index] = msgspec.structs.replace(line, item_id=product.id)
        if [(x.item_id, x.quantity, x.unit_amount) for x in amended] == [
            (x.item_id, x.quantity, x.unit_amount) for x in order.lines
        ]:
            return order
        updated = await self.erp.upsert_sales_order(
            SalesOrderCreate(
                customer_id=customer.customer_id,
                legal_entity=order.legal_entity,
                currency=order.currency,
                order_date=order.order_date,
                lines=amended,
                external_id=order.external_id or current_idempotency_key(),
                deal_id=order.deal_id,
                memo=order.memo,
            )
        )
        report_external_ids(netsuite_sales_order=updated.id)
        return updated

    @flow_step(system="netsuite", owner="finance")
    async def post_erp_invoice(self, order: SalesOrder, invoice: Invoice) -> str:
        """The proration invoice through the one posting path (upserted by its billing id,
        so the `invoice.finalized` posting of the same invoice is the same ERP invoice)."""
        posted = await post_billing_invoice(self.erp, order, invoice)
        report_external_ids(netsuite_invoice=posted.id)
        return posted.id

    @flow_step(system="netsuite", owner="finance")
    async def book_erp_credit(self, customer: ErpCustomer, invoice: Invoice) -> str:
        """A credit memo for what the customer owes less (the one posting path's)."""
        memo = await credit_billing_invoice(
            self.erp, customer_id=customer.customer_id, legal_entity=customer.legal_entity,
            invoice=invoice,
        )
        report_external_ids(netsuite_credit_memo=memo.id)
        return memo.id

    @flow_step(system="salesforce", owner="revenue_ops")
    async def mark_deal_synced(
        self, deal_id: str, contract_amount: Money | None = None
    ) -> None:
        """The deal shows it is synced and, after an amendment, what it bills now (the
        amended order's total, the ERP's figure mirrored like the other write-backs)."""
        patch = (
            DealPatch(integration_status="synced")
            if contract_amount is None
            else DealPatch(integration_status="synced", contract_amount=contract_amount)
        )
        check_write("Deal", "salesforce", patch.fields_set(), mirror=True)
        await self.crm.update_deal(deal_id, patch)

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
        crm_account = await self.find_crm_account(subscription.customer_id)
        customer = await self.find_erp_customer(crm_account)
        order = await self.find_deal_order(customer, subscription.deal_id, subscription.currency)
        if order is not None:
            order = await self.amend_sales_order(customer, order, subscription, amendment)
        if amendment.prorate:
            outcome = await self._book_proration(subscription, amendment, outcome, customer, order)
        if subscription.deal_id is not None:
            await self.mark_deal_synced(
                subscription.deal_id,
                Money(amount=order.total, currency=order.currency) if order is not None else None,
            )
        return outcome

    async def _book_proration(
        self,
        subscription: Subscription,
        amendment: Amendment,
        outcome: AmendmentOutcome,
        customer: ErpCustomer,
        order: SalesOrder | None,
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
        if invoice.total > 0:
            if order is None:
                raise UpstreamNotFound(
                    f"No ERP sales order to post proration invoice {invoice.id} against",
                    vendor="netsuite",
                )
            posted = await self.post_erp_invoice(order, invoice)
            return msgspec.structs.replace(outcome, erp_invoice_id=posted)
        memo = await self.book_erp_credit(customer, invoice)
        return msgspec.structs.replace(outcome, erp_credit_memo_id=memo)


def _amended_lines(
    order: SalesOrder, subscription: Subscription, removed: set[str]
) -> list[SalesOrderLine]:
    """The order's lines with the subscription's quantities: recurring lines of products on
    the subscription take its quantity (at their sold unit price), products the amendment
    removed are dropped, new ones are added at the subscription's unit price, other lines
    (one-time services) stay as booked."""
    billed = {item.product_code: item for item in subscription.items if item.product_code}
    lines: list[SalesOrderLine] = []
    seen: set[str] = set()
    for line in order.lines:
        code = line.product_code or ""
        if code in billed:
            quantity = billed[code].quantity
            seen.add(code)
            lines.append(msgspec.structs.replace(
                line, quantity=quantity, amount=quantity * line.unit_amount
            ))
        elif code not in removed:
            lines.append(line)
    # A product new to the order is taxed like the rest of the customer's order.
    tax_code = next((line.tax_code for line in order.lines if line.tax_code), None)
    for code, item in billed.items():
        if code not in seen and item.unit_amount is not None:
            lines.append(SalesOrderLine(
                product_code=code, quantity=item.quantity, unit_amount=item.unit_amount,
                amount=item.quantity * item.unit_amount, tax_code=tax_code,
            ))
    return lines
