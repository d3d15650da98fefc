"""`/process/v1/renewals`: scan for contracts ending soon, and book a closed renewal; the scan's
schedule; the account's renewals as the sales view shows them.

    POST /process/v1/renewals/scan                    {"as_of"?, "lead_days"?} -> 202
    POST /process/v1/renewals/{opportunity_id}/book   a won or lost renewal -> 202 + flow

A scan also books the renewals it finds closed since (won or lost): a lost renewal is announced
by no won-deal poll or callout. Both need scope `process:write` and an `Idempotency-Key`. A
caller limited to legal entities scans only their contracts and books only their renewals
(another entity's renewal is 404).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final

import msgspec
import structlog
from litestar import Litestar, Request, Response, Router, post
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.params import Body, PathParameter
from litestar.plugins import InitPlugin
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.audit import AuditActor, FlowSource, actor_of, system_actor
from contracts.errors import FieldError, NotFound, UpstreamNotFound, ValidationFailed
from contracts.principal import Principal
from contracts.v1 import Deal, RenewalRisk
from process_apis.cross_references import CrossReferences
from process_apis.engine.background import running_in_background
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.records import FlowReader
from process_apis.engine.routes import flow_location
from process_apis.flows import Flow
from process_apis.quote_to_cash.flow import QuoteToCash
from process_apis.quote_to_cash.orders import OrderDesk
from process_apis.renewals.desk import RenewalDesk
from process_apis.renewals.flow import (
    LOST_TYPE,
    SCAN_TYPE,
    WON_TYPE,
    LostRenewal,
    RenewalFlows,
    RenewalOpened,
    ScanRequest,
    ScanResult,
    WonRenewal,
    lost_flow_id,
    won_flow_id,
)
from process_apis.renewals.risk import (
    FiredRule,
    RiskRules,
    Signals,
    UsageHistory,
    summary,
)
from system_apis.billing.port import BillingPort, SubscriptionRenewals
from system_apis.crm.port import CrmContractsPort, CrmPort
from system_apis.support.port import SupportPort
from system_apis.visibility import may_see

__all__ = [
    "AccountRenewal",
    "RenewalService",
    "RenewalsWiring",
    "ScanAccepted",
    "ScanBody",
    "mount",
]

PREFIX: Final = "/process/v1"
MAX_LEAD_DAYS: Final = 730
SCAN_WAIT_SECONDS: Final = 30.0
"""How long the scan route waits for its flow before answering with the flow still running."""
_WRITE: dict[str, Any] = {
    "scopes": ["process:write"],
    "idempotency": "required",
    "rate_limit_group": "process",
}
_STRICT_BODY = Body(schema_extra={"additionalProperties": False})
AuthedRequest = Request[Principal, Any, Any]
OpportunityId = Annotated[
    str,
    # Not a pattern: an id that names no opportunity is one that does not exist (404), as
    # on every other route; it is never put in a query.
    PathParameter(max_length=128, description="The renewal opportunity (Salesforce id, 006...)"),
]

log = structlog.get_logger("process_apis.renewals")


class ScanBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    as_of: date | None = None
    """The day the scan looks from; absent: today (UTC)."""
    lead_days: Annotated[int, msgspec.Meta(ge=1, le=MAX_LEAD_DAYS)] | None = None
    """How far ahead contract ends are looked for; absent: the gateway's setting."""


class ScanAccepted(msgspec.Struct, frozen=True, kw_only=True):
    scan_id: str
    status: str
    """The scan flow's status: `succeeded` with its renewals, or still `running`."""
    renewals: list[RenewalOpened]


class AccountRenewal(msgspec.Struct, frozen=True, kw_only=True):
    """One renewal of an account: the opportunity, the contract it renews, and its risk."""

    opportunity_id: str
    name: str
    stage: str
    close_date: date | None
    currency: str
    amount: int | None
    renews_deal_id: str | None
    contract_id: str | None
    contract_end: date | None
    risk: RenewalRisk
    """The risk from the signals as they are now."""
    rules: list[FiredRule]
    """The rules that fired: why the risk is what it is."""
    signals: Signals | None
    """None when the renewed subscription can no longer be read (ended)."""
    context: str
    crm_risk: RenewalRisk | None
    """What the last scan wrote to the opportunity."""
    crm_context: str | None


