"""The canonical CRM routes over the Salesforce emulator: statuses, paging, filters, entities,
ownership of written fields."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar, Request, Response
from litestar.di import Provide
from litestar.testing import AsyncTestClient

from contracts.errors import InvalidRequest, NotFound, OwnershipViolation
from contracts.principal import Principal
from contracts.v1 import CustomerPatch
from gateway.sandbox_wiring import salesforce_sandbox_credentials as sandbox_credentials
from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce.ids import seeded_id
from system_apis.crm import create_router
from system_apis.crm.salesforce import SalesforceClient
from system_apis.outbound import CursorSeal
from tests.fakes.audit import FakeAuditTrail

SEAL = CursorSeal(bytes(32))

BASE = "/system/crm/v1"
EVERYTHING = Principal(client_id="ops", name="Ops", scopes=frozenset({"crm:read", "crm:write"}))
GERMANY = Principal(client_id="de", name="DE", scopes=frozenset({"crm:read", "crm:write"}),
                    entities=frozenset({"DE01"}))
ACME = seeded_id("Account", "acme")
GLOBEX = seeded_id("Account", "globex")


def _app(
    port: SalesforceClient, principal: Principal, audit: FakeAuditTrail | None = None
) -> Litestar:
    trail = audit if audit is not None else FakeAuditTrail()

    def set_user(app: Any) -> Any:
        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            scope["user"] = principal
            await app(scope, receive, send)

        return middleware

    def problem(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
        status = {NotFound: 404, OwnershipViolation: 422}.get(type(exc), 400)
        errors = [{"pointer": e.pointer, "detail": e.detail} for e in getattr(exc, "errors", ())]
        return Response({"title": str(exc), "errors": errors}, status_code=status)

    return Litestar(
        route_handlers=[create_router()],
        middleware=[set_user],
        dependencies={"crm": Provide(lambda: port, sync_to_thread=False),
                      "cursor_seal": Provide(lambda: SEAL, sync_to_thread=False),
                      "audit": Provide(lambda: trail, sync_to_thread=False)},
        exception_handlers={NotFound: problem, InvalidRequest: problem,
                            OwnershipViolation: problem},
    )


@pytest.fixture
async def port() -> AsyncIterator[SalesforceClient]:
    emulator = SalesforceEmulator(query_page_size=2)
    transport = httpx.ASGITransport(app=emulator.vendor)
    async with httpx.AsyncClient(transport=transport, base_url="http://sf.test") as http:
        yield SalesforceClient(http, sandbox_credentials("http://sf.test"))


async def test_accounts_page_with_cursor(port: SalesforceClient) -> None:
    async with AsyncTestClient(_app(port, EVERYTHING)) as client:
        first = await client.get(f"{BASE}/accounts", params={"limit": 3})
        assert first.status_code == 200
        body = first.json()
        assert len(body["data"]) == 3 and body["next_cursor"]
        second = (await client.get(f"{BASE}/accounts",
                                   params={"limit": 3, "cursor": body["next_cursor"]})).json()
        assert len(second["data"]) == 1 and second["next_cursor"] is None
        names = {c["legal_name"] for c in body["data"] + second["data"]}
        assert len(names) == 4
        for limit in (0, -1, 101):
            refused = await client.get(f"{BASE}/accounts", params={"limit": limit})
            assert refused.status_code == 400
        assert (await client.get(f"{BASE}/accounts", params={"name": ""})).status_code == 400
        assert (await client.get(f"{BASE}/accounts", params={"cursor": "x"})).status_code == 400


async def test_accounts_filter_by_entity_and_name(port: SalesforceClient) -> None:
    async with AsyncTestClient(_app(port, EVERYTHING)) as client:
        german = (await client.get(f"{BASE}/accounts", params={"legal_entity": "DE01"})).json()
        assert {c["legal_entity"] for c in german["data"]} == {"DE01"}
        assert len(german["data"]) == 2
        named = (await client.get(f"{BASE}/accounts", params={"name": "acme"})).json()
        assert [c["legal_name"] for c in named["data"]] == ["Acme Robotics Inc."]
        assert named["data"][0]["currency"] == "USD"


async def test_caller_sees_only_its_legal_entities(port: SalesforceClient) -> None:
    async with AsyncTestClient(_app(port, GERMANY)) as client:
        listed = (await client.get(f"{BASE}/accounts")).json()
        assert {c["legal_entity"] for c in listed["data"]} == {"DE01"}
        asked = (await client.get(f"{BASE}/accounts", params={"legal_entity": "US01"})).json()
        assert asked["data"] == []
        assert (await client.get(f"{BASE}/accounts/{GLOBEX}")).status_code == 200
        assert (await client.get(f"{BASE}/accounts/{ACME}")).status_code == 404
        assert (await client.get(f"{BASE}/accounts/{ACME}/contacts")).status_code == 404
        deal = seeded_id("Opportunity", "acme-platform")
        assert (await client.get(f"{BASE}/opportunities/{deal}")).status_code == 404
        patched = await client.patch(f"{BASE}/accounts/{ACME}", json={"phone": "1"})
        assert patched.status_code == 404


async def test_account_and_unknown_ids(port: SalesforceClient) -> None:
    async with AsyncTestClient(_app(port, EVERYTHING)) as client:
        account = (await client.get(f"{BASE}/accounts/{ACME}")).json()
        assert account["legal_name"] == "Acme Robotics Inc."
        assert account["refs"] == {"salesforce": ACME}
        assert (await client.get(f"{BASE}/accounts/001ak0000000000AAA")).status_code == 404
        # Python's `$` also matches before a final newline: the client still knows no such id.
        assert (await client.get(f"{BASE}/accounts/{ACME}%0A")).status_code == 404
        for malformed in ("not-an-id", "001ak0000000000A", "001ak0000000000AAA%3F"):
            assert (await client.get(f"{BASE}/accounts/{malformed}")).status_code == 404
            assert (await client.get(f"{BASE}/accounts/{malformed}/contacts")).status_code == 404
            assert (await client.get(f"{BASE}/opportunities/{malformed}")).status_code == 404
            assert (await client.patch(f"{BASE}/accounts/{malformed}", json={})).status_code == 404


async def test_contacts_of_an_account_page(port: SalesforceClient) -> None:
    async with AsyncTestClient(_app(port, EVERYTHING)) as client:
        first = (await client.get(f"{BASE}/accounts/{ACME}/contacts",
                                  params={"limit": 1})).json()
        assert [c["last_name"] for c in first["data"]] == ["Ito"]
        second = (await client.get(f"{BASE}/accounts/{ACME}/contacts",
                                   params={"limit": 1, "cursor": first["next_cursor"]})).json()
        assert [c["last_name"] for c in second["data"]] == ["Reyes"]
        assert second["next_cursor"] is None


async def test_opportunity_is_a_deal_with_lines(port: SalesforceClient) -> None:
    deal_id = seeded_id("Opportunity", "globex-enterprise")
    async with AsyncTestClient(_app(port, GERMANY)) as client:
        deal = (await client.get(f"{BASE}/opportunities/{deal_id}")).json()
        assert deal["won"] is True and deal["currency"] == "EUR"
        assert deal["amount"] == 1_330_000
        assert sorted(line["product_code"] for line in deal["lines"]) == ["ONBOARD", "PLAT-ENT"]
        missing = await client.get(f"{BASE}/opportunities/{seeded_id('Opportunity', 'none')}")
        assert missing.status_code == 404


async def test_patch_writes_crm_owned_fields(port: SalesforceClient) -> None:
    audit = FakeAuditTrail()
    async with AsyncTestClient(_app(port, GERMANY, audit)) as client:
        before = (await client.get(f"{BASE}/accounts/{GLOBEX}")).json()
        response = await client.patch(
            f"{BASE}/accounts/{GLOBEX}",
            json={"phone": "+49 30 1234", "risk_level": "high",
                  "billing_address": {"line1": "Unter den Linden 1", "city": "Berlin",
                                      "postal_code": "10117", "country": "DE"}},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["phone"] == "+49 30 1234" and body["risk_level"] == "high"
        assert body["billing_address"]["line1"] == "Unter den Linden 1"
        again = (await client.get(f"{BASE}/accounts/{GLOBEX}")).json()
        assert again["phone"] == "+49 30 1234"
    [record] = audit.records
    assert record.action == "crm.account.update"
    assert (record.actor.kind, record.actor.id) == ("client", "de")
    assert (record.target.system, record.target.id) == ("salesforce", GLOBEX)
    assert record.legal_entity == "DE01"
    assert record.before is not None and record.after is not None
    assert sorted(record.after) == ["billing_address", "phone", "risk_level"]
    assert record.before["phone"] == before["phone"]
    assert record.after["phone"] == "+49 30 1234" and record.after["risk_level"] == "high"
    assert record.after["billing_address"]["line1"] == "Unter den Linden 1"


async def test_patch_of_a_field_another_system_owns_is_refused(port: SalesforceClient) -> None:
    audit = FakeAuditTrail()
    async with AsyncTestClient(_app(port, EVERYTHING, audit)) as client:
        response = await client.patch(
            f"{BASE}/accounts/{ACME}", json={"phone": "1", "payment_terms_days": 60}
        )
        assert response.status_code == 422
        errors = response.json()["errors"]
        assert [e["pointer"] for e in errors] == ["/payment_terms_days"]
        assert "netsuite" in errors[0]["detail"]
        unchanged = (await client.get(f"{BASE}/accounts/{ACME}")).json()
        assert unchanged["phone"] is None and unchanged["payment_terms_days"] == 30
        bad = await client.patch(f"{BASE}/accounts/{ACME}", json={"nickname": "x"})
        assert bad.status_code == 400
    assert audit.records == []  # nothing written, nothing recorded


async def test_options_lists_every_method_of_an_account(port: SalesforceClient) -> None:
    async with AsyncTestClient(_app(port, EVERYTHING)) as client:
        account = await client.options(f"{BASE}/accounts/{ACME}")
        assert (account.status_code, account.headers["allow"]) == (204, "GET, OPTIONS, PATCH")
        contacts = await client.options(f"{BASE}/accounts/{ACME}/contacts")
        assert contacts.headers["allow"] == "GET, OPTIONS"


async def test_patch_body_schema_refuses_what_the_route_refuses(port: SalesforceClient) -> None:
    document = _app(port, EVERYTHING).openapi_schema.to_schema()
    body = document["paths"][f"{BASE}/accounts/{{account_id}}"]["patch"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    assert schema["additionalProperties"] is False
    address = schema["properties"]["billing_address"]["anyOf"][0]
    assert address["additionalProperties"] is False
    terms = schema["properties"]["payment_terms_days"]["anyOf"][0]
    assert (terms["minimum"], terms["maximum"]) == (0, 365)


async def test_patch_body_patterns_mean_what_msgspec_enforces(port: SalesforceClient) -> None:
    document = _app(port, EVERYTHING).openapi_schema.to_schema()
    body = document["paths"][f"{BASE}/accounts/{{account_id}}"]["patch"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    documented = schema["properties"]["email"]["anyOf"][0]["pattern"]
    assert "\\s" not in documented
    for code in [*range(0x3001), 0xFEFF]:
        email = f"a{chr(code)}@b.test"
        try:
            msgspec.convert({"email": email}, CustomerPatch)
            accepted = True
        except msgspec.ValidationError:
            accepted = False
        assert accepted == bool(re.search(documented, email)), hex(code)
