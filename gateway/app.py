"""The composition root: `create_app(settings)` builds every adapter and policy and mounts the
layers. Nothing else in the project wires real adapters together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from litestar import Litestar
from litestar.di import Provide
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from experience_apis import (
    ExperienceConfig,
    ExperienceLayer,
    build_experience_layer,
    console_secret,
)
from experience_apis.console import vendor_links
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
from gateway.modes import check_mode, webhook_secrets
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
from process_apis.amendment import routes as subscription_amendment_api
from process_apis.engine.routes import ProcessLayer, build_process_layer
from process_apis.escalation import routes as escalation_api
from process_apis.payment_failure import flow as payment_failure
from process_apis.quote_to_cash.routes import QuoteToCashService
from process_apis.quote_to_cash.routes import build as build_quote_to_cash
from process_apis.webhooks.intake import WebhookIntake, build_intake, subscribe_quote_to_cash

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
    process: ProcessLayer
    experience: ExperienceLayer
    redis: Redis | None = None
    http: httpx.AsyncClient | None = None
    quote_to_cash: QuoteToCashService | None = None
    escalation: escalation_api.EscalationWiring | None = None
    amendments: subscription_amendment_api.AmendmentWiring | None = None
    webhooks: WebhookIntake | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)


def create_app(settings: Settings | None = None) -> Litestar:
    """The gateway for `settings` (default: the environment's).

    Raises:
        SettingsError: a live gateway without complete credentials and webhook secrets.
    """
    settings = settings or load_settings()
    check_mode(settings)
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
            *gateway.process.routers,
            *gateway.experience.routers,
            *(gateway.quote_to_cash.routers if gateway.quote_to_cash else []),
            *(gateway.escalation.routers if gateway.escalation else []),
            *(gateway.amendments.routers if gateway.amendments else []),
            *(gateway.webhooks.routers if gateway.webhooks else []),
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
    gateway = Gateway(
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
        experience=build_experience_layer(
            engine=engine,
            redis=redis,
            config=_experience_config(settings),
            authenticator=clients,
            console_secret=console_secret(settings.var_dir, settings.experience.console_secret),
        ),
        process=build_process_layer(
            database_url=settings.database_url,
            executor_id=settings.process.executor_id,
            executor_prefix=f"{settings.host}:{settings.port}",
            engine=engine,
            registry=metrics.registry,
        ),
        redis=redis,
        http=http,
    )
    gateway.quote_to_cash = _quote_to_cash(gateway)
    gateway.escalation = _escalation(gateway)
    gateway.amendments = _amendments(gateway)
    gateway.webhooks = _webhooks(gateway)
    return gateway


def _quote_to_cash(gateway: Gateway) -> QuoteToCashService | None:
    """Quote-to-cash and the customer master, when all four platforms are wired; built
    before the flow engine launches."""
    ports = {name: vendor.client for name, vendor in gateway.platforms.vendors.items()}
    if not {"salesforce", "stripe", "zendesk", "netsuite"} <= ports.keys():
        return None
    return build_quote_to_cash(
        crm=ports["salesforce"],
        billing=ports["stripe"],
        support=ports["zendesk"],
        erp=ports["netsuite"],
        database=gateway.engine,
        flow_engine=gateway.process.engine,
        flow_reader=gateway.process.reader,
        poll_seconds=gateway.settings.process.crm_poll_seconds,
        poll_since=gateway.settings.process.crm_poll_since,
    )


def _escalation(gateway: Gateway) -> escalation_api.EscalationWiring | None:
    """Escalation to service credit and its routes, when all four platforms are wired; built
    before the flow engine launches."""
    ports = {name: vendor.client for name, vendor in gateway.platforms.vendors.items()}
    if not {"salesforce", "stripe", "zendesk", "netsuite"} <= ports.keys():
        return None
    return escalation_api.mount(
        engine=gateway.process.engine,
        crm=ports["salesforce"],
        billing=ports["stripe"],
        support=ports["zendesk"],
        erp=ports["netsuite"],
        approval_timeout_seconds=gateway.settings.process.approval_timeout_seconds,
    )


def _amendments(gateway: Gateway) -> subscription_amendment_api.AmendmentWiring | None:
    """Subscription amendments and their route, when billing, ERP and CRM are wired; built
    before the flow engine launches."""
    ports = {name: vendor.client for name, vendor in gateway.platforms.vendors.items()}
    if not {"salesforce", "stripe", "netsuite"} <= ports.keys():
        return None
    return subscription_amendment_api.mount(
        engine=gateway.process.engine,
        reader=gateway.process.reader,
        crm=ports["salesforce"],
        billing=ports["stripe"],
        erp=ports["netsuite"],
    )


def _webhooks(gateway: Gateway) -> WebhookIntake:
    """Webhook intake and the payment flows Stripe's events start (built before the flow
    engine launches); quote-to-cash and escalation subscribe to its dispatcher. With the
    emulators, their webhooks are pointed at this gateway when the platforms start."""
    intake = build_intake(database=gateway.engine, secrets=webhook_secrets(gateway.settings))
    vendors = gateway.platforms.vendors
    ports = {name: vendor.client for name, vendor in vendors.items()}
    if {"stripe", "netsuite", "salesforce"} <= ports.keys():
        payment_failure.build(
            engine=gateway.process.engine,
            intake=intake, billing=ports["stripe"], erp=ports["netsuite"], crm=ports["salesforce"]
        )
    if gateway.quote_to_cash is not None:
        subscribe_quote_to_cash(intake.dispatcher, gateway.quote_to_cash)
    if gateway.escalation is not None:
        gateway.escalation.service.subscribe(intake.dispatcher)
    emulated = {name: vendor.client for name, vendor in vendors.items() if vendor.emulator}
    gateway.platforms.on_start.append(
        intake.sandbox_registration(
            gateway.settings.base_url,
            stripe=emulated.get("stripe"),
            zendesk=emulated.get("zendesk"),
        )
    )
    return intake


def _experience_config(settings: Settings) -> ExperienceConfig:
    chosen = settings.experience
    return ExperienceConfig(
        fresh_seconds=chosen.view_cache_seconds,
        stale_seconds=chosen.view_stale_seconds,
        budgets=chosen.budgets,
        vendor_links=vendor_links(
            salesforce=chosen.console_salesforce_url,
            stripe=chosen.console_stripe_url,
            netsuite=chosen.console_netsuite_url,
            zendesk=chosen.console_zendesk_url,
            netsuite_account=settings.netsuite.account_id,
            zendesk_subdomain=settings.zendesk.subdomain,
            stripe_live=(settings.stripe.secret_key or "").startswith("sk_live_"),
        ),
        secure_cookies=(settings.public_base_url or "").startswith("https://"),
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
        **gateway.process.dependencies,
        **gateway.experience.dependencies,
        **(gateway.quote_to_cash.dependencies if gateway.quote_to_cash else {}),
        **(gateway.webhooks.dependencies if gateway.webhooks else {}),
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
        await gateway.process.start()
        if gateway.quote_to_cash is not None:
            await gateway.quote_to_cash.start()
        gateway.background.append(asyncio.create_task(_purge_idempotency(gateway)))
        # Everything built at start-up lives as long as the process: move it out of the
        # collector's sight, so a full collection no longer walks ~200k long-lived objects
        # (measured: 120 ms event-loop stalls, p99 of the composed views halved).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for task in gateway.background:
                task.cancel()
            if gateway.quote_to_cash is not None:
                await gateway.quote_to_cash.stop()
            await gateway.process.stop()
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
