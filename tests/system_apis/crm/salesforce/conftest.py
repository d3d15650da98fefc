"""Fixtures: the Salesforce emulator served on a loopback port, and clients of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from gateway.sandbox_wiring import salesforce_sandbox_credentials as sandbox_credentials
from sandbox.salesforce import SalesforceEmulator
from system_apis.crm.salesforce import SalesforceClient
from tests.support.servers import serve_asgi

PAGE_SIZE = 2
"""Small query batches, so every multi-record query really pages through nextRecordsUrl."""


class Served:
    def __init__(self, emulator: SalesforceEmulator, url: str) -> None:
        self.emulator = emulator
        self.url = url


@pytest.fixture(scope="module")
def served_module() -> Iterator[Served]:
    emulator = SalesforceEmulator(query_page_size=PAGE_SIZE)
    with serve_asgi(emulator.vendor) as url:
        yield Served(emulator, url)


@pytest.fixture
def served(served_module: Served) -> Served:
    """The served emulator, back in its seeded state with no faults."""
    served_module.emulator.vendor.reset()
    return served_module


@pytest.fixture
async def http(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.url, timeout=2.0) as client:
        yield client


@pytest.fixture
def client(served: Served, http: httpx.AsyncClient) -> SalesforceClient:
    return SalesforceClient(http, sandbox_credentials(served.url))


async def token_for(http: httpx.AsyncClient) -> str:
    response = await http.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "erpgw-sandbox",
            "client_secret": "erpgw-sandbox-secret",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
