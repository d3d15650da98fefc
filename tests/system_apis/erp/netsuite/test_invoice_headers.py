"""Invoices read without their lines: one SuiteQL query a page, the same invoices otherwise."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import msgspec

from contracts.v1 import (
    CreditMemoCreate,
    CustomerCreate,
    Invoice,
    Payment,
    SalesOrderCreate,
    SalesOrderLine,
)
from gateway.sandbox_wiring import netsuite_sandbox_credentials as sandbox_credentials
from system_apis.erp.netsuite import NetSuiteClient

ACME = CustomerCreate(legal_name="Acme Robotics Inc.", legal_entity="US01", currency="USD",
                      payment_terms_days=30)
GLOBEX = CustomerCreate(legal_name="Globex Logistik GmbH", legal_entity="DE01",
                        currency="EUR", payment_terms_days=14)


def _order(customer_id: str, entity: str, currency: str, n: int) -> SalesOrderCreate:
    return SalesOrderCreate(
        customer_id=customer_id, legal_entity=entity, currency=currency,
        order_date=dt.date(2026, 11, 2), external_id=f"order:{n}",
        lines=[SalesOrderLine(product_code="SEAT", quantity=n, unit_amount=2_500,
                              amount=2_500 * n)],
    )


async def _book(client: NetSuiteClient) -> list[Invoice]:
    """Five invoices: open and paid, with and without tax, in two subsidiaries."""
    acme = await client.upsert_customer(ACME, external_id="acct-acme")
    globex = await client.upsert_customer(GLOBEX, external_id="acct-globex")
    invoices = []
    for n in range(1, 6):
        customer, entity, currency = ((acme, "US01", "USD") if n % 2 else
                                      (globex, "DE01", "EUR"))
        order = await client.upsert_sales_order(_order(customer.id, entity, currency, n))
        lines = None
        if currency == "EUR":
            lines = [SalesOrderLine(product_code="SEAT", item_id=order.lines[0].item_id,
                                    quantity=n, unit_amount=2_500, amount=2_500 * n,
                                    tax_code="DE-VAT-19", tax_rate_bps=1900,
                                    tax_amount=475 * n)]
        invoices.append(await client.upsert_invoice(
            sales_order_id=order.id, external_id=f"inv:{n}", memo=f"invoice {n}", lines=lines,
            tax_note="VAT 19%" if lines else None,
        ))
    paid = invoices[0]
    await client.upsert_customer_payment(
        Payment(id="", invoice_id=paid.id, customer_id=paid.customer_id, amount=paid.total,
                currency=paid.currency, status="succeeded", legal_entity=paid.legal_entity),
        external_id="pay:1",
    )
    return invoices


async def test_headers_are_the_invoices_without_lines_one_request_a_page(
    base_url: str,
) -> None:
    requests: list[str] = []

    async def count(request: httpx.Request) -> None:
        requests.append(f"{request.method} {request.url.path}")

    async with httpx.AsyncClient(base_url=base_url, timeout=5.0,
                                 event_hooks={"request": [count]}) as http:
        client = NetSuiteClient(http, credentials=sandbox_credentials(base_url))
        booked = await _book(client)
        await client.directory()  # read once per client, not per page
        full: list[Invoice] = []
        cursor = None
        while True:
            page = await client.list_invoices(cursor=cursor, limit=2)
            full.extend(page.data)
            if (cursor := page.next_cursor) is None:
                break

        requests.clear()
        headers: list[Invoice] = []
        pages = 0
        cursor = None
        while True:
            page = await client.list_invoices(cursor=cursor, limit=2, lines=False)
            pages += 1
            headers.extend(page.data)
            if (cursor := page.next_cursor) is None:
                break

    assert len(full) == 5 and all(invoice.lines for invoice in full)
    assert [i.id for i in full] == [i.id for i in booked]
    assert headers == [msgspec.structs.replace(invoice, lines=[]) for invoice in full]
    assert {i.status for i in headers} == {"open", "paid"}
    assert {(i.currency, i.tax) for i in headers} >= {("EUR", 950), ("USD", 0)}
    data_requests = [r for r in requests if not r.endswith("/token")]
    assert data_requests == ["POST /services/rest/query/v1/suiteql"] * pages
    assert pages == 3


async def test_header_filters_match_the_per_record_read(client: NetSuiteClient) -> None:
    booked = await _book(client)
    paid = booked[0]
    filters: list[dict[str, Any]] = [
        {"status": "paid"}, {"status": "open"}, {"customer_id": paid.customer_id},
    ]
    for kwargs in filters:
        full = await client.list_invoices(**kwargs)
        headers = await client.list_invoices(lines=False, **kwargs)
        assert headers.data == [msgspec.structs.replace(i, lines=[]) for i in full.data]
        assert headers.data
    assert [i.id for i in (await client.list_invoices(status="paid", lines=False)).data] == [
        paid.id]


async def test_order_headers_match_the_per_record_read(client: NetSuiteClient) -> None:
    booked = await _book(client)
    await client.upsert_sales_order(_order(booked[0].customer_id, "US01", "USD", 9))  # unbilled
    filters: list[dict[str, Any]] = [
        {}, {"legal_entity": "US01"}, {"customer_id": booked[1].customer_id},
        {"number": "nothing"},
    ]
    for kwargs in filters:
        full = await client.list_sales_orders(limit=4, **kwargs)
        headers = await client.list_sales_orders(limit=4, lines=False, **kwargs)
        assert headers == msgspec.structs.replace(
            full, data=[msgspec.structs.replace(o, lines=[]) for o in full.data])
    orders = (await client.list_sales_orders(lines=False)).data
    assert {o.status for o in orders} == {"billed", "pending_fulfillment"}
    assert [o.total for o in orders] == [2_500 * n for n in (1, 2, 3, 4, 5, 9)]
    assert (await client.list_sales_orders(legal_entity="XX99", lines=False)).data == []


async def test_credit_memos_are_read_in_one_query_a_page(base_url: str) -> None:
    requests: list[str] = []

    async def count(request: httpx.Request) -> None:
        requests.append(f"{request.method} {request.url.path}")

    async with httpx.AsyncClient(base_url=base_url, timeout=5.0,
                                 event_hooks={"request": [count]}) as http:
        client = NetSuiteClient(http, credentials=sandbox_credentials(base_url))
        booked = await _book(client)
        created = []
        for n, invoice in enumerate(booked[1:4], start=1):
            created.append(await client.upsert_credit_memo(CreditMemoCreate(
                customer_id=invoice.customer_id, invoice_id=invoice.id,
                legal_entity=invoice.legal_entity, currency=invoice.currency, amount=100 * n,
                memo=f"credit {n}", external_id=f"credit:{n}",
            )))
        read_one = [await client.get_credit_memo(memo.id) for memo in created]
        requests.clear()
        first = await client.list_credit_memos(limit=2)
        second = await client.list_credit_memos(cursor=first.next_cursor, limit=2)

    assert first.data + second.data == read_one
    assert second.next_cursor is None
    assert [(m.amount, m.invoice_id) for m in read_one] == [
        (100 * n, invoice.id) for n, invoice in enumerate(booked[1:4], start=1)]
    assert [r for r in requests if not r.endswith("/token")] == [
        "POST /services/rest/query/v1/suiteql"] * 2
