"""Flow and exception-queue routes (`/process/v1/flows...`, `/process/v1/exceptions...`).

The routes take four dependencies by name: `flow_engine` (a `FlowEngine`), `flow_reader` (a
`FlowReader`), `exception_queue` (an `ExceptionQueue`) and `operations` (the `Operations`
service the console calls too); `build_process_layer` builds them with the router for the app
factory. Callers see only the flows and exceptions of legal
entities their token allows; others answer 404 as if they did not exist.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Litestar, Request, Response, Router, get, post
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.params import Body, FromQuery, PathParameter, QueryParameter
from litestar.plugins import InitPlugin
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.audit import AuditTrail
from contracts.errors import FieldError, InvalidRequest, NotFound
from contracts.limits import MAX_ITEMS
from contracts.principal import Principal
from contracts.v1 import Page
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.observer import FlowObserver
from process_apis.engine.operations import Operations
from process_apis.engine.queue import ExceptionQueue
from process_apis.engine.records import UNFINISHED, FlowQuery, FlowReader
from process_apis.exceptions import ExceptionEntry, ExceptionStatus, OwnerTeam
from process_apis.flows import Flow, FlowStatus
from system_apis.outbound import CursorSeal
from system_apis.visibility import visible_page

__all__ = [
    "AssignRequest",
    "ProcessLayer",
    "ResolveRequest",
    "RetryRequest",
    "build_process_layer",
    "create_router",
    "flow_location",
]

PREFIX = "/process/v1"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
_READ: dict[str, Any] = {"scopes": ["process:read"], "rate_limit_group": "process"}
_OPS_READ: dict[str, Any] = {"scopes": ["ops:read"], "rate_limit_group": "process"}
_OPS_ACT: dict[str, Any] = {
    "scopes": ["ops:replay"],
    "idempotency": "optional",
    "rate_limit_group": "process",
}
AuthedRequest = Request[Principal, Any, Any]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
FlowId = Annotated[
    str, PathParameter(min_length=1, max_length=200, description="The flow's business key")
]
ExceptionId = Annotated[str, PathParameter(min_length=1, max_length=32)]
Filter = Annotated[str | None, QueryParameter(min_length=1, max_length=200)]
Timestamp = Annotated[
    str | None, QueryParameter(schema_extra={"format": "date-time"}, description="RFC 3339")
]
PageLimit = Annotated[
    int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}")
]
PageCursor = Annotated[
    str | None,
    QueryParameter(
        min_length=1, max_length=512, description="The `next_cursor` of the previous page"
    ),
]
_STRICT_BODY = Body(schema_extra={"additionalProperties": False})
"""Our request bodies refuse unknown fields (a typo must not be ignored); say so in the
OpenAPI, which Litestar does not derive from `forbid_unknown_fields`."""


class RetryRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Bounds: an edited input has at most 100 fields (`contracts.limits.MAX_ITEMS`); what is
    inside them is bounded by the step's input contract and by the operations service (lists
    of at most 100 items, quantities and amounts within `contracts.limits`)."""

    input: Annotated[
        dict[str, Any],
        # Litestar takes OpenAPI keywords it does not derive (a map's size) from `extra`.
        msgspec.Meta(
            max_length=MAX_ITEMS, extra_json_schema={"extra": {"max_properties": MAX_ITEMS}}
        ),
    ] | None = None
    """An edited input for the failed step, checked against its input contract, the flow's
    legal entity, currency and records; absent: the step runs again with the input it had."""


class AssignRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    assignee: NonEmpty


class ResolveRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: NonEmpty
    """Why the flow ends here; recorded on the flow (`cancelled`) and in the audit history."""


