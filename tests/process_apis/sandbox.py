"""Reach the vendor emulators through their own APIs, as a person using the vendor would:
create accounts, products and won deals in Salesforce, and read what Stripe holds.

Each takes an httpx client and the emulator's base URL: `http://testserver/_sandbox/<vendor>`
through an in-process gateway, or `http://127.0.0.1:N` for an emulator in its own process.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import msgspec

__all__ = ["STRIPE_KEY", "SalesforceOrg", "StripeAccount", "seeded_id"]

STRIPE_KEY = "sk_test_erpgw_sandbox"
MAX_TRIES = 20
SF_VERSION = "v62.0"
_encoder = msgspec.json.Encoder(decimal_format="number")


def seeded_id(kind: str, key: str) -> str:
    """The id the Salesforce emulator gives a demo record, e.g. of ("Account", "acme")."""
    from sandbox.salesforce.ids import seeded_id as salesforce_seeded_id

    return salesforce_seeded_id(kind, key)


class SalesforceOrg:
    """The emulated org's REST API with the sandbox connected app."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._token: str | None = None
        self._entries: dict[tuple[str, str], str] = {}
        self._pricebook: str | None = None

    async def create(self, sobject: str, fields: dict[str, Any]) -> str:
        response = await self._call("POST", f"sobjects/{sobject}", fields)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        response = await self._call("PATCH", f"sobjects/{sobject}/{record_id}", fields)
        assert response.status_code == 204, response.text

    async def get(self, sobject: str, record_id: str) -> dict[str, Any]:
        response = await self._call("GET", f"sobjects/{sobject}/{record_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def query(self, soql: str) -> list[dict[str, Any]]:
        response = await self._call("GET", "query", params={"q": soql})
        assert response.status_code == 200, response.text
        return list(response.json()["records"])

    async def standard_pricebook(self) -> str:
        if self._pricebook is None:
            rows = await self.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")
            self._pricebook = str(rows[0]["Id"])
        return self._pricebook

    async def price_entry(self, product_code: str, currency: str) -> str:
        """The standard price book entry of a product in a currency (read once)."""
        key = (product_code, currency)
        if key not in self._entries:
            rows = await self.query(
                "SELECT Id FROM PricebookEntry WHERE ProductCode = "
                f"'{product_code}' AND CurrencyIsoCode = '{currency}'"
            )
            self._entries[key] = str(rows[0]["Id"])
        return self._entries[key]

    async def product(self, code: str, name: str, interval: str, prices: dict[str, Decimal]) -> str:
        """A product with a standard price book entry per currency."""
        product_id = await self.create(
            "Product2",
            {"Name": name, "ProductCode": code, "IsActive": True, "Billing_Interval__c": interval},
        )
        pricebook = await self.standard_pricebook()
        for currency, amount in prices.items():
            await self.create(
                "PricebookEntry",
                {
                    "Pricebook2Id": pricebook,
                    "Product2Id": product_id,
                    "UnitPrice": amount,
                    "CurrencyIsoCode": currency,
                    "IsActive": True,
                },
            )
        return product_id

    async def deal(
        self,
        account_id: str,
        lines: list[tuple[str, int]],
        *,
        currency: str,
        name: str,
        stage: str = "Closed Won",
        close_date: str = "2026-11-20",
    ) -> str:
        """An opportunity with one line per (product code, quantity), at list price."""
        pricebook = await self.standard_pricebook()
        opportunity_id = await self.create(
            "Opportunity",
            {
                "AccountId": account_id,
                "Name": name,
                "StageName": "Prospecting",
                "CloseDate": close_date,
                "CurrencyIsoCode": currency,
                "Pricebook2Id": pricebook,
            },
        )
        for code, quantity in lines:
            await self.create(
                "OpportunityLineItem",
                {
                    "OpportunityId": opportunity_id,
                    "PricebookEntryId": await self.price_entry(code, currency),
                    "Quantity": quantity,
                },
            )
        if stage != "Prospecting":
            await self.update("Opportunity", opportunity_id, {"StageName": stage})
        return opportunity_id

    async def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        token = await self._access_token()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        content = None
        if body is not None:
            content = _encoder.encode(body)
            headers["Content-Type"] = "application/json"
        return await self._http.request(
            method,
            f"{self._base}/services/data/{SF_VERSION}/{path}",
            content=content,
            headers=headers,
            params=params,
        )

    async def _access_token(self) -> str:
        if self._token is None:
            response = await self._http.post(
                f"{self._base}/services/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "erpgw-sandbox",
                    "client_secret": "erpgw-sandbox-secret",
                },
            )
            assert response.status_code == 200, response.text
            self._token = str(response.json()["access_token"])
        return self._token


class StripeAccount:
    """The emulated Stripe account's REST API with the sandbox secret key."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")

    async def objects(self, path: str, **params: str) -> list[dict[str, Any]]:
        """Every object of a Stripe list (following `has_more`)."""
        found: list[dict[str, Any]] = []
        query = {"limit": "100", **params}
        while True:
            response = await self._get(path, query)
            assert response.status_code == 200, response.text
            page = response.json()
            found += page["data"]
            if not page["has_more"] or not page["data"]:
                return found
            query["starting_after"] = page["data"][-1]["id"]

    async def _get(self, path: str, query: dict[str, str]) -> httpx.Response:
        """A GET, tried again (as Stripe advises) while Stripe answers 429 or 5xx, such as
        the faults a chaos test injects."""
        for _ in range(MAX_TRIES - 1):
            response = await self._http.get(
                f"{self._base}{path}",
                params=query,
                headers={"Authorization": f"Bearer {STRIPE_KEY}"},
            )
            if response.status_code != 429 and response.status_code < 500:
                return response
            await asyncio.sleep(0.2)
        return await self._http.get(
            f"{self._base}{path}", params=query, headers={"Authorization": f"Bearer {STRIPE_KEY}"}
        )

    async def customers_of(self, crm_account_id: str) -> list[dict[str, Any]]:
        return [
            c
            for c in await self.objects("/v1/customers")
            if c["metadata"].get("crm_account_id") == crm_account_id
        ]

    async def faults(self) -> dict[str, Any]:
        response = await self._http.get(f"{self._base}/_emulator/faults")
        return dict(response.json())

    async def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Replace the account's faults (none when called without any)."""
        response = await self._http.post(f"{self._base}/_emulator/faults", json=faults)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def point_webhooks_at(self, url: str) -> None:
        """Every event delivered to `url`, as an operator sets up a webhook endpoint."""
        created = await self._http.post(
            f"{self._base}/v1/webhook_endpoints",
            data={"url": url, "enabled_events[]": "*"},
            headers={"Authorization": f"Bearer {STRIPE_KEY}"},
        )
        assert created.status_code == 200, created.text
