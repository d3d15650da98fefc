"""Canonical billing routes, version 2 (`/system/billing/v2`): invoices with `Money` amounts.

Served beside v1 from the same port and the same canonical invoices (`contracts.v2.billing.
invoice_from_v1` is the only difference), with the same visibility: a caller sees only
invoices of the legal entities it may see, and another entity's invoice reads as not found.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get
from litestar.di import NamedDependency

from contracts.v1 import Page
from contracts.v2 import Invoice, invoice_from_v1
from system_apis.billing.api import (
    _INVOICE_ID,
    _READ,
    CustomerFilter,
    InvoiceId,
    InvoiceStatusFilter,
)
from system_apis.billing.port import BillingPort
from system_apis.outbound import CursorSeal
from system_apis.params import DEFAULT_LIMIT, PageCursor, PageLimit, Provided
from system_apis.visibility import caller, known_id, visible_one, visible_page

__all__ = ["create_router_v2"]


def create_router_v2() -> Router:
    """The `/system/billing/v2` router; the app provides `billing` (a BillingPort)."""
    return Router(
        path="/system/billing/v2",
        route_handlers=[list_invoices_v2, get_invoice_v2],
        tags=["billing"],
    )


@get("/invoices", opt=_READ, operation_id="ListInvoicesV2")
async def list_invoices_v2(
    request: Request[Any, Any, Any],
    billing: Provided[BillingPort],
    cursor_seal: NamedDependency[CursorSeal],
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
    customer: CustomerFilter = None,
    status: InvoiceStatusFilter = None,
) -> Page[Invoice]:
    """Invoices (every amount a `Money`), optionally of one customer or in one status."""
    page = await visible_page(
        caller(request),
        seal=cursor_seal,
        list_name=f"billing:v2:invoices:{customer}:{status}",
        cursor=cursor,
        limit=limit,
        fetch=lambda at, n: billing.list_invoices(
            customer_id=customer, status=status, cursor=at, limit=n
        ),
        entity=lambda invoice: invoice.legal_entity,
    )
    return Page(data=[invoice_from_v1(i) for i in page.data], next_cursor=page.next_cursor)


@get("/invoices/{invoice_id:str}", opt=_READ, operation_id="GetInvoiceV2")
async def get_invoice_v2(
    request: Request[Any, Any, Any],
    billing: Provided[BillingPort],
    invoice_id: InvoiceId,
) -> Invoice:
    """One invoice with all its lines, each with its tax, discount and service period."""
    invoice = await visible_one(
        caller(request),
        f"invoice {invoice_id}",
        billing.get_invoice(known_id(invoice_id, _INVOICE_ID, f"invoice {invoice_id}")),
        lambda invoice: invoice.legal_entity,
    )
    return invoice_from_v1(invoice)
