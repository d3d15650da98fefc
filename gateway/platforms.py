"""The four platforms behind the system APIs: for each, the real vendor when its credentials
are configured; in sandbox mode otherwise its built-in emulator, mounted under
`/_sandbox/<vendor>` outside the gateway's policies and reached by the vendor client
in-process. Live mode mounts no emulator and imports none (`gateway.modes` refuses to start
a live gateway unless every vendor has credentials).

Each vendor client gets an httpx client from `system_apis.outbound.build_vendor_http` (timeouts,
retries, circuit breaker, quota budget, call recording, metrics); the client is provided to
the routes as its domain's port (`crm`, `billing`, `support`, `erp`).
"""

from __future__ import annotations

import contextlib
import importlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar, asgi
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.handlers import ASGIRouteHandler
from litestar.plugins import InitPlugin
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.settings import (
    NetSuiteSettings,
    SalesforceSettings,
    Settings,
    StripeSettings,
    ZendeskSettings,
)
from gateway.vendor_calls import DatabaseCallRecorder
from system_apis.outbound import (
    CursorSeal,
    OutboundMetrics,
    Platform,
    QuotaBudget,
    build_quota,
    build_vendor_http,
    default_policy,
)

__all__ = ["Platforms", "build_platforms", "credentials_for", "sandbox_banner"]

SANDBOX_PREFIX = "/_sandbox"


@dataclass
class Vendor:
    """One platform as wired: its client (the domain's port), and its emulator if emulated."""

    name: Platform
    client: Any
    http: httpx.AsyncClient
    emulator: Any | None = None


