"""Fixtures: the NetSuite emulator served over loopback, and clients bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from gateway.sandbox_wiring import netsuite_sandbox_credentials as sandbox_credentials
from sandbox.netsuite import NetSuiteEmulator
from system_apis.erp.netsuite import NetSuiteClient
from tests.support.servers import serve_asgi


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[NetSuiteEmulator, str]]:
    emulator = NetSuiteEmulator()
    with serve_asgi(emulator.vendor, lifespan="off") as url:
        yield emulator, url


@pytest.fixture
def emulator(served: tuple[NetSuiteEmulator, str]) -> NetSuiteEmulator:
    served[0].reset()
    return served[0]


@pytest.fixture
def base_url(served: tuple[NetSuiteEmulator, str], emulator: NetSuiteEmulator) -> str:
    return served[1]


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as client:
        yield client


@pytest.fixture
def client(http: httpx.AsyncClient, base_url: str) -> NetSuiteClient:
    return NetSuiteClient(http, credentials=sandbox_credentials(base_url))