@dataclass
class RenewalService:
    """Starts scans and bookings (one service for the routes, the schedule and the poller)."""

    flows: RenewalFlows
    desk: RenewalDesk
    orders: OrderDesk
    engine: FlowEngine
    reader: FlowReader
    lead_days: int

    async def scan(
        self,
        body: ScanBody,
        *,
        principal: Principal | None,
        scan_id: str | None = None,
        source: FlowSource = "api",
    ) -> ScanAccepted:
        request = ScanRequest(
            scan_id=scan_id or f"renewal-scan:{uuid.uuid4().hex}",
            as_of=body.as_of or datetime.now(UTC).date(),
            lead_days=body.lead_days or self.lead_days,
            entities=sorted(principal.entities)
            if principal is not None and principal.entities is not None
            else None,
        )
        handle = await self.engine.start(
            SCAN_TYPE,
            request.scan_id,
            self.flows.scan,
            request,
            legal_entity=request.entities[0]
            if request.entities and len(request.entities) == 1
            else None,
            source=source,
            actor=_actor(principal, source),
        )
        try:
            result: ScanResult | None = await asyncio.wait_for(
                handle.result(), timeout=SCAN_WAIT_SECONDS
            )
        except TimeoutError:
            return ScanAccepted(scan_id=request.scan_id, status="running", renewals=[])
        if result is not None:
            await self._book_closed(result.renewals, principal, source)
        return ScanAccepted(
            scan_id=request.scan_id,
            status="succeeded" if result is not None else "cancelled",
            renewals=result.renewals if result is not None else [],
        )

    async def book(
        self, opportunity_id: str, *, principal: Principal | None, source: FlowSource = "api"
    ) -> Flow:
        """The flow of a closed renewal: won continues the subscription, lost ends it.

        Raises:
            NotFound: no such opportunity, or one the caller may not see.
            ValidationFailed: it is not a renewal, is still open, or cannot be booked.
        """
        deal = await self._deal(opportunity_id, principal)
        contract = await self.desk.renewed_contract(deal)
        renewed = await self._renewed_deal(deal)
        problems = _renewal_problems(deal, contract is not None, renewed)
        if problems:
            raise ValidationFailed(f"Renewal {opportunity_id} cannot be booked", errors=problems)
        assert contract is not None and renewed is not None and renewed.billing_subscription_id
        if deal.won:
            order = await self.orders.order_of(deal, principal=principal, renewal=True)
            flow_id = won_flow_id(deal.id)
            await self.engine.start(
                WON_TYPE,
                flow_id,
                self.flows.won,
                WonRenewal(
                    order=order,
                    contract=contract,
                    subscription_id=renewed.billing_subscription_id,
                ),
                crm_account=deal.customer_id,
                legal_entity=order.legal_entity,
                source=source,
                actor=_actor(principal, source),
            )
        else:
            flow_id = lost_flow_id(deal.id)
            await self.engine.start(
                LOST_TYPE,
                flow_id,
                self.flows.lost,
                LostRenewal(
                    opportunity_id=deal.id,
                    account_id=deal.customer_id,
                    contract=contract,
                    subscription_id=renewed.billing_subscription_id,
                ),
                crm_account=deal.customer_id,
                legal_entity=deal.legal_entity,
                source=source,
                actor=_actor(principal, source),
            )
        flow = await self.reader.get(flow_id)
        assert flow is not None, "a started flow has a record"
        return flow

    async def _book_closed(
        self, renewals: list[RenewalOpened], principal: Principal | None, source: FlowSource
    ) -> None:
        """Book the renewals a person has closed since (won or lost): the scan is also how a
        lost renewal, which no won-deal poll or callout announces, reaches its flow."""
        for opened in renewals:
            deal = await self.desk.crm.get_deal(opened.opportunity_id)
            if not deal.closed or deal.integration_status == "synced":
                continue
            try:
                await self.book(deal.id, principal=principal, source=source)
            except (ValidationFailed, NotFound) as exc:
                log.warning("renewal_not_booked", opportunity_id=deal.id, error=exc.message)

    async def book_won(self, deal: Deal) -> None:
        """A won renewal the won-deal poller (or the CRM's callout) handed over."""
        if deal.integration_status == "synced" or await self.reader.get(won_flow_id(deal.id)):
            return
        try:
            await self.book(deal.id, principal=None, source="poller")
        except (ValidationFailed, NotFound) as exc:
            log.warning("renewal_not_booked", opportunity_id=deal.id, error=exc.message)

    async def account_renewals(
        self, account_id: str, *, principal: Principal, as_of: date | None = None
    ) -> list[AccountRenewal]:
        """The account's renewal opportunities with their live risk and its reasons."""
        account = await self.desk.account(account_id)
        if account is None or not may_see(principal, account.legal_entity):
            raise NotFound(f"account {account_id} not found")
        day = as_of or datetime.now(UTC).date()
        renewals = await self.desk.contracts.list_renewals(account.id)
        return list(await asyncio.gather(*(self._view(r, day) for r in renewals)))

    async def _view(self, renewal: Deal, as_of: date) -> AccountRenewal:
        contract = await self.desk.renewed_contract(renewal)
        parts = await self.desk.parts(contract) if contract is not None else None
        assessment = await self.desk.assessment(parts, as_of) if parts is not None else None
        return AccountRenewal(
            opportunity_id=renewal.id,
            name=renewal.name,
            stage=renewal.stage,
            close_date=renewal.close_date,
            currency=renewal.currency,
            amount=renewal.amount,
            renews_deal_id=renewal.renewal_of,
            contract_id=contract.id if contract is not None else None,
            contract_end=contract.end_date if contract is not None else None,
            risk=assessment.risk if assessment is not None else "low",
            rules=assessment.rules if assessment is not None else [],
            signals=assessment.signals if assessment is not None else None,
            context=summary(assessment)
            if assessment is not None
            else "The renewed subscription has ended: no signals to read.",
            crm_risk=renewal.renewal_risk,
            crm_context=renewal.renewal_context,
        )

    async def _deal(self, opportunity_id: str, principal: Principal | None) -> Deal:
        try:
            deal = await self.desk.crm.get_deal(opportunity_id)
        except UpstreamNotFound as exc:
            raise NotFound(f"No opportunity {opportunity_id}") from exc
        if not may_see(principal, deal.legal_entity):
            raise NotFound(f"No opportunity {opportunity_id}")
        return deal

    async def _renewed_deal(self, renewal: Deal) -> Deal | None:
        if renewal.renewal_of is None:
            return None
        try:
            return await self.desk.crm.get_deal(renewal.renewal_of)
        except UpstreamNotFound:
            return None


