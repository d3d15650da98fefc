"""Data for the view tests, made the way the platforms and flows make it: customers and
subscriptions through the vendor clients, cross-references, flows and exceptions through the
process layer's record functions."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import UpstreamRejected
from contracts.money import Money
from contracts.v1 import (
    ApprovalTask,
    CustomerCreate,
    SalesOrderCreate,
    SalesOrderLine,
    SubscriptionCreate,
    SubscriptionItemInput,
)
from process_apis.customer_master.flow import canonical_customer_id
from process_apis.engine.queue import new_exception_id, open_exception
from process_apis.engine.records import create_flow, set_flow_status
from process_apis.engine.store import cross_references
from tests.experience_apis.conftest import World


@dataclass
class Customer:
    name: str
    legal_entity: str
    currency: str
    crm_account: str
    canonical: str
    zendesk_org: str
    stripe: str | None = None
    netsuite: str | None = None


async def link(
    engine: AsyncEngine, canonical: str, *, legal_entity: str, **ids: str | None
) -> None:
    """Cross-reference rows as the customer master writes them: one per platform it linked,
    in the account's legal entity (the Salesforce account is the canonical id's origin and has
    no row)."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        for system, external_id in ids.items():
            if external_id is None:
                continue
            await conn.execute(
                sa.insert(cross_references).values(
                    entity="customer",
                    canonical_id=canonical,
                    system=system,
                    legal_entity=legal_entity,
                    external_id=external_id,
                    created_at=now,
                    updated_at=now,
                )
            )


async def demo_customer(world: World, name: str) -> Customer:
    """A seeded account (CRM and support know it) not yet in billing or the ERP."""
    account = (await world.crm.list_accounts(name=name)).data[0]
    orgs = (await world.support.list_organizations(limit=100)).data
    org = next(o for o in orgs if o.legal_name == account.legal_name)
    return Customer(
        name=account.legal_name,
        legal_entity=account.legal_entity,
        currency=account.currency,
        crm_account=account.id,
        canonical=canonical_customer_id(account.id),
        zendesk_org=org.id,
    )


async def onboard(
    world: World,
    customer: Customer,
    *,
    plans: tuple[tuple[tuple[str, int], ...], ...] = ((("PLAT-STD", 1), ("SEAT", 20)),),
    erp: bool = True,
    link_billing: bool = True,
) -> Customer:
    """The customer in billing (one subscription per plan, invoiced at once) and the ERP,
    cross-referenced (billing only when `link_billing`: else found by its CRM metadata)."""
    created = await world.billing.create_customer(
        CustomerCreate(
            legal_name=customer.name,
            legal_entity=customer.legal_entity,
            currency=customer.currency,
            email=f"ap@{customer.crm_account.lower()}.test",
        ),
        crm_account_id=customer.crm_account,
    )
    customer.stripe = created.id
    for plan in plans:
        items = []
        for code, quantity in plan:
            price = await world.billing.find_price(product_code=code, currency=customer.currency)
            items.append(SubscriptionItemInput(price_id=price.id, quantity=quantity))
        await world.billing.create_subscription(
            SubscriptionCreate(
                customer_id=created.id,
                currency=customer.currency,
                items=items,
                collection_method="send_invoice",
                days_until_due=30,
            )
        )
    if erp:
        record = await world.erp.upsert_customer(
            CustomerCreate(
                legal_name=customer.name,
                legal_entity=customer.legal_entity,
                currency=customer.currency,
            ),
            external_id=customer.canonical,
        )
        customer.netsuite = record.id
    await link(
        world.engine,
        customer.canonical,
        legal_entity=customer.legal_entity,
        stripe=customer.stripe if link_billing else None,
        zendesk=customer.zendesk_org,
        netsuite=customer.netsuite,
    )
    return customer


