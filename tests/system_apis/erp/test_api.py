"""The canonical ERP routes over the NetSuite emulator: statuses, paging, filters, entities."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Response
from litestar.di import Provide
from litestar.testing import AsyncTestClient

from contracts.errors import InvalidRequest, NotFound
from contracts.principal import Principal
from contracts.v1 import ApprovalTask, CustomerCreate, SalesOrderCreate, SalesOrderLine
from gateway.sandbox_wiring import netsuite_sandbox_credentials as sandbox_credentials
from sandbox.netsuite import NetSuiteEmulator
from system_apis.erp import create_router
from system_apis.erp.netsuite import NetSuiteClient
from system_apis.outbound import CursorSeal

SEAL = CursorSeal(bytes(32))

EVERYTHING = Principal(client_id="ops", name="Ops", scopes=frozenset({"erp:read"}))
GERMANY = Principal(client_id="de", name="DE", scopes=frozenset({"erp:read"}),
                    entities=frozenset({"DE01"}))


def _app(port: NetSuiteClient, principal: Principal) -> Litestar:
    def set_user(app: Any) -> Any:
        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            scope["user"] = principal
            await app(scope, receive, send)
        return middleware

    def problem(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
        status = 404 if isinstance(exc, NotFound) else 400
        return Response({"title": str(exc)}, status_code=status)

    return Litestar(route_handlers=[create_router()], middleware=[set_user],
                    dependencies={"erp": Provide(lambda: port, sync_to_thread=False),
                                  "cursor_seal": Provide(lambda: SEAL, sync_to_thread=False)},
                    exception_handlers={NotFound: problem, InvalidRequest: problem})


@pytest.fixture
async def port() -> AsyncIterator[NetSuiteClient]:
    emulator = NetSuiteEmulator()
    transport = httpx.ASGITransport(app=emulator.vendor)
    async with httpx.AsyncClient(transport=transport, base_url="http://netsuite.test") as http:
        client = NetSuiteClient(http, credentials=sandbox_credentials("http://netsuite.test"))
        for index, entity in enumerate(["US01", "DE01", "US01"]):
            currency = "EUR" if entity == "DE01" else "USD"
            customer = await client.upsert_customer(
                CustomerCreate(legal_name=f"Customer {index}", legal_entity=entity,
                               currency=currency), external_id=f"c{index}")
            order = await client.upsert_sales_order(SalesOrderCreate(
                customer_id=customer.id, legal_entity=entity, currency=currency,
                order_date=dt.date(2026, 11, 1), external_id=f"so{index}",
                lines=[SalesOrderLine(product_code="SEAT", quantity=2, unit_amount=1_000,
                                      amount=2_000)]))
            await client.upsert_invoice(sales_order_id=order.id, external_id=f"inv{index}")
        await client.upsert_approval_task(
            ApprovalTask(id="", kind="write_off", subject="Write off", legal_entity="DE01",
                         requested_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)),
            external_id="a1")
        yield client


async def test_lists_page_and_filter(port: NetSuiteClient) -> None:
    async with AsyncTestClient(_app(port, EVERYTHING)) as client:
        entities = (await client.get("/system/erp/v1/legal-entities")).json()
        assert [e["code"] for e in entities["data"]] == ["US01", "DE01"]
        first = (await client.get("/system/erp/v1/customers", params={"limit": 2})).json()
        assert len(first["data"]) == 2 and first["next_cursor"]
        second = (await client.get("/system/erp/v1/customers",
                                   params={"limit": 2, "cursor": first["next_cursor"]})).json()
        assert [c["legal_name"] for c in second["data"]] == ["Customer 2"]
        assert second["next_cursor"] is None
        orders = (await client.get("/system/erp/v1/sales-orders")).json()["data"]
        number = orders[1]["number"]
        by_number = await client.get("/system/erp/v1/sales-orders", params={"number": number})
        assert [o["number"] for o in by_number.json()["data"]] == [number]
        german = await client.get("/system/erp/v1/sales-orders", params={"legal_entity": "DE01"})
        assert [o["currency"] for o in german.json()["data"]] == ["EUR"]
        customer = orders[0]["customer_id"]
        invoices = await client.get("/system/erp/v1/invoices",
                                    params={"customer": customer, "status": "open"})
        assert [i["customer_id"] for i in invoices.json()["data"]] == [customer]
        assert (await client.get("/system/erp/v1/invoices",
                                 params={"status": "paid"})).json()["data"] == []
        items = (await client.get("/system/erp/v1/items")).json()["data"]
        assert "SEAT" in [i["code"] for i in items]
        assert (await client.get("/system/erp/v1/credit-memos")).json()["data"] == []
        approvals = await client.get("/system/erp/v1/approvals", params={"status": "pending"})
        assert [a["kind"] for a in approvals.json()["data"]] == ["write_off"]


async def test_errors_and_not_found(port: NetSuiteClient) -> None:
    async with AsyncTestClient(_app(port, EVERYTHING)) as client:
        assert (await client.get("/system/erp/v1/sales-orders/424242")).status_code == 404
        assert (await client.get("/system/erp/v1/customers",
                                 params={"limit": 101})).status_code == 400
        assert (await client.get("/system/erp/v1/invoices",
                                 params={"status": "bogus"})).status_code == 400
        assert (await client.get("/system/erp/v1/customers",
                                 params={"cursor": "garbage!"})).status_code == 400


async def test_legal_entity_filtering(port: NetSuiteClient) -> None:
    async with AsyncTestClient(_app(port, GERMANY)) as client:
        entities = (await client.get("/system/erp/v1/legal-entities")).json()["data"]
        assert [e["code"] for e in entities] == ["DE01"]
        customers = (await client.get("/system/erp/v1/customers")).json()["data"]
        assert {c["legal_entity"] for c in customers} == {"DE01"}
        orders = (await client.get("/system/erp/v1/sales-orders")).json()["data"]
        assert {o["legal_entity"] for o in orders} == {"DE01"}
        invoices = (await client.get("/system/erp/v1/invoices")).json()["data"]
        assert {i["legal_entity"] for i in invoices} == {"DE01"}
        us_order = (await port.list_sales_orders(legal_entity="US01")).data[0]
        hidden = await client.get(f"/system/erp/v1/sales-orders/{us_order.id}")
        assert hidden.status_code == 404
        assert (await client.get("/system/erp/v1/approvals")).json()["data"][0]["kind"] == \
            "write_off"
