"""The four platforms behind the system APIs: for each, the real vendor when its credentials
are configured, otherwise its built-in emulator, mounted under `/_sandbox/<vendor>` outside
the gateway's policies and reached by the vendor client in-process.

Each vendor client gets an httpx client from `system_apis.outbound.build_vendor_http` (timeouts,
retries, circuit breaker, quota budget, call recording, metrics); the client is provided to
the routes as its domain's port (`crm`, `billing`, `support`, `erp`).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from litestar import asgi
from litestar.di import Provide
from litestar.handlers import ASGIRouteHandler
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.settings import Settings
from gateway.vendor_calls import DatabaseCallRecorder
from sandbox import credentials as sandbox_values
from system_apis.billing.stripe.client import StripeCredentials
from system_apis.crm.salesforce.client import SalesforceCredentials
from system_apis.erp.netsuite.client import NetSuiteCredentials
from system_apis.outbound import (
    OutboundMetrics,
    Platform,
    QuotaBudget,
    build_quota,
    build_vendor_http,
    default_policy,
)
from system_apis.support.zendesk.client import ZendeskCredentials

__all__ = [
    "Platforms",
    "build_platforms",
    "emulator_app",
    "netsuite_sandbox_credentials",
    "salesforce_sandbox_credentials",
    "sandbox_banner",
    "sandbox_credentials",
    "stripe_sandbox_credentials",
    "zendesk_sandbox_credentials",
]

SANDBOX_PREFIX = "/_sandbox"


@dataclass
class Vendor:
    """One platform as wired: its client (the domain's port), and its emulator if emulated."""

    name: Platform
    client: Any
    http: httpx.AsyncClient
    emulator: Any | None = None


@dataclass
class Platforms:
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


WIRINGS: tuple[_Wiring, ...] = (
    _Wiring(
        name="salesforce",
        domain="crm",
        package="system_apis.crm.salesforce",
        build=_salesforce,
        base_url=lambda credentials: credentials.login_url,
    ),
    _Wiring(
        name="stripe",
        domain="billing",
        package="system_apis.billing.stripe",
        build=_stripe,
        base_url=lambda credentials: credentials.base_url,
    ),
    _Wiring(
        name="zendesk",
        domain="support",
        package="system_apis.support.zendesk",
        build=_zendesk,
        base_url=lambda credentials: credentials.base_url,
    ),
    _Wiring(
        name="netsuite",
        domain="erp",
        package="system_apis.erp.netsuite",
        build=_netsuite,
        base_url=lambda credentials: credentials.base_url,
    ),
)


def build_platforms(
    settings: Settings,
    *,
    engine: AsyncEngine,
    redis: Redis | None,
    registry: CollectorRegistry,
) -> Platforms:
    platforms = Platforms(recorder=DatabaseCallRecorder(engine))
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
    credentials = client_module.credentials_from_env(settings.env)
    emulator = None
    transport: httpx.AsyncBaseTransport | None = None
    if credentials is None:
        if not settings.emulators:
            return None
        emulator = importlib.import_module(_EMULATOR_MODULES[wiring.name]).create_emulator()
        prefix = f"{SANDBOX_PREFIX}/{wiring.name}"
        base_url = f"{settings.base_url}{prefix}"
        # In-process: each worker talks to its own emulator, never to another worker's.
        transport = httpx.ASGITransport(app=emulator.vendor, root_path=prefix)
        credentials = sandbox_credentials(wiring.name, base_url)
    else:
        base_url = wiring.base_url(credentials)
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


_EMULATOR_MODULES = {
    "salesforce": "sandbox.salesforce",
    "stripe": "sandbox.stripe",
    "zendesk": "sandbox.zendesk",
    "netsuite": "sandbox.netsuite",
}
"""Imported only when an emulator is wanted, so a live gateway loads none of them."""


def salesforce_sandbox_credentials(base_url: str) -> SalesforceCredentials:
    """The Salesforce emulator's sandbox app (client credentials), reached at `base_url`."""
    return SalesforceCredentials(
        login_url=base_url.rstrip("/"),
        client_id=sandbox_values.SALESFORCE.client_id,
        client_secret=sandbox_values.SALESFORCE.client_secret,
        audience=base_url.rstrip("/"),
    )


def stripe_sandbox_credentials(base_url: str) -> StripeCredentials:
    """The Stripe emulator's secret key and webhook secret, reached at `base_url`."""
    return StripeCredentials(
        secret_key=sandbox_values.STRIPE.secret_key,
        base_url=base_url,
        webhook_secrets=(sandbox_values.STRIPE.webhook_secret,),
    )


def zendesk_sandbox_credentials(base_url: str) -> ZendeskCredentials:
    """The Zendesk emulator's API user and webhook secret, reached at `base_url`."""
    return ZendeskCredentials(
        base_url=base_url.rstrip("/"),
        email=sandbox_values.ZENDESK.email,
        api_token=sandbox_values.ZENDESK.api_token,
        webhook_secrets=(sandbox_values.ZENDESK.webhook_secret,),
    )


def netsuite_sandbox_credentials(base_url: str) -> NetSuiteCredentials:
    """The NetSuite emulator's sandbox integration (certificate and key), reached at `base_url`."""
    return NetSuiteCredentials(
        account_id=sandbox_values.NETSUITE.account_id,
        client_id=sandbox_values.NETSUITE.client_id,
        certificate_id=sandbox_values.NETSUITE.certificate_id,
        private_key_pem=sandbox_values.NETSUITE.private_key_pem,
        base_url=base_url.rstrip("/"),
    )


_SANDBOX_CREDENTIALS: dict[str, Callable[[str], Any]] = {
    "salesforce": salesforce_sandbox_credentials,
    "stripe": stripe_sandbox_credentials,
    "zendesk": zendesk_sandbox_credentials,
    "netsuite": netsuite_sandbox_credentials,
}


def sandbox_credentials(vendor: str, base_url: str) -> Any:
    """The vendor client's credentials for its emulator at `base_url` (`sandbox.credentials`)."""
    return _SANDBOX_CREDENTIALS[vendor](base_url)


_UNLIMITED: dict[str, dict[str, Any]] = {
    # What turns each emulator's own rate or concurrency limit off (benchmarks, load tests).
    "salesforce": {"daily_api_limit": 1_000_000_000},
    "stripe": {"rate_limit_per_second": None},
    "zendesk": {"rate_limit_per_minute": None},
    "netsuite": {"concurrency_limit": None},
}


def emulator_app(vendor: str, *, limits: bool = True) -> Any:
    """One vendor's emulator as a standalone ASGI app (`erp-gateway emulator <vendor>`);
    `limits=False` turns off the vendor's own rate or concurrency limit."""
    module = importlib.import_module(_EMULATOR_MODULES[vendor])
    kwargs: dict[str, Any] = {} if limits else _UNLIMITED[vendor]
    return module.create_emulator(**kwargs).vendor


def sandbox_banner(base_url: str) -> list[str]:
    """What `make run` prints about the emulators and their fixed sandbox credentials."""
    return [
        "vendor emulators (sandbox credentials are fixed; see README):",
        f"  salesforce  {base_url}/_sandbox/salesforce   "
        "client erpgw-sandbox / erpgw-sandbox-secret",
        f"  stripe      {base_url}/_sandbox/stripe       key sk_test_erpgw_sandbox, "
        "webhook secret whsec_erpgw_sandbox",
        f"  zendesk     {base_url}/_sandbox/zendesk      "
        "sandbox@erpgw.test / token erpgw-sandbox-token",
        f"  netsuite    {base_url}/_sandbox/netsuite     client erpgw-sandbox "
        "(certificate key in sandbox.credentials)",
    ]
