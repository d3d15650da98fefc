"""A small app around the process router for route tests: the router, its three dependencies,
a caller set by a tiny middleware, and the gateway's problem+json handlers."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.di import Provide
from prometheus_client import CollectorRegistry

from contracts.principal import Principal
from gateway import storage
from gateway.errors import exception_handlers
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.operations import Operations
from process_apis.engine.queue import ExceptionQueue
from process_apis.engine.records import FlowReader
from process_apis.engine.routes import create_router
from system_apis.outbound import CursorSeal

OPERATOR = Principal(
    client_id="ops-client-1",
    name="operator",
    scopes=frozenset({"process:read", "ops:read", "ops:replay"}),
)


def process_app(
    engine: FlowEngine,
    database_url: str,
    *,
    principal: Principal = OPERATOR,
    registry: CollectorRegistry | None = None,
) -> Litestar:
    db = storage.create_engine(database_url)

    def constant(value: Any) -> Provide:
        return Provide(lambda: value, use_cache=True, sync_to_thread=False)

    def as_caller(app: Any) -> Any:
        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            scope["user"] = principal
            await app(scope, receive, send)

        return middleware

    queue = ExceptionQueue(db, registry=registry)
    return Litestar(
        route_handlers=[create_router()],
        dependencies={
            "flow_engine": constant(engine),
            "flow_reader": constant(FlowReader(db)),
            "cursor_seal": constant(CursorSeal(bytes(32))),
            "exception_queue": constant(queue),
            "operations": constant(Operations(engine=engine, queue=queue)),
        },
        middleware=[as_caller],
        exception_handlers=exception_handlers,
    )
