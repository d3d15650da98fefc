"""The experience layer as the app factory mounts it: routers, and the dependencies its
handlers take by name (`views`; the console's own). The domain ports (`crm`, `billing`,
`support`, `erp`) and the process layer's (`flow_engine`, `flow_reader`, `exception_queue`)
are the app's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from litestar import Router
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.audit import AuditTrail
from experience_apis import finance, ops, portal, sales, support
from experience_apis._links import LinkResolver
from experience_apis._process_reads import ProcessReads
from experience_apis._services import ViewServices
from experience_apis.compose import Composer, InMemoryViewCache, RedisViewCache, ViewCache
from experience_apis.console import (
    ClientAuthenticator,
    Console,
    VendorLinks,
    console_routes,
)
from experience_apis.console._oidc import OidcConfig, OidcSignIn
from experience_apis.console._reads import ConsoleReads
from experience_apis.console._sessions import ConsoleSessions
from experience_apis.console._signin import SIGN_IN_SECONDS

__all__ = [
    "ExperienceConfig",
    "ExperienceLayer",
    "build_experience_layer",
    "create_routers",
]


@dataclass(frozen=True, kw_only=True)
class ExperienceConfig:
    fresh_seconds: float = 5.0
    """How long a source's answer is reused without asking it (0: ask every time)."""
    stale_seconds: float = 300.0
    """How old an answer may be and still stand in for an optional source that fails."""
    link_ttl_seconds: float = 30.0
    """How long cross-reference lookups are kept in process (new links show that late)."""
    budgets: Mapping[str, float] = field(default_factory=dict)
    """Per-source budget overrides, seconds (e.g. `{"billing": 0.8}`), for every view."""
    vendor_links: VendorLinks = field(default_factory=VendorLinks)
    """Where the console links records to in each vendor's own UI."""
    secure_cookies: bool = False
    """Mark the console's sign-in cookie `Secure` (set it when served over HTTPS)."""
    oidc: OidcConfig | None = None
    """People's sign-in to the console at the company's OpenID Connect provider."""
    clients_allowed: bool = True
    """Let API clients sign in to the console with id and secret (sandbox mode only)."""


def create_routers(*extra: Any) -> list[Any]:
    """The channel views' routers (plus `extra`, e.g. the console's)."""
    return [
        sales.create_router(),
        support.create_router(),
        finance.create_router(),
        portal.create_router(),
        ops.create_router(),
        *extra,
    ]


@dataclass(eq=False)  # a plugin: Litestar keeps plugins in sets
class ExperienceLayer(InitPlugin):
    services: ViewServices
    console: Console | None = None
    extra_routes: list[Any] = field(default_factory=list)
    extra_dependencies: dict[str, Provide] = field(default_factory=dict)

    @property
    def routers(self) -> list[Router]:
        return create_routers(*self.extra_routes)

    @property
    def dependencies(self) -> dict[str, Provide]:
        return {"views": _provide(self.services), **self.extra_dependencies}

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Contribute the channel views' routes and their dependencies."""
        app_config.route_handlers.extend(self.routers)
        app_config.dependencies.update(self.dependencies)
        return app_config


def build_experience_layer(
    *,
    engine: AsyncEngine,
    redis: Redis | None = None,
    cache: ViewCache | None = None,
    config: ExperienceConfig | None = None,
    authenticator: ClientAuthenticator | None = None,
    console_secret: bytes | None = None,
    audit: AuditTrail | None = None,
) -> ExperienceLayer:
    """The layer over the app database `engine`; source answers are cached in Redis when
    given (shared by the replicas), else in process. The console is mounted when an
    `authenticator` (the client registry) and a `console_secret` (32 bytes,
    `console.console_secret(...)`) are given."""
    config = config or ExperienceConfig()
    if cache is None:
        cache = RedisViewCache(redis) if redis is not None else InMemoryViewCache()
    services = ViewServices(
        composer=Composer(
            cache, fresh_seconds=config.fresh_seconds, stale_seconds=config.stale_seconds
        ),
        links=LinkResolver(engine, ttl_seconds=config.link_ttl_seconds),
        process=ProcessReads(engine),
        budgets=dict(config.budgets),
    )
    layer = ExperienceLayer(services=services)
    if authenticator is not None and console_secret is not None:
        layer.console = Console(
            authenticator=authenticator, reads=ConsoleReads(engine), links=config.vendor_links,
            sessions=ConsoleSessions(engine, lifetime_seconds=SIGN_IN_SECONDS),
            audit=audit,
            oidc=OidcSignIn(config.oidc) if config.oidc is not None else None,
            clients_allowed=config.clients_allowed,
            pending_key=hashlib.sha256(b"console oidc pending|" + console_secret).digest(),
            secure_cookies=config.secure_cookies,
        )
        layer.extra_routes = console_routes(
            layer.console, secret=console_secret, secure_cookies=config.secure_cookies
        )
    return layer


def _provide(value: Any) -> Provide:
    def dependency() -> Any:
        return value

    return Provide(dependency, use_cache=True, sync_to_thread=False)