def _actor(principal: Principal | None, source: FlowSource) -> AuditActor:
    """Who asks for a renewal flow: the caller, else the part of the gateway that asked."""
    if principal is not None:
        return actor_of(principal)
    return system_actor({"schedule": "schedule", "poller": "crm-poller"}.get(source, "gateway"))


def _renewal_problems(deal: Deal, has_contract: bool, renewed: Deal | None) -> list[FieldError]:
    if deal.renewal_of is None:
        return [FieldError(pointer="/renewal_of", detail="the opportunity is not a renewal")]
    problems = []
    if not deal.closed:
        problems.append(
            FieldError(pointer="/stage", detail=f"the renewal is still open ({deal.stage})")
        )
    if not has_contract:
        problems.append(
            FieldError(pointer="/renewal_of", detail="the renewed deal has no contract")
        )
    if renewed is None or not renewed.billing_subscription_id:
        problems.append(
            FieldError(pointer="/renewal_of", detail="the renewed deal has no subscription")
        )
    return problems


@post(
    "/renewals/scan",
    opt=_WRITE,
    status_code=202,
    summary="Open a renewal opportunity, with its context and risk, for each contract ending soon",
)
async def scan_renewals(
    request: AuthedRequest,
    renewal_service: NamedDependency[RenewalService],
    data: Annotated[ScanBody, _STRICT_BODY],
) -> Response[ScanAccepted]:
    accepted = await renewal_service.scan(data, principal=request.user)
    return Response(
        accepted, status_code=202, headers={"Location": flow_location(accepted.scan_id)}
    )


