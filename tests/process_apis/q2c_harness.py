"""A gateway with its four emulators in process, a caller allowed to start and watch flows,
and the vendors' own APIs to set up deals and read back what the flows created."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from gateway.storage import vendor_calls
from tests.process_apis.sandbox import SalesforceOrg, StripeAccount
from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)
from tests.support.waiting import eventually

__all__ = ["Harness", "harness"]

SCOPES = [
    "process:write", "process:read", "ops:read", "ops:replay",
    "erp:read", "billing:read", "crm:read", "support:read",
]
SANDBOX = "http://testserver/_sandbox"


@dataclass
class Harness:
    client: AppClient
    headers: dict[str, str]
    sf: SalesforceOrg
    stripe: StripeAccount

    @property
    def gateway(self) -> Any:
        return self.client.app.state.gateway

    def port(self, vendor: str) -> Any:
        """The vendor client the gateway wired (the domain's port)."""
        return self.gateway.platforms.vendors[vendor].client

    async def book(self, opportunity_id: str, key: str | None = None) -> httpx.Response:
        return await self.client.post(
            "/process/v1/quote-to-cash",
            json={"opportunity_id": opportunity_id},
            headers={**self.headers, "Idempotency-Key": key or uuid.uuid4().hex},
        )

    async def sync_customer(self, account_id: str, key: str | None = None) -> httpx.Response:
        return await self.client.post(
            f"/process/v1/customers/{account_id}/sync",
            headers={**self.headers, "Idempotency-Key": key or uuid.uuid4().hex},
        )

    async def flow(self, flow_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/process/v1/flows/{flow_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait(self, flow_id: str, *statuses: str, within: float = 60.0) -> dict[str, Any]:
        """Wait until the flow resource shows the flow in one of `statuses`."""

        async def reached() -> dict[str, Any] | None:
            response = await self.client.get(
                f"/process/v1/flows/{flow_id}", headers=self.headers
            )
            body: dict[str, Any] = response.json()
            return body if response.status_code == 200 and body["status"] in statuses else None

        return await eventually(
            reached, timeout=within, interval=0.1, what=f"flow {flow_id} in {statuses}"
        )

    async def set_faults(self, vendor: str, **faults: Any) -> None:
        response = await self.client.post(f"{SANDBOX}/{vendor}/_emulator/faults", json=faults)
        assert response.status_code == 200, response.text

    async def fault_counters(self, vendor: str) -> dict[str, int]:
        response = await self.client.get(f"{SANDBOX}/{vendor}/_emulator/faults")
        return dict(response.json()["counters"])

    async def sales_orders(self, number: str) -> list[dict[str, Any]]:
        """Sales orders with document number `number`, through the ERP system API."""
        response = await self.client.get(
            "/system/erp/v1/sales-orders", params={"number": number}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    async def calls(self, flow_id: str, step: str) -> list[Any]:
        """Vendor calls the gateway recorded for a step of a flow."""
        await self.gateway.platforms.recorder.flush()
        async with self.gateway.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(vendor_calls).where(
                    vendor_calls.c.flow_id == flow_id, vendor_calls.c.step == step
                )
            )
            return list(rows)


@asynccontextmanager
async def harness(tmp_path: Path, **env: str) -> AsyncIterator[Harness]:
    settings = settings_for(
        tmp_path, emulated=True, ERPGW_EXECUTOR_ID=f"q2c-{uuid.uuid4().hex[:6]}", **env
    )
    async with app_client(gateway_app(settings)) as client:
        _, token = await new_client_token(client, SCOPES)
        yield Harness(
            client=client,
            headers=bearer(token),
            sf=SalesforceOrg(client, f"{SANDBOX}/salesforce"),
            stripe=StripeAccount(client, f"{SANDBOX}/stripe"),
        )
