"""`POST /process/v1/subscription-amendments`: check an amendment synchronously (422 listing
every problem), resolve product codes to the subscription's currency's prices, and start the
amendment flow (202 + Location of the flow). The same amendment again is the same flow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response, Router, post
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.params import Body
from litestar.plugins import InitPlugin

from contracts.audit import actor_of
from contracts.context import current_context
from contracts.errors import FieldError, UpstreamNotFound, ValidationFailed
from contracts.limits import MAX_QUANTITY
from contracts.principal import Principal
from contracts.v1 import Price, Subscription
from process_apis.amendment.flow import (
    FLOW_TYPE,
    Amendment,
    ItemChange,
    SubscriptionAmendments,
    amendment_id,
    new_items,
)
from process_apis.engine.flow_engine import FlowEngine, FlowHandle
from process_apis.engine.records import FlowReader
from process_apis.engine.routes import flow_location
from process_apis.engine.store import utcnow
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort
from system_apis.visibility import seen

__all__ = [
    "AmendmentAccepted",
    "AmendmentRequest",
    "AmendmentService",
    "AmendmentWiring",
    "ItemChangeRequest",
    "create_router",
    "mount",
]

PREFIX = "/process/v1"
PAST_TOLERANCE = timedelta(days=1)
"""An effective date may lie this far in the past (a change agreed yesterday)."""
_WRITE: dict[str, Any] = {
    "scopes": ["process:write"],
    "idempotency": "required",
    "rate_limit_group": "process",
}
_STRICT_BODY = Body(schema_extra={"additionalProperties": False})
_ENDED = frozenset({"canceled"})
AuthedRequest = Request[Principal, Any, Any]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
ProductCode = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MAX_CHANGES = 20
"""Changes one amendment may list: Stripe holds at most 20 items on a subscription
(https://docs.stripe.com/billing/subscriptions/multiple-products), so no valid amendment
changes more, and each change costs a price lookup before the amendment is checked."""
T = TypeVar("T")


class ItemChangeRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One item change: a price (`price_id`, or `product_code` for the product's price in the
    subscription's currency) and its new quantity, or `remove: true`.

    Bounds: a quantity is 0 to 1,000,000 (`contracts.limits.MAX_QUANTITY`); ids are at most
    255 characters, product codes 64."""

    # Unknown keys are not refused here (the OpenAPI of a nested object cannot say so), yet a
    # misspelt key still fails: every change needs its price and its quantity or removal.

    price_id: Id | None = None
    product_code: ProductCode | None = None
    # Only the upper bound is declared: a negative quantity is refused by the service with
    # every other problem of the amendment, in one answer.
    quantity: Annotated[int, msgspec.Meta(le=MAX_QUANTITY)] | None = None
    """The new quantity, 0 to 1,000,000 (0 removes the item)."""
    remove: bool = False


class AmendmentRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An amendment of a subscription's items. Bounds: at most 20 changes (`MAX_CHANGES`,
    Stripe's item limit per subscription), each bounded as `ItemChangeRequest` says; a
    request past a bound is refused (422 naming the field) before any platform is asked."""

    subscription_id: Id
    changes: Annotated[list[ItemChangeRequest], msgspec.Meta(max_length=MAX_CHANGES)]
    effective_date: date
    """The day (UTC) the change takes effect; at most one day in the past. A future date is
    applied when it comes."""
    prorate: bool = True
    """Bill (or credit) the rest of the current period now; off: the change shows from the
    next period on."""


class AmendmentAccepted(msgspec.Struct, frozen=True, kw_only=True):
    flow_id: str
    created: bool
    """False when this very amendment was requested before (the same flow)."""
    changes: list[ItemChange]
    """The changes as resolved to prices."""


@dataclass
class AmendmentService:
    """Checks amendments and starts their flows."""

    flows: SubscriptionAmendments
    engine: FlowEngine
    billing: BillingPort
    reader: FlowReader

    async def amend(
        self, request: AmendmentRequest, *, principal: Principal | None = None
    ) -> tuple[FlowHandle, Amendment]:
        """Start (or find) the amendment; ValidationFailed lists every problem. A
        subscription of a legal entity `principal` may not see is refused as a missing one."""
        subscription = seen(
            principal,
            await _or_none(self.billing.get_subscription(request.subscription_id)),
            lambda found: found.legal_entity,
        )
        problems = _subscription_problems(request.subscription_id, subscription)
        changes = await self._resolve(request.changes, subscription, problems)
        late = request.effective_date < utcnow().date() - PAST_TOLERANCE
        amendment = Amendment(
            subscription_id=request.subscription_id,
            changes=changes,
            effective_date=request.effective_date,
            prorate=request.prorate,
        )
        # A late replay of an amendment already made is that amendment, not an error.
        if late and (problems or await self.reader.get(amendment_id(amendment)) is None):
            problems.append(_field("/effective_date", "is more than a day in the past"))
        if problems or subscription is None:
            raise ValidationFailed("The amendment cannot be made", errors=problems)
        handle = await self.engine.start(
            FLOW_TYPE,
            amendment_id(amendment),
            self.flows.amend,
            amendment,
            correlation_id=current_context().correlation_id,
            legal_entity=subscription.legal_entity,
            # The amendment joins the trace of the deal that sold the subscription.
            trace_keys=_trace_keys(subscription),
            record_correlation_id=subscription.correlation_id,
            source="api",
            actor=actor_of(principal),
        )
        return handle, amendment

    async def _resolve(
        self,
        requested: Sequence[ItemChangeRequest],
        subscription: Subscription | None,
        problems: list[FieldError],
    ) -> list[ItemChange]:
        if not requested:
            problems.append(_field("/changes", "lists no change"))
            return []
        prices = await asyncio.gather(
            *(self._price(change, subscription) for change in requested)
        )
        changes: list[ItemChange] = []
        for index, (change, price) in enumerate(zip(requested, prices, strict=True)):
            resolved = _change(index, change, price, subscription, problems)
            if resolved is None:
                continue
            if any(c.price_id == resolved.price_id for c in changes):
                problems.append(_field(f"/changes/{index}", "changes a price already changed"))
            changes.append(resolved)
        if subscription is not None and changes and not new_items(subscription, changes):
            problems.append(
                _field("/changes", "would remove every item; cancel the subscription instead")
            )
        return changes

    async def _price(
        self, change: ItemChangeRequest, subscription: Subscription | None
    ) -> Price | None:
        if change.price_id:
            return await _or_none(self.billing.get_price(change.price_id))
        if change.product_code and subscription is not None:
            # A product already on the subscription keeps its (sold, maybe discounted) price;
            # only a product new to it takes the catalog price.
            sold = next(
                (i for i in subscription.items if i.product_code == change.product_code), None
            )
            if sold is not None:
                price = await _or_none(self.billing.get_price(sold.price_id))
                if price is not None:
                    return msgspec.structs.replace(price, product_code=change.product_code)
            return await self.billing.find_price(
                product_code=change.product_code, currency=subscription.currency
            )
        return None


@dataclass(eq=False)  # a plugin: Litestar keeps plugins in sets
class AmendmentWiring(InitPlugin):
    """What the app factory mounts: the service and its routers."""

    service: AmendmentService
    routers: list[Router]

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Contribute the subscription-amendment route (their dependencies are on the routers)."""
        app_config.route_handlers.extend(self.routers)
        return app_config


@post(
    "/subscription-amendments",
    opt=_WRITE,
    status_code=202,
    summary="Amend a subscription's items (prorated or not)",
)
async def amend_subscription(
    request: AuthedRequest,
    amendment_service: NamedDependency[AmendmentService],
    data: Annotated[AmendmentRequest, _STRICT_BODY],
) -> Response[AmendmentAccepted]:
    handle, amendment = await amendment_service.amend(data, principal=request.user)
    body = AmendmentAccepted(
        flow_id=handle.flow_id, created=handle.created, changes=amendment.changes
    )
    return Response(body, status_code=202, headers={"Location": flow_location(handle.flow_id)})


def create_router(service: AmendmentService) -> Router:
    return Router(
        path=PREFIX,
        route_handlers=[amend_subscription],
        dependencies={
            "amendment_service": Provide(lambda: service, use_cache=True, sync_to_thread=False)
        },
        tags=["process"],
    )


def mount(
    *,
    engine: FlowEngine,
    reader: FlowReader,
    crm: CrmPort,
    billing: BillingPort,
    erp: ErpPort,
) -> AmendmentWiring:
    """Build the flows (call before the engine launches), the service and its router."""
    flows = engine.register(SubscriptionAmendments, crm=crm, billing=billing, erp=erp)
    service = AmendmentService(flows=flows, engine=engine, billing=billing, reader=reader)
    return AmendmentWiring(service=service, routers=[create_router(service)])


def _subscription_problems(
    subscription_id: str, subscription: Subscription | None
) -> list[FieldError]:
    if subscription is None:
        return [_field("/subscription_id", f"no subscription {subscription_id}")]
    if subscription.status in _ENDED:
        return [_field("/subscription_id", f"is {subscription.status}")]
    return []


def _change(
    index: int,
    change: ItemChangeRequest,
    price: Price | None,
    subscription: Subscription | None,
    problems: list[FieldError],
) -> ItemChange | None:
    """The change resolved to a price, or None after recording its problems."""
    base = f"/changes/{index}"
    found = len(problems)
    if bool(change.price_id) == bool(change.product_code):
        problems.append(_field(base, "give either price_id or product_code"))
    elif price is None:
        field = "price_id" if change.price_id else "product_code"
        wanted = change.price_id or f"a price of {change.product_code}"
        where = f" in {subscription.currency}" if subscription else ""
        problems.append(_field(f"{base}/{field}", f"no {wanted}{where}"))
    elif subscription is not None and price.currency != subscription.currency:
        problems.append(
            _field(f"{base}/price_id", f"is in {price.currency}, not {subscription.currency}")
        )
    elif price.recurring_interval is None:
        problems.append(_field(f"{base}/price_id", "is not a recurring price"))
    quantity = 0 if change.remove else change.quantity
    if quantity is None:
        problems.append(_field(f"{base}/quantity", "is required unless remove is true"))
    elif quantity < 0:
        problems.append(_field(f"{base}/quantity", "must not be negative"))
    on_subscription = subscription is not None and any(
        price is not None and item.price_id == price.id for item in subscription.items
    )
    if change.remove and price is not None and subscription is not None and not on_subscription:
        problems.append(_field(base, "removes a price the subscription does not have"))
    if len(problems) > found or price is None or quantity is None:
        return None
    return ItemChange(price_id=price.id, product_code=price.product_code, quantity=quantity)


async def _or_none(call: Awaitable[T]) -> T | None:
    try:
        return await call
    except UpstreamNotFound:
        return None


def _field(pointer: str, detail: str) -> FieldError:
    return FieldError(pointer=pointer, detail=detail)


def _trace_keys(subscription: Subscription) -> dict[str, str]:
    keys = {"subscription": subscription.id}
    if subscription.deal_id:
        keys["deal"] = subscription.deal_id
    return keys
