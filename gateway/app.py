"""The composition root: `create_app(settings)` builds every adapter and policy and lists the
plugins that mount them (the gateway core, then each layer's feature). Nothing else in the
project wires real adapters together."""

from __future__ import annotations

import hashlib
import hmac
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from redis.asyncio import Redis

from experience_apis import (
    ExperienceConfig,
    build_experience_layer,
    console_secret,
)
from experience_apis.console import OIDC_CALLBACK_PATH, OidcConfig, RoleGrant, vendor_links
from gateway import docs, storage
from gateway.audit import AuditLog
from gateway.auth import (
    ExternalIdentityProvider,
    TokenIssuer,
    TokenValidator,
)
from gateway.business_metrics import BusinessMetrics, ExceptionBacklog
from gateway.client_address import ClientAddress
from gateway.clients import ClientRegistry
from gateway.core import FreezeLongLivedObjects, Gateway, GatewayCore
from gateway.edge import EdgeMiddleware
from gateway.idempotency import IdempotencyStore
from gateway.keys import KeyStore
from gateway.logging import AccessLog, configure_logging
from gateway.metrics import GatewayMetrics
from gateway.modes import check_mode, webhook_secrets
from gateway.platforms import build_platforms
from gateway.rate_limits import (
    RateLimitConfig,
    RateLimiter,
    parse_tiers,
    storage_uri_for,
)
from gateway.request_bodies import GatewayRequest
from gateway.settings import Settings, load_settings
from gateway.versioning import DEFAULT_LIFECYCLE, VersionRegistry
from process_apis.amendment import routes as subscription_amendment_api
from process_apis.engine.routes import build_process_layer
from process_apis.escalation import routes as escalation_api
from process_apis.payment_failure import flow as payment_failure
from process_apis.quote_to_cash.routes import QuoteToCashService
from process_apis.quote_to_cash.routes import build as build_quote_to_cash
from process_apis.reconciliation import routes as reconciliation_api
from process_apis.renewals import routes as renewals_api
from process_apis.renewals.risk import UsagePeriod, parse_rules
from process_apis.usage import routes as usage_api
from process_apis.usage.history import UsageRecords
from process_apis.webhooks.intake import (
    DISPATCH_FLOW_TYPE,
    WebhookIntake,
    build_intake,
    subscribe_quote_to_cash,
)
from system_apis.billing.port import SubscriptionRenewals
from system_apis.crm.port import CrmContractsPort
from system_apis.tax import DEFAULT_RULES, TaxRules

__all__ = ["create_app", "create_app_from_env"]

VERSION = "0.1.0"
EXECUTOR_SLOT_LOCKS = Path(tempfile.gettempdir()) / "erp-gateway-executors"
"""One directory per host for the executor slots' locks, whatever each process's var dir:
two processes on this host that could hold the same slot must see the same lock."""


def create_app(settings: Settings | None = None) -> Litestar:
    """The gateway for `settings` (default: the environment's).

    Raises:
        SettingsError: a live gateway without complete credentials and webhook secrets.
    """
    settings = settings or load_settings()
    check_mode(settings)
    access_log = configure_logging(fmt=settings.log_format, level=settings.log_level)
    gateway = _build(settings)
    app = Litestar(
        plugins=[
            GatewayCore(gateway),  # first: migrates the database, makes keys; closes last
            *gateway.features,  # system, process and experience layers, in start-up order
            FreezeLongLivedObjects(),  # last: everything start-up built lives for ever
        ],
        openapi_config=docs.openapi_config(gateway.versions, version=VERSION),
        request_max_body_size=settings.max_body_bytes,
        request_class=GatewayRequest,
        debug=False,
    )
    app.state.gateway = gateway
    app.asgi_handler = _edge(app.asgi_handler, gateway, access_log if settings.access_log else None)
    # The last lines of the buffered access log are written when the app stops.
    app.on_shutdown.append(access_log.flush)
    return app


def create_app_from_env() -> Litestar:
    """Factory for ASGI servers (`granian --factory gateway.app:create_app_from_env`)."""
    return create_app(load_settings())


