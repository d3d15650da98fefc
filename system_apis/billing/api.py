"""Canonical billing routes (`/system/billing/v1`): read-only views of the billing platform.

Each list is cursor-paged (the cursor is opaque) and shows only records of the legal entities
the caller may see; a record of another entity reads as not found.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Request, Router, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from contracts.v1 import (
    CreditNote,
    Customer,
    Invoice,
    InvoiceStatus,
    Page,
    Price,
    Product,
    Subscription,
)
from system_apis.billing.port import BillingPort, SubscriptionFilter
from system_apis.outbound import CursorSeal
from system_apis.params import (
    DEFAULT_LIMIT,
    PageCursor,
    PageLimit,
    Provided,
)
from system_apis.visibility import caller, known_id, visible_one, visible_page

__all__ = ["create_router"]

_READ: dict[str, Any] = {"scopes": ["billing:read"], "rate_limit_group": "system"}


def _stripe_id(prefix: str) -> str:
    """The pattern of a Stripe object id: its type's prefix, `_`, letters and digits."""
    return f"^{prefix}_[A-Za-z0-9]{{1,64}}$"


_SUBSCRIPTION_ID = re.compile(_stripe_id("sub"))
_INVOICE_ID = re.compile(_stripe_id("in"))
# Path ids are checked in the handler, not by a pattern here: an id that is not a Stripe id
# is a record that does not exist (404), not a malformed request.
SubscriptionId = Annotated[
    str, PathParameter(max_length=128, description="Stripe subscription id (sub_...)")
]
InvoiceId = Annotated[
    str, PathParameter(max_length=128, description="Stripe invoice id (in_...)")
]
CustomerFilter = Annotated[
    str | None,
    QueryParameter(
        name="customer", pattern=_stripe_id("cus"), description="Stripe customer id (cus_...)"
    ),
]
ProductFilter = Annotated[
    str | None,
    QueryParameter(
        name="product", pattern=_stripe_id("prod"), description="Stripe product id (prod_...)"
    ),
]
InvoiceFilter = Annotated[
    str | None,
    QueryParameter(
        name="invoice", pattern=_stripe_id("in"), description="Stripe invoice id (in_...)"
    ),
]
EmailFilter = Annotated[
    str | None,
    QueryParameter(
        name="email",
        min_length=1,
        max_length=512,
        description="Only customers with exactly this email address",
    ),
]
SubscriptionStatusFilter = Annotated[
    SubscriptionFilter | None,
    QueryParameter(
        name="status",
        description="Only subscriptions in this status (`all`: canceled ones included)",
    ),
]
InvoiceStatusFilter = Annotated[
    InvoiceStatus | None,
    QueryParameter(name="status", description="Only invoices in this status"),
]


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
    billing: Provided[BillingPort],
    cursor_seal: NamedDependency[CursorSeal],
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
    email: EmailFilter = None,
) -> Page[Customer]:
    """Billing customers, each with its legal entity."""
    return await visible_page(
        caller(request), seal=cursor_seal, list_name="billing:customers", cursor=cursor,
        limit=limit,
        fetch=lambda at, n: billing.list_customers(email=email, cursor=at, limit=n),
        entity=lambda customer: customer.legal_entity,
    )


@get("/products", opt=_READ)
async def list_products(
    request: Request[Any, Any, Any],
    billing: Provided[BillingPort],
    cursor_seal: NamedDependency[CursorSeal],
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
) -> Page[Product]:
    """The billing catalog's products."""
    return await visible_page(
        caller(request), seal=cursor_seal, list_name="billing:products", cursor=cursor,
        limit=limit, fetch=lambda at, n: billing.list_products(cursor=at, limit=n),
    )


@get("/prices", opt=_READ)
async def list_prices(
    request: Request[Any, Any, Any],
    billing: Provided[BillingPort],
    cursor_seal: NamedDependency[CursorSeal],
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
    product: ProductFilter = None,
) -> Page[Price]:
    """Prices, optionally of one product."""
    return await visible_page(
        caller(request), seal=cursor_seal, list_name=f"billing:prices:{product}",
        cursor=cursor, limit=limit,
        fetch=lambda at, n: billing.list_prices(product_id=product, cursor=at, limit=n),
    )


@get("/subscriptions", opt=_READ)
async def list_subscriptions(
    request: Request[Any, Any, Any],
    billing: Provided[BillingPort],
    cursor_seal: NamedDependency[CursorSeal],
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
    customer: CustomerFilter = None,
    status: SubscriptionStatusFilter = None,
) -> Page[Subscription]:
    """Subscriptions, optionally of one customer or in one status (`all` includes canceled)."""
    return await visible_page(
        caller(request), seal=cursor_seal,
        list_name=f"billing:subscriptions:{customer}:{status}", cursor=cursor, limit=limit,
        fetch=lambda at, n: billing.list_subscriptions(
            customer_id=customer, status=status, cursor=at, limit=n
        ),
        entity=lambda subscription: subscription.legal_entity,
    )


@get("/subscriptions/{subscription_id:str}", opt=_READ)
async def get_subscription(
    request: Request[Any, Any, Any],
    billing: Provided[BillingPort],
    subscription_id: SubscriptionId,
) -> Subscription:
    """One subscription with its items."""
    return await visible_one(
        caller(request),
        f"subscription {subscription_id}",
        billing.get_subscription(
            known_id(subscription_id, _SUBSCRIPTION_ID, f"subscription {subscription_id}")
        ),
        lambda subscription: subscription.legal_entity,
    )


@get("/invoices", opt=_READ)
async def list_invoices(
    request: Request[Any, Any, Any],
    billing: Provided[BillingPort],
    cursor_seal: NamedDependency[CursorSeal],
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
    customer: CustomerFilter = None,
    status: InvoiceStatusFilter = None,
) -> Page[Invoice]:
    """Invoices, optionally of one customer or in one status."""
    return await visible_page(
        caller(request), seal=cursor_seal,
        list_name=f"billing:invoices:{customer}:{status}", cursor=cursor, limit=limit,
        fetch=lambda at, n: billing.list_invoices(
            customer_id=customer, status=status, cursor=at, limit=n
        ),
        entity=lambda invoice: invoice.legal_entity,
    )


@get("/invoices/{invoice_id:str}", opt=_READ)
async def get_invoice(
    request: Request[Any, Any, Any],
    billing: Provided[BillingPort],
    invoice_id: InvoiceId,
) -> Invoice:
    """One invoice with all its lines."""
    return await visible_one(
        caller(request),
        f"invoice {invoice_id}",
        billing.get_invoice(known_id(invoice_id, _INVOICE_ID, f"invoice {invoice_id}")),
        lambda invoice: invoice.legal_entity,
    )


@get("/credit-notes", opt=_READ)
async def list_credit_notes(
    request: Request[Any, Any, Any],
    billing: Provided[BillingPort],
    cursor_seal: NamedDependency[CursorSeal],
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
    invoice: InvoiceFilter = None,
    customer: CustomerFilter = None,
) -> Page[CreditNote]:
    """Credit notes, optionally of one invoice or one customer."""
    return await visible_page(
        caller(request), seal=cursor_seal,
        list_name=f"billing:credit-notes:{invoice}:{customer}", cursor=cursor, limit=limit,
        fetch=lambda at, n: billing.list_credit_notes(
            invoice_id=invoice, customer_id=customer, cursor=at, limit=n
        ),
        entity=lambda note: note.legal_entity,
    )





