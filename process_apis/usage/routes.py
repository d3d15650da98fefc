"""The usage routes, and the push schedule in the app's lifespan.

    POST /process/v1/usage-records            report usage (scope `usage:write`)
    POST /process/v1/usage/flush              push waiting usage to billing now (`process:write`)
    GET  /process/v1/usage/{subscription_id}  usage per metric and period (`process:read`)

Intake takes no `Idempotency-Key`: each record is deduplicated by its own id, for ever, so a
batch sent again is counted once. A subscription of another legal entity or customer answers
exactly as an unknown one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Final

from litestar import Litestar, Request, Response, Router, get, post
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.params import Body, PathParameter
from litestar.plugins import InitPlugin
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.principal import Principal
from process_apis.engine.background import running_in_background
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.routes import flow_location
from process_apis.usage.flow import UsagePush
from process_apis.usage.intake import UsageAccepted, UsageBatch, UsageIntake
from process_apis.usage.records import UsageStore
from process_apis.usage.service import FlushStarted, UsageReport, UsageService
from process_apis.usage.subscriptions import SubscriptionDirectory
from system_apis.billing.port import BillingPort

__all__ = ["UsageWiring", "mount"]

PREFIX: Final = "/process/v1"
_INTAKE: dict[str, Any] = {"scopes": ["usage:write"], "rate_limit_group": "usage"}
_FLUSH: dict[str, Any] = {"scopes": ["process:write"], "rate_limit_group": "process"}
_READ: dict[str, Any] = {"scopes": ["process:read"], "rate_limit_group": "process"}
_STRICT_BODY = Body(schema_extra={"additionalProperties": False})
AuthedRequest = Request[Principal, Any, Any]
SubscriptionId = Annotated[
    str, PathParameter(min_length=1, max_length=64, description="The billing subscription id")
]


@post(
    "/usage-records",
    opt=_INTAKE,
    status_code=202,
    summary="Report usage records (up to 1,000; each checked and deduplicated by its id)",
)
async def report_usage(
    request: AuthedRequest,
    usage_service: NamedDependency[UsageService],
    data: Annotated[UsageBatch, _STRICT_BODY],
) -> Response[UsageAccepted]:
    answer = await usage_service.accept(data, principal=request.user)
    return Response(answer, status_code=202)


@post(
    "/usage/flush",
    opt=_FLUSH,
    status_code=202,
    summary="Push the usage waiting in the gateway to billing now",
)
async def flush_usage(
    request: AuthedRequest, usage_service: NamedDependency[UsageService]
) -> Response[FlushStarted]:
    started = await usage_service.flush(source="api", principal=request.user)
    headers = {"Location": flow_location(started.flow_id)} if started.flow_id else {}
    return Response(started, status_code=202, headers=headers)


@get(
    "/usage/{subscription_id:str}",
    opt=_READ,
    summary="A subscription's usage per metric and period: accepted, pushed, invoiced",
)
async def get_usage(
    request: AuthedRequest,
    usage_service: NamedDependency[UsageService],
    subscription_id: SubscriptionId,
) -> UsageReport:
    return await usage_service.report(subscription_id, principal=request.user)


@dataclass(eq=False)  # a plugin: Litestar keeps plugins in sets
class UsageWiring(InitPlugin):
    """What the app factory mounts: the routes, and the push schedule in the lifespan."""

    service: UsageService

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(
            Router(
                path=PREFIX,
                route_handlers=[report_usage, flush_usage, get_usage],
                dependencies={
                    "usage_service": Provide(
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
        # The event belongs to the loop the app serves on.
        self.service.wake = asyncio.Event()
        async with running_in_background(self.service.run_schedule()):
            yield


def mount(
    *,
    engine: FlowEngine,
    database: AsyncEngine,
    billing: BillingPort,
    flush_seconds: float,
    grace_seconds: int,
) -> UsageWiring:
    """Build the push flow (call before the engine launches), the service and its routes."""
    store = UsageStore(database)
    directory = SubscriptionDirectory(billing)
    flows = engine.register(UsagePush, billing=billing, store=store)
    service = UsageService(
        intake=UsageIntake(store=store, directory=directory, grace_seconds=grace_seconds),
        store=store,
        directory=directory,
        flows=flows,
        engine=engine,
        billing=billing,
        flush_seconds=flush_seconds,
    )
    return UsageWiring(service=service)
