"""Escalation to service credit as callers reach it: `POST /process/v1/escalations` starts the
flow (after checking the organization and its sev-1 case), `GET /process/v1/service-credits/{id}`
shows the computed credit, and finance approves or rejects it with
`POST /process/v1/service-credits/{id}/approve|reject`. Zendesk ticket events reach the flow
through `EscalationService.handle_zendesk_ticket_event` (the webhook intake's handler).

The routes need the process layer's `flow_reader` dependency and bring their own
`escalation_service` (see `mount`). A service credit's id is its flow's id,
`escalation:{organization_id}:{YYYY-MM}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import msgspec
import structlog
from litestar import Request, Response, Router, get, post
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.params import Body, PathParameter
from litestar.plugins import InitPlugin

from contracts.audit import (
    AuditActor,
    AuditEvent,
    AuditTrail,
    FlowSource,
    actor_of,
    gateway_target,
    system_actor,
)
from contracts.context import current_context
from contracts.errors import (
    Conflict,
    FieldError,
    NotFound,
    UpstreamNotFound,
    ValidationFailed,
)
from contracts.principal import Principal
from contracts.v1 import Customer, Entitlement, SupportCase
from process_apis.engine.flow_engine import FlowEngine, FlowHandle
from process_apis.engine.published import read_published
from process_apis.engine.records import FlowReader
from process_apis.engine.routes import flow_location
from process_apis.escalation.credit import (
    CREDIT_EVENT,
    DECISION_TOPIC,
    DEFAULT_APPROVAL_TIMEOUT_SECONDS,
    FLOW_TYPE,
    BreachReported,
    CreditDecision,
    Escalation,
    EscalationFlows,
    credit_id_for,
)
from process_apis.escalation.service_credit import ServiceCredit, billing_month
from process_apis.flows import Flow
from process_apis.webhooks.intake import FlowStart, WebhookDispatcher, WebhookEvent
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort
from system_apis.support.port import SupportPort
from system_apis.support.zendesk.mapping import MappingError, case_from_ticket_event
from system_apis.visibility import may_see, seen

__all__ = [
    "DecisionRequest",
    "EscalationAccepted",
    "EscalationRequest",
    "EscalationService",
    "EscalationWiring",
    "create_router",
    "mount",
]

PREFIX = "/process/v1"
ZENDESK_TICKET_EVENTS = "zen:event-type:ticket."
_WRITE: dict[str, Any] = {
    "scopes": ["process:write"],
    "idempotency": "required",
    "rate_limit_group": "process",
}
_READ: dict[str, Any] = {"scopes": ["process:read"], "rate_limit_group": "process"}
_DECIDE: dict[str, Any] = {
    "scopes": ["finance:approve"],
    "idempotency": "required",
    "rate_limit_group": "process",
}
_DECIDABLE = frozenset({"pending_approval", "expired"})
_STRICT_BODY = Body(schema_extra={"additionalProperties": False})
AuthedRequest = Request[Principal, Any, Any]
CreditId = Annotated[
    str,
    PathParameter(
        min_length=1, max_length=200, description="`escalation:{organization_id}:{YYYY-MM}`"
    ),
]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]

T = TypeVar("T")

log = structlog.get_logger("process_apis.escalation.routes")


class EscalationRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    organization_id: Id
    """The Zendesk organization."""
    ticket_id: Id
    """Its urgent (sev-1) ticket that triggers the escalation."""


class EscalationAccepted(msgspec.Struct, frozen=True, kw_only=True):
    flow_id: str
    service_credit: str
    """Where the computed credit can be read."""
    created: bool
    """False when this organization's escalation for the month already existed."""


class DecisionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    """Why finance decides so; required (recorded on the credit, the ERP task and memos)."""