@post(
    "/renewals/{opportunity_id:str}/book",
    opt=_WRITE,
    status_code=202,
    summary="Book a closed renewal: won continues the subscription, lost ends it",
)
async def book_renewal(
    request: AuthedRequest,
    renewal_service: NamedDependency[RenewalService],
    opportunity_id: OpportunityId,
) -> Response[Flow]:
    flow = await renewal_service.book(opportunity_id, principal=request.user)
    return Response(flow, status_code=202, headers={"Location": flow_location(flow.id)})


@dataclass(eq=False)  # a plugin: Litestar keeps plugins in sets
class RenewalsWiring(InitPlugin):
    """What the app factory mounts: the routes, the `renewal_service` dependency, and the
    scan's schedule in the app's lifespan."""

    service: RenewalService
    interval_seconds: float

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(
            Router(path=PREFIX, route_handlers=[scan_renewals, book_renewal], tags=["process"])
        )
        app_config.dependencies["renewal_service"] = Provide(
            lambda: self.service, use_cache=True, sync_to_thread=False
        )
        app_config.lifespan.append(self._lifespan)
        return app_config

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Litestar) -> AsyncIterator[None]:
        loops = [self._schedule()] if self.interval_seconds > 0 else []
        async with running_in_background(*loops):
            yield

    async def _schedule(self) -> None:
        """At each interval's start, that interval's scan: every replica asks, one runs (its
        id is the interval's start), and a second would find every renewal made anyway."""
        interval = self.interval_seconds
        while True:
            now = datetime.now(UTC).timestamp()
            start = now - now % interval + interval
            await asyncio.sleep(start - now)
            moment = datetime.fromtimestamp(start, UTC)
            try:
                await self.service.scan(
                    ScanBody(as_of=moment.date()),
                    principal=None,
                    scan_id="renewal-scan:" + moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    source="schedule",
                )
            except Exception as exc:  # the next interval tries again; say why this one failed
                log.warning("scheduled_renewal_scan_failed", error=str(exc))


def mount(
    *,
    engine: FlowEngine,
    reader: FlowReader,
    database: AsyncEngine,
    crm: CrmPort,
    contracts: CrmContractsPort,
    billing: BillingPort,
    renewals: SubscriptionRenewals,
    support: SupportPort | None,
    quote_to_cash: QuoteToCash,
    orders: OrderDesk,
    lead_days: int,
    interval_seconds: float,
    usage: UsageHistory | None = None,
    rules: RiskRules | None = None,
) -> RenewalsWiring:
    """Build the renewal flows (call before the engine launches), the service and its routes.

    Args:
        usage: where usage history is read; None reports the usage trend as unknown.
        rules: the risk rules' thresholds; None: `RiskRules()`'s.
    """
    desk = RenewalDesk(
        crm=crm,
        contracts=contracts,
        billing=billing,
        support=support,
        references=CrossReferences(database),
        usage=usage,
        rules=rules,
    )
    flows = engine.register(
        RenewalFlows,
        desk=desk,
        contracts=contracts,
        renewals=renewals,
        quote_to_cash=quote_to_cash,
    )
    service = RenewalService(
        flows=flows, desk=desk, orders=orders, engine=engine, reader=reader, lead_days=lead_days
    )
    return RenewalsWiring(service=service, interval_seconds=interval_seconds)
