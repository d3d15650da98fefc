"""Canonical ERP routes (`/system/erp/v1`): read-only views of the financial system of record.

Each list is cursor-paged and shows only records of the legal entities the caller may see.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Request, Router, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, Parameter

from contracts.v1 import (
    ApprovalStatus,
    ApprovalTask,
    CreditMemo,
    Customer,
    Invoice,
    InvoiceStatus,
    LegalEntity,
    Page,
    Product,
    SalesOrder,
)
from system_apis.erp.port import ErpPort
from system_apis.outbound import CursorSeal
from system_apis.params import DEFAULT_LIMIT, LegalEntityFilter, PageCursor, PageLimit, Provided
from system_apis.visibility import caller, known_id, visible, visible_one, visible_page

__all__ = ["create_router"]

_READ: dict[str, Any] = {"scopes": ["erp:read"], "rate_limit_group": "system"}
_RECORD_ID = re.compile(r"[0-9]{1,18}")
# Path ids are checked in the handler, not by a pattern here: an id that is not a NetSuite
# internal id is a record that does not exist (404), and is never put in a query.
RecordId = Annotated[
    str, Parameter(max_length=128, description="The ERP's internal record id (digits)")
]
Seal = NamedDependency[CursorSeal]
CustomerFilter = Annotated[
    str | None,
    Parameter(query="customer", pattern=r"^[0-9]{1,18}$", description="ERP customer id"),
]

ExternalIdFilter = Annotated[
    str | None,
    Parameter(
        query="external_id",
        pattern=r"^[A-Za-z0-9_:.\-]{1,255}$",
        description="The billing invoice id the ERP invoice was posted for",
    ),
]


def create_router() -> Router:
    """The `/system/erp/v1` router; the app provides the `erp` dependency (an ErpPort)."""
    return Router(
        path="/system/erp/v1",
        route_handlers=[
            list_legal_entities, list_customers, get_customer, list_items, list_sales_orders,
            get_sales_order, list_invoices, get_invoice, list_credit_memos, list_approvals,
            get_approval,
        ],
        tags=["erp"],
    )








@get("/legal-entities", opt=_READ)
async def list_legal_entities(
    request: Request[Any, Any, Any], erp: Provided[ErpPort]
) -> Page[LegalEntity]:
    principal = caller(request)
    entities = await erp.list_legal_entities()
    return Page(data=[e for e in entities if principal.may_see_entity(e.code)])


@get("/customers", opt=_READ)
async def list_customers(
    request: Request[Any, Any, Any], erp: Provided[ErpPort], cursor_seal: Seal,
    cursor: PageCursor = None, limit: PageLimit = DEFAULT_LIMIT,
    legal_entity: LegalEntityFilter = None,
) -> Page[Customer]:
    return await visible_page(
        caller(request), seal=cursor_seal, list_name=f"erp:customers:{legal_entity}",
        cursor=cursor, limit=limit,
        fetch=lambda at, n: erp.list_customers(legal_entity=legal_entity, cursor=at, limit=n),
        entity=lambda c: c.legal_entity,
    )


@get("/customers/{customer_id:str}", opt=_READ)
async def get_customer(request: Request[Any, Any, Any], erp: Provided[ErpPort],
                       customer_id: RecordId) -> Customer:
    what = f"customer {customer_id}"
    return await visible_one(caller(request), what,
                             erp.get_customer(known_id(customer_id, _RECORD_ID, what)),
                             lambda c: c.legal_entity)


@get("/items", opt=_READ)
async def list_items(
    request: Request[Any, Any, Any], erp: Provided[ErpPort], cursor_seal: Seal,
    cursor: PageCursor = None, limit: PageLimit = DEFAULT_LIMIT,
) -> Page[Product]:
    return await visible_page(
        caller(request), seal=cursor_seal, list_name="erp:items", cursor=cursor, limit=limit,
        fetch=lambda at, n: erp.list_products(cursor=at, limit=n),
    )


@get("/sales-orders", opt=_READ)
async def list_sales_orders(
    request: Request[Any, Any, Any], erp: Provided[ErpPort], cursor_seal: Seal,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT, number: FromQuery[str | None] = None,
    customer: CustomerFilter = None,
    legal_entity: LegalEntityFilter = None,
) -> Page[SalesOrder]:
    return await visible_page(
        caller(request), seal=cursor_seal,
        list_name=f"erp:sales-orders:{number}:{customer}:{legal_entity}", cursor=cursor,
        limit=limit,
        fetch=lambda at, n: erp.list_sales_orders(
            number=number, customer_id=customer, legal_entity=legal_entity, cursor=at, limit=n
        ),
        entity=lambda o: o.legal_entity,
    )


@get("/sales-orders/{order_id:str}", opt=_READ)
async def get_sales_order(request: Request[Any, Any, Any], erp: Provided[ErpPort],
                          order_id: RecordId) -> SalesOrder:
    what = f"sales order {order_id}"
    return await visible_one(caller(request), what,
                             erp.get_sales_order(known_id(order_id, _RECORD_ID, what)),
                             lambda o: o.legal_entity)


@get("/invoices", opt=_READ)
async def list_invoices(
    request: Request[Any, Any, Any], erp: Provided[ErpPort], cursor_seal: Seal,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT, customer: CustomerFilter = None,
    status: FromQuery[InvoiceStatus | None] = None,
    external_id: ExternalIdFilter = None,
) -> Page[Invoice]:
    if external_id is not None:
        # The ERP invoice posted for a billing invoice (its external id is that invoice's id).
        found = await erp.find_invoice(external_id=external_id)
        matches = [found] if found is not None and (
            customer is None or found.customer_id == customer
        ) and (status is None or found.status == status) else []
        return visible(Page(data=matches), caller(request), lambda i: i.legal_entity)
    return await visible_page(
        caller(request), seal=cursor_seal, list_name=f"erp:invoices:{customer}:{status}",
        cursor=cursor, limit=limit,
        fetch=lambda at, n: erp.list_invoices(
            customer_id=customer, status=status, cursor=at, limit=n
        ),
        entity=lambda i: i.legal_entity,
    )


@get("/invoices/{invoice_id:str}", opt=_READ)
async def get_invoice(
    request: Request[Any, Any, Any], erp: Provided[ErpPort], invoice_id: RecordId
) -> Invoice:
    what = f"invoice {invoice_id}"
    return await visible_one(caller(request), what,
                             erp.get_invoice(known_id(invoice_id, _RECORD_ID, what)),
                             lambda i: i.legal_entity)


@get("/credit-memos", opt=_READ)
async def list_credit_memos(
    request: Request[Any, Any, Any], erp: Provided[ErpPort], cursor_seal: Seal,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT, customer: CustomerFilter = None,
) -> Page[CreditMemo]:
    return await visible_page(
        caller(request), seal=cursor_seal, list_name=f"erp:credit-memos:{customer}",
        cursor=cursor, limit=limit,
        fetch=lambda at, n: erp.list_credit_memos(customer_id=customer, cursor=at, limit=n),
        entity=lambda m: m.legal_entity,
    )


@get("/approvals", opt=_READ)
async def list_approvals(
    request: Request[Any, Any, Any], erp: Provided[ErpPort], cursor_seal: Seal,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT, status: FromQuery[ApprovalStatus | None] = None,
) -> Page[ApprovalTask]:
    return await visible_page(
        caller(request), seal=cursor_seal, list_name=f"erp:approvals:{status}",
        cursor=cursor, limit=limit,
        fetch=lambda at, n: erp.list_approval_tasks(status=status, cursor=at, limit=n),
        entity=lambda t: t.legal_entity,
    )


@get("/approvals/{task_id:str}", opt=_READ)
async def get_approval(request: Request[Any, Any, Any], erp: Provided[ErpPort],
                       task_id: RecordId) -> ApprovalTask:
    what = f"approval {task_id}"
    return await visible_one(caller(request), what,
                             erp.get_approval_task(known_id(task_id, _RECORD_ID, what)),
                             lambda t: t.legal_entity)