@dataclass
class EscalationService:
    """Starts escalations and passes finance's decisions to their flows."""

    flows: EscalationFlows
    engine: FlowEngine
    support: SupportPort
    audit: AuditTrail | None = None
    """Where finance's decisions are recorded."""

    async def escalate(
        self, organization_id: str, ticket_id: str, *, principal: Principal | None = None
    ) -> FlowHandle:
        """Check the organization and its case (422 listing every problem; an organization
        or ticket of a legal entity `principal` may not see is a missing one), then start or
        join the month's escalation."""
        organization, entitlement, case = await self._read(
            organization_id, ticket_id, principal=principal
        )
        problems = _problems(organization_id, organization, entitlement, case)
        if problems or organization is None or case is None:
            raise ValidationFailed("The escalation cannot start", errors=problems)
        return await self._start(organization, case, source="api", actor=actor_of(principal))

    async def handle_zendesk_ticket_event(self, payload: Mapping[str, Any]) -> str | None:
        """Start (or join) the escalation when a Zendesk ticket event payload shows an urgent
        ticket of an organization with credit terms; the flow id, or None when none is due."""
        due = await self._due(payload)
        if due is None:
            return None
        started = await self._start(*due, source="webhook", actor=system_actor("webhook:zendesk"))
        return started.flow_id

    async def on_ticket_event(self, event: WebhookEvent) -> FlowStart | None:
        """The webhook dispatcher's handler: the escalation to start for a ticket event."""
        due = await self._due({"id": event.id, "type": event.type, "detail": event.object})
        if due is None:
            return None
        organization, case = due
        escalation = _escalation(organization, case)
        await self._report_breach(credit_id_for(organization.id, escalation.month), case)
        return FlowStart(
            flow_type=FLOW_TYPE,
            business_key=credit_id_for(organization.id, escalation.month),
            fn=self.flows.escalate,
            args=(escalation,),
            crm_account=organization.refs.get("salesforce"),
            legal_entity=organization.legal_entity,
        )

    def subscribe(self, dispatcher: WebhookDispatcher) -> None:
        """Have the webhook intake ask this service about every Zendesk ticket event."""
        dispatcher.register("zendesk", ZENDESK_TICKET_EVENTS, self.on_ticket_event)

    async def credit(self, flow: Flow) -> ServiceCredit:
        """The flow's credit as last published, with the flow's status."""
        published = await read_published(flow.id, CREDIT_EVENT, ServiceCredit)
        if published is None:
            organization, _, month = flow.id.partition(":")[2].rpartition(":")
            published = ServiceCredit(
                id=flow.id,
                status="computing",
                organization_id=organization,
                month=month,
                legal_entity=flow.legal_entity,
            )
        return msgspec.structs.replace(published, flow_status=flow.status)

    async def decide(
        self, flow: Flow, decision: CreditDecision, *, principal: Principal
    ) -> ServiceCredit:
        """Send finance's decision to the flow waiting for it. An overdue (`expired`) credit
        takes a decision too: the flow reads it once an operator reopens the wait. A credit
        of a legal entity `principal` may not see is a missing one."""
        if not may_see(principal, flow.legal_entity):
            raise NotFound(f"No service credit {flow.id}")
        credit = await self.credit(flow)
        if credit.status not in _DECIDABLE:
            raise Conflict(
                f"Service credit {flow.id} is {credit.status}, not awaiting a decision",
                code="not_pending_approval",
            )
        await self.engine.send(flow.id, DECISION_TOPIC, decision)
        if self.audit is not None:
            await self.audit.record(
                AuditEvent(
                    action="service_credit.approve"
                    if decision.decision == "approved"
                    else "service_credit.reject",
                    actor=actor_of(principal),
                    target=gateway_target(flow.id),
                    legal_entity=flow.legal_entity,
                    before={"status": credit.status},
                    after={"status": decision.decision},
                    detail={"reason": decision.reason, "amount": credit.amount,
                            "currency": credit.currency},
                )
            )
        return credit

    async def _read(
        self, organization_id: str, ticket_id: str, *, principal: Principal | None = None
    ) -> tuple[Customer | None, Entitlement | None, SupportCase | None]:
        """The organization, its entitlement and the ticket, each None when missing or of a
        legal entity `principal` may not see (a ticket's is its organization's)."""
        found, entitlement, case = await asyncio.gather(
            _or_none(self.support.get_organization(organization_id)),
            _or_none(self.support.get_entitlement(organization_id)),
            _or_none(self.support.get_case(ticket_id)),
        )
        organization = seen(principal, found, _entity_of)
        if organization is None:
            entitlement = None
        if case is not None and principal is not None and principal.entities is not None:
            owner = found if case.organization_id == organization_id else None
            if owner is None and case.organization_id is not None:
                owner = await _or_none(self.support.get_organization(case.organization_id))
            if seen(principal, owner, _entity_of) is None:
                case = None
        return organization, entitlement, case

    async def _due(self, payload: Mapping[str, Any]) -> tuple[Customer, SupportCase] | None:
        """The organization and ticket of a ticket event when an escalation is due: the
        ticket is urgent now and its organization has credit terms."""
        try:
            reported = case_from_ticket_event(payload)
        except MappingError as exc:
            log.info("zendesk_event_ignored", reason=str(exc))
            return None
        if reported.priority != "urgent" or reported.organization_id is None:
            return None
        organization, entitlement, case = await self._read(
            reported.organization_id, reported.id
        )
        if _problems(reported.organization_id, organization, entitlement, case):
            return None
        if organization is None or case is None:
            return None
        return organization, case

    async def _report_breach(self, flow_id: str, case: SupportCase) -> None:
        """A month's escalation already under way looks at its breaches again."""
        if await self.engine.has_workflow(flow_id):
            await self.engine.send(flow_id, DECISION_TOPIC, BreachReported(ticket_id=case.id))

    async def _start(
        self, organization: Customer, case: SupportCase, *, source: FlowSource, actor: AuditActor
    ) -> FlowHandle:
        escalation = _escalation(organization, case)
        handle = await self.engine.start(
            FLOW_TYPE,
            credit_id_for(organization.id, escalation.month),
            self.flows.escalate,
            escalation,
            correlation_id=current_context().correlation_id,
            crm_account=organization.refs.get("salesforce"),
            legal_entity=organization.legal_entity,
            source=source,
            actor=actor,
        )
        if not handle.created:
            # The month's escalation stays open to its later breaches: this case may be one.
            await self.engine.send(
                handle.flow_id, DECISION_TOPIC, BreachReported(ticket_id=case.id)
            )
        return handle


