"""Customer portal views (`/experience/portal/v1`): the subscription and invoices of the one
customer the caller's token is bound to (`Principal.customer`), from billing (required).

Binding: `Principal.customer` is a canonical customer id or a Salesforce account id; which
one is decided with the cross-reference table (`LinkResolver.for_portal`: a known canonical id
first, else a CRM account), and the customer's billing record is its cross-referenced Stripe
customer, else the Stripe customer whose `crm_account_id` metadata is that account.

Another customer's invoice answers exactly as a missing one (404, same problem body apart from
the ids and correlation id), so a customer cannot learn which invoice ids exist. Draft
invoices are not shown to customers.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Response, Router, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter

from contracts.errors import Forbidden, NotFound, UpstreamNotFound
from contracts.principal import Principal
from contracts.v1 import Customer, Invoice, Subscription
from experience_apis._links import billing_customer
from experience_apis._services import (
    AuthedRequest,
    BillingDep,
    ViewsDep,
    ViewServices,
    principal_of,
    require_port,
)
from experience_apis.compose import (
    Source,
    SourceRule,
    SourceState,
    ViewRules,
    conditional_response,
    wants_fresh,
)
from system_apis.billing.port import BillingPort
from system_apis.outbound import CursorSeal
from system_apis.params import DEFAULT_LIMIT, PageCursor, PageLimit

__all__ = ["PORTAL", "PortalInvoice", "PortalInvoiceDetail", "PortalSubscriptions", "create_router"]

PREFIX = "/experience/portal/v1"
_OPT: dict[str, Any] = {"scopes": ["experience:portal"], "rate_limit_group": "experience"}
PORTAL = ViewRules(
    name="portal", sources={"billing": SourceRule(required=True, budget_seconds=2.0)}
)
InvoiceId = Annotated[str, PathParameter(min_length=1, max_length=64)]
_NOT_SHOWN = frozenset({"draft"})


class PortalItem(msgspec.Struct, frozen=True, kw_only=True):
    product_code: str | None = None
    quantity: int
    unit_amount: int | None = None


class PortalSubscription(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: str
    currency: str
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    items: list[PortalItem] = []


class PortalSubscriptions(msgspec.Struct, frozen=True, kw_only=True):
    customer_name: str | None
    subscriptions: list[PortalSubscription]
    sources: dict[str, SourceState]


class PortalInvoice(msgspec.Struct, frozen=True, kw_only=True):
    """An invoice as the customer sees it; amounts in minor units of `currency`."""

    id: str
    number: str | None = None
    status: str
    currency: str
    total: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    due_date: date | None = None
    issued_at: datetime | None = None
    paid_at: datetime | None = None


class PortalInvoiceLine(msgspec.Struct, frozen=True, kw_only=True):
    description: str | None = None
    quantity: int
    unit_amount: int | None = None
    amount: int
    period_start: datetime | None = None
    period_end: datetime | None = None


class PortalInvoiceDetail(PortalInvoice, frozen=True, kw_only=True):
    subtotal: int
    tax: int
    lines: list[PortalInvoiceLine]
    sources: dict[str, SourceState]


class PortalInvoices(msgspec.Struct, frozen=True, kw_only=True):
    data: list[PortalInvoice]
    next_cursor: str | None = None
    sources: dict[str, SourceState]


class SubscriptionsData(msgspec.Struct, frozen=True, kw_only=True):
    customer: Customer | None
    subscriptions: list[Subscription] = []


class InvoicesData(msgspec.Struct, frozen=True, kw_only=True):
    invoices: list[Invoice] = []
    next_cursor: str | None = None


class InvoiceData(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str | None
    invoice: Invoice | None


def _spec(data: type[msgspec.Struct], what: str) -> dict[int, ResponseSpec]:
    return {
        200: ResponseSpec(data, description=what, generate_examples=False),
        304: ResponseSpec(None, description="Not modified (If-None-Match)"),
    }


@get(
    "/subscription",
    opt=_OPT,
    summary="The customer's subscriptions",
    responses=_spec(PortalSubscriptions, "The subscriptions"),
)
async def subscription(
    request: AuthedRequest,
    views: ViewsDep,
    billing: BillingDep = None,
) -> Response[bytes]:
    bound = _bound_customer(principal_of(request))
    source = Source(
        "billing", bound, lambda: _subscriptions(views, billing, bound), SubscriptionsData
    )
    composition = await views.composer.compose(
        views.rules(PORTAL), source, use_cache=not wants_fresh(request)
    )
    data = composition.get(source)
    assert data is not None  # required: compose raised otherwise
    view = PortalSubscriptions(
        customer_name=data.customer.legal_name if data.customer else None,
        subscriptions=[_subscription(sub) for sub in data.subscriptions],
        sources=composition.states,
    )
    return conditional_response(request, view)


@get(
    "/invoices",
    opt=_OPT,
    summary="The customer's invoices, newest first",
    responses=_spec(PortalInvoices, "A page of invoices"),
)
async def list_invoices(
    request: AuthedRequest,
    views: ViewsDep,
    cursor_seal: NamedDependency[CursorSeal],
    billing: BillingDep = None,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
) -> Response[bytes]:
    principal = principal_of(request)
    bound = _bound_customer(principal)
    # The billing port's cursor is sealed for this caller and customer, as every list's is: it
    # names nothing, and another caller's (or another list's) cursor is a 400.
    list_name = f"experience:portal:invoices:{bound}"
    position = cursor_seal.open(cursor, caller=principal.client_id, list_name=list_name)
    source = Source(
        "billing",
        f"{bound}:{position or ''}:{limit}",
        lambda: _invoices(views, billing, bound, position, limit),
        InvoicesData,
    )
    composition = await views.composer.compose(
        views.rules(PORTAL), source, use_cache=not wants_fresh(request)
    )
    data = composition.get(source)
    assert data is not None
    page = PortalInvoices(
        data=[_invoice(invoice) for invoice in data.invoices if invoice.status not in _NOT_SHOWN],
        next_cursor=cursor_seal.seal(
            data.next_cursor, caller=principal.client_id, list_name=list_name
        ),
        sources=composition.states,
    )
    return conditional_response(request, page)


@get(
    "/invoices/{invoice_id:str}",
    opt=_OPT,
    summary="One of the customer's invoices with its lines",
    responses=_spec(PortalInvoiceDetail, "The invoice"),
)
async def get_invoice(
    request: AuthedRequest,
    invoice_id: InvoiceId,
    views: ViewsDep,
    billing: BillingDep = None,
) -> Response[bytes]:
    bound = _bound_customer(principal_of(request))
    source = Source(
        "billing",
        f"{bound}:{invoice_id}",
        lambda: _one_invoice(views, billing, bound, invoice_id),
        InvoiceData,
    )
    composition = await views.composer.compose(
        views.rules(PORTAL), source, use_cache=not wants_fresh(request)
    )
    data = composition.get(source)
    assert data is not None
    invoice = data.invoice
    if (
        invoice is None
        or data.customer_id is None
        or invoice.customer_id != data.customer_id
        or invoice.status in _NOT_SHOWN
    ):
        # The same answer whether the invoice is missing or another customer's.
        raise NotFound(f"No invoice {invoice_id}")
    return conditional_response(request, _detail(invoice, composition.states))


def create_router() -> Router:
    return Router(
        path=PREFIX, route_handlers=[subscription, list_invoices, get_invoice], tags=["portal"]
    )


def _bound_customer(principal: Principal) -> str:
    if not principal.customer:
        raise Forbidden("This client is not bound to a customer; the portal needs one")
    return principal.customer


async def _customer(views: ViewServices, billing: BillingPort, bound: str) -> Customer | None:
    return await billing_customer(billing, await views.links.for_portal(bound))


async def _subscriptions(
    views: ViewServices, billing: BillingPort | None, bound: str
) -> SubscriptionsData:
    port = require_port(billing, "billing")
    links = await views.links.for_portal(bound)
    if links.stripe:
        # The billing id is known: the customer and its subscriptions are asked for at once.
        customer, page = await asyncio.gather(
            billing_customer(port, links),
            port.list_subscriptions(customer_id=links.stripe, limit=100),
        )
        if customer is None:
            return SubscriptionsData(customer=None)
        return SubscriptionsData(customer=customer, subscriptions=page.data)
    customer = await billing_customer(port, links)
    if customer is None:
        return SubscriptionsData(customer=None)
    page = await port.list_subscriptions(customer_id=customer.id, limit=100)
    return SubscriptionsData(customer=customer, subscriptions=page.data)


async def _invoices(
    views: ViewServices, billing: BillingPort | None, bound: str, cursor: str | None, limit: int
) -> InvoicesData:
    port = require_port(billing, "billing")
    customer = await _customer(views, port, bound)
    if customer is None:
        return InvoicesData()
    page = await port.list_invoices(customer_id=customer.id, cursor=cursor, limit=limit)
    return InvoicesData(invoices=page.data, next_cursor=page.next_cursor)


async def _one_invoice(
    views: ViewServices, billing: BillingPort | None, bound: str, invoice_id: str
) -> InvoiceData:
    port = require_port(billing, "billing")
    customer, invoice = await asyncio.gather(
        _customer(views, port, bound), _invoice_or_none(port, invoice_id)
    )
    return InvoiceData(customer_id=customer.id if customer else None, invoice=invoice)


async def _invoice_or_none(billing: BillingPort, invoice_id: str) -> Invoice | None:
    try:
        return await billing.get_invoice(invoice_id)
    except UpstreamNotFound:
        return None


def _subscription(sub: Subscription) -> PortalSubscription:
    return PortalSubscription(
        id=sub.id,
        status=sub.status,
        currency=sub.currency,
        current_period_start=sub.current_period_start,
        current_period_end=sub.current_period_end,
        cancel_at_period_end=sub.cancel_at_period_end,
        items=[
            PortalItem(
                product_code=item.product_code, quantity=item.quantity, unit_amount=item.unit_amount
            )
            for item in sub.items
        ],
    )


def _invoice(invoice: Invoice) -> PortalInvoice:
    return PortalInvoice(
        id=invoice.id,
        number=invoice.number,
        status=invoice.status,
        currency=invoice.currency,
        total=invoice.total,
        amount_due=invoice.amount_due,
        amount_paid=invoice.amount_paid,
        amount_remaining=invoice.amount_remaining,
        due_date=invoice.due_date,
        issued_at=invoice.issued_at,
        paid_at=invoice.paid_at,
    )


def _detail(invoice: Invoice, sources: dict[str, SourceState]) -> PortalInvoiceDetail:
    summary = _invoice(invoice)
    return PortalInvoiceDetail(
        **msgspec.structs.asdict(summary),
        subtotal=invoice.subtotal,
        tax=invoice.tax,
        lines=[
            PortalInvoiceLine(
                description=line.description,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                amount=line.amount,
                period_start=line.period_start,
                period_end=line.period_end,
            )
            for line in invoice.lines
        ],
        sources=sources,
    )
