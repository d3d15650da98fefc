"""The quote-to-cash route, and the wiring of quote-to-cash and the customer master (`build`).

    POST /process/v1/quote-to-cash {"opportunity_id": ...}   book a won deal

It needs scope `process:write` and an `Idempotency-Key`, checks the deal before a flow starts
(422 listing every field problem) and answers 202 with the flow resource and its `Location`;
asking again for the same deal (under any key) answers the same flow. The route takes one
dependency by name, `quote_to_cash` (a `QuoteToCashService`); the customer-master route
(`process_apis.customer_master.routes`) is mounted with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Final, Protocol

import msgspec
import structlog
from litestar import Litestar, Request, Response, Router, post
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.params import Body
from litestar.plugins import InitPlugin
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.audit import FlowSource, actor_of, system_actor
from contracts.context import current_context
from contracts.errors import RequestRejected
from contracts.principal import Principal
from contracts.v1 import Deal
from process_apis.cross_references import CrossReferences
from process_apis.customer_master import routes as customer_master_routes
from process_apis.customer_master.flow import CustomerMaster
from process_apis.customer_master.routes import CustomerMasterService
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.records import FlowReader
from process_apis.engine.routes import flow_location
from process_apis.flows import Flow
from process_apis.quote_to_cash.flow import FLOW_TYPE, QuoteToCash, flow_id_for
from process_apis.quote_to_cash.orders import OrderDesk
from process_apis.quote_to_cash.won_deals import WonDealPoller
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmContractsPort, CrmPort
from system_apis.erp.port import ErpPort
from system_apis.support.port import SupportPort
from system_apis.tax.port import TaxPort

__all__ = [
    "QuoteToCashRequest",
    "QuoteToCashService",
    "build",
    "create_router",
]

PREFIX: Final = "/process/v1"
_WRITE: dict[str, Any] = {
    "scopes": ["process:write"],
    "idempotency": "required",
    "rate_limit_group": "process",
}
_STRICT_BODY = Body(schema_extra={"additionalProperties": False})
AuthedRequest = Request[Principal, Any, Any]
# The sandbox's demo company's won platform deal as the example, so the docs page and
# contract tests can book a real deal against the emulators.
DEMO_OPPORTUNITY_ID: Final = "006akIXeyrlubMYADY"

log = structlog.get_logger("process_apis.quote_to_cash.flow")


class QuoteToCashRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    opportunity_id: Annotated[
        str, msgspec.Meta(min_length=1, max_length=64, examples=[DEMO_OPPORTUNITY_ID])
    ]
    """The CRM opportunity (won) to book."""


class RenewalDesk(Protocol):
    """The renewal flows as quote-to-cash hands them a closed renewal (from a caller, the
    CRM's callout or the won-deal poller)."""

    async def book(
        self, opportunity_id: str, *, principal: Principal | None, source: FlowSource
    ) -> Flow: ...

    async def book_won(self, deal: Deal) -> None: ...


@dataclass(eq=False)  # a plugin: Litestar keeps plugins in sets
class QuoteToCashService(InitPlugin):
    """Quote-to-cash and the customer master as the app runs them: the flows, the order
    checks, and the won-deal poller (a background task from `start` to `stop`)."""

    engine: FlowEngine
    reader: FlowReader
    desk: OrderDesk
    customer_master: CustomerMasterService
    flows: QuoteToCash
    poller: WonDealPoller | None = None
    renewals: RenewalDesk | None = None
    """Where a closed renewal goes (the renewal flows book it, not quote-to-cash)."""
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def routers(self) -> list[Router]:
        return [create_router(), customer_master_routes.create_router()]

    @property
    def dependencies(self) -> dict[str, Provide]:
        def dependency() -> QuoteToCashService:
            return self

        return {
            "quote_to_cash": Provide(dependency, use_cache=True, sync_to_thread=False),
            **self.customer_master.dependencies,
        }

    async def start(self) -> None:
        """Start the poller (after the flow engine launched)."""
        if self.poller is not None and self._task is None:
            self._task = asyncio.create_task(self.poller.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def book(
        self, opportunity_id: str, *, principal: Principal, source: FlowSource = "api"
    ) -> Flow:
        """The quote-to-cash flow of a deal: the one that exists, or a new one once the deal
        passes its checks. Either way the request is audited, from `source` (the API or a
        Salesforce callout)."""
        flow_id = flow_id_for(opportunity_id)
        existing = await self.reader.get(flow_id, principal=principal)
        if existing is not None and (
            existing.status != "pending" or await self.engine.has_workflow(flow_id)
        ):
            await self.engine.record_start(
                FLOW_TYPE, flow_id, created=False, source=source, actor=actor_of(principal),
                legal_entity=existing.legal_entity,
                correlation_id=current_context().correlation_id,
            )
            return existing
        # New, or a pending record with no workflow to run it: (re)start it under its key.
        deal = await self.desk.deal(opportunity_id)
        if deal.renewal_of is not None and self.renewals is not None:
            # A renewal closes through the same door as a new deal, and books as a renewal.
            return await self.renewals.book(opportunity_id, principal=principal, source=source)
        order = await self.desk.order_of(deal, principal=principal)
        await self.engine.start(
            FLOW_TYPE,
            flow_id,
            self.flows.run,
            order,
            correlation_id=current_context().correlation_id,
            crm_account=order.account.id,
            legal_entity=order.legal_entity,
            trace_keys={"deal": opportunity_id},
            source=source,
            actor=actor_of(principal),
        )
        return await self._flow(flow_id)

    async def book_won(self, deal: Deal) -> None:
        """Book a deal the poller found, unless it is booked or cannot be (logged); a won
        renewal goes to the renewal flow."""
        if deal.integration_status == "synced" or deal.erp_order_number:
            return
        if deal.renewal_of is not None:
            if self.renewals is not None:
                await self.renewals.book_won(deal)
            return
        flow_id = flow_id_for(deal.id)
        if await self.reader.get(flow_id) is not None:
            return
        try:
            order = await self.desk.order_of(deal, principal=None)
        except RequestRejected as exc:
            # The deal cannot be booked as it is (a platform that cannot answer now is not
            # caught: the poll fails and the deal is read again next time).
            log.warning("won_deal_not_booked", opportunity_id=deal.id, error=exc.message,
                        problems=[e.detail for e in getattr(exc, "errors", ())])
            return
        await self.engine.start(
            FLOW_TYPE, flow_id, self.flows.run, order,
            crm_account=order.account.id, legal_entity=order.legal_entity,
            trace_keys={"deal": deal.id},
            source="poller", actor=system_actor("crm-poller"),
        )

    async def _flow(self, flow_id: str) -> Flow:
        flow = await self.reader.get(flow_id)
        assert flow is not None, "a started flow has a record"
        return flow

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Contribute the quote-to-cash and customer-master routes and dependencies; run the
        won-deal poller with the app."""
        app_config.route_handlers.extend(self.routers)
        app_config.dependencies.update(self.dependencies)
        app_config.lifespan.append(self._lifespan)
        return app_config

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Litestar) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()


@post(
    "/quote-to-cash",
    opt=_WRITE,
    status_code=202,
    summary="Book a won deal: customer, catalog, subscription, sales order, write-back",
)
async def start_quote_to_cash(
    request: AuthedRequest,
    quote_to_cash: NamedDependency[QuoteToCashService],
    data: Annotated[QuoteToCashRequest, _STRICT_BODY],
) -> Response[Flow]:
    flow = await quote_to_cash.book(data.opportunity_id, principal=request.user)
    return Response(flow, status_code=202, headers={"Location": flow_location(flow.id)})


def create_router() -> Router:
    """The quote-to-cash route (dependency: `quote_to_cash`)."""
    return Router(path=PREFIX, route_handlers=[start_quote_to_cash], tags=["process"])


def build(
    *,
    crm: CrmPort,
    billing: BillingPort,
    support: SupportPort,
    erp: ErpPort,
    database: AsyncEngine,
    flow_engine: FlowEngine,
    flow_reader: FlowReader,
    poll_seconds: float = 0.0,
    poll_since: datetime | None = None,
    tax: TaxPort | None = None,
) -> QuoteToCashService:
    """Quote-to-cash and the customer master for the app factory; call it before the flow
    engine launches (the flows are registered with it).

    Args:
        poll_seconds: seconds between looks for won deals in the CRM; 0 (the default) turns
            the won-deal poller off.
        poll_since: where a gateway that never polled starts; None: when polling starts.
        tax: the customers' tax treatments; None bills and books no tax.
    """
    references = CrossReferences(database)
    customers = flow_engine.register(
        CustomerMaster, billing=billing, erp=erp, support=support, references=references
    )
    flows = flow_engine.register(
        QuoteToCash, customers=customers, crm=crm, billing=billing, erp=erp,
        references=references,
        contracts=crm if isinstance(crm, CrmContractsPort) else None,
    )
    desk = OrderDesk(crm=crm, erp=erp, tax=tax)
    service = QuoteToCashService(
        engine=flow_engine,
        reader=flow_reader,
        desk=desk,
        customer_master=CustomerMasterService(
            engine=flow_engine, reader=flow_reader, desk=desk, customers=customers
        ),
        flows=flows,
    )
    if poll_seconds > 0:
        service.poller = WonDealPoller(
            crm=crm,
            book=service.book_won,
            watermarks=references,
            interval_seconds=poll_seconds,
            since=poll_since,
        )
    return service
