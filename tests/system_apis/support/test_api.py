"""The canonical support routes over the Zendesk emulator: statuses, paging, filters, entities."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Response
from litestar.di import Provide
from litestar.exceptions import ValidationException
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from contracts.errors import InvalidRequest, NotFound
from contracts.principal import Principal
from contracts.v1 import Customer
from gateway.sandbox_wiring import zendesk_sandbox_credentials as sandbox_credentials
from sandbox.zendesk import ZendeskEmulator
from system_apis.outbound import CursorSeal
from system_apis.support import create_router
from system_apis.support.zendesk import ZendeskClient
from tests.system_apis.support.zendesk.seed import ACME, GLOBEX, UMBRELLA, org_id

SEAL = CursorSeal(bytes(32))

BASE = "/system/support/v1"
EVERYTHING = Principal(client_id="ops", name="Ops", scopes=frozenset({"support:read"}))
GERMANY = Principal(client_id="de", name="DE", scopes=frozenset({"support:read"}),
                    entities=frozenset({"DE01"}))


def _app(port: ZendeskClient, principal: Principal) -> Litestar:
    def set_user(app: Any) -> Any:
        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            scope["user"] = principal
            await app(scope, receive, send)
        return middleware

    def problem(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
        status = 404 if isinstance(exc, NotFound) else 400
        fields = [e.pointer for e in getattr(exc, "errors", ())]
        return Response({"title": str(exc), "fields": fields}, status_code=status)

    def invalid(request: Request[Any, Any, Any],
                exc: ValidationException) -> Response[dict[str, Any]]:
        fields = [e["key"] for e in exc.extra or () if isinstance(e, dict)]
        return Response({"title": exc.detail, "fields": fields}, status_code=400)

    return Litestar(route_handlers=[create_router()], middleware=[set_user],
                    dependencies={"support": Provide(lambda: port, sync_to_thread=False),
                                  "cursor_seal": Provide(lambda: SEAL, sync_to_thread=False)},
                    exception_handlers={NotFound: problem, InvalidRequest: problem,
                                        ValidationException: invalid})


@pytest.fixture
async def port() -> AsyncIterator[ZendeskClient]:
    emulator = ZendeskEmulator()
    transport = httpx.ASGITransport(app=emulator.vendor)
    async with httpx.AsyncClient(transport=transport, base_url="https://zendesk.test") as http:
        yield ZendeskClient(http, credentials=sandbox_credentials("https://zendesk.test"))


async def test_lists_organizations_page_by_page(port: ZendeskClient) -> None:
    async with AsyncTestClient(_app(port, EVERYTHING)) as client:
        names: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            answer = await client.get(f"{BASE}/organizations", params=params)
            assert answer.status_code == 200
            names += [o["legal_name"] for o in answer.json()["data"]]
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                break
        assert len(names) == 4
        for limit in (0, -1, 101):
            refused = await client.get(f"{BASE}/organizations", params={"limit": limit})
            assert (refused.status_code, refused.json()["fields"]) == (400, ["limit"])


async def test_organizations_are_limited_to_the_callers_entities(port: ZendeskClient) -> None:
    async with AsyncTestClient(_app(port, GERMANY)) as client:
        listed = (await client.get(f"{BASE}/organizations")).json()["data"]
        assert sorted(o["id"] for o in listed) == sorted([org_id(GLOBEX), org_id(UMBRELLA)])
        assert {o["legal_entity"] for o in listed} == {"DE01"}
        hidden = await client.get(f"{BASE}/organizations/{org_id(ACME)}")
        assert hidden.status_code == 404
        shown = await client.get(f"{BASE}/organizations/{org_id(GLOBEX)}")
        assert (shown.status_code, shown.json()["currency"]) == (200, "EUR")


async def test_unknown_organizations_are_not_found(port: ZendeskClient) -> None:
    async with AsyncTestClient(_app(port, EVERYTHING)) as client:
        assert (await client.get(f"{BASE}/organizations/42")).status_code == 404
        assert (await client.get(f"{BASE}/entitlements/42")).status_code == 404
        assert (await client.get(f"{BASE}/organizations/42%0A")).status_code == 404
        for malformed in ("not-an-id", "\u0664\u0662", "-42", "12345678901234567890"):
            assert (await client.get(f"{BASE}/organizations/{malformed}")).status_code == 404
            assert (await client.get(f"{BASE}/entitlements/{malformed}")).status_code == 404
            cases = await client.get(f"{BASE}/cases", params={"organization": malformed})
            assert cases.status_code == 400


async def test_cases_filter_by_organization_priority_and_status(port: ZendeskClient) -> None:
    async with AsyncTestClient(_app(port, EVERYTHING)) as client:
        acme = await client.get(f"{BASE}/cases", params={"organization": org_id(ACME)})
        assert len(acme.json()["data"]) == 3
        urgent = (await client.get(f"{BASE}/cases", params={
            "organization": org_id(ACME), "priority": "urgent"})).json()["data"]
        assert [(c["priority"], c["severity"]) for c in urgent] == [("urgent", "sev1")]
        assert urgent[0]["first_response_at"] is not None
        solved = (await client.get(f"{BASE}/cases", params={"status": "solved"})).json()["data"]
        assert len(solved) == 4 and {c["status"] for c in solved} == {"solved"}
        paged = (await client.get(f"{BASE}/cases", params={"limit": 5})).json()
        assert len(paged["data"]) == 5 and paged["next_cursor"]
        rest = (await client.get(f"{BASE}/cases", params={
            "limit": 100, "cursor": paged["next_cursor"]})).json()
        assert len(rest["data"]) == 7 and rest["next_cursor"] is None
        bad = await client.get(f"{BASE}/cases", params={"priority": "asap", "status": "done"})
        assert (bad.status_code, sorted(bad.json()["fields"])) == (400, ["priority", "status"])
        empty = await client.get(f"{BASE}/cases", params={"status": ""})
        assert (empty.status_code, empty.json()["fields"]) == (400, ["status"])


async def test_cases_are_limited_to_the_callers_entities(port: ZendeskClient) -> None:
    async with AsyncTestClient(_app(port, GERMANY)) as client:
        cases = (await client.get(f"{BASE}/cases", params={"limit": 100})).json()["data"]
        assert {c["organization_id"] for c in cases} == {org_id(GLOBEX), org_id(UMBRELLA)}
        hidden = await client.get(f"{BASE}/cases", params={"organization": org_id(ACME)})
        assert hidden.status_code == 404


async def test_entitlements(port: ZendeskClient) -> None:
    async with AsyncTestClient(_app(port, EVERYTHING)) as client:
        answer = await client.get(f"{BASE}/entitlements/{org_id(ACME)}")
        assert answer.status_code == 200
        body = answer.json()
        assert (body["plan"], body["sla_first_response_minutes"],
                body["credit_percent_per_breach"], body["credit_cap_percent"]) == (
            "enterprise", 60, 5, 20)
        plain = await port.create_organization(
            Customer(id="x", legal_name="No Plan", legal_entity="US01", currency="USD"),
            external_id="cus_np")
        assert (await client.get(f"{BASE}/entitlements/{plain.id}")).status_code == 404
    async with AsyncTestClient(_app(port, GERMANY)) as client:
        assert (await client.get(f"{BASE}/entitlements/{org_id(ACME)}")).status_code == 404
        assert (await client.get(f"{BASE}/entitlements/{org_id(GLOBEX)}")).status_code == 200


def test_routes_declare_scope_and_rate_limit_group() -> None:
    router = create_router()
    handlers = [h for route in router.routes if isinstance(route, HTTPRoute)
                for h in route.route_handlers if "GET" in h.http_methods]
    assert len(handlers) == 4
    for handler in handlers:
        assert handler.opt["scopes"] == ["support:read"]
        assert handler.opt["rate_limit_group"] == "system"