@dataclass(eq=False)  # a plugin: Litestar keeps plugins in sets
class EscalationWiring(InitPlugin):
    """What the app factory mounts: the service and its routers."""

    service: EscalationService
    routers: list[Router]

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Contribute the escalation and service-credit routes (their dependencies are on
        the routers)."""
        app_config.route_handlers.extend(self.routers)
        return app_config


@post("/escalations", opt=_WRITE, status_code=202, summary="Escalate a sev-1 ticket")
async def start_escalation(
    request: AuthedRequest,
    escalation_service: NamedDependency[EscalationService],
    data: Annotated[EscalationRequest, _STRICT_BODY],
) -> Response[EscalationAccepted]:
    handle = await escalation_service.escalate(
        data.organization_id, data.ticket_id, principal=request.user
    )
    body = EscalationAccepted(
        flow_id=handle.flow_id,
        service_credit=f"{PREFIX}/service-credits/{handle.flow_id}",
        created=handle.created,
    )
    return Response(body, status_code=202, headers={"Location": flow_location(handle.flow_id)})


@get("/service-credits/{credit_id:str}", opt=_READ, summary="A computed service credit")
async def get_service_credit(
    request: AuthedRequest,
    escalation_service: NamedDependency[EscalationService],
    flow_reader: NamedDependency[FlowReader],
    credit_id: CreditId,
) -> ServiceCredit:
    flow = await _escalation_flow(flow_reader, credit_id, principal=request.user)
    return await escalation_service.credit(flow)


@post(
    "/service-credits/{credit_id:str}/approve",
    opt=_DECIDE,
    status_code=202,
    summary="Approve a service credit; the flow issues it",
)
async def approve_service_credit(
    request: AuthedRequest,
    escalation_service: NamedDependency[EscalationService],
    flow_reader: NamedDependency[FlowReader],
    credit_id: CreditId,
    data: Annotated[DecisionRequest | None, _STRICT_BODY] = None,
) -> Response[ServiceCredit]:
    return await _decide(request, escalation_service, flow_reader, credit_id, data, "approved")


@post(
    "/service-credits/{credit_id:str}/reject",
    opt=_DECIDE,
    status_code=202,
    summary="Reject a service credit; the flow records the refusal",
)
async def reject_service_credit(
    request: AuthedRequest,
    escalation_service: NamedDependency[EscalationService],
    flow_reader: NamedDependency[FlowReader],
    credit_id: CreditId,
    data: Annotated[DecisionRequest | None, _STRICT_BODY] = None,
) -> Response[ServiceCredit]:
    return await _decide(request, escalation_service, flow_reader, credit_id, data, "rejected")


def create_router(service: EscalationService) -> Router:
    """The escalation routes under `/process/v1`, with their `escalation_service`."""
    return Router(
        path=PREFIX,
        route_handlers=[
            start_escalation,
            get_service_credit,
            approve_service_credit,
            reject_service_credit,
        ],
        dependencies={
            "escalation_service": Provide(
                lambda: service, use_cache=True, sync_to_thread=False
            )
        },
        tags=["process"],
    )


def mount(
    *,
    engine: FlowEngine,
    crm: CrmPort,
    billing: BillingPort,
    support: SupportPort,
    erp: ErpPort,
    approval_timeout_seconds: float = DEFAULT_APPROVAL_TIMEOUT_SECONDS,
    audit: AuditTrail | None = None,
) -> EscalationWiring:
    """Register the flows (call before the engine launches), the service and its router.
    Zendesk ticket events reach it once `service.subscribe(intake.dispatcher)` is called.

    Args:
        approval_timeout_seconds: how long a service credit waits for finance's decision
            before it goes to the exception queue (default 7 days).
    """
    flows = engine.register(
        EscalationFlows,
        crm=crm,
        billing=billing,
        support=support,
        erp=erp,
        approval_timeout_seconds=approval_timeout_seconds,
    )
    service = EscalationService(flows=flows, engine=engine, support=support, audit=audit)
    return EscalationWiring(service=service, routers=[create_router(service)])


async def _decide(
    request: AuthedRequest,
    service: EscalationService,
    reader: FlowReader,
    credit_id: str,
    data: DecisionRequest | None,
    decision: str,
) -> Response[ServiceCredit]:
    reason = (data.reason or "").strip() if data is not None else ""
    if not reason:
        raise ValidationFailed(
            "A reason is required", errors=[FieldError(pointer="/reason", detail="is required")]
        )
    flow = await _escalation_flow(reader, credit_id, principal=request.user)
    message = CreditDecision(
        decision="approved" if decision == "approved" else "rejected",
        reason=reason,
        actor=request.user.actor_name,
    )
    credit = await service.decide(flow, message, principal=request.user)
    return Response(credit, status_code=202, headers={"Location": flow_location(flow.id)})


async def _escalation_flow(
    reader: FlowReader, credit_id: str, *, principal: Principal | None
) -> Flow:
    flow = await reader.get(credit_id, principal=principal)
    if flow is None or flow.type != FLOW_TYPE:
        raise NotFound(f"No service credit {credit_id}")
    return flow


def _entity_of(organization: Customer) -> str | None:
    return organization.legal_entity


async def _or_none(call: Awaitable[T]) -> T | None:
    """The call's result, or None when the platform has no such record."""
    try:
        return await call
    except UpstreamNotFound:
        return None


