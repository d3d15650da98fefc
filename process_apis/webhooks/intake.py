"""Webhook intake: signed vendor events in, durably stored, dispatched into flows.

`POST /webhooks/stripe` and `POST /webhooks/zendesk` authenticate by the vendor's signature
(any configured secret, so a rotation keeps the previous one valid; signed within 300 s either
way); `POST /webhooks/salesforce` takes Salesforce Flow HTTP callouts from a registered client
holding `process:write`. Each event is stored once in `webhook_inbox` under (source, sender,
event type, event id) -- a callout's id is its caller's choice, so one client's event never
makes another's a duplicate.

Stripe and Zendesk retry deliveries and send them in bursts, so their events are stored and
answered at once: the answer (200, `status: "received"`) comes once the event's row is
committed, concurrent deliveries sharing one INSERT (`process_apis.webhooks.inbox`), and a
delivery that cannot be stored answers 503 with Retry-After so the vendor sends it again. The
dispatcher in the background (`process_apis.webhooks.dispatch`) then hands each stored event to
the flows registered for its type. A repeated delivery answers `duplicate: true` with the
event's status: once dispatched, `enqueued` (its flow ids, and `Location` of the first flow) or
`ignored`. Salesforce callouts are few and their sender waits for the verdict (a deal that
fails its checks answers 422, one the client may not see 404), so they are dispatched while
the callout waits, as their answer.

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
event nobody wants is stored and settled as `ignored`.

Vendors retry deliveries for days, so events arrive out of order: `AppliedVersions` keeps the
version (event time, then rank) last applied to each object, and a flow applies an event only
when it is not older. The Stripe and Zendesk routes are left out of the OpenAPI document: only
the vendor can produce a valid signature, so partners have nothing to call there.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import msgspec
import sqlalchemy as sa
import structlog
from litestar import Litestar, Request, Response, Router, asgi, post
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.exceptions import MethodNotAllowedException
from litestar.handlers import ASGIRouteHandler
from litestar.plugins import InitPlugin
from litestar.types import Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.audit import FlowSource
from contracts.errors import InvalidRequest, ServiceUnavailable
from contracts.principal import Principal
from process_apis.engine.background import running_in_background
from process_apis.engine.durable import Decision
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.routes import flow_location
from process_apis.engine.store import utcnow, webhook_inbox
from process_apis.exceptions import ExceptionEntry
from process_apis.webhooks.dispatch import (
    DEFER_SECONDS,
    DISPATCH_FLOW_TYPE,
    LEASE_SECONDS,
    InboxDispatcher,
    start_flows,
)
from process_apis.webhooks.events import (
    SalesforceCallout,
    SignedEvent,
    WebhookEvent,
    callout_event,
    verify_stripe,
    verify_zendesk,
)
from process_apis.webhooks.inbox import FLOW_ID_LENGTH, InboxKey, InboxWriter, inbox_row, read_row
from process_apis.webhooks.registry import SOURCES, FlowStart, Handler, WebhookDispatcher
from process_apis.webhooks.versions import AppliedVersions, Claim
from system_apis.support.zendesk.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = [
    "CLOSED_WON",
    "DISPATCH_FLOW_TYPE",
    "SOURCES",
    "AppliedVersions",
    "Claim",
    "DealDesk",
    "FlowStart",
    "Handler",
    "InboxDispatcher",
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
TOLERANCE_SECONDS: Final = 300
WEBHOOK_NAME: Final = "erp-gateway"
ZENDESK_SUBSCRIPTIONS: Final = ("conditional_ticket_events",)
CLOSED_WON: Final = "opportunity.closed_won"
STORE_RETRY_AFTER_SECONDS: Final = 5
"""When a vendor should send a delivery again that could not be stored."""
_DISPATCHED: Final = frozenset({"enqueued", "ignored"})
_OPT_SIGNED: dict[str, Any] = {"public": True, "rate_limit_group": "webhooks"}
_OPT_CALLOUT: dict[str, Any] = {"scopes": ["process:write"], "rate_limit_group": "webhooks"}

log = structlog.get_logger("process_apis.webhooks.intake")

ReceiptStatus = Literal["received", "enqueued", "ignored", "failed"]


class WebhookReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """The intake's answer to a delivery."""

    source: str
    event_id: str
    event_type: str
    status: ReceiptStatus
    """`received`: stored, its flows not started yet; `enqueued`: its flows are; `ignored`:
    stored, but no registered flow wanted it; `failed`: its flows could not be started (the
    integration team has an exception for it)."""
    duplicate: bool
    """An earlier delivery stored the event already."""
    flow_ids: list[str] = []


