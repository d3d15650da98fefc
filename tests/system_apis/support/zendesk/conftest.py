"""Fixtures: the Zendesk emulator served over loopback, clients bound to it, and a check of
every response against Zendesk's published OpenAPI description."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.sandbox_wiring import zendesk_sandbox_credentials as sandbox_credentials
from sandbox.zendesk import ZendeskEmulator
from system_apis.support.zendesk import ZendeskClient
from tests.support.servers import serve_asgi
from tests.support.vendor_specs import vendor_specs_dir
from tests.system_apis.support.zendesk.spec import ResponseValidator, load_spec

_SPEC_CACHE: dict[Path, dict[str, object]] = {}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ZendeskEmulator, str]]:
    emulator = ZendeskEmulator()
    with serve_asgi(emulator.vendor, lifespan="off") as url:
        yield emulator, url


@pytest.fixture
def emulator(served: tuple[ZendeskEmulator, str]) -> ZendeskEmulator:
    served[0].vendor.reset()
    return served[0]


@pytest.fixture
def base_url(served: tuple[ZendeskEmulator, str], emulator: ZendeskEmulator) -> str:
    return served[1]


@pytest.fixture
def spec_validator() -> ResponseValidator | None:
    """Checks responses against the published spec when the vendor specs are present.

    Absent specs turn the check off here; the tests that need the specs themselves skip, or
    fail under ERPGW_REQUIRE_SERVICES=1.
    """
    try:
        specs = vendor_specs_dir()
    except (pytest.skip.Exception, pytest.fail.Exception):
        return None
    if specs not in _SPEC_CACHE:
        _SPEC_CACHE[specs] = load_spec(specs)
    return ResponseValidator(dict(_SPEC_CACHE[specs]))


@pytest.fixture
async def http(
    base_url: str, spec_validator: ResponseValidator | None
) -> AsyncIterator[httpx.AsyncClient]:
    async def check(response: httpx.Response) -> None:
        if spec_validator is not None:
            await response.aread()
            spec_validator.check(response.request.method, response.request.url.path,
                                 response.status_code, response.content)

    async with httpx.AsyncClient(base_url=base_url, timeout=5.0,
                                 event_hooks={"response": [check]}) as client:
        yield client


@pytest.fixture
def client(http: httpx.AsyncClient, base_url: str) -> ZendeskClient:
    return ZendeskClient(http, credentials=sandbox_credentials(base_url))
