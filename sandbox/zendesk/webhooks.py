"""Webhooks of the emulated account and their signed, asynchronous delivery.

Payloads follow Zendesk's ticket event subscriptions (`zen:event-type:ticket.*`): ids in
`detail` are strings and status/priority/type are upper case, as Zendesk sends them
(https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/). A webhook
subscribed to `conditional_ticket_events` gets every ticket event here: the sandbox has no
triggers to choose among them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import httpx
import msgspec

from sandbox.loopback import LOOPBACK_HOSTS, is_loopback_url
from sandbox.zendesk.errors import ZendeskApiError
from sandbox.zendesk.records import Comment, Ticket, TicketEvent, User
from sandbox.zendesk.render import iso
from sandbox.zendesk.store import Clock

__all__ = ["CONDITIONAL_TICKET_EVENTS", "Delivery", "Webhook", "WebhookDispatcher", "sign_webhook"]

# How Zendesk signs a delivery (https://developer.zendesk.com/documentation/webhooks/verifying/).
SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
WEBHOOK_ID_HEADER = "X-Zendesk-Webhook-Id"

CONDITIONAL_TICKET_EVENTS = "conditional_ticket_events"
EVENT_PREFIX = "zen:event-type:ticket."
_ACCOUNT_ID = 10_000_001
_HTTP_METHODS = ("POST", "PUT", "PATCH", "GET", "DELETE")
_FORMATS = ("json", "xml", "form_encoded")
_DRAIN_LIMIT_SECONDS = 30.0


@dataclass(slots=True, kw_only=True)
class Webhook:
    id: str
    sequence: int
    name: str
    endpoint: str
    http_method: str
    request_format: str
    status: str
    subscriptions: list[str]
    created_at: datetime
    description: str | None = None

    def wants(self, event_type: str) -> bool:
        return self.status == "active" and (
            CONDITIONAL_TICKET_EVENTS in self.subscriptions or event_type in self.subscriptions
        )


@dataclass(slots=True, kw_only=True)
class Delivery:
    """One event sent to one webhook, as the emulator recorded it."""

    webhook_id: str
    event_type: str
    event_id: str
    attempts: int = 0
    statuses: list[int | None] = field(default_factory=list)
    delivered: bool = False


class WebhookDispatcher:
    """The account's webhooks; ticket events become background deliveries, retried on failure."""

    def __init__(
        self, *, clock: Clock, secret: str, http: httpx.AsyncClient | None = None,
        max_attempts: int = 3, retry_delay: float = 0.2,
    ) -> None:
        self.clock = clock
        self.secret = secret
        self.http = http
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.webhooks: dict[str, Webhook] = {}
        self.deliveries: list[Delivery] = []
        self._sequence = itertools.count(1)
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: list[tuple[Webhook, Delivery, bytes]] = []

    def reset(self) -> None:
        self.webhooks.clear()
        self.deliveries.clear()
        self._waiting.clear()
        self._sequence = itertools.count(1)

    def create(self, payload: Mapping[str, Any]) -> Webhook:
        name = payload.get("name")
        endpoint = payload.get("endpoint")
        method = payload.get("http_method", "POST")
        fmt = payload.get("request_format", "json")
        status = payload.get("status", "active")
        subscriptions = payload.get("subscriptions", [])
        problems = _webhook_problems(name, endpoint, method, fmt, status, subscriptions)
        if problems:
            raise ZendeskApiError(400, {"errors": problems})
        sequence = next(self._sequence)
        hook = Webhook(
            id=f"01ERPGW{sequence:019d}", sequence=sequence, name=str(name),
            endpoint=str(endpoint), http_method=str(method), request_format=str(fmt),
            status=str(status), subscriptions=list(subscriptions), created_at=self.clock(),
            description=payload.get("description") if isinstance(payload.get("description"),
                                                                   str) else None,
        )
        self.webhooks[hook.id] = hook
        return hook

    def webhook(self, webhook_id: str) -> Webhook:
        hook = self.webhooks.get(webhook_id)
        if hook is None:
            raise ZendeskApiError(404, {"errors": [{
                "code": "WebhookNotFound", "title": "Webhook not found",
                "detail": f"Webhook {webhook_id} not found",
            }]})
        return hook

    def render(self, hook: Webhook, *, created_by: int) -> dict[str, Any]:
        return {
            "id": hook.id, "name": hook.name, "description": hook.description,
            "status": hook.status, "subscriptions": list(hook.subscriptions),
            "endpoint": hook.endpoint, "http_method": hook.http_method,
            "request_format": hook.request_format, "created_at": iso(hook.created_at),
            "created_by": str(created_by), "updated_at": iso(hook.created_at),
            "updated_by": str(created_by),
        }

    def on_ticket_events(
        self, ticket: Ticket, events: list[TicketEvent], actor: User | None
    ) -> None:
        """Queue a delivery of each event to each webhook that subscribes to it."""
        for event in events:
            event_type = EVENT_PREFIX + event.kind
            hooks = [hook for hook in self.webhooks.values() if hook.wants(event_type)]
            if not hooks:
                continue
            event_id = str(uuid.uuid4())
            body = msgspec.json.encode(self._payload(ticket, event, event_type, event_id, actor))
            for hook in hooks:
                delivery = Delivery(webhook_id=hook.id, event_type=event_type, event_id=event_id)
                self.deliveries.append(delivery)
                self._start(hook, delivery, body)

    async def drain(self) -> None:
        """Wait until every queued delivery has succeeded or given up (at most 30 s)."""
        waiting, self._waiting = self._waiting, []
        for hook, delivery, body in waiting:
            self._start(hook, delivery, body)
        deadline = time.monotonic() + _DRAIN_LIMIT_SECONDS
        # Deliveries may run on another thread's event loop (an emulator served by uvicorn),
        # where no asyncio primitive of this loop could wake us: poll the counter instead.
        while self._in_flight and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    def _start(self, hook: Webhook, delivery: Delivery, body: bytes) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._waiting.append((hook, delivery, body))
            return
        self._in_flight += 1
        task = loop.create_task(self._deliver(hook, delivery, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, hook: Webhook, delivery: Delivery, body: bytes) -> None:
        try:
            for attempt in range(1, self.max_attempts + 1):
                delivery.attempts = attempt
                status = await self._send_once(hook, delivery, body)
                delivery.statuses.append(status)
                if status is not None and 200 <= status < 300:
                    delivery.delivered = True
                    return
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.retry_delay * attempt)
        finally:
            self._in_flight -= 1

    async def _send_once(self, hook: Webhook, delivery: Delivery, body: bytes) -> int | None:
        timestamp = iso(self.clock()) or ""
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Zendesk Webhook",
            WEBHOOK_ID_HEADER: hook.id,
            "X-Zendesk-Webhook-Invocation-Id": delivery.event_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign_webhook(body, self.secret, timestamp),
        }
        try:
            if self.http is not None:
                response = await self.http.request(
                    hook.http_method, hook.endpoint, content=body, headers=headers
                )
            else:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    response = await client.request(
                        hook.http_method, hook.endpoint, content=body, headers=headers
                    )
        except httpx.HTTPError:
            return None
        return response.status_code

    def _payload(
        self, ticket: Ticket, event: TicketEvent, event_type: str, event_id: str,
        actor: User | None,
    ) -> dict[str, Any]:
        return {
            "account_id": _ACCOUNT_ID,
            "detail": _ticket_detail(ticket, actor),
            "event": _event_body(event),
            "id": event_id,
            "subject": f"zen:ticket:{ticket.id}",
            "time": iso(self.clock()),
            "type": event_type,
            "zendesk_event_version": "2022-11-06",
        }


