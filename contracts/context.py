"""The ambient context of one unit of work (request, flow step), carried in a contextvar.

The gateway's tracing policy sets it per request; flows set the flow and step; the outbound
HTTP policy reads it to stamp correlation headers and record vendor calls.
"""

from __future__ import annotations

from contextvars import ContextVar

import msgspec

__all__ = ["CallContext", "current_context", "use_context"]


class CallContext(msgspec.Struct, frozen=True, kw_only=True):
    correlation_id: str | None = None
    traceparent: str | None = None
    client_id: str | None = None
    flow_id: str | None = None
    step: str | None = None
    priority: str = "interactive"
    """`interactive` (a caller is waiting) or `batch` (flows, pollers): quota goes first to
    interactive traffic."""


# CallContext is frozen, so sharing one default instance is safe.
_context: ContextVar[CallContext] = ContextVar("erpgw_call_context", default=CallContext())  # noqa: B039


def current_context() -> CallContext:
    return _context.get()


def use_context(context: CallContext) -> None:
    """Set the context for the current task (and the tasks it starts from now on)."""
    _context.set(context)
