"""Payment failure: a declined Stripe payment puts the invoice and its customer in collections.

`invoice.payment_failed`: the NetSuite invoice and customer are flagged for collections
(`custbody_collections_status`, `custentity_collections_status`), the Salesforce account shows
`Payment_Status__c` past due with `Risk_Level__c` raised (a mirror write-back), and finance gets
one exception-queue item per invoice with the attempt count. `invoice.paid` for that invoice
undoes it all: the flags cleared, the account current again (unless another of the customer's
invoices is still in collections) and the item resolved with the reason. The CRM payment status
also follows `customer.subscription.updated` (active -> current, past_due, unpaid ->
delinquent).

Stripe may deliver these events late and out of order, so each flow first claims its event's
version of the object (`AppliedVersions`): a failure older than the payment is not applied, and
a failure that finds itself overtaken by the payment once its writes are done runs the
settlement as its compensation (`settle`).
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.money import Money, format_decimal
from contracts.ownership import check_write
from contracts.v1 import CustomerPatch, Invoice, PaymentStatus, RiskLevel
from process_apis.engine.durable import SHORT_OUTAGE, FlowInstance, flow, flow_class, flow_step
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.queue import close_exception, new_exception_id, open_exception
from process_apis.engine.store import exceptions, utcnow
from process_apis.invoice_posting import flow as invoice_posting
from process_apis.invoice_posting.flow import (
    PAID,
    InvoicePostingFlows,
    stripe_legal_entity,
    stripe_trace,
)
from process_apis.webhooks.intake import (
    AppliedVersions,
    Claim,
    FlowStart,
    WebhookDispatcher,
    WebhookEvent,
    WebhookIntake,
)
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort

__all__ = [
    "FAILED",
    "FLOW_TYPE",
    "RECOVERY_FLOW_TYPE",
    "STATUS_FLOW_TYPE",
    "SUBSCRIPTION_UPDATED",
    "CollectionsItem",
    "PaymentFailureFlows",
    "build",
    "collections_step",
]

FLOW_TYPE: Final = "payment_failure"
RECOVERY_FLOW_TYPE: Final = "payment_recovery"
STATUS_FLOW_TYPE: Final = "payment_status"
FAILED: Final = "invoice.payment_failed"
SUBSCRIPTION_UPDATED: Final = "customer.subscription.updated"
COLLECTIONS: Final = "collections"
"""`AppliedVersions` kind: an invoice's collections state."""
SUBSCRIPTION: Final = "subscription"
FAILED_RANK: Final = 0
PAID_RANK: Final = 1
"""Within one second, a payment is taken to come after a failure (it settles the invoice)."""
ITEM_STEP_PREFIX: Final = "collections:"
_MIRRORED_STATUS: Final[dict[str, PaymentStatus]] = {
    "active": "current",
    "trialing": "current",
    "past_due": "past_due",
    "unpaid": "delinquent",
}
_RISK_ORDER: Final[tuple[RiskLevel, ...]] = ("low", "medium", "high")
_OPEN: Final = ("open", "retrying")


Outcome = Literal["in_collections", "superseded", "settled", "not_in_collections"]


class CollectionsItem(msgspec.Struct, frozen=True, kw_only=True):
    """What finance sees on the exception item of an unpaid invoice."""

    stripe_invoice_id: str
    stripe_invoice_number: str | None
    stripe_customer_id: str
    erp_invoice_id: str
    erp_invoice_number: str | None
    erp_customer_id: str
    crm_account_id: str
    attempt_count: int
    amount_due: int
    """Minor units of `currency`."""
    currency: str
    legal_entity: str


def collections_step(stripe_customer_id: str, stripe_invoice_id: str) -> str:
    """The exception item's step name: one item per invoice, findable per customer."""
    return f"{ITEM_STEP_PREFIX}{stripe_customer_id}:{stripe_invoice_id}"


