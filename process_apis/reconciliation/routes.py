"""`/process/v1/reconciliations`: start a reconciliation (202 + Location), read runs and their
mismatches, and repair a mismatch (202; a durable repair flow). Also the schedule that starts
one run per interval (the same run on every replica: its id is the interval's start) and the
`erpgw_reconciliation_mismatches` gauges.

Callers limited to legal entities start runs over their entities only, and see only runs all
of whose entities are theirs; anything else answers 404 as if it did not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from urllib.parse import quote

import msgspec
import structlog
from litestar import HttpMethod, Litestar, Request, Response, Router, get, post, route
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.params import Body, PathParameter, QueryParameter
from litestar.plugins import InitPlugin
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.audit import AuditActor, FlowSource, actor_of, system_actor
from contracts.errors import Conflict, FieldError, ValidationFailed
from contracts.principal import Principal
from contracts.v1 import Page
from contracts.v1.base import LegalEntityCode
from process_apis.cross_references import CrossReferences
from process_apis.engine.background import running_in_background
from process_apis.engine.flow_engine import FlowEngine
from process_apis.invoice_posting.flow import InvoicePostingFlows
from process_apis.reconciliation.compare import KINDS, Kind
from process_apis.reconciliation.flow import (
    FLOW_TYPE,
    ReconciliationFlows,
    RunRequest,
)
from process_apis.reconciliation.records import Run, RunStore
from process_apis.reconciliation.repair import REPAIR_TYPE, RepairFlows, repair_id
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort

__all__ = [
    "MismatchGauges",
    "ReconciliationAccepted",
    "ReconciliationRequest",
    "ReconciliationService",
    "ReconciliationWiring",
    "RepairAccepted",
    "mount",
]

PREFIX: Final = "/process/v1"
MAX_SETTLE_SECONDS: Final = 30 * 24 * 3600
_WRITE: dict[str, Any] = {
    "scopes": ["process:write"],
    "idempotency": "required",
    "rate_limit_group": "process",
}
_READ: dict[str, Any] = {"scopes": ["process:read"], "rate_limit_group": "process"}
_REPAIR: dict[str, Any] = {
    "scopes": ["ops:replay"],
    "idempotency": "required",
    "rate_limit_group": "process",
}
_STRICT_BODY = Body(schema_extra={"additionalProperties": False})
AuthedRequest = Request[Principal, Any, Any]
RunId = Annotated[str, PathParameter(min_length=1, max_length=200)]
MismatchId = Annotated[str, PathParameter(min_length=1, max_length=32)]

log = structlog.get_logger("process_apis.reconciliation")


class ReconciliationRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kinds: Annotated[list[Kind], msgspec.Meta(min_length=1, max_length=len(KINDS))] | None = None
    """What to compare; absent: every kind."""
    legal_entity: LegalEntityCode | None = None
    """One legal entity; absent: every entity the caller may see."""
    settle_seconds: Annotated[int, msgspec.Meta(ge=0, le=MAX_SETTLE_SECONDS)] | None = None
    """Records younger than this are reported pending, not compared; absent: the gateway's
    setting."""


class ReconciliationAccepted(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    created: bool


class RepairAccepted(msgspec.Struct, frozen=True, kw_only=True):
    mismatch_id: str
    flow_id: str
    created: bool


class MismatchGauges:
    """`erpgw_reconciliation_mismatches`: the mismatches standing now (`RunStore.latest_counts`)."""

    def __init__(self, store: RunStore, registry: CollectorRegistry | None) -> None:
        self._store = store
        self._gauge = Gauge(
            "erpgw_reconciliation_mismatches",
            "Reconciliation mismatches standing now (the latest full run's and the later "
            "incremental runs' findings, less those found fixed), by kind, legal entity, "
            "currency and status",
            ("kind", "legal_entity", "currency", "status"),
            registry=registry,
            # Several workers: the value the latest refresh set (each scrape refreshes it
            # from the database), not one per process.
            multiprocess_mode="mostrecent",
        )
        self._shown: set[tuple[str, str, str, str]] = set()

    async def refresh(self) -> None:
        counts = await self._store.latest_counts()
        for gone in self._shown - counts.keys():
            self._gauge.labels(*gone).set(0)
        for labels, count in counts.items():
            self._gauge.labels(*labels).set(count)
        self._shown |= counts.keys()


@dataclass
class ReconciliationService:
    """Starts runs and repairs; reads runs (one service for the routes and the schedule)."""

    flows: ReconciliationFlows
    repairs: RepairFlows
    engine: FlowEngine
    store: RunStore
    erp: ErpPort
    settle_seconds: float
    full_every_seconds: float = 86400.0

    async def start(
        self, request: ReconciliationRequest, *, principal: Principal
    ) -> tuple[str, bool]:
        entities = _entities(request.legal_entity, principal)
        if request.legal_entity is not None:
            # Another entity answers exactly as an unknown one, and the detail names only the
            # entities this caller may reconcile: nothing tells it which others exist.
            known = {
                entity.code
                for entity in await self.erp.list_legal_entities()
                if principal.may_see_entity(entity.code)
            }
            if request.legal_entity not in known:
                raise ValidationFailed(
                    "The reconciliation cannot be started",
                    errors=[
                        FieldError(
                            pointer="/legal_entity",
                            detail=f"no legal entity {request.legal_entity} among those this "
                            "client may reconcile: " + ", ".join(sorted(known)),
                        )
                    ],
                )
        run_id = f"reconcile:{uuid.uuid4().hex}"
        return run_id, await self._start(
            source="api",
            actor=actor_of(principal),
            request=RunRequest(
                run_id=run_id,
                # Each kind once, in the order of KINDS, however the caller listed them.
                kinds=[kind for kind in KINDS if kind in (request.kinds or KINDS)],
                entities=entities,
                settle_seconds=float(
                    request.settle_seconds
                    if request.settle_seconds is not None
                    else self.settle_seconds
                ),
            )
        )

    async def start_scheduled(self, interval_start: datetime) -> bool:
        """The run of the interval that began at `interval_start` (one, whoever starts it)."""
        run_id = "reconcile:" + interval_start.strftime("%Y-%m-%dT%H:%M:%SZ")
        return await self._start(
            source="schedule",
            actor=system_actor("schedule"),
            request=RunRequest(
                run_id=run_id,
                kinds=list(KINDS),
                entities=None,
                settle_seconds=self.settle_seconds,
                scheduled=True,
                full_every_seconds=self.full_every_seconds,
            )
        )

    async def _start(
        self, *, request: RunRequest, source: FlowSource, actor: AuditActor
    ) -> bool:
        # The run is readable at once (running), before its flow records anything.
        await self.store.open_run(
            request.run_id,
            kinds=request.kinds,
            entities=request.entities,
            settle_seconds=request.settle_seconds,
            scheduled=request.scheduled,
        )
        handle = await self.engine.start(
            FLOW_TYPE,
            request.run_id,
            self.flows.reconcile,
            request,
            legal_entity=request.entities[0]
            if request.entities and len(request.entities) == 1
            else None,
            source=source,
            actor=actor,
        )
        return handle.created

    async def repair(
        self, run_id: str, mismatch_id: str, *, principal: Principal
    ) -> tuple[str, bool]:
        mismatch = await self.store.mismatch(run_id, mismatch_id, principal)
        if mismatch.finding.repair is None:
            raise Conflict(
                f"Mismatch {mismatch_id} needs a person: {mismatch.finding.reason}. Resolve its "
                "exception with a reason once the books are put right",
                code="repair_needs_a_person",
            )
        flow_id = repair_id(mismatch_id)
        handle = await self.engine.start(
            REPAIR_TYPE,
            flow_id,
            self.repairs.repair,
            mismatch,
            legal_entity=mismatch.legal_entity,
            source="api",
            actor=actor_of(principal),
        )
        return flow_id, handle.created


def _entities(wanted: str | None, principal: Principal) -> list[str] | None:
    if wanted is not None:
        return [wanted]
    return sorted(principal.entities) if principal.entities is not None else None


def run_location(run_id: str) -> str:
    return f"{PREFIX}/reconciliations/{quote(run_id, safe=':')}"


@post(
    "/reconciliations",
    opt=_WRITE,
    status_code=202,
    summary="Start a reconciliation of deals, invoices, payments, credits and customers",
)
async def start_reconciliation(
    request: AuthedRequest,
    reconciliation_service: NamedDependency[ReconciliationService],
    data: Annotated[ReconciliationRequest, _STRICT_BODY],
) -> Response[ReconciliationAccepted]:
    run_id, created = await reconciliation_service.start(data, principal=request.user)
    return Response(
        ReconciliationAccepted(id=run_id, created=created),
        status_code=202,
        headers={"Location": run_location(run_id)},
    )


@route(
    "/reconciliations",
    http_method=HttpMethod.OPTIONS,
    include_in_schema=False,
    opt={"rate_limit_group": "process"},
    sync_to_thread=False,
)
def reconciliations_options() -> Response[None]:
    """The methods of the runs' list. Litestar 2 builds a path's automatic OPTIONS answer when
    the path's first handler is registered, so it would leave out GET (litestar#4169)."""
    return Response(None, status_code=204, headers={"Allow": "GET, OPTIONS, POST"})


