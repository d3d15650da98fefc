"""Canonical billing routes (`/system/billing/v1`): read-only views of the billing platform.

Each list is cursor-paged (the cursor is opaque) and shows only records of the legal entities
the caller may see; a record of another entity reads as not found.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, get_args

from litestar import Request, Router, get

from contracts.errors import FieldError, InvalidRequest, NotFound, UpstreamNotFound
from contracts.principal import Principal
from contracts.v1 import (
    CreditNote,
    Customer,
    Invoice,
    InvoiceStatus,
    Page,
    Price,
    Product,
    Subscription,
    SubscriptionStatus,
)
from system_apis.billing.port import BillingPort

__all__ = ["create_router"]

T = TypeVar("T")
_READ: dict[str, Any] = {"scopes": ["billing:read"], "rate_limit_group": "system"}
_DEFAULT_LIMIT = 50
_MAX_LIMIT = 100
_SUBSCRIPTION_FILTERS = (*get_args(SubscriptionStatus), "all")


def create_router() -> Router:
    """The `/system/billing/v1` router; the app provides `billing` (a BillingPort)."""
    return Router(
        path="/system/billing/v1",
        route_handlers=[
            list_customers,
            list_products,
            list_prices,
            list_subscriptions,
            get_subscription,
            list_invoices,
            get_invoice,
            list_credit_notes,
        ],
        tags=["billing"],
    )


@get("/customers", opt=_READ)
async def list_customers(
    request: Request[Any, Any, Any],
    billing: BillingPort,
    cursor: str | None = None,
    limit: int | None = None,
    email: str | None = None,
) -> Page[Customer]:
    """Billing customers, each with its legal entity."""
    page = await billing.list_customers(email=email, cursor=cursor, limit=_limit(limit))
    return _visible(page, _principal(request), lambda customer: customer.legal_entity)


@get("/products", opt=_READ)
async def list_products(
    billing: BillingPort, cursor: str | None = None, limit: int | None = None
) -> Page[Product]:
    """The billing catalog's products."""
    return await billing.list_products(cursor=cursor, limit=_limit(limit))


@get("/prices", opt=_READ)
async def list_prices(
    billing: BillingPort,
    cursor: str | None = None,
    limit: int | None = None,
    product: str | None = None,
) -> Page[Price]:
    """Prices, optionally of one product."""
    return await billing.list_prices(product_id=product, cursor=cursor, limit=_limit(limit))


@get("/subscriptions", opt=_READ)
async def list_subscriptions(
    request: Request[Any, Any, Any],
    billing: BillingPort,
    cursor: str | None = None,
    limit: int | None = None,
    customer: str | None = None,
    status: str | None = None,
) -> Page[Subscription]:
    """Subscriptions, optionally of one customer or in one status (`all` includes canceled)."""
    chosen = _choice("status", status, _SUBSCRIPTION_FILTERS)
    page = await billing.list_subscriptions(
        customer_id=customer, status=chosen, cursor=cursor, limit=_limit(limit)
    )
    return _visible(page, _principal(request), lambda subscription: subscription.legal_entity)


@get("/subscriptions/{subscription_id:str}", opt=_READ)
async def get_subscription(
    request: Request[Any, Any, Any], billing: BillingPort, subscription_id: str
) -> Subscription:
    """One subscription with its items."""
    return await _one(
        _principal(request),
        f"subscription {subscription_id}",
        billing.get_subscription(subscription_id),
        lambda subscription: subscription.legal_entity,
    )


@get("/invoices", opt=_READ)
async def list_invoices(
    request: Request[Any, Any, Any],
    billing: BillingPort,
    cursor: str | None = None,
    limit: int | None = None,
    customer: str | None = None,
    status: str | None = None,
) -> Page[Invoice]:
    """Invoices, optionally of one customer or in one status."""
    chosen = _choice("status", status, get_args(InvoiceStatus))
    page = await billing.list_invoices(
        customer_id=customer, status=chosen, cursor=cursor, limit=_limit(limit)
    )
    return _visible(page, _principal(request), lambda invoice: invoice.legal_entity)


@get("/invoices/{invoice_id:str}", opt=_READ)
async def get_invoice(
    request: Request[Any, Any, Any], billing: BillingPort, invoice_id: str
) -> Invoice:
    """One invoice with all its lines."""
    return await _one(
        _principal(request),
        f"invoice {invoice_id}",
        billing.get_invoice(invoice_id),
        lambda invoice: invoice.legal_entity,
    )


@get("/credit-notes", opt=_READ)
async def list_credit_notes(
    request: Request[Any, Any, Any],
    billing: BillingPort,
    cursor: str | None = None,
    limit: int | None = None,
    invoice: str | None = None,
    customer: str | None = None,
) -> Page[CreditNote]:
    """Credit notes, optionally of one invoice or one customer."""
    page = await billing.list_credit_notes(
        invoice_id=invoice, customer_id=customer, cursor=cursor, limit=_limit(limit)
    )
    return _visible(page, _principal(request), lambda note: note.legal_entity)


def _principal(request: Request[Any, Any, Any]) -> Principal:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise InvalidRequest("no authenticated caller")
    return user


def _limit(limit: int | None) -> int:
    if limit is None:
        return _DEFAULT_LIMIT
    if not 1 <= limit <= _MAX_LIMIT:
        raise InvalidRequest(
            "limit out of range",
            errors=[FieldError(pointer="limit", detail=f"between 1 and {_MAX_LIMIT}")],
        )
    return limit


def _choice(name: str, value: str | None, allowed: Sequence[str]) -> Any:
    if value is not None and value not in allowed:
        raise InvalidRequest(
            f"unknown {name}",
            errors=[FieldError(pointer=name, detail=f"one of {', '.join(allowed)}")],
        )
    return value


def _visible(page: Page[T], principal: Principal, entity: Callable[[T], str | None]) -> Page[T]:
    data = [item for item in page.data if principal.may_see_entity(entity(item))]
    return Page(data=data, next_cursor=page.next_cursor)


async def _one(
    principal: Principal, what: str, fetch: Awaitable[T], entity: Callable[[T], str | None]
) -> T:
    try:
        record = await fetch
    except UpstreamNotFound as exc:
        raise NotFound(f"{what} not found") from exc
    if not principal.may_see_entity(entity(record)):
        raise NotFound(f"{what} not found")
    return record
