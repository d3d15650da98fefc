"""The sandbox demo company served over loopback (the emulators' signed webhooks reach the
gateway), its won deals booked through quote-to-cash and their first invoices posted; a caller
allowed to reconcile and repair; and the vendors' own APIs to make drift by hand."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from gateway import storage
from gateway.clients import ClientRegistry
from gateway.sandbox_wiring import netsuite_sandbox_credentials as netsuite_sandbox
from gateway.sandbox_wiring import stripe_sandbox_credentials as stripe_sandbox
from sandbox.salesforce.ids import seeded_id
from system_apis.billing.stripe import StripeClient
from system_apis.erp.netsuite.client import NetSuiteClient
from tests.process_apis.sandbox import STRIPE_KEY
from tests.support.apps import gateway_app, settings_for
from tests.support.servers import free_port, serve_asgi
from tests.support.waiting import eventually

__all__ = ["WON_DEALS", "World", "demo_world"]

WON_DEALS = ("acme-platform", "globex-enterprise", "umbrella-platform")
SCOPES = ["process:write", "process:read", "ops:read", "ops:replay"]


@dataclass
class World:
    base_url: str
    http: httpx.AsyncClient
    stripe: StripeClient
    netsuite: NetSuiteClient
    headers: dict[str, str]
    database_url: str
    app: Any = None
    server_loop: list[asyncio.AbstractEventLoop] = field(default_factory=list)
    """The event loop serving the gateway (its database and flows live there)."""

    async def scheduled(self, interval_start: datetime) -> dict[str, Any]:
        """The schedule's run of the interval starting at `interval_start`, to its end."""
        service = self.app.state.gateway.reconciliation.service
        started = asyncio.run_coroutine_threadsafe(
            service.start_scheduled(interval_start), self.server_loop[0]
        )
        assert await asyncio.wrap_future(started) is True
        run_id = "reconcile:" + interval_start.strftime("%Y-%m-%dT%H:%M:%SZ")
        return await self.ended(f"/process/v1/reconciliations/{run_id}")

    async def ended(self, location: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        async def done() -> dict[str, Any] | None:
            run = await self.http.get(location, headers=headers or self.headers)
            found: dict[str, Any] = run.json()
            return found if found.get("status") in ("completed", "failed") else None

        run: dict[str, Any] = await eventually(
            done, timeout=90.0, interval=0.2, what="the reconciliation"
        )
        assert run["status"] == "completed", run
        return run

    async def token(self, scopes: list[str], entities: list[str] | None = None) -> dict[str, str]:
        """Headers of a new client holding `scopes`, limited to `entities` when given."""
        engine = storage.create_engine(self.database_url)
        try:
            created = await ClientRegistry(engine).create(
                name=f"recon-{uuid.uuid4().hex[:6]}",
                scopes=scopes,
                tier="gold",
                entities=entities,
            )
        finally:
            await engine.dispose()
        response = await self.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(created.client.client_id, created.client_secret),
        )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def book(self, opportunity_key: str) -> dict[str, Any]:
        opportunity = seeded_id("Opportunity", opportunity_key)
        response = await self.http.post(
            "/process/v1/quote-to-cash",
            json={"opportunity_id": opportunity},
            headers={**self.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 202, response.text
        return await self.flow_in(f"q2c:{opportunity}", "succeeded")

    async def flow_in(self, flow_id: str, *statuses: str, within: float = 90.0) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            response = await self.http.get(f"/process/v1/flows/{flow_id}", headers=self.headers)
            body: dict[str, Any] = response.json()
            if (
                response.status_code == 200
                and body["status"] in ("failed",)
                and "failed" not in statuses
            ):
                raise AssertionError(f"flow {flow_id} failed: {body}")
            return body if response.status_code == 200 and body["status"] in statuses else None

        return await eventually(reached, timeout=within, interval=0.2, what=f"{flow_id} {statuses}")

    async def posted(self) -> None:
        """Wait until every issued billing invoice has its ERP invoice (the webhooks ran)."""

        async def done() -> bool | None:
            billed = [
                i
                for i in (await self.stripe.list_invoices(limit=100)).data
                if i.status in ("open", "paid") and i.total > 0
            ]
            booked = {i.external_id for i in (await self.netsuite.list_invoices(limit=100)).data}
            return True if all(i.id in booked for i in billed) else None

        await eventually(done, timeout=90.0, interval=0.3, what="every invoice posted")

    async def reconcile(self, headers: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
        """Start a reconciliation (settle 0 unless given) and wait for it to end."""
        response = await self.start(headers, **{"settle_seconds": 0, **body})
        assert response.status_code == 202, response.text
        return await self.ended(response.headers["location"], headers)

    async def start(self, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
        return await self.http.post(
            "/process/v1/reconciliations",
            json=body,
            headers={**(headers or self.headers), "Idempotency-Key": uuid.uuid4().hex},
        )

    async def exceptions(self, **params: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            "/process/v1/exceptions", params={"limit": "100", **params}, headers=self.headers
        )
        response.raise_for_status()
        return list(response.json()["data"])

    async def mismatch_gauges(self) -> dict[tuple[str, ...], float]:
        """`erpgw_reconciliation_mismatches` as scraped, by (kind, entity, currency, status)."""
        found: dict[tuple[str, ...], float] = {}
        for line in (await self.http.get("/metrics")).text.splitlines():
            match = re.match(r"erpgw_reconciliation_mismatches\{(.*)\} (\S+)$", line)
            if match:
                labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
                key = tuple(labels[k] for k in ("kind", "legal_entity", "currency", "status"))
                found[key] = float(match.group(2))
        return found

    async def vendor(self, method: str, vendor: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to an emulated vendor's own API (Stripe with its secret key)."""
        headers = {"Authorization": f"Bearer {STRIPE_KEY}"} if vendor == "stripe" else {}
        return await self.http.request(
            method, f"/_sandbox/{vendor}{path}", headers=headers, **kwargs
        )


@asynccontextmanager
async def demo_world(
    tmp_path: Path, *, book: bool = True, **environment: str
) -> AsyncIterator[World]:
    """The demo company with its won deals booked and their invoices posted; `environment`
    adds or overrides gateway settings."""
    port = free_port()
    settings = settings_for(
        tmp_path,
        emulated=True,
        **{
            "ERPGW_PORT": str(port),
            "ERPGW_RECONCILE_INTERVAL_SECONDS": "0",
            "ERPGW_RATE_LIMIT_TIERS": "gold=100000/minute;anonymous=100000/minute",
            **environment,
        },
    )
    app = gateway_app(settings)
    server_loop: list[asyncio.AbstractEventLoop] = []
    app.on_startup.append(lambda: server_loop.append(asyncio.get_running_loop()))
    with serve_asgi(app, port=port, lifespan="on") as base_url:
        async with contextlib.AsyncExitStack() as stack:
            http, stripe_http, netsuite_http = [
                await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=20.0))
                for url in (
                    base_url,
                    f"{base_url}/_sandbox/stripe",
                    f"{base_url}/_sandbox/netsuite",
                )
            ]
            world = World(
                base_url=base_url,
                http=http,
                stripe=StripeClient(
                    stripe_http, credentials=stripe_sandbox(f"{base_url}/_sandbox/stripe")
                ),
                netsuite=NetSuiteClient(
                    netsuite_http, credentials=netsuite_sandbox(f"{base_url}/_sandbox/netsuite")
                ),
                headers={},
                database_url=settings.database_url,
                app=app,
                server_loop=server_loop,
            )
            world.headers = await world.token(SCOPES)
            if book:
                for key in WON_DEALS:
                    await world.book(key)
                await world.posted()
            yield world
