"""Structured logs (structlog) to stderr, JSON or console, and one access line per request.

Log lines carry the correlation id bound by the tracing policy. Headers, bodies, query
strings and tokens are never logged: the access line holds the route template, not the URL.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from contracts.context import current_context

__all__ = ["access_line", "configure_logging"]


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


_access = structlog.get_logger("gateway.access")


def access_line(scope: Any, status: int, seconds: float) -> None:
    """One line per request: route template (never the URL: it may carry search terms),
    status, client and latency; the correlation id comes from the call context."""
    user = scope.get("user")
    _access.info(
        "request",
        method=scope["method"],
        route=scope.get("path_template") or "unmatched",
        status=status,
        client_id=getattr(user, "client_id", None),
        latency_ms=round(seconds * 1000, 3),
    )
