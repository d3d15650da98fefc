"""Canonical ERP routes (`/system/erp/v1`): read-only views of the financial system of record.

Each list is cursor-paged and shows only records of the legal entities the caller may see.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get
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
from system_apis.params import DEFAULT_LIMIT, LegalEntityFilter, PageCursor, PageLimit
from system_apis.visibility import caller, visible, visible_one

__all__ = ["create_router"]

_READ: dict[str, Any] = {"scopes": ["erp:read"], "rate_limit_group": "system"}
RecordId = Annotated[
    str, Parameter(pattern=r"^[0-9]{1,18}$", description="The ERP's internal record id")
]
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
async def list_legal_entities(request: Request[Any, Any, Any], erp: ErpPort) -> Page[LegalEntity]:
    principal = caller(request)
    entities = await erp.list_legal_entities()
    return Page(data=[e for e in entities if principal.may_see_entity(e.code)])


@get("/customers", opt=_READ)
async def list_customers(
    request: Request[Any, Any, Any], erp: ErpPort, cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT, legal_entity: LegalEntityFilter = None,
) -> Page[Customer]:
    page = await erp.list_customers(legal_entity=legal_entity, cursor=cursor,
                                    limit=limit)
    return visible(page, caller(request), lambda c: c.legal_entity)


@get("/customers/{customer_id:str}", opt=_READ)
async def get_customer(request: Request[Any, Any, Any], erp: ErpPort,
                       customer_id: RecordId) -> Customer:
    return await visible_one(caller(request), f"customer {customer_id}",
                      erp.get_customer(customer_id), lambda c: c.legal_entity)


@get("/items", opt=_READ)
async def list_items(
    erp: ErpPort, cursor: PageCursor = None, limit: PageLimit = DEFAULT_LIMIT
) -> Page[Product]:
    return await erp.list_products(cursor=cursor, limit=limit)


@get("/sales-orders", opt=_READ)
async def list_sales_orders(
    request: Request[Any, Any, Any], erp: ErpPort, cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT, number: FromQuery[str | None] = None,
    customer: CustomerFilter = None,
    legal_entity: LegalEntityFilter = None,
) -> Page[SalesOrder]:
    page = await erp.list_sales_orders(number=number, customer_id=customer,
                                       legal_entity=legal_entity, cursor=cursor,
                                       limit=limit)
    return visible(page, caller(request), lambda o: o.legal_entity)


@get("/sales-orders/{order_id:str}", opt=_READ)
async def get_sales_order(request: Request[Any, Any, Any], erp: ErpPort,
                          order_id: RecordId) -> SalesOrder:
    return await visible_one(caller(request), f"sales order {order_id}",
                      erp.get_sales_order(order_id), lambda o: o.legal_entity)


@get("/invoices", opt=_READ)
async def list_invoices(
    request: Request[Any, Any, Any], erp: ErpPort, cursor: PageCursor = None,
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
    page = await erp.list_invoices(customer_id=customer, status=status, cursor=cursor,
                                   limit=limit)
    return visible(page, caller(request), lambda i: i.legal_entity)


@get("/invoices/{invoice_id:str}", opt=_READ)
async def get_invoice(
    request: Request[Any, Any, Any], erp: ErpPort, invoice_id: RecordId
) -> Invoice:
    return await visible_one(caller(request), f"invoice {invoice_id}",
                      erp.get_invoice(invoice_id), lambda i: i.legal_entity)


@get("/credit-memos", opt=_READ)
async def list_credit_memos(
    request: Request[Any, Any, Any], erp: ErpPort, cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT, customer: CustomerFilter = None,
) -> Page[CreditMemo]:
    page = await erp.list_credit_memos(customer_id=customer, cursor=cursor, limit=limit)
    return visible(page, caller(request), lambda m: m.legal_entity)


@get("/approvals", opt=_READ)
async def list_approvals(
    request: Request[Any, Any, Any], erp: ErpPort, cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT, status: FromQuery[ApprovalStatus | None] = None,
) -> Page[ApprovalTask]:
    page = await erp.list_approval_tasks(status=status, cursor=cursor, limit=limit)
    return visible(page, caller(request), lambda t: t.legal_entity)


@get("/approvals/{task_id:str}", opt=_READ)
async def get_approval(request: Request[Any, Any, Any], erp: ErpPort,
                       task_id: RecordId) -> ApprovalTask:
    return await visible_one(caller(request), f"approval {task_id}",
                      erp.get_approval_task(task_id), lambda t: t.legal_entity)