@get("/reconciliations", opt=_READ, summary="Reconciliation runs, newest first")
async def list_reconciliations(
    request: AuthedRequest,
    reconciliation_service: NamedDependency[ReconciliationService],
    cursor: Annotated[
        str | None,
        QueryParameter(
            min_length=1, max_length=512, description="The `next_cursor` of the previous page"
        ),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100, description="Page size, 1 to 100")] = 50,
) -> Page[Run]:
    return await reconciliation_service.store.recent(request.user, limit=limit, cursor=cursor)


@get("/reconciliations/{run_id:str}", opt=_READ, summary="One reconciliation with its mismatches")
async def get_reconciliation(
    request: AuthedRequest,
    reconciliation_service: NamedDependency[ReconciliationService],
    run_id: RunId,
) -> Run:
    return await reconciliation_service.store.get(run_id, request.user)


@post(
    "/reconciliations/{run_id:str}/mismatches/{mismatch_id:str}/repair",
    opt=_REPAIR,
    status_code=202,
    summary="Repair a mismatch a machine can fix (a durable repair flow)",
)
async def repair_mismatch(
    request: AuthedRequest,
    reconciliation_service: NamedDependency[ReconciliationService],
    run_id: RunId,
    mismatch_id: MismatchId,
) -> Response[RepairAccepted]:
    flow_id, created = await reconciliation_service.repair(
        run_id, mismatch_id, principal=request.user
    )
    return Response(
        RepairAccepted(mismatch_id=mismatch_id, flow_id=flow_id, created=created),
        status_code=202,
        headers={"Location": f"{PREFIX}/flows/{quote(flow_id, safe=':')}"},
    )


