"""Structured logs (structlog) to stderr, JSON or console, and one access line per request.

Log lines carry the correlation id bound by the tracing policy. Headers, bodies, query
strings and tokens are never logged: the access line holds the route template, not the URL.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import structlog

from contracts.context import current_context

__all__ = ["AccessLogMiddleware", "configure_logging"]


def configure_logging(*, fmt: str = "console", level: str = "INFO") -> None:
    """Configure structlog and the standard library's logging to write to stderr."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_call_context,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(stream=sys.stderr, level=level, format="%(name)s %(levelname)s %(message)s")
    # Migrations run at every start; their step-by-step chatter is noise unless debugging.
    quiet = logging.WARNING if level != "DEBUG" else logging.DEBUG
    logging.getLogger("alembic").setLevel(quiet)
    # One line per vendor call would drown the access log; vendor calls are metered and
    # recorded in vendor_calls instead.
    logging.getLogger("httpx").setLevel(quiet)


def _add_call_context(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Stamp the correlation id (and flow and step) of the current request or flow step.

    Read from `contracts.context` at log time instead of binding structlog contextvars per
    request: binding costs microseconds on every request, logging only when a line is
    written."""
    context = current_context()
    if context.correlation_id is not None:
        event.setdefault("correlation_id", context.correlation_id)
    if context.flow_id is not None:
        event.setdefault("flow_id", context.flow_id)
        event.setdefault("step", context.step)
    return event


class AccessLogMiddleware:
    """ASGI wrapper writing one line per request: correlation id, client, route, status,
    latency."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log = structlog.get_logger("gateway.access")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            user = scope.get("user")
            self.log.info(
                "request",
                method=scope["method"],
                route=scope.get("path_template") or "unmatched",
                status=status,
                client_id=getattr(user, "client_id", None),
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
            )
