"""Build a gateway app for a test: its own database, key directory and var directory."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar

from gateway.app import create_app
from gateway.settings import Settings, load_settings

__all__ = ["AppClient", "app_client", "bearer", "gateway_app", "new_client_token", "settings_for"]


def settings_for(
    tmp_path: Path, database_url: str | None = None, *, emulated: bool = False, **env: str
) -> Settings:
    """Settings for one test, in sandbox mode: SQLite in `tmp_path` unless `database_url` is
    given; the four vendors emulated when `emulated`, else none wired (unless configured)."""
    values = {
        "ERPGW_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        "ERPGW_VAR_DIR": str(tmp_path),
        "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "ERPGW_LOG_FORMAT": "json",
        "ERPGW_ACCESS_LOG": "false",
        "ERPGW_SANDBOX": "true",
        "ERPGW_SANDBOX_VENDORS": "salesforce,stripe,zendesk,netsuite" if emulated else "none",
        **env,
    }
    return load_settings(values)


def gateway_app(settings: Settings, *extra_routes: Any) -> Litestar:
    app = create_app(settings)
    for route in extra_routes:
        app.register(route)
    return app


class AppClient(httpx.AsyncClient):
    """An httpx client calling the app in-process, concurrently (one event loop)."""

    app: Litestar


@asynccontextmanager
async def app_client(app: Litestar) -> AsyncIterator[AppClient]:
    """Run the app's lifespan and yield a client; requests really run concurrently, unlike
    Litestar's AsyncTestClient, which serialises them through a blocking portal."""
    async with _lifespan(app):
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with AppClient(transport=transport, base_url="http://testserver") as client:
            client.app = app
            yield client


@asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await to_app.get()

    async def send(message: dict[str, Any]) -> None:
        await from_app.put(message)

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))  # type: ignore[arg-type]
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"app failed to start: {started.get('message')}")
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await task


async def new_client_token(
    client: AppClient,
    scopes: list[str],
    *,
    tier: str = "gold",
    entities: list[str] | None = None,
    customer: str | None = None,
    name: str | None = None,
) -> tuple[str, str]:
    """Create an API client in the app's database and get a token for it: (client_id, token)."""
    gateway = client.app.state.gateway
    created = await gateway.clients.create(
        name=name or f"test-{uuid.uuid4().hex[:6]}",
        scopes=scopes,
        tier=tier,
        entities=entities,
        customer=customer,
    )
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(created.client.client_id, created.client_secret),
    )
    assert response.status_code == 200, response.text
    return created.client.client_id, str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
