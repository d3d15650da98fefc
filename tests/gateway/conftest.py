"""Fixtures for the gateway suites: an app on a fresh SQLite database and key directory,
driven through Litestar's `TestClient`, and helpers to create clients and get tokens."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.core import Gateway
from gateway.settings import Settings, load_settings

__all__ = ["gateway_of", "make_client", "token_for"]


@pytest.fixture
def gateway_env(tmp_path: Path) -> dict[str, str]:
    """The `ERPGW_*` variables of a gateway whose state lives under `tmp_path`."""
    return {
        "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        "ERPGW_VAR_DIR": str(tmp_path),
        "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "ERPGW_LOG_FORMAT": "json",
        "ERPGW_SANDBOX": "true",
        "ERPGW_SANDBOX_VENDORS": "none",
    }


@pytest.fixture
def gateway_settings(gateway_env: dict[str, str]) -> Settings:
    return load_settings(gateway_env)


@pytest.fixture
def app(gateway_settings: Settings) -> Litestar:
    return create_app(gateway_settings)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    """A started app: its lifespan has run the migrations and made the first signing key."""
    with TestClient(app) as test_client:
        yield test_client


def gateway_of(client: TestClient[Litestar]) -> Gateway:
    """The parts `create_app` built (clients registry, keys, issuer, validator)."""
    gateway: Gateway = client.app.state.gateway
    return gateway


def make_client(
    client: TestClient[Litestar],
    scopes: list[str] | str,
    tier: str = "gold",
    entities: list[str] | None = None,
    customer: str | None = None,
    name: str = "test client",
) -> tuple[str, str]:
    """Create an API client in the app's database; returns (client_id, client_secret)."""
    create = functools.partial(
        gateway_of(client).clients.create,
        name=name,
        scopes=scopes.split() if isinstance(scopes, str) else scopes,
        tier=tier,
        entities=entities,
        customer=customer,
    )
    with client.portal() as portal:
        created = portal.call(create)
    return created.client.client_id, created.client_secret


def token_for(
    client: TestClient[Litestar], client_id: str, secret: str, scope: str | None = None
) -> str:
    """An access token from POST /oauth/token (client credentials, HTTP Basic)."""
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    response = client.post("/oauth/token", data=form, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