@dataclass(eq=False)  # a plugin: Litestar keeps plugins in sets
class Platforms(InitPlugin):
    vendors: dict[str, Vendor] = field(default_factory=dict)
    routers: list[Any] = field(default_factory=list)
    dependencies: dict[str, Provide] = field(default_factory=dict)
    recorder: DatabaseCallRecorder | None = None
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def start(self) -> None:
        if self.recorder is not None:
            self.recorder.start()
        for hook in self.on_start:
            await hook()

    async def stop(self) -> None:
        for vendor in self.vendors.values():
            await vendor.http.aclose()
            close = getattr(vendor.emulator, "aclose", None)
            if close is not None:
                await close()
        if self.recorder is not None:
            await self.recorder.stop()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Contribute the system APIs' routes, their ports and the emulator mounts; start
        and stop the platforms with the app."""
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


@dataclass(frozen=True)
class _Wiring:
    """How to build one platform; the vendor-specific parts are in its package."""

    name: Platform
    domain: str
    package: str
    build: Callable[[Any, httpx.AsyncClient, Any, QuotaBudget | None], Any]
    """(vendor client module, http client, credentials, quota) -> the vendor client."""
    base_url: Callable[[Any], str]
    """Where the real platform is, from its credentials."""
    credentials: Callable[[Any, Any], Any]
    """(vendor client module, the vendor's settings) -> its credentials."""


def _salesforce(
    module: Any, http: httpx.AsyncClient, credentials: Any, quota: QuotaBudget | None
) -> Any:
    # Salesforce reports the day's API usage on every answer; the budget follows it.
    on_usage = quota.report_usage if quota is not None else None
    return module.SalesforceClient(http, credentials, on_usage=on_usage)


def _stripe(
    module: Any, http: httpx.AsyncClient, credentials: Any, _quota: QuotaBudget | None
) -> Any:
    return module.StripeClient(http, credentials=credentials)


def _zendesk(
    module: Any, http: httpx.AsyncClient, credentials: Any, _quota: QuotaBudget | None
) -> Any:
    return module.ZendeskClient(http, credentials=credentials)


def _netsuite(
    module: Any, http: httpx.AsyncClient, credentials: Any, _quota: QuotaBudget | None
) -> Any:
    return module.NetSuiteClient(http, credentials=credentials)


def _salesforce_credentials(module: Any, settings: SalesforceSettings) -> Any:
    key = (settings.private_key or "").strip() or None
    if key is None and settings.private_key_file is not None:
        key = _read_key(settings.private_key_file)
    return module.SalesforceCredentials(
        login_url=settings.login_url,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        username=settings.username,
        private_key_pem=key,
        audience=settings.audience,
    )


def _stripe_credentials(module: Any, settings: StripeSettings) -> Any:
    return module.StripeCredentials(
        secret_key=settings.secret_key,
        base_url=settings.base_url,
        webhook_secrets=settings.webhook_secrets,
    )


def _zendesk_credentials(module: Any, settings: ZendeskSettings) -> Any:
    return module.ZendeskCredentials(
        base_url=(settings.url or "").rstrip("/"),
        email=settings.email,
        api_token=settings.api_token,
        oauth_token=settings.oauth_token,
        webhook_secrets=settings.webhook_secrets,
    )


def _netsuite_credentials(module: Any, settings: NetSuiteSettings) -> Any:
    key = settings.private_key or ""
    if not key and settings.private_key_file is not None:
        key = _read_key(settings.private_key_file)
    return module.NetSuiteCredentials(
        account_id=settings.account_id,
        client_id=settings.client_id,
        certificate_id=settings.certificate_id,
        private_key_pem=key,
        base_url=settings.url,
        algorithm=settings.algorithm,
    )


def _read_key(path: Path) -> str:
    return path.expanduser().read_text(encoding="utf-8")


WIRINGS: tuple[_Wiring, ...] = (
    _Wiring(
        name="salesforce",
        domain="crm",
        package="system_apis.crm.salesforce",
        build=_salesforce,
        base_url=lambda credentials: credentials.login_url,
        credentials=_salesforce_credentials,
    ),
    _Wiring(
        name="stripe",
        domain="billing",
        package="system_apis.billing.stripe",
        build=_stripe,
        base_url=lambda credentials: credentials.base_url,
        credentials=_stripe_credentials,
    ),
    _Wiring(
        name="zendesk",
        domain="support",
        package="system_apis.support.zendesk",
        build=_zendesk,
        base_url=lambda credentials: credentials.base_url,
        credentials=_zendesk_credentials,
    ),
    _Wiring(
        name="netsuite",
        domain="erp",
        package="system_apis.erp.netsuite",
        build=_netsuite,
        base_url=lambda credentials: credentials.base_url,
        credentials=_netsuite_credentials,
    ),
)


def build_platforms(
    settings: Settings,
    *,
    engine: AsyncEngine,
    redis: Redis | None,
    registry: CollectorRegistry,
    record_calls: bool = True,
    cursor_key: bytes | None = None,
) -> Platforms:
    """Each vendor, live or emulated; `record_calls=False` keeps no `vendor_calls` rows (for
    `erp-gateway doctor`, which may run before the schema exists). `cursor_key` seals the
    list cursors callers are handed (32 bytes; the app derives it from a secret every replica
    shares); without it a key of this process alone (its cursors die with it)."""
    platforms = Platforms(recorder=DatabaseCallRecorder(engine) if record_calls else None)
    seal = CursorSeal(cursor_key if cursor_key is not None else secrets.token_bytes(32))
    platforms.dependencies["cursor_seal"] = Provide(
        _constant(seal), use_cache=True, sync_to_thread=False
    )
    metrics = OutboundMetrics(registry)
    for wiring in WIRINGS:
        vendor = _build_vendor(wiring, settings, redis, metrics, platforms.recorder)
        if vendor is None:
            continue
        platforms.vendors[wiring.name] = vendor
        domain = importlib.import_module(f"system_apis.{wiring.domain}")
        platforms.routers.append(domain.create_router())
        platforms.dependencies[wiring.domain] = Provide(
            _constant(vendor.client), use_cache=True, sync_to_thread=False
        )
        if vendor.emulator is not None:
            platforms.routers.append(_mount(wiring.name, vendor.emulator.vendor))
    return platforms


def _build_vendor(
    wiring: _Wiring,
    settings: Settings,
    redis: Redis | None,
    metrics: OutboundMetrics,
    recorder: DatabaseCallRecorder | None,
) -> Vendor | None:
    client_module = importlib.import_module(f"{wiring.package}.client")
    emulator = None
    transport: httpx.AsyncBaseTransport | None = None
    if settings.is_live(wiring.name):
        credentials = credentials_for(wiring.name, settings)
        base_url = wiring.base_url(credentials)
    elif settings.is_emulated(wiring.name):
        from gateway import sandbox_wiring  # sandbox mode only: a live gateway loads no sandbox

        emulator = sandbox_wiring.create_emulator(wiring.name)
        prefix = f"{SANDBOX_PREFIX}/{wiring.name}"
        base_url = f"{settings.base_url}{prefix}"
        # In-process: each worker talks to its own emulator, never to another worker's.
        transport = httpx.ASGITransport(app=emulator.vendor, root_path=prefix)
        credentials = sandbox_wiring.sandbox_credentials(wiring.name, base_url)
    else:
        return None
    policy = default_policy(wiring.name)
    quota = build_quota(policy, redis=redis) if settings.vendor_quotas else None
    http = build_vendor_http(
        wiring.name,
        base_url=base_url,
        transport=transport,
        policy=policy,
        quota=quota,
        recorder=recorder,
        metrics=metrics,
    )
    client = wiring.build(client_module, http, credentials, quota)
    return Vendor(name=wiring.name, client=client, http=http, emulator=emulator)


def credentials_for(vendor: str, settings: Settings) -> Any:
    """The vendor package's credentials built from the vendor's settings (complete ones:
    `load_settings` refuses a partly configured vendor)."""
    wiring = next(item for item in WIRINGS if item.name == vendor)
    module = importlib.import_module(f"{wiring.package}.client")
    return wiring.credentials(module, settings.vendor(vendor))


def _mount(vendor: str, app: Any) -> ASGIRouteHandler:
    """The emulator as a plain ASGI app: no gateway auth, limits or problem+json there."""
    prefix = f"{SANDBOX_PREFIX}/{vendor}"

    @asgi(
        prefix,
        is_mount=True,
        copy_scope=True,
        opt={"public": True, "rate_limit": False},
        include_in_schema=False,
    )
    async def sandbox(scope: Any, receive: Any, send: Any) -> None:
        # Litestar hands a mount the path below the prefix without setting root_path; the
        # ASGI convention (and the in-process transport) is path = root_path + the rest.
        root = scope.get("root_path", "") + prefix
        scope["root_path"] = root
        scope["path"] = root + scope["path"]
        await app(scope, receive, send)

    return sandbox


def _constant(value: Any) -> Callable[[], Any]:
    def dependency() -> Any:
        return value

    return dependency


def sandbox_banner(settings: Settings) -> list[str]:
    """What `serve` prints about each vendor: live (and where), emulated (with the fixed
    sandbox credentials) or not wired."""
    from gateway import sandbox_wiring  # sandbox mode only: a live gateway loads no sandbox

    mode = "sandbox" if settings.sandbox.enabled else "live"
    lines = [f"mode: {mode} (vendors: live, or emulated with fixed sandbox credentials)"]
    for wiring in WIRINGS:
        name = wiring.name
        if settings.is_live(name):
            where = wiring.base_url(credentials_for(name, settings))
            lines.append(f"  {name:<11} live      {where}")
        elif settings.is_emulated(name):
            prefix = f"{settings.base_url}{SANDBOX_PREFIX}/{name}"
            note = sandbox_wiring.SANDBOX_NOTES[name]
            lines.append(f"  {name:<11} emulated  {prefix:<42} {note}")
        else:
            lines.append(f"  {name:<11} not wired (not in ERPGW_SANDBOX_VENDORS)")
    return lines
