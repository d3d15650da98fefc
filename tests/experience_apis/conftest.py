"""Fixtures for the channel views: the four vendor emulators behind their real clients and
the outbound policy (as the gateway wires them), a migrated app database, and a small app
mounting the experience routers with a caller set per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.principal import Principal
from experience_apis import ExperienceConfig, build_experience_layer
from experience_apis._services import ViewServices
from gateway import storage
from gateway.errors import exception_handlers
from gateway.platforms import Platforms, build_platforms
from tests.support.apps import settings_for

BUDGETS = {"crm": 2.0, "billing": 1.0, "support": 1.0, "erp": 1.0, "process": 1.0}
EVERYTHING = frozenset(
    {
        "experience:sales",
        "experience:support",
        "experience:finance",
        "experience:portal",
        "ops:read",
    }
)


@dataclass
class Caller:
    """Who the test app says is calling (the gateway's auth is not in this app)."""

    principal: Principal = field(
        default_factory=lambda: Principal(client_id="viewer", name="viewer", scopes=EVERYTHING)
    )

    def become(self, **changes: Any) -> None:
        self.principal = Principal(
            client_id=changes.pop("client_id", "viewer"),
            name=changes.pop("name", "viewer"),
            scopes=changes.pop("scopes", EVERYTHING),
            **changes,
        )


@dataclass
class World:
    http: httpx.AsyncClient
    caller: Caller
    platforms: Platforms
    engine: AsyncEngine
    views: ViewServices

    @property
    def crm(self) -> Any:
        return self.platforms.vendors["salesforce"].client

    @property
    def billing(self) -> Any:
        return self.platforms.vendors["stripe"].client

    @property
    def support(self) -> Any:
        return self.platforms.vendors["zendesk"].client

    @property
    def erp(self) -> Any:
        return self.platforms.vendors["netsuite"].client

    async def faults(self, vendor: str, **faults: Any) -> None:
        """Set an emulator's faults through its control API (`{}` clears them)."""
        emulator = self.platforms.vendors[vendor].emulator
        assert emulator is not None, f"{vendor} is not emulated"
        transport = httpx.ASGITransport(app=emulator.vendor)
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as http:
            response = await http.post("/_emulator/faults", json=faults)
            response.raise_for_status()

    def at(self, now: datetime) -> None:
        """Views compute ages and due dates as of `now`."""
        self.views.clock = lambda: now


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    settings = settings_for(tmp_path, emulated=True)
    storage.upgrade(settings.database_url)
    engine = storage.create_engine(settings.database_url)
    platforms = build_platforms(settings, engine=engine, redis=None, registry=CollectorRegistry())
    layer = build_experience_layer(engine=engine, config=ExperienceConfig(budgets=BUDGETS))
    caller = Caller()

    def as_caller(app: Any) -> Any:
        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            scope["user"] = caller.principal
            await app(scope, receive, send)

        return middleware

    app = Litestar(
        route_handlers=layer.routers,
        dependencies={**platforms.dependencies, **layer.dependencies},
        middleware=[as_caller],
        exception_handlers=exception_handlers,
    )
    await platforms.start()
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://views") as http:
            yield World(
                http=http, caller=caller, platforms=platforms, engine=engine, views=layer.services
            )
    finally:
        await platforms.stop()
        await engine.dispose()