def _build(settings: Settings) -> Gateway:
    engine = storage.create_engine(settings.database_url, pool_size=settings.database_pool_size)
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
    cookie_key = console_secret(settings.var_dir, settings.experience.console_secret)
    audit = AuditLog(engine)
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
        audit=audit,
        rate_limiter=RateLimiter(_rate_limit_config(settings), registry=metrics.registry),
        versions=VersionRegistry((*DEFAULT_LIFECYCLE, *settings.api_versions)),
        idempotency=IdempotencyStore(
            engine, retention_seconds=settings.idempotency_retention_seconds
        ),
        platforms=build_platforms(
            settings,
            engine=engine,
            redis=redis,
            registry=metrics.registry,
            cursor_key=_derived_key(cookie_key, "list cursors"),
        ),
        experience=build_experience_layer(
            engine=engine,
            redis=redis,
            config=_experience_config(settings),
            authenticator=clients,
            console_secret=cookie_key,
            audit=audit,
        ),
        process=build_process_layer(
            database_url=settings.database_url,
            executor_id=settings.process.executor_id,
            step_wait_ceiling_seconds=settings.process.step_wait_ceiling_seconds,
            # The machine's name, not the bind address (0.0.0.0 on every container): an
            # executor slot is taken over on a restart of this host, port and worker slot.
            executor_prefix=f"{socket.gethostname()}:{settings.port}",
            slot_lock_dir=EXECUTOR_SLOT_LOCKS,
            engine=engine,
            registry=metrics.registry,
            worker_concurrency=settings.process.queue_concurrency,
            global_concurrency=settings.process.queue_global_concurrency,
            poll_interval_seconds=settings.process.queue_poll_seconds,
            observer=BusinessMetrics(metrics.registry),
            pool_size=settings.database_pool_size,
            audit=audit,
        ),
        redis=redis,
        http=http,
    )
    gateway.quote_to_cash = _quote_to_cash(gateway)
    gateway.escalation = _escalation(gateway)
    if gateway.experience.console is not None and gateway.escalation is not None:
        gateway.experience.console.credits = gateway.escalation.service
    gateway.amendments = _amendments(gateway)
    gateway.webhooks = _webhooks(gateway)
    gateway.reconciliation = _reconciliation(gateway)
    gateway.usage = _usage(gateway)
    gateway.renewals = _renewals(gateway)
    backlog = ExceptionBacklog(engine)
    metrics.add_scrape_collector(backlog, backlog.refresh)
    if gateway.reconciliation is not None:
        # The latest completed run as the database holds it, whichever worker ran it.
        metrics.before_scrape(gateway.reconciliation.gauges.refresh)
    return gateway