@flow_class("payment_failure")
class PaymentFailureFlows(FlowInstance):
    """Collections on a failed payment, their settlement on payment, the payment-status mirror."""

    def __init__(
        self,
        *,
        posting: InvoicePostingFlows,
        erp: ErpPort,
        crm: CrmPort,
        versions: AppliedVersions,
        database: AsyncEngine,
    ) -> None:
        super().__init__()
        self.posting = posting
        self.erp = erp
        self.crm = crm
        self.versions = versions
        self.database = database

    # -- steps: versions -----------------------------------------------------------------

    @flow_step(system="gateway", retry=SHORT_OUTAGE)
    async def claim_invoice_version(self, invoice_id: str, event: WebhookEvent, rank: int) -> Claim:
        return await self.versions.claim(
            COLLECTIONS, "stripe", invoice_id, at=event.created, rank=rank
        )

    @flow_step(system="gateway", retry=SHORT_OUTAGE)
    async def is_overtaken(self, invoice_id: str, event: WebhookEvent, rank: int) -> bool:
        """Whether a newer event of the invoice was claimed since this one."""
        mine = AppliedVersions.version(event.created, rank, invoice_id)
        latest = await self.versions.latest(COLLECTIONS, "stripe", invoice_id)
        return latest is not None and latest > mine

    @flow_step(system="gateway", retry=SHORT_OUTAGE)
    async def claim_subscription_version(self, event: WebhookEvent) -> Claim:
        return await self.versions.claim(
            SUBSCRIPTION, "stripe", event.subject or "", at=event.created
        )

    # -- steps: NetSuite -----------------------------------------------------------------

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def flag_invoice_for_collections(self, erp_invoice_id: str) -> None:
        await self.erp.mark_invoice_for_collections(erp_invoice_id)

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def flag_customer_for_collections(self, erp_customer_id: str) -> None:
        await self.erp.set_customer_collections(erp_customer_id, payment_status="past_due")

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def undo_flag_invoice(self, erp_invoice_id: str) -> None:
        await self.erp.mark_invoice_for_collections(erp_invoice_id, status=None)

    @flow_step(system="netsuite", retry=SHORT_OUTAGE)
    async def undo_flag_customer(self, erp_customer_id: str) -> None:
        await self.erp.set_customer_collections(erp_customer_id, payment_status="current")

    # -- steps: Salesforce ---------------------------------------------------------------

    @flow_step(system="salesforce", retry=SHORT_OUTAGE)
    async def read_risk_level(self, crm_account_id: str) -> RiskLevel | None:
        return (await self.crm.get_account(crm_account_id)).risk_level

    @flow_step(system="salesforce", retry=SHORT_OUTAGE)
    async def mirror_payment_status(
        self, crm_account_id: str, status: PaymentStatus, risk_level: RiskLevel | None = None
    ) -> None:
        """Write the billing-owned payment status (and the raised risk) to the account."""
        patch = (
            CustomerPatch(payment_status=status)
            if risk_level is None
            else CustomerPatch(payment_status=status, risk_level=risk_level)
        )
        # payment_status is Stripe's; the CRM keeps a copy only the gateway's flows write.
        check_write("Customer", "salesforce", patch.fields_set(), mirror=True)
        await self.crm.update_account(crm_account_id, patch)

    # -- steps: the exception queue ------------------------------------------------------

    @flow_step(system="gateway", retry=SHORT_OUTAGE)
    async def open_collections_item(self, item: CollectionsItem, flow_id: str) -> str:
        """The invoice's item for finance, opened once and updated on each further attempt."""
        step = collections_step(item.stripe_customer_id, item.stripe_invoice_id)
        async with self.database.begin() as conn:
            existing = (
                await conn.execute(
                    sa.select(exceptions.c.flow_id).where(
                        exceptions.c.flow_type == FLOW_TYPE,
                        exceptions.c.step == step,
                        exceptions.c.status.in_(_OPEN),
                    )
                )
            ).first()
            item_id, _ = await open_exception(
                conn,
                exception_id=new_exception_id(),
                flow_id=existing.flow_id if existing is not None else flow_id,
                flow_type=FLOW_TYPE,
                step=step,
                step_ref=_ITEM_STEP_REF,
                system="stripe",
                owner="finance",
                error_class="PaymentFailed",
                cause=_cause(item),
                input_json=msgspec.json.encode(item).decode(),
                legal_entity=item.legal_entity,
                now=utcnow(),
            )
        return item_id

    @flow_step(system="gateway", retry=SHORT_OUTAGE)
    async def resolve_collections_item(
        self, stripe_customer_id: str, stripe_invoice_id: str, reason: str
    ) -> list[str]:
        """Resolve the invoice's open items; returns their ids."""
        step = collections_step(stripe_customer_id, stripe_invoice_id)
        async with self.database.begin() as conn:
            rows = await conn.execute(
                sa.select(exceptions.c.id).where(
                    exceptions.c.flow_type == FLOW_TYPE,
                    exceptions.c.step == step,
                    exceptions.c.status.in_(_OPEN),
                )
            )
            resolved = [row.id for row in rows]
            for item_id in resolved:
                await close_exception(conn, item_id, now=utcnow(), resolution=reason)
        return resolved

    @flow_step(system="gateway", retry=SHORT_OUTAGE)
    async def count_other_unpaid(self, stripe_customer_id: str, stripe_invoice_id: str) -> int:
        """The customer's other invoices still in collections."""
        mine = collections_step(stripe_customer_id, stripe_invoice_id)
        prefix = collections_step(stripe_customer_id, "")
        async with self.database.connect() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count()).where(
                    exceptions.c.flow_type == FLOW_TYPE,
                    exceptions.c.step.startswith(prefix, autoescape=True),
                    exceptions.c.step != mine,
                    exceptions.c.status.in_(_OPEN),
                )
            )
        return int(count or 0)

    # -- flows ---------------------------------------------------------------------------

    @flow()
    async def payment_failed(self, event: WebhookEvent, flow_id: str) -> Outcome:
        invoice_id = event.subject or ""
        claim = await self.claim_invoice_version(invoice_id, event, FAILED_RANK)
        if not claim.applied:
            return "superseded"  # the invoice was paid after this attempt failed
        invoice = await self.posting.fetch_invoice(invoice_id)
        account = await self.posting.fetch_crm_account(invoice.customer_id)
        posted = await self.posting.book(invoice, account)
        attempt = _attempt_count(event)
        await self.flag_invoice_for_collections(posted.id)
        await self.flag_customer_for_collections(posted.customer_id)
        current_risk = await self.read_risk_level(account)
        await self.mirror_payment_status(account, "past_due", _raised(current_risk, attempt))
        item = _item(invoice, posted, account, attempt)
        await self.open_collections_item(item, flow_id)
        if await self.is_overtaken(invoice_id, event, FAILED_RANK):
            await self.settle(item, reason=f"Stripe invoice {invoice_id} was paid meanwhile")
            return "settled"
        return "in_collections"

    @flow()
    async def payment_recovered(self, event: WebhookEvent) -> Outcome:
        invoice_id = event.subject or ""
        claim = await self.claim_invoice_version(invoice_id, event, PAID_RANK)
        if claim.previous is None:
            return "not_in_collections"
        invoice = await self.posting.fetch_invoice(invoice_id)
        account = await self.posting.fetch_crm_account(invoice.customer_id)
        posted = await self.posting.book(invoice, account)
        item = _item(invoice, posted, account, attempt=0)
        await self.settle(item, reason=f"Stripe invoice {invoice_id} paid (event {event.id})")
        return "settled"

    @flow()
    async def subscription_updated(self, event: WebhookEvent) -> str:
        """Mirror the subscription's status as the account's payment status, unless an event
        newer than this one was applied already."""
        claim = await self.claim_subscription_version(event)
        if not claim.applied:
            return "superseded"
        status = _MIRRORED_STATUS.get(str(event.object.get("status")))
        customer = _customer_of(event.object)
        if status is None or customer is None:
            return "unchanged"
        account = await self.posting.fetch_crm_account(customer)
        await self.mirror_payment_status(account, status)
        return status

    async def settle(self, item: CollectionsItem, *, reason: str) -> None:
        """Take the invoice out of collections (and the customer, when nothing else of theirs
        is unpaid); the compensation of `payment_failed`."""
        await self.undo_flag_invoice(item.erp_invoice_id)
        await self.resolve_collections_item(
            item.stripe_customer_id, item.stripe_invoice_id, reason
        )
        if await self.count_other_unpaid(item.stripe_customer_id, item.stripe_invoice_id):
            return
        await self.undo_flag_customer(item.erp_customer_id)
        await self.mirror_payment_status(item.crm_account_id, "current")

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, dispatcher: WebhookDispatcher) -> None:
        dispatcher.register("stripe", FAILED, self._on_failed)
        dispatcher.register("stripe", PAID, self._on_paid)
        dispatcher.register("stripe", SUBSCRIPTION_UPDATED, self._on_subscription)

    def _on_failed(self, event: WebhookEvent) -> FlowStart | None:
        if event.type != FAILED or not event.subject:
            return None
        key = f"stripe:{event.id}"
        return _start(event, FLOW_TYPE, key, self.payment_failed, (event, key))

    def _on_paid(self, event: WebhookEvent) -> FlowStart | None:
        if event.type != PAID or not event.subject:
            return None
        # invoice posting runs `stripe:{event_id}` for the same event.
        key = f"stripe:{event.id}:collections"
        return _start(event, RECOVERY_FLOW_TYPE, key, self.payment_recovered, (event,))

    def _on_subscription(self, event: WebhookEvent) -> FlowStart | None:
        if event.type != SUBSCRIPTION_UPDATED or not event.subject:
            return None
        key = f"stripe:{event.id}"
        return _start(event, STATUS_FLOW_TYPE, key, self.subscription_updated, (event,))


