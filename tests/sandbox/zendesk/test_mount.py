"""The emulator mounted under `/_sandbox/zendesk` in a Litestar app: links keep the prefix."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from litestar import Litestar, asgi
from litestar.types import Receive, Scope, Send

from contracts.v1 import SupportCaseCreate
from gateway.sandbox_wiring import zendesk_sandbox_credentials as sandbox_credentials
from sandbox.zendesk import ZendeskEmulator
from system_apis.support.zendesk import ZendeskClient
from tests.support.servers import serve_asgi
from tests.system_apis.support.zendesk.seed import ACME, org_id

PREFIX = "/_sandbox/zendesk"
AUTH = httpx.BasicAuth("sandbox@erpgw.test/token", "erpgw-sandbox-token")


def _gateway_with(emulator: ZendeskEmulator) -> Litestar:
    @asgi(PREFIX, is_mount=True, copy_scope=True)
    async def sandbox(scope: Scope, receive: Receive, send: Send) -> None:
        await emulator.vendor(scope, receive, send)  # type: ignore[arg-type]

    return Litestar(route_handlers=[sandbox], openapi_config=None)


@pytest.fixture(scope="module")
def mounted() -> Iterator[tuple[ZendeskEmulator, str]]:
    emulator = ZendeskEmulator()
    with serve_asgi(_gateway_with(emulator), lifespan="off") as url:
        yield emulator, url


async def test_pagination_links_carry_the_mount_prefix(
    mounted: tuple[ZendeskEmulator, str]
) -> None:
    emulator, url = mounted
    emulator.vendor.reset()
    async with httpx.AsyncClient(base_url=url, auth=AUTH, timeout=5.0) as http:
        first = (await http.get(f"{PREFIX}/api/v2/organizations.json",
                                params={"page[size]": 2})).json()
        assert first["links"]["next"].startswith(f"{url}{PREFIX}/api/v2/organizations.json?")
        assert first["organizations"][0]["url"].startswith(f"{url}{PREFIX}/api/v2/")
        second = (await http.get(first["links"]["next"])).json()
        assert len(second["organizations"]) == 2
        assert {o["id"] for o in first["organizations"]}.isdisjoint(
            {o["id"] for o in second["organizations"]})
        offset = (await http.get(f"{PREFIX}/api/v2/organizations",
                                 params={"per_page": 3})).json()
        assert offset["next_page"] == f"{url}{PREFIX}/api/v2/organizations?page=2&per_page=3"


async def test_location_of_a_created_ticket_carries_the_prefix(
    mounted: tuple[ZendeskEmulator, str]
) -> None:
    emulator, url = mounted
    emulator.vendor.reset()
    async with httpx.AsyncClient(base_url=url, auth=AUTH, timeout=5.0) as http:
        created = await http.post(f"{PREFIX}/api/v2/tickets.json", json={
            "ticket": {"subject": "Mounted", "comment": {"body": "via the gateway"}}})
        assert created.status_code == 201
        location = created.headers["location"]
        assert location == f"{url}{PREFIX}/api/v2/tickets/13.json"
        assert (await http.get(location)).json()["ticket"]["subject"] == "Mounted"


async def test_the_client_works_through_the_mount(mounted: tuple[ZendeskEmulator, str]) -> None:
    emulator, url = mounted
    emulator.vendor.reset()
    base = f"{url}{PREFIX}"
    async with httpx.AsyncClient(base_url=base, timeout=5.0) as http:
        client = ZendeskClient(http, credentials=sandbox_credentials(base))
        await client.upsert_organization(await client.get_organization(org_id(ACME)),
                                         external_id="cus_acme")
        case = await client.create_case(SupportCaseCreate(customer_id="cus_acme", subject="s",
                                                          description="d"))
        assert (await client.get_case(case.id)).customer_id == "cus_acme"
        pages = 0
        cursor: str | None = None
        while True:
            page = await client.list_cases(cursor=cursor, limit=4)
            pages += 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert pages == 4


async def test_control_api_answers_under_the_prefix(mounted: tuple[ZendeskEmulator, str]) -> None:
    _, url = mounted
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as http:
        faults = await http.post(f"{PREFIX}/_emulator/faults", json={"outage": True})
        assert faults.json()["faults"]["outage"] is True
        down = await http.get(f"{PREFIX}/api/v2/tickets.json", auth=AUTH)
        assert (down.status_code, down.json()["error"]) == (503, "Service Unavailable")
        assert (await http.get(f"{PREFIX}/_emulator/faults")).json()["counters"]["outage"] == 1
        assert (await http.post(f"{PREFIX}/_emulator/reset", json={})).json() == {"reset": True}
        assert (await http.get(f"{PREFIX}/api/v2/tickets.json", auth=AUTH)).status_code == 200


async def test_in_process_transport_with_root_path_keeps_the_prefix() -> None:
    # The gateway reaches its in-process emulator this way: ASGITransport with a root path.
    emulator = ZendeskEmulator()
    transport = httpx.ASGITransport(app=emulator.vendor, root_path=PREFIX)
    base = f"http://gateway.test{PREFIX}"
    async with httpx.AsyncClient(transport=transport, base_url=base, auth=AUTH) as http:
        page = (await http.get("/api/v2/tickets.json", params={"page[size]": 4})).json()
        assert page["links"]["next"].startswith(f"{base}/api/v2/tickets.json?")
        assert len((await http.get(page["links"]["next"])).json()["tickets"]) == 4
        client = ZendeskClient(http, credentials=sandbox_credentials(base))
        assert (await client.get_organization(org_id(ACME))).legal_entity == "US01"
        assert (await http.get("/_emulator/faults")).status_code == 200
