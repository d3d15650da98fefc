"""Who wants which webhook event: flow modules register handlers by (source, event type
prefix), and each handler answers what to start for an event."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from process_apis.webhooks.events import WebhookEvent

__all__ = ["SOURCES", "Answer", "FlowStart", "Handler", "WebhookDispatcher"]

SOURCES: Final[tuple[str, ...]] = ("stripe", "zendesk", "salesforce")


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