def _problems(
    organization_id: str,
    organization: Customer | None,
    entitlement: Entitlement | None,
    case: SupportCase | None,
) -> list[FieldError]:
    problems: list[FieldError] = []
    # An organization not linked to a CRM account yet is no request error: the flow stops at
    # its first step, in the exception queue, until the customer master links it.
    if organization is None:
        problems.append(_field("organization_id", f"no Zendesk organization {organization_id}"))
    if organization is not None and (
        entitlement is None or not entitlement.active or entitlement.credit_percent_per_breach <= 0
    ):
        problems.append(_field("organization_id", "has no entitlement with service credit terms"))
    if case is None:
        problems.append(_field("ticket_id", "no such Zendesk ticket"))
    else:
        if case.organization_id != organization_id:
            problems.append(_field("ticket_id", "belongs to another organization"))
        if case.priority != "urgent":
            problems.append(_field("ticket_id", f"is {case.priority}, not urgent (sev-1)"))
    return problems


def _escalation(organization: Customer, case: SupportCase) -> Escalation:
    return Escalation(
        organization_id=organization.id,
        ticket_id=case.id,
        month=billing_month(case.created_at),
    )


def _field(name: str, detail: str) -> FieldError:
    return FieldError(pointer=f"/{name}", detail=detail)