@get("/flows", opt=_READ, summary="Flows, newest first")
async def list_flows(
    request: AuthedRequest,
    flow_reader: NamedDependency[FlowReader],
    cursor_seal: NamedDependency[CursorSeal],
    type: Annotated[str | None, QueryParameter(min_length=1, max_length=64)] = None,
    status: FromQuery[FlowStatus | None] = None,
    correlation_id: Filter = None,
    business_key: Filter = None,
    crm_account: Filter = None,
    since: Timestamp = None,
    until: Timestamp = None,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
) -> Page[Flow]:
    query = FlowQuery(
        type=type,
        status=status,
        correlation_id=correlation_id,
        business_key=business_key,
        crm_account=crm_account,
        since=_timestamp("since", since),
        until=_timestamp("until", until),
        limit=limit,
    )
    # The query keeps only the caller's flows before it pages; the cursor handed out is
    # sealed for this caller and these filters.
    filters = msgspec.json.encode(msgspec.structs.replace(query, limit=DEFAULT_LIMIT)).decode()
    return await visible_page(
        request.user, seal=cursor_seal, list_name=f"process:flows:{filters}",
        cursor=cursor, limit=limit,
        fetch=lambda at, n: flow_reader.list(
            msgspec.structs.replace(query, cursor=at, limit=n), principal=request.user
        ),
    )


@get("/flows/{flow_id:str}", opt=_READ, summary="One flow with its steps")
async def get_flow(
    request: AuthedRequest,
    flow_reader: NamedDependency[FlowReader],
    flow_engine: NamedDependency[FlowEngine],
    flow_id: FlowId,
) -> Flow:
    flow = await flow_reader.get(flow_id, principal=request.user)
    if flow is None:
        raise NotFound(f"No flow {flow_id}")
    # A flow still under way must have a live workflow; one without is never left pending.
    if flow.status in UNFINISHED and await flow_engine.reconcile(flow_id):
        flow = await flow_reader.get(flow_id, principal=request.user) or flow
    return flow


@get("/exceptions", opt=_OPS_READ, summary="The exception queue, oldest first")
async def list_exceptions(
    request: AuthedRequest,
    exception_queue: NamedDependency[ExceptionQueue],
    cursor_seal: NamedDependency[CursorSeal],
    owner: FromQuery[OwnerTeam | None] = None,
    status: FromQuery[ExceptionStatus | None] = None,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
) -> Page[ExceptionEntry]:
    return await visible_page(
        request.user, seal=cursor_seal, list_name=f"process:exceptions:{owner}:{status}",
        cursor=cursor, limit=limit,
        fetch=lambda at, n: exception_queue.list(
            principal=request.user, owner=owner, status=status, cursor=at, limit=n
        ),
    )


@get("/exceptions/{exception_id:str}", opt=_OPS_READ, summary="One exception and its history")
async def get_exception(
    request: AuthedRequest,
    exception_queue: NamedDependency[ExceptionQueue],
    exception_id: ExceptionId,
) -> ExceptionEntry:
    return await exception_queue.get(exception_id, principal=request.user)


@post(
    "/exceptions/{exception_id:str}/retry",
    opt=_OPS_ACT,
    status_code=202,
    summary="Run the failed step again, optionally with an edited input",
)
async def retry_exception(
    request: AuthedRequest,
    operations: NamedDependency[Operations],
    exception_id: ExceptionId,
    data: Annotated[RetryRequest | None, _STRICT_BODY] = None,
) -> Response[ExceptionEntry]:
    claimed = await operations.retry(
        exception_id,
        principal=request.user,
        edited_input=data.input if data is not None else None,
    )
    return Response(
        claimed, status_code=202, headers={"Location": flow_location(claimed.flow_id)}
    )


@post("/exceptions/{exception_id:str}/assign", opt=_OPS_ACT, status_code=200)
async def assign_exception(
    request: AuthedRequest,
    operations: NamedDependency[Operations],
    exception_id: ExceptionId,
    data: Annotated[AssignRequest, _STRICT_BODY],
) -> ExceptionEntry:
    return await operations.assign(exception_id, assignee=data.assignee, principal=request.user)


