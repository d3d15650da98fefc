"""Fixtures: the Stripe emulator served over loopback, and clients bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from gateway.sandbox_wiring import stripe_sandbox_credentials as sandbox_credentials
from sandbox.stripe import StripeEmulator
from system_apis.billing.stripe import StripeClient
from tests.support.servers import serve_asgi
from tests.system_apis.billing.stripe.openapi_check import (
    SpecValidator,
    ValidatingTransport,
    optional_validator,
)

SECRET_KEY = "sk_test_erpgw_sandbox"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[StripeEmulator, str]]:
    emulator = StripeEmulator(rate_limit_per_second=None, webhook_retry_delays=(0.05, 0.1))
    with serve_asgi(emulator.vendor, lifespan="off") as url:
        yield emulator, url


@pytest.fixture
def emulator(served: tuple[StripeEmulator, str]) -> StripeEmulator:
    served[0].reset()
    return served[0]


@pytest.fixture
def base_url(served: tuple[StripeEmulator, str], emulator: StripeEmulator) -> str:
    return served[1]


@pytest.fixture(scope="module")
def openapi() -> SpecValidator | None:
    return optional_validator()


@pytest.fixture
async def http(base_url: str, openapi: SpecValidator | None) -> AsyncIterator[httpx.AsyncClient]:
    """The client's HTTP; every answer is checked against Stripe's OpenAPI when available."""
    transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport()
    if openapi is not None:
        transport = ValidatingTransport(transport, openapi)
    async with httpx.AsyncClient(timeout=5.0, transport=transport) as client:
        yield client


@pytest.fixture
def stripe(http: httpx.AsyncClient, base_url: str) -> StripeClient:
    return StripeClient(http, credentials=sandbox_credentials(base_url))


@pytest.fixture
async def vendor(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Raw access to the emulator's Stripe API, to read back what the client did."""
    async with httpx.AsyncClient(base_url=base_url, auth=(SECRET_KEY, ""), timeout=5.0) as client:
        yield client


async def set_faults(base_url: str, **faults: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.post(f"{base_url}/_emulator/faults", json=faults)
        response.raise_for_status()
        state: dict[str, Any] = response.json()
        return state