def _derived_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose from a secret the gateway keeps (HMAC-SHA256 as a KDF):
    each purpose gets its own key, and knowing one tells nothing of the secret or the others."""
    return hmac.new(secret, f"erp-gateway/{purpose}".encode(), hashlib.sha256).digest()


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
        # The demo company's table (see system_apis/tax/rules.py); a tax engine adapter
        # implementing TaxPort replaces it here.
        tax=TaxRules(DEFAULT_RULES),
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
        audit=gateway.audit,
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


def _reconciliation(gateway: Gateway) -> reconciliation_api.ReconciliationWiring | None:
    """Reconciliation, its schedule and its repairs, when the CRM, billing and the ERP are
    wired; built before the flow engine launches."""
    ports = {name: vendor.client for name, vendor in gateway.platforms.vendors.items()}
    if not {"salesforce", "stripe", "netsuite"} <= ports.keys():
        return None
    chosen = gateway.settings.process
    return reconciliation_api.mount(
        engine=gateway.process.engine,
        database=gateway.engine,
        crm=ports["salesforce"],
        billing=ports["stripe"],
        erp=ports["netsuite"],
        interval_seconds=chosen.reconcile_interval_seconds,
        settle_seconds=chosen.reconcile_settle_seconds,
        full_every_seconds=chosen.reconcile_full_every_seconds,
        registry=gateway.metrics.registry,
    )


def _usage(gateway: Gateway) -> usage_api.UsageWiring | None:
    """Usage intake and its pushes to billing, when billing is wired; built before the flow
    engine launches."""
    vendor = gateway.platforms.vendors.get("stripe")
    if vendor is None:
        return None
    chosen = gateway.settings.process
    return usage_api.mount(
        engine=gateway.process.engine,
        database=gateway.engine,
        billing=vendor.client,
        flush_seconds=chosen.usage_flush_seconds,
        grace_seconds=chosen.usage_grace_seconds,
    )


def _renewals(gateway: Gateway) -> renewals_api.RenewalsWiring | None:
    """The renewal scan, its schedule and the won and lost renewals, when quote-to-cash is
    wired and the CRM keeps contracts and billing can change a subscription at a boundary;
    built before the flow engine launches. Won renewals the won-deal poller finds are handed
    to it."""
    ports = {name: vendor.client for name, vendor in gateway.platforms.vendors.items()}
    crm, billing = ports.get("salesforce"), ports.get("stripe")
    q2c = gateway.quote_to_cash
    if (
        q2c is None
        or not isinstance(crm, CrmContractsPort)
        or not isinstance(billing, SubscriptionRenewals)
    ):
        return None
    chosen = gateway.settings.process
    wiring = renewals_api.mount(
        engine=gateway.process.engine,
        reader=gateway.process.reader,
        database=gateway.engine,
        crm=ports["salesforce"],
        contracts=crm,
        billing=ports["stripe"],
        renewals=billing,
        support=ports.get("zendesk"),
        quote_to_cash=q2c.flows,
        orders=q2c.desk,
        lead_days=chosen.renewal_lead_days,
        interval_seconds=chosen.renewal_scan_interval_seconds,
        usage=_RenewalUsage(UsageRecords(gateway.engine)),
        rules=parse_rules(chosen.renewal_risk_rules),
    )
    q2c.renewals = wiring.service
    return wiring


class _RenewalUsage:
    """The usage records as the renewal desk reads them (`UsageHistory`)."""

    def __init__(self, records: UsageRecords) -> None:
        self._records = records

    async def last_periods(
        self, subscription_id: str, periods: int = 3
    ) -> list[UsagePeriod] | None:
        closed = await self._records.closed_periods(subscription_id, periods)
        if closed is None:
            return None
        return [UsagePeriod(period_start=start, quantity=units) for start, units in closed]


def _webhooks(gateway: Gateway) -> WebhookIntake:
    """Webhook intake and the payment flows Stripe's events start (built before the flow
    engine launches); quote-to-cash and escalation subscribe to its dispatcher. With the
    emulators, their webhooks are pointed at this gateway when the platforms start."""
    chosen = gateway.settings.process
    intake = build_intake(
        database=gateway.engine,
        secrets=webhook_secrets(gateway.settings),
        engine=gateway.process.engine,
        poll_seconds=chosen.webhook_dispatch_poll_seconds,
        attempts=chosen.webhook_dispatch_attempts,
        concurrency=chosen.webhook_dispatch_concurrency,
        defer_seconds=chosen.webhook_dispatch_defer_seconds,
        max_batch=chosen.webhook_inbox_batch,
    )
    # An event whose flows could not be started is retried by queueing it again.
    gateway.process.operations.take_decisions(DISPATCH_FLOW_TYPE, intake)
    vendors = gateway.platforms.vendors
    ports = {name: vendor.client for name, vendor in vendors.items()}
    if {"stripe", "netsuite", "salesforce"} <= ports.keys():
        payment_failure.build(
            engine=gateway.process.engine,
            intake=intake,
            billing=ports["stripe"],
            erp=ports["netsuite"],
            crm=ports["salesforce"],
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
    salesforce = vendors.get("salesforce")
    if gateway.quote_to_cash is not None and salesforce is not None and salesforce.emulator:
        gateway.platforms.on_start.append(_salesforce_callouts(gateway, salesforce.emulator))
    return intake


def _salesforce_callouts(gateway: Gateway, emulator: Any) -> Callable[[], Awaitable[None]]:
    """A start-up hook pointing the Salesforce emulator's Closed Won callout at this gateway."""

    async def connect() -> None:
        from gateway import sandbox_wiring  # sandbox mode only: a live gateway loads no sandbox

        await sandbox_wiring.connect_salesforce_callouts(
            emulator,
            database=gateway.engine,
            base_url=gateway.settings.base_url,
            var_dir=gateway.settings.var_dir,
        )

    return connect


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
        oidc=_console_oidc(settings),
        # People sign in through the identity provider; a client's id and secret only where
        # nothing is real (sandbox mode).
        clients_allowed=settings.sandbox.enabled,
    )


def _console_oidc(settings: Settings) -> OidcConfig | None:
    chosen = settings.experience
    if not (
        chosen.console_oidc_issuer
        and chosen.console_oidc_client_id
        and chosen.console_oidc_client_secret
    ):
        return None
    return OidcConfig(
        issuer=chosen.console_oidc_issuer,
        client_id=chosen.console_oidc_client_id,
        client_secret=chosen.console_oidc_client_secret,
        redirect_uri=f"{settings.base_url}{OIDC_CALLBACK_PATH}",
        roles=tuple(
            RoleGrant(group=role.group, scopes=role.scopes, entities=role.entities)
            for role in chosen.console_oidc_roles
        ),
        groups_claim=chosen.console_oidc_groups_claim,
    )


def _rate_limit_config(settings: Settings) -> RateLimitConfig:
    return RateLimitConfig(
        tiers=parse_tiers(settings.rate_limit_tiers),
        strategy=settings.rate_limit_strategy,
        storage_uri=storage_uri_for(settings.redis_url),
        on_store_error=settings.rate_limit_on_store_error,
        client_address=ClientAddress(settings.trusted_proxies),
    )


def _edge(inner: Any, gateway: Gateway, access_log: AccessLog | None) -> Any:
    """Wrap the app in what every request passes before routing (see gateway/edge.py)."""
    tiers = gateway.rate_limiter.config.tiers.rates
    return EdgeMiddleware(
        inner,
        max_body_bytes=gateway.settings.max_body_bytes,
        body_read_timeout=gateway.settings.body_read_timeout_seconds,
        metrics=gateway.metrics,
        tiers=frozenset(name for name in tiers if "." not in name),
        access_log=access_log,
    )