@post(
    "/exceptions/{exception_id:str}/resolve",
    opt=_OPS_ACT,
    status_code=200,
    summary="Close the exception by hand; its flow ends cancelled",
)
async def resolve_exception(
    request: AuthedRequest,
    operations: NamedDependency[Operations],
    exception_id: ExceptionId,
    data: Annotated[ResolveRequest, _STRICT_BODY],
) -> ExceptionEntry:
    return await operations.resolve(exception_id, reason=data.reason, principal=request.user)


def create_router() -> Router:
    """The `/process/v1` flow and exception routes (dependencies: see the module docstring)."""
    return Router(
        path=PREFIX,
        route_handlers=[
            list_flows,
            get_flow,
            list_exceptions,
            get_exception,
            retry_exception,
            assign_exception,
            resolve_exception,
        ],
        tags=["process"],
    )


@dataclass(eq=False)  # a plugin: Litestar keeps plugins in sets
class ProcessLayer(InitPlugin):
    """The process layer as the app factory mounts it: routers, dependencies, and the flow
    engine to launch in the app's lifespan (`start`) and stop with it (`stop`)."""

    engine: FlowEngine
    reader: FlowReader
    queue: ExceptionQueue
    operations: Operations

    @property
    def routers(self) -> list[Router]:
        return [create_router()]

    @property
    def dependencies(self) -> dict[str, Provide]:
        return {
            "flow_engine": _provide(self.engine),
            "flow_reader": _provide(self.reader),
            "exception_queue": _provide(self.queue),
            "operations": _provide(self.operations),
        }

    async def start(self) -> None:
        await self.engine.launch()

    async def stop(self) -> None:
        await self.engine.shutdown()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Contribute the flow and exception routes and their dependencies; launch the flow
        engine with the app and shut it down with it."""
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


def build_process_layer(
    *,
    database_url: str,
    executor_id: str | None,
    executor_prefix: str,
    engine: AsyncEngine,
    registry: CollectorRegistry | None = None,
    slot_lock_dir: Path | None = None,
    worker_concurrency: int = 8,
    global_concurrency: int | None = None,
    poll_interval_seconds: float = 0.25,
    step_wait_ceiling_seconds: float = 900.0,
    observer: FlowObserver | None = None,
    pool_size: int = 10,
    audit: AuditTrail | None = None,
) -> ProcessLayer:
    """The layer for the app factory. `engine` is the gateway's own (reads and operator
    actions); the flow engine keeps a pool of its own for the writes flows make. The queue's
    concurrency (per process and in all) and poll interval are the flow engine's; `observer`
    measures flows, steps, money and webhooks; `pool_size` bounds each of the flow engine's
    connection pools."""
    flow_engine = FlowEngine(
        database_url=database_url,
        executor_id=executor_id,
        executor_prefix=executor_prefix,
        slot_lock_dir=slot_lock_dir,
        worker_concurrency=worker_concurrency,
        global_concurrency=global_concurrency,
        poll_interval_seconds=poll_interval_seconds,
        step_wait_ceiling_seconds=step_wait_ceiling_seconds,
        observer=observer,
        pool_size=pool_size,
        audit=audit,
    )
    queue = ExceptionQueue(engine, registry=registry)
    return ProcessLayer(
        engine=flow_engine,
        reader=FlowReader(engine),
        queue=queue,
        operations=Operations(engine=flow_engine, queue=queue, audit=audit),
    )


def flow_location(flow_id: str) -> str:
    """The flow resource's path (business keys keep their `:`; anything else is escaped)."""
    return f"{PREFIX}/flows/{quote(flow_id, safe=':')}"


def _timestamp(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} is not an RFC 3339 timestamp",
            errors=[FieldError(pointer=name, detail="expected e.g. 2026-11-27T09:00:00Z")],
        ) from exc


def _provide(value: Any) -> Provide:
    def dependency() -> Any:
        return value

    return Provide(dependency, use_cache=True, sync_to_thread=False)