def _ticket_detail(ticket: Ticket, actor: User | None) -> dict[str, Any]:
    def ref(value: int | None) -> str | None:
        return None if value is None else str(value)

    return {
        "actor_id": ref(actor.id if actor else None),
        "assignee_id": ref(ticket.assignee_id),
        "created_at": iso(ticket.created_at),
        "description": ticket.description,
        "external_id": ticket.external_id,
        "id": str(ticket.id),
        "is_public": ticket.comments[0].public if ticket.comments else True,
        "organization_id": ref(ticket.organization_id),
        "priority": ticket.priority.upper() if ticket.priority else None,
        "requester_id": ref(ticket.requester_id),
        "status": ticket.status.upper(),
        "subject": ticket.subject,
        "submitter_id": ref(ticket.submitter_id),
        "tags": list(ticket.tags),
        "type": ticket.type.upper() if ticket.type else None,
        "updated_at": iso(ticket.updated_at),
        "via": {"channel": ticket.channel},
    }


def _event_body(event: TicketEvent) -> dict[str, Any]:
    if event.kind == "created":
        return {}
    if isinstance(event.current, Comment):
        comment = event.current
        return {"comment": {
            "id": str(comment.id), "body": comment.body, "is_public": comment.public,
            "author": {"id": str(comment.author_id)},
        }}
    return {"current": _event_value(event.kind, event.current),
            "previous": _event_value(event.kind, event.previous)}


def _event_value(kind: str, value: object) -> object:
    if isinstance(value, str) and kind in ("priority_changed", "status_changed", "type_changed"):
        return value.upper()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _webhook_problems(
    name: object, endpoint: object, method: object, fmt: object, status: object,
    subscriptions: object,
) -> list[dict[str, Any]]:
    problems: list[tuple[str, str]] = []
    if not isinstance(name, str) or not name.strip():
        problems.append(("name", "name is required"))
    parsed = urlparse(endpoint) if isinstance(endpoint, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        problems.append(("endpoint", "endpoint must be an absolute http(s) URL"))
    elif not is_loopback_url(str(endpoint)):
        problems.append(
            ("endpoint", f"the sandbox delivers only to loopback endpoints ({LOOPBACK_HOSTS})")
        )
    if method not in _HTTP_METHODS:
        problems.append(("http_method", f"http_method must be one of {', '.join(_HTTP_METHODS)}"))
    if fmt not in _FORMATS:
        problems.append(("request_format", f"request_format must be one of {', '.join(_FORMATS)}"))
    if status not in ("active", "inactive"):
        problems.append(("status", "status must be active or inactive"))
    if (
        not isinstance(subscriptions, list) or not subscriptions
        or not all(isinstance(item, str) for item in subscriptions)
    ):
        problems.append(("subscriptions", "subscriptions must be a non-empty list of strings"))
    return [
        {"code": "InvalidInput", "title": "Invalid input", "detail": detail,
         "source": {"pointer": f"/webhook/{pointer}"}}
        for pointer, detail in problems
    ]


def sign_webhook(body: bytes, secret: str, timestamp: str) -> str:
    """Zendesk's `X-Zendesk-Webhook-Signature`: base64(HMAC-SHA256(secret, timestamp + body)),
    the timestamp being the string sent in `X-Zendesk-Webhook-Signature-Timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")