async def erp_invoice(world: World, customer: Customer, *, key: str, quantity: int) -> str:
    """An open ERP invoice of the customer (a sales order of SEATs, invoiced)."""
    assert customer.netsuite is not None
    item = await world.erp.find_product("SEAT")
    unit = 2500 if customer.currency == "USD" else 2300
    order = await world.erp.upsert_sales_order(
        SalesOrderCreate(
            customer_id=customer.netsuite,
            legal_entity=customer.legal_entity,
            currency=customer.currency,
            order_date=date.today(),
            lines=[
                SalesOrderLine(
                    item_id=item.id,
                    product_code="SEAT",
                    quantity=quantity,
                    unit_amount=unit,
                    amount=unit * quantity,
                )
            ],
            external_id=f"so:{key}",
        )
    )
    invoice = await world.erp.upsert_invoice(sales_order_id=order.id, external_id=f"inv:{key}")
    return str(invoice.id)


async def approval(
    world: World, *, key: str, flow_id: str, legal_entity: str, amount: int, currency: str
) -> ApprovalTask:
    task = ApprovalTask(
        id="",
        kind="credit_note",
        subject=f"Service credit {key}",
        amount=amount,
        currency=currency,
        requested_at=datetime.now(UTC),
        flow_id=flow_id,
        legal_entity=legal_entity,
    )
    created: ApprovalTask = await world.erp.upsert_approval_task(
        task, external_id=f"approval:{key}"
    )
    return created


async def flow(
    engine: AsyncEngine,
    flow_id: str,
    *,
    status: str = "running",
    crm_account: str | None = None,
    legal_entity: str | None = "US01",
    correlation_id: str | None = None,
    flow_type: str = "quote_to_cash",
    at: datetime | None = None,
) -> None:
    now = at or datetime.now(UTC)
    async with engine.begin() as conn:
        await create_flow(
            conn,
            flow_id=flow_id,
            flow_type=flow_type,
            correlation_id=correlation_id,
            crm_account=crm_account,
            legal_entity=legal_entity,
            now=now,
        )
        await set_flow_status(conn, flow_id, status, now=now)  # type: ignore[arg-type]


async def exception(
    engine: AsyncEngine,
    flow_id: str,
    *,
    step: str = "post_to_erp",
    step_ref: str | None = None,
    system: str = "netsuite",
    owner: str = "finance",
    flow_type: str = "quote_to_cash",
    legal_entity: str | None = "US01",
    at: datetime | None = None,
) -> str:
    async with engine.begin() as conn:
        exception_id, _ = await open_exception(
            conn,
            exception_id=new_exception_id(),
            flow_id=flow_id,
            flow_type=flow_type,
            step=step,
            step_ref=step_ref or f"tests.{step}",
            system=system,
            owner=owner,  # type: ignore[arg-type]
            error_class="UpstreamRejected",
            cause="period closed",
            input_json=None,
            legal_entity=legal_entity,
            now=at or datetime.now(UTC),
        )
    return exception_id


async def failed_payment(world: World, customer: Customer) -> tuple[str, str]:
    """A subscription charged automatically whose renewal charge is declined: the subscription
    goes past_due and the customer delinquent. Returns (subscription id, open invoice id)."""
    assert customer.stripe is not None
    price = await world.billing.find_price(product_code="SEAT", currency=customer.currency)
    subscription = await world.billing.create_subscription(
        SubscriptionCreate(
            customer_id=customer.stripe,
            currency=customer.currency,
            items=[SubscriptionItemInput(price_id=price.id, quantity=3)],
        )
    )
    await world.billing.create_invoice_item(
        customer_id=customer.stripe,
        amount=Money(amount=3 * (price.unit_amount or 0), currency=customer.currency),
        description="3 x User Seat, renewal",
        subscription_id=subscription.id,
    )
    invoice = await world.billing.create_invoice(
        customer_id=customer.stripe, subscription_id=subscription.id
    )
    await world.billing.finalize_invoice(invoice.id)
    # The decline is the point.
    with contextlib.suppress(UpstreamRejected):
        await world.billing.pay_invoice(invoice.id, payment_method="pm_card_chargeDeclined")
    return subscription.id, invoice.id
