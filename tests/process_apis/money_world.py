"""A served gateway (so the emulators' signed webhooks reach it) with a caller allowed to book
deals and amend subscriptions, the Salesforce org to sell deals at negotiated prices, and the
vendor clients to read what every platform holds, for the money tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from contracts.v1 import Invoice, SalesOrder
from gateway import storage
from gateway.clients import ClientRegistry
from gateway.sandbox_wiring import netsuite_sandbox_credentials as netsuite_sandbox
from gateway.sandbox_wiring import salesforce_sandbox_credentials as salesforce_sandbox
from gateway.sandbox_wiring import stripe_sandbox_credentials as stripe_sandbox
from sandbox.credentials import STRIPE
from system_apis.billing.stripe import StripeClient
from system_apis.crm.salesforce.client import SalesforceClient
from system_apis.erp.netsuite.client import NetSuiteClient
from tests.process_apis.sandbox import SalesforceOrg, StripeAccount
from tests.support.apps import gateway_app, settings_for
from tests.support.servers import free_port, serve_asgi
from tests.support.waiting import eventually

__all__ = ["Line", "MoneyWorld", "money_world"]

SCOPES = ["process:write", "process:read", "ops:read", "erp:read", "billing:read", "crm:read"]


@dataclass(frozen=True)
class Line:
    """A deal line: a product, a quantity and the negotiated unit price (minor units)."""

    product_code: str
    quantity: int
    unit_amount: int


@dataclass
class MoneyWorld:
    base_url: str
    http: httpx.AsyncClient
    headers: dict[str, str]
    sf: SalesforceOrg
    stripe_raw: StripeAccount
    """Stripe's own API, for what the canonical contracts leave out (metadata, balances)."""
    stripe: StripeClient
    netsuite: NetSuiteClient
    salesforce: SalesforceClient

    async def account(
        self,
        name: str,
        *,
        legal_entity: str,
        currency: str,
        country: str,
        state: str | None = None,
        tax_id: str | None = None,
    ) -> str:
        """A new CRM account (no demo deals of its own)."""
        fields: dict[str, Any] = {
            "Name": name,
            "BillingStreet": "1 Test Street",
            "BillingCity": "Testville",
            "BillingPostalCode": "12345",
            "BillingCountry": country,
            "CurrencyIsoCode": currency,
            "Legal_Entity__c": legal_entity,
            "Payment_Terms_Days__c": 30,
        }
        if state is not None:
            fields["BillingState"] = state
        if tax_id is not None:
            fields["Tax_Id__c"] = tax_id
        return await self.sf.create("Account", fields)

    async def deal(self, account_id: str, lines: list[Line], *, currency: str, name: str) -> str:
        """A won opportunity of `account_id` whose lines are sold at their own unit prices."""
        pricebook = await self.sf.standard_pricebook()
        opportunity = await self.sf.create(
            "Opportunity",
            {
                "AccountId": account_id,
                "Name": name,
                "StageName": "Prospecting",
                "CloseDate": date.today().isoformat(),
                "CurrencyIsoCode": currency,
                "Pricebook2Id": pricebook,
            },
        )
        for line in lines:
            await self.sf.create(
                "OpportunityLineItem",
                {
                    "OpportunityId": opportunity,
                    "PricebookEntryId": await self.sf.price_entry(line.product_code, currency),
                    "Quantity": line.quantity,
                    "UnitPrice": Decimal(line.unit_amount).scaleb(-2),
                },
            )
        await self.sf.update("Opportunity", opportunity, {"StageName": "Closed Won"})
        return opportunity

    async def book(self, opportunity_id: str) -> dict[str, Any]:
        """Quote-to-cash of the deal, run to its end (it must succeed)."""
        response = await self.http.post(
            "/process/v1/quote-to-cash",
            json={"opportunity_id": opportunity_id},
            headers={**self.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 202, response.text
        return await self.finished(response.headers["location"])

    async def amend(self, subscription_id: str, changes: list[dict[str, Any]]) -> dict[str, Any]:
        response = await self.http.post(
            "/process/v1/subscription-amendments",
            json={
                "subscription_id": subscription_id,
                "changes": changes,
                "effective_date": date.today().isoformat(),
            },
            headers={**self.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 202, response.text
        return await self.finished(response.headers["location"])

    async def finished(self, location: str) -> dict[str, Any]:
        async def ended() -> dict[str, Any] | None:
            flow: dict[str, Any] = (await self.http.get(location, headers=self.headers)).json()
            return flow if flow.get("status") in ("succeeded", "failed", "waiting") else None

        flow: dict[str, Any] = await eventually(ended, timeout=60.0, what=f"{location} ended")
        assert flow["status"] == "succeeded", flow
        return flow

    async def open_exceptions(self) -> list[dict[str, Any]]:
        response = await self.http.get("/process/v1/exceptions", headers=self.headers)
        response.raise_for_status()
        return [e for e in response.json()["data"] if e.get("status") != "resolved"]

    async def postings_settled(self) -> list[dict[str, Any]]:
        """Every invoice posting flow (at least one), once none is still running."""

        async def settled() -> list[dict[str, Any]] | None:
            response = await self.http.get(
                "/process/v1/flows", params={"type": "invoice_posting"}, headers=self.headers
            )
            flows: list[dict[str, Any]] = response.json()["data"]
            done = flows and all(f["status"] not in ("running", "pending") for f in flows)
            return flows if done else None

        return await eventually(settled, timeout=60.0, what="invoice postings settled")

    async def sales_orders_of(self, number: str | None) -> list[SalesOrder]:
        """The ERP's sales orders with document number `number`."""
        assert number, "the deal names no ERP order"
        return (await self.netsuite.list_sales_orders(number=number)).data

    async def erp_invoice_of(self, billing_invoice_id: str) -> Invoice:
        """The ERP invoice posted for a billing invoice, found by its external id through the
        gateway's ERP system API (waits for the posting)."""

        async def posted() -> dict[str, Any] | None:
            response = await self.http.get(
                "/system/erp/v1/invoices",
                params={"external_id": billing_invoice_id},
                headers=self.headers,
            )
            assert response.status_code == 200, response.text
            data: list[dict[str, Any]] = response.json()["data"]
            return data[0] if data else None

        found = await eventually(posted, timeout=60.0, what=f"ERP invoice of {billing_invoice_id}")
        return await self.netsuite.get_invoice(str(found["id"]))


@asynccontextmanager
async def money_world(
    tmp_path: Path, *, stripe_url: str | None = None
) -> AsyncIterator[MoneyWorld]:
    """The world with every platform mounted in the gateway, or Stripe served apart at
    `stripe_url` (its own server: a request it holds outlives a caller that gave up on it,
    which an emulator called in process never does) and its webhooks pointed at the gateway."""
    port = free_port()
    settings = settings_for(
        tmp_path,
        emulated=True,
        ERPGW_PORT=str(port),
        ERPGW_RATE_LIMIT_TIERS="gold=100000/minute;anonymous=100000/minute",
        **(_stripe_apart(stripe_url) if stripe_url else {}),
    )
    app = gateway_app(settings)
    with serve_asgi(app, port=port, lifespan="on") as base_url:
        engine = storage.create_engine(settings.database_url)
        try:
            created = await ClientRegistry(engine).create(
                name="money-test", scopes=SCOPES, tier="gold", entities=["US01", "DE01"]
            )
        finally:
            await engine.dispose()
        sandbox = f"{base_url}/_sandbox"
        stripe_base = stripe_url or f"{sandbox}/stripe"
        async with contextlib.AsyncExitStack() as stack:
            http, plain, stripe_http, netsuite_http, salesforce_http = [
                await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=20.0))
                for url in (
                    base_url,
                    base_url,
                    stripe_base,
                    f"{sandbox}/netsuite",
                    f"{sandbox}/salesforce",
                )
            ]
            stripe_raw = StripeAccount(plain, stripe_base)
            if stripe_url:
                await stripe_raw.point_webhooks_at(f"{base_url}/webhooks/stripe")
            token = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(created.client.client_id, created.client_secret),
            )
            token.raise_for_status()
            yield MoneyWorld(
                base_url=base_url,
                http=http,
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                sf=SalesforceOrg(plain, f"{sandbox}/salesforce"),
                stripe_raw=stripe_raw,
                stripe=StripeClient(stripe_http, credentials=stripe_sandbox(stripe_base)),
                netsuite=NetSuiteClient(
                    netsuite_http, credentials=netsuite_sandbox(f"{sandbox}/netsuite")
                ),
                salesforce=SalesforceClient(
                    salesforce_http, salesforce_sandbox(f"{sandbox}/salesforce")
                ),
            )


def _stripe_apart(url: str) -> dict[str, str]:
    """The settings of a gateway whose Stripe is the sandbox account served at `url`."""
    return {
        "ERPGW_SANDBOX_VENDORS": "salesforce,zendesk,netsuite",
        "ERPGW_STRIPE_SECRET_KEY": STRIPE.secret_key,
        "ERPGW_STRIPE_BASE_URL": url,
        "ERPGW_STRIPE_WEBHOOK_SECRETS": STRIPE.webhook_secret,
    }
