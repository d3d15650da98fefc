"""The gateway served over loopback with its emulators, so the emulators' own signed webhook
deliveries reach it; plus vendor clients (over HTTP, through `/_sandbox/<vendor>`) to set up a
customer the way the customer master and quote-to-cash leave it, and to read results back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from contracts.v1 import (
    CustomerCreate,
    Invoice,
    SalesOrderCreate,
    SalesOrderLine,
    SubscriptionCreate,
    SubscriptionItemInput,
)
from gateway import storage
from gateway.clients import ClientRegistry
from gateway.sandbox_wiring import netsuite_sandbox_credentials as netsuite_sandbox
from gateway.sandbox_wiring import salesforce_sandbox_credentials as salesforce_sandbox
from gateway.sandbox_wiring import stripe_sandbox_credentials as stripe_sandbox
from sandbox.salesforce.ids import seeded_id
from sandbox.stripe.emulator import price_id_for
from system_apis.billing.stripe import StripeClient
from system_apis.crm.salesforce.client import SalesforceClient
from system_apis.erp.netsuite.client import NetSuiteClient
from tests.support.apps import gateway_app, settings_for
from tests.support.servers import free_port, serve_asgi

__all__ = ["READER_SCOPES", "Customer", "Served", "create_client", "served_gateway"]

SANDBOXES = ("stripe", "netsuite", "salesforce")
SEATS = 5
PLATFORM_USD = 50_000
SEAT_USD = 2_500
ORDER_TOTAL = PLATFORM_USD + SEATS * SEAT_USD


@dataclass
class Customer:
    """One customer set up in every platform, with a subscription billed in Stripe."""

    crm_account: str
    opportunity: str
    erp_customer: str
    sales_order: str
    stripe_customer: str
    stripe_invoice: str


@dataclass
class Served:
    base_url: str
    http: httpx.AsyncClient
    stripe: StripeClient
    netsuite: NetSuiteClient
    salesforce: SalesforceClient
    reader: dict[str, str]
    """Headers of a client holding process:read and ops:read (or the scopes asked for)."""
    database_url: str

    async def headers_for(
        self, scopes: tuple[str, ...], *, entities: tuple[str, ...] | None = None
    ) -> dict[str, str]:
        """Bearer headers of a new client with `scopes`, limited to `entities` if given."""
        secret = await create_client(self.database_url, scopes=scopes, entities=entities)
        token = await self.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=secret
        )
        token.raise_for_status()
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    async def flows(self, flow_type: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"{self.base_url}/process/v1/flows", params={"type": flow_type}, headers=self.reader
        )
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    async def exceptions(self, owner: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"{self.base_url}/process/v1/exceptions",
            params={"owner": owner},
            headers=self.reader,
        )
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    async def erp_invoices(self, erp_customer: str) -> list[Invoice]:
        return (await self.netsuite.list_invoices(customer_id=erp_customer)).data

    async def invoice_collections_flag(self, erp_invoice: str) -> str | None:
        rows = [
            row
            async for row in self.netsuite.suiteql(
                "SELECT id, custbody_collections_status FROM transaction "
                f"WHERE id = {int(erp_invoice)}"
            )
        ]
        return rows[0].get("custbody_collections_status") if rows else None

    async def subscribe(self, account_key: str, opportunity_key: str) -> Customer:
        """A US01 customer of a demo account, linked as the customer master links it, with the
        quote-to-cash sales order and a Stripe subscription whose first invoice is finalized
        at once (PLAT-STD x1 and SEAT x5 in USD)."""
        account = seeded_id("Account", account_key)
        opportunity = seeded_id("Opportunity", opportunity_key)
        create = CustomerCreate(
            legal_name=f"{account_key.title()} Inc.", legal_entity="US01", currency="USD"
        )
        erp_customer = await self.netsuite.upsert_customer(create, external_id=f"cus-{account}")
        order = await self.netsuite.upsert_sales_order(
            SalesOrderCreate(
                customer_id=erp_customer.id,
                legal_entity="US01",
                currency="USD",
                order_date=date.today(),
                external_id=f"q2c:{opportunity}",
                deal_id=opportunity,
                lines=[
                    SalesOrderLine(
                        product_code="PLAT-STD",
                        quantity=1,
                        unit_amount=PLATFORM_USD,
                        amount=PLATFORM_USD,
                    ),
                    SalesOrderLine(
                        product_code="SEAT",
                        quantity=SEATS,
                        unit_amount=SEAT_USD,
                        amount=SEATS * SEAT_USD,
                    ),
                ],
            )
        )
        customer = await self.stripe.create_customer(create, crm_account_id=account)
        subscription = await self.stripe.create_subscription(
            SubscriptionCreate(
                customer_id=customer.id,
                currency="USD",
                items=[
                    SubscriptionItemInput(price_id=price_id_for("PLAT-STD", "USD")),
                    SubscriptionItemInput(price_id=price_id_for("SEAT", "USD"), quantity=SEATS),
                ],
                collection_method="send_invoice",
                days_until_due=30,
                deal_id=opportunity,
                legal_entity="US01",
            )
        )
        invoices = await self.stripe.list_invoices(subscription_id=subscription.id)
        return Customer(
            crm_account=account,
            opportunity=opportunity,
            erp_customer=erp_customer.id,
            sales_order=order.id,
            stripe_customer=customer.id,
            stripe_invoice=invoices.data[0].id,
        )


READER_SCOPES = ("process:read", "ops:read")


@asynccontextmanager
async def served_gateway(
    tmp_path: Path, *, scopes: tuple[str, ...] = READER_SCOPES
) -> AsyncIterator[Served]:
    port = free_port()
    settings = settings_for(
        tmp_path,
        emulated=True,
        ERPGW_PORT=str(port),
        ERPGW_RATE_LIMIT_TIERS="gold=100000/minute;anonymous=100000/minute",
    )
    app = gateway_app(settings)
    with serve_asgi(app, port=port, lifespan="on") as base_url:
        secret = await create_client(settings.database_url, scopes=scopes)
        sandbox = {vendor: f"{base_url}/_sandbox/{vendor}" for vendor in SANDBOXES}
        async with contextlib.AsyncExitStack() as stack:
            http, stripe_http, netsuite_http, salesforce_http = [
                await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=10.0))
                for url in (base_url, *sandbox.values())
            ]
            token = await http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=secret
            )
            token.raise_for_status()
            yield Served(
                base_url=base_url,
                http=http,
                stripe=StripeClient(stripe_http, credentials=stripe_sandbox(sandbox["stripe"])),
                netsuite=NetSuiteClient(
                    netsuite_http, credentials=netsuite_sandbox(sandbox["netsuite"])
                ),
                salesforce=SalesforceClient(
                    salesforce_http, salesforce_sandbox(sandbox["salesforce"])
                ),
                reader={"Authorization": f"Bearer {token.json()['access_token']}"},
                database_url=settings.database_url,
            )


async def create_client(
    database_url: str, *, scopes: tuple[str, ...], entities: tuple[str, ...] | None = None
) -> tuple[str, str]:
    """A gold-tier API client of the served gateway (id and secret)."""
    engine = storage.create_engine(database_url)
    try:
        created = await ClientRegistry(engine).create(
            name="payments-test", scopes=scopes, tier="gold", entities=entities
        )
    finally:
        await engine.dispose()
    return created.client.client_id, created.client_secret
