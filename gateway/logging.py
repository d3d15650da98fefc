"""Structured logs (structlog) to stderr, JSON or console, and one access line per request.

Every source writes through the same renderer: structlog events, the standard library's
loggers (DBOS's included), `warnings`, and exceptions that end a thread, so that in JSON mode
each event is one JSON line with its traceback as the `exception` field. A failure that
repeats (same logger, event and error) is written once, then at most once a minute with the
count of those held back (`repeated`). Log lines carry the correlation id bound by the
tracing policy. Headers, bodies, query strings and tokens are never logged: the access line
holds the route template, not the URL.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from contracts.context import current_context

__all__ = ["REPEAT_WINDOW_SECONDS", "RepeatThrottle", "access_line", "configure_logging"]

REPEAT_WINDOW_SECONDS = 60.0
"""A repeated failure is written at most once in this long (with the count held back)."""
REPEAT_KEYS = 1024
"""Distinct failures remembered; the oldest is forgotten first."""
DBOS_CONSOLE_HANDLER = "__dbos_console_log_handler__"
"""The name DBOS looks for before adding its own plain-text console handler to its logger."""


class RepeatThrottle:
    """Decides whether a warning or error is written: the first of a kind always, the same
    again only once `window` seconds have passed since it was last written, then carrying
    how many were held back. Thread-safe: DBOS's and the engine's threads log too."""

    def __init__(
        self, *, window: float = REPEAT_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, ...], list[float]] = OrderedDict()

    def admit(self, key: tuple[str, ...]) -> int | None:
        """None to hold the event back; else how many of its kind were held back before it."""
        now = self.clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None:
                self._seen[key] = [now, 0.0]
                if len(self._seen) > REPEAT_KEYS:
                    self._seen.popitem(last=False)
                return 0
            self._seen.move_to_end(key)
            if now - entry[0] < self.window:
                entry[1] += 1
                return None
            held = int(entry[1])
            entry[0], entry[1] = now, 0.0
            return held


_throttle = RepeatThrottle()


def configure_logging(*, fmt: str = "console", level: str = "INFO") -> None:
    """Configure structlog, the standard library's logging (DBOS's logger included),
    `warnings` and uncaught thread exceptions to write to stderr in one format."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_call_context,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, _drop_repeats, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared, _record_repeats],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    handler.addFilter(_RepeatFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_erpgw", False):
            root.removeHandler(old)
    handler._erpgw = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # DBOS adds a plain-text handler of its own unless its logger has one by this name.
    dbos = logging.getLogger("dbos")
    for old in list(dbos.handlers):
        dbos.removeHandler(old)
    dbos_handler = logging.StreamHandler(sys.stderr)
    dbos_handler.setFormatter(handler.formatter)
    dbos_handler.addFilter(_RepeatFilter())
    dbos_handler.name = DBOS_CONSOLE_HANDLER
    dbos.addHandler(dbos_handler)
    dbos.propagate = False
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception
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


_NOT_IN_KEY = frozenset({"timestamp", "exc_info", "correlation_id", "_record", "_from_structlog"})


def _failure_key(logger: str, event: MutableMapping[str, Any]) -> tuple[str, ...] | None:
    """What makes two warnings "the same failure": logger, event, every field but the time
    and the request they came from, and the error raised."""
    if event.get("level") not in ("warning", "error", "critical", "exception"):
        return None
    exc = event.get("exc_info")
    if exc is True:
        exc = sys.exc_info()
    if isinstance(exc, BaseException):
        error = f"{type(exc).__name__}: {exc}"
    elif isinstance(exc, tuple) and len(exc) > 1 and exc[1] is not None:
        error = f"{type(exc[1]).__name__}: {exc[1]}"
    else:
        error = ""
    fields = sorted((k, _gist(repr(v))) for k, v in event.items() if k not in _NOT_IN_KEY)
    return (logger, _gist(error), *(f"{k}={v}" for k, v in fields))


_NUMBERS = re.compile(r"\d+")


def _gist(text: str) -> str:
    """What stays the same when a failure repeats: its first line, numbers blanked (the
    statement parameters, timestamps and ids that DBOS's messages carry differ each time)."""
    return _NUMBERS.sub("#", text.split("\n", 1)[0])[:200]


def _drop_repeats(
    logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    name = getattr(logger, "name", None) or str(event.get("logger", ""))
    key = _failure_key(name, event)
    if key is None:
        return event
    held = _throttle.admit(key)
    if held is None:
        raise structlog.DropEvent
    if held:
        event["repeated"] = held
    return event


def _record_repeats(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The count `_RepeatFilter` left on a standard-library record, as a field."""
    record = event.get("_record")
    held = getattr(record, "erpgw_repeated", 0)
    if held:
        event["repeated"] = held
    return event


class _RepeatFilter(logging.Filter):
    """`RepeatThrottle` for standard-library records (DBOS's queue and recovery threads)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        error = ""
        if record.exc_info and record.exc_info[1] is not None:
            error = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        held = _throttle.admit((record.name, _gist(record.getMessage()), _gist(error)))
        if held is None:
            return False
        record.erpgw_repeated = held
        return True


_threads = structlog.get_logger("gateway.threads")


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    _threads.error(
        "thread_failed",
        thread=args.thread.name if args.thread is not None else None,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


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