@dataclass(eq=False)  # a plugin: Litestar keeps plugins in sets
class ReconciliationWiring(InitPlugin):
    """What the app factory mounts: the routes, and the schedule in the app's lifespan."""

    service: ReconciliationService
    gauges: MismatchGauges
    interval_seconds: float

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(
            Router(
                path=PREFIX,
                # The OPTIONS handler first: a path registered without one gets Litestar's.
                route_handlers=[
                    reconciliations_options,
                    start_reconciliation,
                    list_reconciliations,
                    get_reconciliation,
                    repair_mismatch,
                ],
                dependencies={
                    "reconciliation_service": Provide(
                        lambda: self.service, use_cache=True, sync_to_thread=False
                    )
                },
                tags=["process"],
            )
        )
        app_config.lifespan.append(self._lifespan)
        return app_config

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Litestar) -> AsyncIterator[None]:
        with contextlib.suppress(Exception):
            await self.gauges.refresh()
        loops = [self._schedule()] if self.interval_seconds > 0 else []
        async with running_in_background(*loops):
            yield

    async def _schedule(self) -> None:
        """At each interval's start, that interval's run (every replica asks; one runs). The
        first is the next interval's: a restart does not run the current one again, and a
        gateway just started has not booked what it was started to book."""
        interval = self.interval_seconds
        while True:
            now = datetime.now(UTC).timestamp()
            start = now - now % interval + interval
            await asyncio.sleep(start - now)
            try:
                await self.service.start_scheduled(datetime.fromtimestamp(start, UTC))
            except Exception as exc:  # the next interval tries again; say why this one failed
                log.warning("scheduled_reconciliation_not_started", error=str(exc))


def mount(
    *,
    engine: FlowEngine,
    database: AsyncEngine,
    crm: CrmPort,
    billing: BillingPort,
    erp: ErpPort,
    interval_seconds: float,
    settle_seconds: float,
    full_every_seconds: float = 86400.0,
    registry: CollectorRegistry | None = None,
) -> ReconciliationWiring:
    """Build the flows (call before the engine launches), the service and its routes."""
    store = RunStore(database)
    gauges = MismatchGauges(store, registry)
    flows = engine.register(
        ReconciliationFlows,
        crm=crm,
        billing=billing,
        erp=erp,
        database=database,
        store=store,
        gauges=gauges,
    )
    # The invoice posting flows the webhooks run (one instance per process): a repair posts
    # through the very same path.
    posting = engine.register(InvoicePostingFlows, billing=billing, erp=erp)
    repairs = engine.register(
        RepairFlows,
        posting=posting,
        billing=billing,
        erp=erp,
        references=CrossReferences(database),
        store=store,
    )
    service = ReconciliationService(
        flows=flows,
        repairs=repairs,
        engine=engine,
        store=store,
        erp=erp,
        settle_seconds=settle_seconds,
        full_every_seconds=full_every_seconds,
    )
    return ReconciliationWiring(service=service, gauges=gauges, interval_seconds=interval_seconds)