def build(
    *,
    engine: FlowEngine,
    intake: WebhookIntake,
    billing: BillingPort,
    erp: ErpPort,
    crm: CrmPort,
) -> PaymentFailureFlows:
    """The payment flows the app factory registers before the engine launches: invoice
    posting and these, subscribed to Stripe's invoice, payment and subscription events."""
    posting = invoice_posting.build(
        engine=engine, billing=billing, erp=erp, dispatcher=intake.dispatcher
    )
    flows = engine.register(
        PaymentFailureFlows,
        posting=posting,
        erp=erp,
        crm=crm,
        versions=intake.versions,
        database=intake.database,
    )
    flows.subscribe(intake.dispatcher)
    return flows


_ITEM_STEP_REF: Final = f"{__name__}.PaymentFailureFlows.open_collections_item"


def _start(
    event: WebhookEvent, flow_type: str, key: str, fn: Any, args: tuple[Any, ...]
) -> FlowStart:
    keys, correlation_id = stripe_trace(event)
    return FlowStart(
        flow_type=flow_type,
        business_key=key,
        fn=fn,
        args=args,
        legal_entity=stripe_legal_entity(event),
        trace_keys=keys,
        correlation_id=correlation_id,
    )


def _attempt_count(event: WebhookEvent) -> int:
    value = event.object.get("attempt_count")
    return value if isinstance(value, int) and value > 0 else 1


