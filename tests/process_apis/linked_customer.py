"""The seeded Acme account linked across the four emulated platforms as the customer master
leaves it, with a monthly subscription whose first invoice is paid and its mirror in the ERP;
set up through the gateway's own vendor clients."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from contracts.v1 import (
    Customer,
    CustomerCreate,
    SalesOrderCreate,
    SalesOrderLine,
    SubscriptionCreate,
    SubscriptionItemInput,
)
from process_apis.customer_master.flow import canonical_customer_id
from sandbox.salesforce.ids import seeded_id
from sandbox.stripe.seed import price_id_for
from tests.support.apps import AppClient

__all__ = ["MRR", "Acme", "seed_acme", "vendor"]

MRR = 50_000 + 20 * 2_500
"""PLAT-STD x 1 and SEAT x 20, monthly, in USD cents."""
DEAL_KEY = "acme-platform"


@dataclass
class Acme:
    """The seeded Acme account, linked across the platforms as the customer master would."""

    organization_id: str
    ticket_id: str
    crm_account_id: str
    canonical_id: str
    stripe_customer_id: str
    stripe_invoice_id: str
    erp_customer_id: str
    erp_invoice_id: str
    subscription_id: str
    deal_id: str

    @property
    def credit_id(self) -> str:
        return f"escalation:{self.organization_id}:2026-11"


def vendor(client: AppClient, name: str) -> Any:
    return client.app.state.gateway.platforms.vendors[name].client


async def seed_acme(client: AppClient) -> Acme:
    crm, billing = vendor(client, "salesforce"), vendor(client, "stripe")
    support, erp = vendor(client, "zendesk"), vendor(client, "netsuite")
    account = (await crm.list_accounts(name="Acme")).data[0]
    canonical = canonical_customer_id(account.id)
    deal_id = seeded_id("Opportunity", DEAL_KEY)
    organization = next(
        org
        for org in (await support.list_organizations(limit=100)).data
        if org.legal_name == account.legal_name
    )
    await support.upsert_organization(
        Customer(
            id=organization.id,
            legal_name=organization.legal_name,
            legal_entity="US01",
            currency="USD",
            refs={"zendesk": organization.id, "salesforce": account.id},
        ),
        external_id=canonical,
    )
    ticket = (await support.list_cases(organization_id=organization.id, priority="urgent")).data[0]
    customer = await billing.create_customer(
        CustomerCreate(legal_name=account.legal_name, legal_entity="US01", currency="USD"),
        crm_account_id=account.id,
    )
    subscription = await billing.create_subscription(
        SubscriptionCreate(
            customer_id=customer.id,
            currency="USD",
            deal_id=deal_id,
            legal_entity="US01",
            items=[
                SubscriptionItemInput(price_id=price_id_for("PLAT-STD", "USD"), quantity=1),
                SubscriptionItemInput(price_id=price_id_for("SEAT", "USD"), quantity=20),
            ],
        )
    )
    invoice = (await billing.list_invoices(subscription_id=subscription.id, status="paid")).data[0]
    erp_customer = await erp.upsert_customer(
        CustomerCreate(legal_name=account.legal_name, legal_entity="US01", currency="USD"),
        external_id=canonical,
    )
    order = await erp.upsert_sales_order(
        SalesOrderCreate(
            customer_id=erp_customer.id,
            legal_entity="US01",
            currency="USD",
            order_date=date(2026, 11, 2),
            lines=[SalesOrderLine(product_code="SEAT", quantity=20, unit_amount=2_500,
                                  amount=50_000)],
            external_id=f"q2c:{deal_id}",
        )
    )
    erp_invoice = await erp.upsert_invoice(sales_order_id=order.id, external_id=invoice.id)
    return Acme(
        organization_id=organization.id,
        ticket_id=ticket.id,
        crm_account_id=account.id,
        canonical_id=canonical,
        stripe_customer_id=customer.id,
        stripe_invoice_id=invoice.id,
        erp_customer_id=erp_customer.id,
        erp_invoice_id=erp_invoice.id,
        subscription_id=subscription.id,
        deal_id=deal_id,
    )


