"""The emulator mounted under a prefix inside a Litestar app: every link keeps the prefix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, asgi

from contracts.v1 import CustomerCreate
from gateway.sandbox_wiring import netsuite_sandbox_credentials as sandbox_credentials
from sandbox.netsuite import NetSuiteEmulator
from system_apis.erp.netsuite import NetSuiteClient
from tests.support.servers import serve_asgi

PREFIX = "/_sandbox/netsuite"


@pytest.fixture(scope="module")
def mounted() -> Iterator[tuple[NetSuiteEmulator, str]]:
    emulator = NetSuiteEmulator()

    @asgi(PREFIX, is_mount=True, copy_scope=True)
    async def sandbox(scope: Any, receive: Any, send: Any) -> None:
        await emulator.vendor(scope, receive, send)

    with serve_asgi(Litestar(route_handlers=[sandbox]), lifespan="off") as url:
        yield emulator, url + PREFIX


async def test_links_carry_the_mount_prefix(mounted: tuple[NetSuiteEmulator, str]) -> None:
    emulator, base = mounted
    emulator.reset()
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        client = NetSuiteClient(http, credentials=sandbox_credentials(base))
        for index in range(3):
            await client.upsert_customer(
                CustomerCreate(legal_name=f"M{index}", legal_entity="US01", currency="USD"),
                external_id=f"m{index}")
        auth = client._transport.auth
        created = await http.post("/services/rest/record/v1/customer", auth=auth,
                                  json={"companyName": "Loc", "subsidiary": {"id": "1"}})
        assert created.headers["Location"].startswith(f"{base}/services/rest/record/v1/customer/")
        listing = (await http.get("/services/rest/record/v1/customer?limit=2",
                                  auth=auth)).json()
        hrefs = [link["href"] for link in listing["links"]]
        hrefs += [link["href"] for item in listing["items"] for link in item["links"]]
        assert all(href.startswith(f"{base}/services/rest/") for href in hrefs)
        next_link = next(link["href"] for link in listing["links"] if link["rel"] == "next")
        following = await http.get(next_link, auth=auth)
        assert following.json()["offset"] == 2
        record = (await http.get(listing["items"][0]["links"][0]["href"], auth=auth)).json()
        assert record["subsidiary"]["links"][0]["href"].startswith(base)
        page = await client.list_customers(limit=2)
        assert page.next_cursor is not None
        faults = await http.get("/_emulator/faults")
        assert faults.status_code == 200