def _raised(current: RiskLevel | None, attempt: int) -> RiskLevel:
    """One level up for a first failure, high from the second; never lowered (so a step run
    again lands on the same level)."""
    floor: RiskLevel = "medium" if attempt <= 1 else "high"
    if current is None:
        return floor
    return max(current, floor, key=_RISK_ORDER.index)


def _customer_of(obj: dict[str, Any]) -> str | None:
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer if isinstance(customer, str) and customer else None


def _item(invoice: Invoice, posted: Invoice, account: str, attempt: int) -> CollectionsItem:
    return CollectionsItem(
        stripe_invoice_id=invoice.id,
        stripe_invoice_number=invoice.number,
        stripe_customer_id=invoice.customer_id,
        erp_invoice_id=posted.id,
        erp_invoice_number=posted.number,
        erp_customer_id=posted.customer_id,
        crm_account_id=account,
        attempt_count=attempt,
        amount_due=invoice.amount_remaining,
        currency=invoice.currency,
        legal_entity=posted.legal_entity,
    )


def _cause(item: CollectionsItem) -> str:
    due = format_decimal(Money(amount=item.amount_due, currency=item.currency))
    return (
        f"Payment attempt {item.attempt_count} failed for Stripe invoice "
        f"{item.stripe_invoice_number or item.stripe_invoice_id} ({item.stripe_invoice_id}): "
        f"{due} {item.currency} due; NetSuite invoice {item.erp_invoice_number} is in "
        "collections"
    )
