"""Webhook intake: signed vendor events in, durable flows out.

`POST /webhooks/stripe` and `POST /webhooks/zendesk` authenticate by the vendor's signature
(any configured secret, so a rotation keeps the previous one valid; signed within 300 s either
way); `POST /webhooks/salesforce` takes Salesforce Flow HTTP callouts from a registered client
holding `process:write`. Each event is stored once in `webhook_inbox` under (source, sender,
event type, event id) -- a callout's id is its caller's choice, so one client's event never
makes another's a duplicate -- and handed to the flows registered for its type; the answer
(200) comes once those flows are durably enqueued. A delivery of an event already enqueued
answers 200 and starts nothing; one whose earlier delivery stopped before its flows were
enqueued is dispatched again (a flow's business key, e.g. `stripe:{event_id}`, makes that the
same flow).

Flow modules subscribe through the dispatcher::

    def on_ticket_event(event: WebhookEvent) -> FlowStart | None:
        if event.object.get("priority") != "URGENT":
            return None  # not for this flow
        return FlowStart(flow_type="escalation", business_key=f"escalation:{event.subject}",
                         fn=flows.escalate, args=(event,))

    dispatcher.register("zendesk", "zen:event-type:ticket.", on_ticket_event)

Every registration whose prefix starts the event type is asked, in registration order; a
handler may be sync or async, and answers a `FlowStart`, the id of a flow it started itself
(through a service that checks its input first), or None to pass. Salesforce callouts
`opportunity.closed_won` start quote-to-cash through its service's `book` once
`subscribe_quote_to_cash` is called, acting for the API client that sent the callout (a deal
of a legal entity it may not see answers 404, as a missing deal does, and books nothing); an
event nobody wants is stored and acknowledged as `ignored`.

Vendors retry deliveries for days, so events arrive out of order: `AppliedVersions` keeps the
version (event time, then rank) last applied to each object, and a flow applies an event only
when it is not older. The Stripe and Zendesk routes are left out of the OpenAPI document: only
the vendor can produce a valid signature, so partners have nothing to call there.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import msgspec
import sqlalchemy as sa
import structlog
from litestar import Request, Response, Router, post
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.plugins import InitPlugin
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.audit import FlowSource, system_actor
from contracts.context import current_context
from contracts.principal import Principal
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.routes import flow_location
from process_apis.engine.store import insert_for, utcnow, webhook_inbox
from process_apis.webhooks.events import (
    SalesforceCallout,
    WebhookEvent,
    callout_event,
    verify_stripe,
    verify_zendesk,
)
from process_apis.webhooks.versions import AppliedVersions, Claim
from system_apis.support.zendesk.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = [
    "CLOSED_WON",
    "SOURCES",
    "AppliedVersions",
    "Claim",
    "DealDesk",
    "FlowStart",
    "Handler",
    "SalesforceCallout",
    "StripeWebhookAdmin",
    "WebhookDispatcher",
    "WebhookEvent",
    "WebhookIntake",
    "WebhookReceipt",
    "WebhookSource",
    "ZendeskWebhookAdmin",
    "build_intake",
    "create_router",
    "register_sandbox_webhooks",
    "subscribe_quote_to_cash",
]

WebhookSource = Literal["stripe", "zendesk", "salesforce"]
SOURCES: Final[tuple[str, ...]] = ("stripe", "zendesk", "salesforce")
TOLERANCE_SECONDS: Final = 300
WEBHOOK_NAME: Final = "erp-gateway"
ZENDESK_SUBSCRIPTIONS: Final = ("conditional_ticket_events",)
CLOSED_WON: Final = "opportunity.closed_won"
_INBOX_FLOW_ID_LENGTH: Final = 200
_OPT_SIGNED: dict[str, Any] = {"public": True, "rate_limit_group": "webhooks"}
_OPT_CALLOUT: dict[str, Any] = {"scopes": ["process:write"], "rate_limit_group": "webhooks"}

log = structlog.get_logger("process_apis.webhooks.intake")


@dataclass(frozen=True, kw_only=True)
class FlowStart:
    """What a handler asks the intake to start for an event."""

    flow_type: str
    business_key: str
    """The flow's id; the same key for a repeated event means the same flow."""
    fn: Callable[..., Coroutine[Any, Any, Any]]
    args: tuple[Any, ...] = ()
    crm_account: str | None = None
    legal_entity: str | None = None
    trace_keys: Mapping[str, str] = field(default_factory=dict)
    """The deal, customer, subscription or invoice the event is about: the flow joins the
    trace that made them (`FlowEngine.start`)."""
    correlation_id: str | None = None
    """The correlation id the event's object carries in its metadata, if any."""


