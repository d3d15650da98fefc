"""The composition root: `create_app(settings)` builds every adapter and policy and mounts the
layers. Nothing else in the project wires real adapters together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from litestar import Litestar
from litestar.di import Provide
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import docs, storage
from gateway.auth import (
    Authenticator,
    ExternalIdentityProvider,
    TokenIssuer,
    TokenValidator,
)
from gateway.clients import ClientRegistry
from gateway.edge import EdgeMiddleware
from gateway.errors import exception_handlers
from gateway.health import HEALTH_ROUTES
from gateway.idempotency import IdempotencyPolicy, IdempotencyStore
from gateway.keys import KeyStore
from gateway.logging import configure_logging
from gateway.metrics import GatewayMetrics, metrics_route
from gateway.oauth import OAUTH_ROUTES
from gateway.platforms import Platforms, build_platforms
from gateway.policies import RoutePolicies
from gateway.rate_limits import (
    RateLimitConfig,
    RateLimiter,
    parse_tiers,
    storage_uri_for,
)
from gateway.settings import Settings, load_settings
from gateway.versioning import VersionRegistry

__all__ = ["Gateway", "create_app", "create_app_from_env"]

VERSION = "0.1.0"
IDEMPOTENCY_PURGE_SECONDS = 600.0

log = structlog.get_logger("gateway.app")


@dataclass
class Gateway:
    """Everything `create_app` built, kept on `app.state.gateway` for tests and the CLI."""

    settings: Settings
    engine: AsyncEngine
    keys: KeyStore
    clients: ClientRegistry
    issuer: TokenIssuer
    validator: TokenValidator
    metrics: GatewayMetrics
    rate_limiter: RateLimiter
    versions: VersionRegistry
    idempotency: IdempotencyStore
    platforms: Platforms
    redis: Redis | None = None
    http: httpx.AsyncClient | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    gateway = _build(settings)
    app = Litestar(
        route_handlers=[
            *OAUTH_ROUTES,
            *HEALTH_ROUTES,
            metrics_route,
            *docs.contracts_routes,
            *docs.docs_assets_router(),
            *gateway.platforms.routers,
        ],
        middleware=_policies(gateway),
        dependencies=_dependencies(gateway),
        exception_handlers=exception_handlers,
        openapi_config=docs.openapi_config(gateway.versions, version=VERSION),
        lifespan=[_lifespan(gateway)],
        request_max_body_size=settings.max_body_bytes,
        debug=False,
    )
    app.state.gateway = gateway
    app.asgi_handler = _edge(app.asgi_handler, gateway)
    return app


def create_app_from_env() -> Litestar:
    """Factory for ASGI servers (`granian --factory gateway.app:create_app_from_env`)."""
    return create_app(load_settings())


def _build(settings: Settings) -> Gateway:
    engine = storage.create_engine(settings.database_url)
    keys = KeyStore(settings.signing_keys_dir)
    clients = ClientRegistry(engine)
    http = httpx.AsyncClient(timeout=5.0)
    external = (
        ExternalIdentityProvider(
            issuer=settings.external_issuer, jwks_url=settings.external_jwks_url, http=http
        )
        if settings.external_issuer and settings.external_jwks_url
        else None
    )
    metrics = GatewayMetrics()
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    return Gateway(
        settings=settings,
        engine=engine,
        keys=keys,
        clients=clients,
        issuer=TokenIssuer(
            keys=keys,
            issuer=settings.issuer,
            audience=settings.audience,
            ttl_seconds=settings.token_ttl_seconds,
        ),
        validator=TokenValidator(
            keys=keys,
            issuer=settings.issuer,
            audience=settings.audience,
            clients=clients,
            external=external,
        ),
        metrics=metrics,
        rate_limiter=RateLimiter(_rate_limit_config(settings), registry=metrics.registry),
        versions=VersionRegistry(settings.api_versions),
        idempotency=IdempotencyStore(
            engine, retention_seconds=settings.idempotency_retention_seconds
        ),
        platforms=build_platforms(settings, engine=engine, redis=redis, registry=metrics.registry),
        redis=redis,
        http=http,
    )


def _policies(gateway: Gateway) -> list[Any]:
    return [
        RoutePolicies(
            authenticator=Authenticator(
                gateway.validator, on_failure=gateway.metrics.auth_failed
            ),
            rate_limiter=gateway.rate_limiter,
            versions=gateway.versions,
            idempotency=IdempotencyPolicy(gateway.idempotency),
        )
    ]


def _rate_limit_config(settings: Settings) -> RateLimitConfig:
    return RateLimitConfig(
        tiers=parse_tiers(settings.rate_limit_tiers),
        strategy=settings.rate_limit_strategy,
        storage_uri=storage_uri_for(settings.redis_url),
        on_store_error=settings.rate_limit_on_store_error,
    )


def _dependencies(gateway: Gateway) -> dict[str, Provide]:
    def provide(value: Any) -> Provide:
        return Provide(_constant(value), use_cache=True, sync_to_thread=False)

    return {
        "settings": provide(gateway.settings),
        "engine": provide(gateway.engine),
        "keys": provide(gateway.keys),
        "clients": provide(gateway.clients),
        "issuer": provide(gateway.issuer),
        "metrics": provide(gateway.metrics),
        "redis": provide(gateway.redis),
        **gateway.platforms.dependencies,
    }


def _constant(value: Any) -> Callable[[], Any]:
    def dependency() -> Any:
        return value

    return dependency


def _edge(inner: Any, gateway: Gateway) -> Any:
    """Wrap the app in what every request passes before routing (see gateway/edge.py)."""
    return EdgeMiddleware(
        inner,
        max_body_bytes=gateway.settings.max_body_bytes,
        metrics=gateway.metrics,
        access_log=gateway.settings.access_log,
    )


def _lifespan(
    gateway: Gateway,
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        await storage.upgrade_async(gateway.settings.database_url)
        await asyncio.to_thread(gateway.keys.ensure)
        await gateway.platforms.start()
        gateway.background.append(asyncio.create_task(_purge_idempotency(gateway)))
        try:
            yield
        finally:
            for task in gateway.background:
                task.cancel()
            await gateway.platforms.stop()
            await gateway.rate_limiter.close()
            if gateway.http is not None:
                await gateway.http.aclose()
            if gateway.redis is not None:
                await gateway.redis.aclose()
            await gateway.engine.dispose()

    return lifespan


async def _purge_idempotency(gateway: Gateway) -> None:
    while True:
        await asyncio.sleep(IDEMPOTENCY_PURGE_SECONDS)
        try:
            removed = await gateway.idempotency.purge_expired()
            if removed:
                log.info("idempotency_records_purged", count=removed)
        except Exception as exc:
            log.warning("idempotency_purge_failed", error=str(exc))
