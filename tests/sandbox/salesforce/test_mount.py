"""The emulator mounted under `/_sandbox/salesforce` in a Litestar app: links keep the prefix."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from litestar import Litestar, asgi
from litestar.types import Receive, Scope, Send

from gateway.sandbox_wiring import salesforce_sandbox_credentials as sandbox_credentials
from sandbox.salesforce import SalesforceEmulator
from system_apis.crm.salesforce import SalesforceClient, SalesforceCredentials
from tests.support.servers import serve_asgi

PREFIX = "/_sandbox/salesforce"


def _sandbox_app(emulator: SalesforceEmulator) -> Litestar:
    @asgi(PREFIX, is_mount=True, copy_scope=True)
    async def sandbox(scope: Scope, receive: Receive, send: Send) -> None:
        # Litestar hands a mount the path below the prefix without setting root_path; the
        # ASGI convention is path = root_path + the rest, so restore both.
        root = scope.get("root_path", "") + PREFIX
        scope["root_path"] = root
        scope["path"] = root + scope["path"]
        await emulator.vendor(scope, receive, send)  # type: ignore[arg-type]

    return Litestar(route_handlers=[sandbox], openapi_config=None)


@pytest.fixture(scope="module")
def mounted() -> Iterator[tuple[SalesforceEmulator, str]]:
    emulator = SalesforceEmulator(query_page_size=2)
    with serve_asgi(_sandbox_app(emulator)) as url:
        yield emulator, url + PREFIX


async def test_links_carry_the_mount_prefix(mounted: tuple[SalesforceEmulator, str]) -> None:
    emulator, base = mounted
    emulator.vendor.reset()
    async with httpx.AsyncClient(timeout=5.0) as http:
        token = await http.post(
            f"{base}/services/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": "erpgw-sandbox",
                  "client_secret": "erpgw-sandbox-secret"},
        )
        body = token.json()
        assert body["instance_url"] == base
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        data = f"{PREFIX}/services/data/v62.0"
        page = (await http.get(f"{base}/services/data/v62.0/query", headers=headers,
                               params={"q": "SELECT Name FROM Account"})).json()
        assert page["nextRecordsUrl"].startswith(f"{data}/query/01g")
        assert page["records"][0]["attributes"]["url"].startswith(f"{data}/sobjects/Account/")
        created = await http.post(f"{base}/services/data/v62.0/sobjects/Contact",
                                  headers=headers, json={"LastName": "Mounted"})
        assert created.headers["Location"] == f"{data}/sobjects/Contact/{created.json()['id']}"
        versions = (await http.get(f"{base}/services/data")).json()
        assert versions[-1]["url"] == f"{PREFIX}/services/data/v62.0"
        faults = await http.get(f"{base}/_emulator/faults")
        assert faults.status_code == 200


async def test_client_pages_through_the_mounted_emulator(
    mounted: tuple[SalesforceEmulator, str],
) -> None:
    emulator, base = mounted
    emulator.vendor.reset()
    async with httpx.AsyncClient(base_url=base, timeout=5.0) as http:
        client = SalesforceClient(http, sandbox_credentials(base))
        names = sorted([c.legal_name async for c in client.iter_accounts()])
        assert len(names) == 4
        jwt = SalesforceClient(http, SalesforceCredentials(
            login_url=base, client_id="erpgw-sandbox", username="integration@example.com",
            private_key_pem=emulator.sandbox_jwt_private_key_pem, audience=base,
        ))
        assert len(await jwt.list_products()) == 5