@dataclass(eq=False)  # a plugin: Litestar keeps plugins in sets
class WebhookIntake(InitPlugin):
    """Verifies and stores vendor events, and dispatches them into flows; the routes' one
    dependency."""

    database: AsyncEngine
    secrets: Mapping[str, Sequence[str]]
    """Signing secrets by source: every one a delivery may be signed with (rotation)."""
    dispatcher: WebhookDispatcher = field(default_factory=WebhookDispatcher)
    """The handlers: who wants which event."""
    tolerance_seconds: int = TOLERANCE_SECONDS
    writer: InboxWriter | None = None
    inbox: InboxDispatcher | None = None
    """The background dispatcher of stored events (None: stored events wait for another
    process's)."""

    def __post_init__(self) -> None:
        if self.writer is None:
            self.writer = InboxWriter(self.database)

    @property
    def versions(self) -> AppliedVersions:
        return AppliedVersions(self.database)

    @property
    def routers(self) -> list[Router]:
        return [create_router(self)]

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

    def verify_stripe(self, body: bytes, signature: str | None) -> SignedEvent:
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
        """Take a delivery: a Salesforce callout is dispatched on `engine` as its answer;
        any other event is stored for the dispatcher (`receive`)."""
        if event.source == "salesforce":
            return await self.dispatch_now(event, engine)
        return await self.receive(event)

    async def receive(self, event: WebhookEvent | SignedEvent) -> WebhookReceipt:
        """Store the event (once committed) and answer; the dispatcher starts its flows.

        Raises:
            ServiceUnavailable: the event could not be stored (the vendor sends it again).
        """
        new = await self._store(event)
        if new:
            if self.inbox is not None:
                self.inbox.wake()
            return _receipt(event, "received", duplicate=False)
        return await self._earlier(event)

    async def dispatch_now(self, event: WebhookEvent, engine: FlowEngine) -> WebhookReceipt:
        """Store the event and start its flows while the caller waits. The row is held for
        this request (a lease), so the dispatcher takes it over only if this process dies;
        a handler's refusal removes it (nothing was accepted) and reaches the caller."""
        holder = f"inline:{uuid.uuid4().hex}"
        if not await self._store(event, lease_owner=holder):
            earlier = await self._earlier(event)
            if earlier.status in _DISPATCHED:
                return earlier
        try:
            flow_ids = await start_flows(self.dispatcher, event, engine)
        except BaseException:
            async with self.database.begin() as conn:
                await conn.execute(
                    sa.delete(webhook_inbox).where(
                        *inbox_row(InboxKey.of(event)), webhook_inbox.c.lease_owner == holder
                    )
                )
            raise
        status: Literal["enqueued", "ignored"] = "enqueued" if flow_ids else "ignored"
        async with self.database.begin() as conn:
            await conn.execute(
                sa.update(webhook_inbox)
                .where(
                    *inbox_row(InboxKey.of(event)),
                    webhook_inbox.c.status.in_(("received", "failed")),
                )
                .values(
                    status=status,
                    flow_id=" ".join(flow_ids)[:FLOW_ID_LENGTH] or None,
                    processed_at=utcnow(),
                    lease_owner=None,
                    lease_until=None,
                )
            )
        return _receipt(event, status, duplicate=False, flow_ids=flow_ids)

    async def decide(self, entry: ExceptionEntry, decision: Decision) -> None:
        """An operator's decision on an event whose flows could not be started."""
        if self.inbox is None:
            raise ServiceUnavailable("No webhook dispatcher runs in this process")
        await self.inbox.decide(entry, decision)

    async def _store(
        self, event: WebhookEvent | SignedEvent, *, lease_owner: str | None = None
    ) -> bool:
        assert self.writer is not None
        try:
            return await self.writer.store(
                event, lease_owner=lease_owner, lease_seconds=LEASE_SECONDS
            )
        except Exception as exc:
            log.warning(
                "webhook_not_stored", source=event.source, event_id=event.id, error=str(exc)
            )
            raise ServiceUnavailable(
                f"The {event.source} event {event.id} could not be stored; send it again",
                retry_after=STORE_RETRY_AFTER_SECONDS,
                code="inbox_unavailable",
            ) from exc

    async def _earlier(self, event: WebhookEvent | SignedEvent) -> WebhookReceipt:
        """The receipt of an event an earlier delivery stored."""
        async with self.database.connect() as conn:
            row = await read_row(conn, InboxKey.of(event))
        status: ReceiptStatus = row.status if row is not None else "received"
        flow_ids = [f for f in (row.flow_id or "").split(" ") if f] if row is not None else []
        return _receipt(event, status, duplicate=True, flow_ids=flow_ids)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Contribute the webhook routes, the intake as a dependency, and the dispatcher in
        the app's lifespan."""
        app_config.route_handlers.extend(self.routers)
        app_config.dependencies.update(self.dependencies)
        app_config.lifespan.append(self._lifespan)
        return app_config

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Litestar) -> AsyncIterator[None]:
        loops = [self.inbox.run()] if self.inbox is not None else []
        async with running_in_background(*loops):
            yield


