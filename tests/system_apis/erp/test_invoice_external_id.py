"""`GET /system/erp/v1/invoices?external_id=`: the ERP invoice posted for a billing invoice,
within the caller's legal entities, and a malformed id refused."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from system_apis.erp.netsuite import NetSuiteClient
from tests.system_apis.erp.test_api import EVERYTHING, GERMANY, _app, port

__all__ = ["port"]  # the fixture, shared with the canonical route tests


async def test_finds_the_invoice_posted_for_a_billing_invoice(port: NetSuiteClient) -> None:
    async with AsyncTestClient(_app(port, EVERYTHING)) as client:
        found = await client.get("/system/erp/v1/invoices", params={"external_id": "inv1"})
        missing = await client.get("/system/erp/v1/invoices", params={"external_id": "in_none"})
        malformed = await client.get(
            "/system/erp/v1/invoices", params={"external_id": "in 1/../x"}
        )

    assert found.status_code == 200
    [invoice] = found.json()["data"]
    assert (invoice["external_id"], invoice["legal_entity"], invoice["total"]) == (
        "inv1", "DE01", 2_000
    )
    assert (missing.status_code, missing.json()["data"]) == (200, [])
    assert malformed.status_code == 400


async def test_another_entitys_invoice_is_not_found_by_its_external_id(
    port: NetSuiteClient,
) -> None:
    async with AsyncTestClient(_app(port, GERMANY)) as client:
        theirs = await client.get("/system/erp/v1/invoices", params={"external_id": "inv0"})
        ours = await client.get("/system/erp/v1/invoices", params={"external_id": "inv1"})

    assert (theirs.status_code, theirs.json()["data"]) == (200, [])
    assert [i["external_id"] for i in ours.json()["data"]] == ["inv1"]