Answer = FlowStart | str | None
Handler = Callable[[WebhookEvent], Awaitable[Answer] | Answer]
"""Decides whether an event starts a flow (a `FlowStart`, or the id of a flow the handler
started itself); may be a coroutine function."""


class WebhookReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """The intake's answer to a delivery."""

    source: str
    event_id: str
    event_type: str
    status: Literal["enqueued", "ignored"]
    """`ignored`: stored, but no registered flow wanted it."""
    duplicate: bool
    """The event was already enqueued (or ignored) by an earlier delivery."""
    flow_ids: list[str] = []


class WebhookDispatcher:
    """Maps (source, event type prefix) to the handlers that start flows for it."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, str, Handler]] = []

    def register(self, source: str, event_type_prefix: str, handler: Handler) -> None:
        """Ask `handler` about every `source` event whose type starts with the prefix."""
        if source not in SOURCES:
            raise ValueError(f"unknown webhook source {source!r}; expected one of {SOURCES}")
        self._routes.append((source, event_type_prefix, handler))

    def event_types(self, source: str) -> list[str]:
        """The registered prefixes of `source`, in registration order, without repeats."""
        return list(dict.fromkeys(prefix for src, prefix, _ in self._routes if src == source))

    async def starts_for(self, event: WebhookEvent) -> list[FlowStart | str]:
        starts: list[FlowStart | str] = []
        for source, prefix, handler in self._routes:
            if source != event.source or not event.type.startswith(prefix):
                continue
            answer = handler(event)
            start = await answer if inspect.isawaitable(answer) else answer
            if start is not None:
                starts.append(start)
        return starts


@dataclass(eq=False)  # a plugin: Litestar keeps plugins in sets
class WebhookIntake(InitPlugin):
    """Verifies, stores and dispatches vendor events; the routes' one dependency."""

    database: AsyncEngine
    secrets: Mapping[str, Sequence[str]]
    """Signing secrets by source: every one a delivery may be signed with (rotation)."""
    dispatcher: WebhookDispatcher = field(default_factory=WebhookDispatcher)
    tolerance_seconds: int = TOLERANCE_SECONDS

    @property
    def versions(self) -> AppliedVersions:
        return AppliedVersions(self.database)

    @property
    def routers(self) -> list[Router]:
        return [create_router()]

    @property
    def dependencies(self) -> dict[str, Provide]:
        intake = self

        def dependency() -> WebhookIntake:
            return intake

        return {"webhook_intake": Provide(dependency, use_cache=True, sync_to_thread=False)}

    def sandbox_registration(
        self,
        base_url: str,
        *,
        stripe: StripeWebhookAdmin | None,
        zendesk: ZendeskWebhookAdmin | None,
    ) -> Callable[[], Awaitable[None]]:
        """A start-up hook pointing the emulators' webhooks here; the Stripe event types are
        those registered by then (every flow module subscribes before the app starts)."""

        async def register() -> None:
            await register_sandbox_webhooks(
                base_url=base_url,
                stripe_events=self.dispatcher.event_types("stripe"),
                stripe=stripe,
                zendesk=zendesk,
            )

        return register

    def verify_stripe(self, body: bytes, signature: str | None) -> WebhookEvent:
        return verify_stripe(
            body, signature, self.secrets.get("stripe", ()), tolerance=self.tolerance_seconds
        )

    def verify_zendesk(
        self, body: bytes, signature: str | None, timestamp: str | None
    ) -> WebhookEvent:
        return verify_zendesk(
            body,
            signature,
            timestamp,
            self.secrets.get("zendesk", ()),
            tolerance=self.tolerance_seconds,
        )

    async def accept(self, event: WebhookEvent, engine: FlowEngine) -> WebhookReceipt:
        """Store the event once and start the flows that want it (unless an earlier delivery
        already did)."""
        received = time.perf_counter()
        earlier = await self._record(event)
        if earlier is not None:
            return earlier
        starts = await self.dispatcher.starts_for(event)
        flow_ids: list[str] = []
        for start in starts:
            if isinstance(start, str):
                flow_ids.append(start)
                continue
            handle = await engine.start(
                start.flow_type,
                start.business_key,
                start.fn,
                *start.args,
                correlation_id=current_context().correlation_id,
                crm_account=start.crm_account,
                legal_entity=start.legal_entity,
                trace_keys=start.trace_keys,
                record_correlation_id=start.correlation_id,
                source="webhook",
                actor=system_actor(f"webhook:{event.source}"),
            )
            flow_ids.append(handle.flow_id)
        status: Literal["enqueued", "ignored"] = "enqueued" if flow_ids else "ignored"
        await self._settle(event, status, flow_ids)
        engine.observer.webhook_processed(
            event.source,
            processing_seconds=time.perf_counter() - received,
            event_age_seconds=(
                max((utcnow() - event.created).total_seconds(), 0.0) if event.created else None
            ),
        )
        log.info(
            "webhook_accepted", source=event.source, event_id=event.id, type=event.type,
            status=status, flows=flow_ids,
        )
        return WebhookReceipt(
            source=event.source, event_id=event.id, event_type=event.type, status=status,
            duplicate=False, flow_ids=flow_ids,
        )

    async def _record(self, event: WebhookEvent) -> WebhookReceipt | None:
        """Insert the event; the earlier receipt when an earlier delivery finished with it."""
        payload = msgspec.json.encode(event).decode()
        async with self.database.begin() as conn:
            inserted = await conn.execute(
                insert_for(conn, webhook_inbox)
                .values(
                    source=event.source,
                    sender=event.sender_id,
                    event_id=event.id,
                    event_type=event.type,
                    payload=payload,
                    status="received",
                    received_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=_INBOX_KEY)
                .returning(webhook_inbox.c.event_id)
            )
            if inserted.first() is not None:
                return None
            row = (
                await conn.execute(
                    sa.select(webhook_inbox.c.status, webhook_inbox.c.flow_id).where(
                        *_inbox_row(event)
                    )
                )
            ).one()
        if row.status not in ("enqueued", "ignored"):
            return None  # received, but its flows were never enqueued: dispatch again
        return WebhookReceipt(
            source=event.source, event_id=event.id, event_type=event.type, status=row.status,
            duplicate=True, flow_ids=[f for f in (row.flow_id or "").split(" ") if f],
        )

    async def _settle(self, event: WebhookEvent, status: str, flow_ids: list[str]) -> None:
        async with self.database.begin() as conn:
            await conn.execute(
                sa.update(webhook_inbox)
                .where(*_inbox_row(event))
                .values(
                    status=status,
                    flow_id=" ".join(flow_ids)[:_INBOX_FLOW_ID_LENGTH] or None,
                    processed_at=utcnow(),
                )
            )

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Contribute the webhook routes and the intake as a dependency."""
        app_config.route_handlers.extend(self.routers)
        app_config.dependencies.update(self.dependencies)
        return app_config


@post(
    "/stripe",
    opt=_OPT_SIGNED,
    status_code=200,
    include_in_schema=False,
    summary="Stripe events, signed with Stripe-Signature",
)
async def stripe_webhook(
    request: Request[Any, Any, Any],
    webhook_intake: NamedDependency[WebhookIntake],
    flow_engine: NamedDependency[FlowEngine],
) -> Response[WebhookReceipt]:
    event = webhook_intake.verify_stripe(
        await request.body(), request.headers.get("stripe-signature")
    )
    return _answer(await webhook_intake.accept(event, flow_engine))


@post(
    "/zendesk",
    opt=_OPT_SIGNED,
    status_code=200,
    include_in_schema=False,
    summary="Zendesk webhook events, signed with X-Zendesk-Webhook-Signature",
)
async def zendesk_webhook(
    request: Request[Any, Any, Any],
    webhook_intake: NamedDependency[WebhookIntake],
    flow_engine: NamedDependency[FlowEngine],
) -> Response[WebhookReceipt]:
    event = webhook_intake.verify_zendesk(
        await request.body(),
        request.headers.get(SIGNATURE_HEADER),
        request.headers.get(TIMESTAMP_HEADER),
    )
    return _answer(await webhook_intake.accept(event, flow_engine))


@post(
    "/salesforce",
    opt=_OPT_CALLOUT,
    status_code=200,
    summary="Salesforce Flow HTTP callouts (e.g. an opportunity closed won)",
)
async def salesforce_webhook(
    request: Request[Principal, Any, Any],
    data: SalesforceCallout,
    webhook_intake: NamedDependency[WebhookIntake],
    flow_engine: NamedDependency[FlowEngine],
) -> Response[WebhookReceipt]:
    event = callout_event(data, sender=request.user)
    return _answer(await webhook_intake.accept(event, flow_engine))


_INBOX_KEY = [
    webhook_inbox.c.source, webhook_inbox.c.sender, webhook_inbox.c.event_type,
    webhook_inbox.c.event_id,
]


def _inbox_row(event: WebhookEvent) -> list[sa.ColumnElement[bool]]:
    """The inbox row of `event`: its source, sender, type and id."""
    return [
        webhook_inbox.c.source == event.source,
        webhook_inbox.c.sender == event.sender_id,
        webhook_inbox.c.event_type == event.type,
        webhook_inbox.c.event_id == event.id,
    ]


def create_router() -> Router:
    """`/webhooks/{stripe,zendesk,salesforce}`; dependencies `webhook_intake`, `flow_engine`."""
    return Router(
        path="/webhooks",
        route_handlers=[stripe_webhook, zendesk_webhook, salesforce_webhook],
        tags=["webhooks"],
    )


def build_intake(
    *, database: AsyncEngine, secrets: Mapping[str, Sequence[str]] | None = None
) -> WebhookIntake:
    """The intake for the app factory: `secrets` are each source's signing secrets (current
    and previous while rotating); a source without secrets accepts no delivery."""
    chosen = {k: tuple(v) for k, v in (secrets or {}).items() if v}
    return WebhookIntake(database=database, secrets=chosen)


class DealDesk(Protocol):
    """Quote-to-cash as the callout sees it: book a won deal (checked first) into its flow."""

    async def book(
        self, opportunity_id: str, *, principal: Principal, source: FlowSource
    ) -> Any: ...


def subscribe_quote_to_cash(dispatcher: WebhookDispatcher, desk: DealDesk) -> None:
    """Have Salesforce `opportunity.closed_won` callouts book the deal into quote-to-cash
    (`q2c:{opportunity_id}`) for the client that sent the callout: a deal that fails its
    checks answers the callout 422, one the client may not see 404 (as a missing one)."""

    async def on_closed_won(event: WebhookEvent) -> str | None:
        if event.type != CLOSED_WON or not event.subject or event.sender is None:
            return None  # only a client's callout books a deal; nobody else announces one
        booked = await desk.book(event.subject, principal=event.sender, source="callout")
        return str(booked.id)

    dispatcher.register("salesforce", CLOSED_WON, on_closed_won)


class StripeWebhookAdmin(Protocol):
    """The Stripe client's webhook endpoint operations."""

    async def list_webhook_endpoints(self) -> Sequence[Any]: ...

    async def create_webhook_endpoint(
        self,
        url: str,
        *,
        enabled_events: Sequence[str],
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Any: ...


class ZendeskWebhookAdmin(Protocol):
    """The Zendesk client's webhook operations."""

    async def list_webhooks(self) -> Sequence[Any]: ...

    async def create_webhook(
        self, *, name: str, endpoint: str, subscriptions: Collection[str] = ...
    ) -> Any: ...


async def register_sandbox_webhooks(
    *,
    base_url: str,
    stripe_events: Sequence[str],
    stripe: StripeWebhookAdmin | None = None,
    zendesk: ZendeskWebhookAdmin | None = None,
) -> None:
    """Point the emulators' webhooks at this gateway (`{base_url}/webhooks/<vendor>`), once:
    an endpoint already registered for the URL is left as it is. A failure is logged, not
    raised: the gateway serves without deliveries rather than not at all."""
    root = base_url.rstrip("/")
    if stripe is not None and stripe_events:
        await _quietly("stripe", _register_stripe(stripe, f"{root}/webhooks/stripe", stripe_events))
    if zendesk is not None:
        await _quietly("zendesk", _register_zendesk(zendesk, f"{root}/webhooks/zendesk"))


async def _register_stripe(client: StripeWebhookAdmin, url: str, events: Sequence[str]) -> None:
    existing = await client.list_webhook_endpoints()
    if any(endpoint.url == url and endpoint.enabled for endpoint in existing):
        return
    # Stripe's enabled_events are exact names or "*": a registered prefix needs "*".
    exact = all(event and not event.endswith((".", "*")) for event in events)
    await client.create_webhook_endpoint(
        url, enabled_events=list(events) if exact else ["*"], description=WEBHOOK_NAME
    )


async def _register_zendesk(client: ZendeskWebhookAdmin, url: str) -> None:
    existing = await client.list_webhooks()
    if any(hook.endpoint == url and hook.status == "active" for hook in existing):
        return
    await client.create_webhook(
        name=WEBHOOK_NAME, endpoint=url, subscriptions=ZENDESK_SUBSCRIPTIONS
    )


async def _quietly(vendor: str, registration: Awaitable[None]) -> None:
    try:
        await registration
    except Exception as exc:
        log.warning("webhook_registration_failed", vendor=vendor, error=str(exc))


def _answer(receipt: WebhookReceipt) -> Response[WebhookReceipt]:
    headers = {"Location": flow_location(receipt.flow_ids[0])} if receipt.flow_ids else None
    return Response(receipt, status_code=200, headers=headers)