def signed_route(
    path: str,
    intake: WebhookIntake,
    verify: Callable[[bytes, Scope], WebhookEvent | SignedEvent],
) -> ASGIRouteHandler:
    """`POST {path}` for a vendor that signs its deliveries: `verify` turns the body and the
    request's headers into the event, which is stored and answered with its receipt.

    A plain ASGI handler rather than a Litestar HTTP one: vendors send these in bursts of
    thousands, and the route needs neither a request object, dependencies nor a response
    model, which cost about a tenth of a delivery's CPU (`bench/webhooks.py`). The gateway's
    policies (the `webhooks` rate-limit group, tracing, metrics, problem answers) apply as to
    any route."""

    async def deliver(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") != "POST":
            raise MethodNotAllowedException(headers={"Allow": "POST"})
        event = verify(await _read_body(receive), scope)
        await _send_receipt(send, await intake.receive(event))

    return asgi(path, opt=_OPT_SIGNED, copy_scope=False, name=f"webhook:{path.strip('/')}")(deliver)


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
    return _answer(await webhook_intake.dispatch_now(event, flow_engine))


def create_router(intake: WebhookIntake) -> Router:
    """`/webhooks/{stripe,zendesk,salesforce}` for `intake`; the callout's dependencies are
    `webhook_intake` and `flow_engine`."""

    def stripe(body: bytes, scope: Scope) -> SignedEvent:
        return intake.verify_stripe(body, _header(scope, b"stripe-signature"))

    def zendesk(body: bytes, scope: Scope) -> WebhookEvent:
        return intake.verify_zendesk(
            body,
            _header(scope, SIGNATURE_HEADER.lower().encode()),
            _header(scope, TIMESTAMP_HEADER.lower().encode()),
        )

    return Router(
        path="/webhooks",
        route_handlers=[
            signed_route("/stripe", intake, stripe),
            signed_route("/zendesk", intake, zendesk),
            salesforce_webhook,
        ],
        tags=["webhooks"],
    )


def build_intake(
    *,
    database: AsyncEngine,
    secrets: Mapping[str, Sequence[str]] | None = None,
    engine: FlowEngine | None = None,
    poll_seconds: float = 2.0,
    attempts: int = 5,
    concurrency: int = 4,
    max_batch: int = 500,
    defer_seconds: float = DEFER_SECONDS,
) -> WebhookIntake:
    """The intake for the app factory: `secrets` are each source's signing secrets (current
    and previous while rotating); a source without secrets accepts no delivery. With `engine`,
    a dispatcher runs in the app's lifespan: it looks for stored events every `poll_seconds`,
    dispatches `concurrency` at once, gives an event up after `attempts`, and lets a backlog
    wait at most `defer_seconds` for this process's intake to pause. `max_batch` bounds the
    deliveries one INSERT stores."""
    chosen = {k: tuple(v) for k, v in (secrets or {}).items() if v}
    writer = InboxWriter(database, max_batch=max_batch)
    intake = WebhookIntake(database=database, secrets=chosen, writer=writer)
    if engine is not None:
        intake.inbox = InboxDispatcher(
            database=database,
            handlers=intake.dispatcher,
            engine=engine,
            poll_seconds=poll_seconds,
            attempts=attempts,
            concurrency=concurrency,
            defer_seconds=defer_seconds,
            last_stored=lambda: writer.last_stored,
        )
    return intake


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


def _receipt(
    event: WebhookEvent | SignedEvent,
    status: ReceiptStatus,
    *,
    duplicate: bool,
    flow_ids: list[str] | None = None,
) -> WebhookReceipt:
    return WebhookReceipt(
        source=event.source,
        event_id=event.id,
        event_type=event.type,
        status=status,
        duplicate=duplicate,
        flow_ids=flow_ids or [],
    )


def _answer(receipt: WebhookReceipt) -> Response[WebhookReceipt]:
    headers = {"Location": flow_location(receipt.flow_ids[0])} if receipt.flow_ids else None
    return Response(receipt, status_code=200, headers=headers)


async def _send_receipt(send: Send, receipt: WebhookReceipt) -> None:
    """`_answer`, sent as the ASGI messages Litestar would send for it."""
    body = msgspec.json.encode(receipt)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if receipt.flow_ids:
        headers.append((b"location", flow_location(receipt.flow_ids[0]).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive) -> bytes:
    """The whole request body (the edge bounds its size and how long it may take)."""
    chunks: list[bytes] = []
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("the delivery ended before its body was complete")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case), as text."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
