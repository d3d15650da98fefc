"""Structured logs (structlog) to stderr, JSON or console, and one access line per request.

Every source writes through the same renderer: structlog events, the standard library's
loggers (DBOS's included), `warnings`, and exceptions that end a thread, so that in JSON mode
each event is one JSON line with its traceback as the `exception` field. A failure that
repeats (same logger, event and error) is written once, then at most once a minute with the
count of those held back (`repeated`). Log lines carry the correlation id bound by the
tracing policy. Headers, bodies, query strings and tokens are never logged: the access line
holds the route template, not the URL.

The access line is formatted on the request path (a few microseconds) but written off it:
lines gather in a buffer written to stderr in one call a few times a second (`AccessLog`),
instead of a locked, flushed write per request (measured: ~40 us a request on 2 cores).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import IO, Any

import msgspec
import structlog

from contracts.context import current_context

__all__ = [
    "ACCESS_FLUSH_BYTES",
    "ACCESS_FLUSH_SECONDS",
    "REPEAT_WINDOW_SECONDS",
    "AccessLog",
    "RepeatThrottle",
    "configure_logging",
]

REPEAT_WINDOW_SECONDS = 60.0
"""A repeated failure is written at most once in this long (with the count held back)."""
REPEAT_KEYS = 1024
"""Distinct failures remembered; the oldest is forgotten first."""
DBOS_CONSOLE_HANDLER = "__dbos_console_log_handler__"
"""The name DBOS looks for before adding its own plain-text console handler to its logger."""
ACCESS_FLUSH_SECONDS = 0.05
"""Longest an access line waits in the buffer: lines still appear as the requests happen, and
a process killed outright (SIGKILL) loses at most this long of them."""
ACCESS_FLUSH_BYTES = 64 * 1024
"""A buffer this full is written at once, so a burst never holds much memory."""


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


def configure_logging(*, fmt: str = "console", level: str = "INFO") -> AccessLog:
    """Configure structlog, the standard library's logging (DBOS's logger included),
    `warnings` and uncaught thread exceptions to write to stderr in one format; returns the
    access log writing in that format (it writes nothing when `level` is above INFO)."""
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_dumps)
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
    handler = _StandardError()
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
    dbos_handler = _StandardError()
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
    return AccessLog(
        render=_render_json if fmt == "json" else _console_render(renderer),
        stream=sys.stderr,
        enabled=logging.getLevelName(level) <= logging.INFO,
    )


_json_encoder = msgspec.json.Encoder(enc_hook=repr)


def _json_dumps(event: Any, **_options: Any) -> str:
    """structlog's JSON serializer: msgspec, anything it cannot encode as its repr (as
    structlog's own fallback does)."""
    return _json_encoder.encode(event).decode()


def _render_json(event: dict[str, Any]) -> str:
    return _json_encoder.encode(event).decode()


def _console_render(renderer: Any) -> Callable[[dict[str, Any]], str]:
    def render(event: dict[str, Any]) -> str:
        return str(renderer(None, "info", event))

    return render


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


class AccessLog:
    """One line per request: route template (never the URL: it may carry search terms),
    status, client and latency, with the correlation id of the call context; the same fields
    and format as every other log line (`event` "request", `level`, `timestamp`).

    `write` formats the line and appends it to a buffer; the buffer goes to the stream in one
    write `flush_seconds` after its first line, or at once past `flush_bytes`, and at exit.
    Used from the event loop's thread only (the edge middleware)."""

    def __init__(
        self,
        *,
        render: Callable[[dict[str, Any]], str],
        stream: IO[str],
        enabled: bool = True,
        flush_seconds: float = ACCESS_FLUSH_SECONDS,
        flush_bytes: int = ACCESS_FLUSH_BYTES,
    ) -> None:
        self.render = render
        self.stream = stream
        self.enabled = enabled
        """False when the log level is above INFO: then no line is formatted at all."""
        self.flush_seconds = flush_seconds
        self.flush_bytes = flush_bytes
        self._lines: list[str] = []
        self._size = 0
        atexit.register(self.flush)

    def write(self, scope: Any, status: int, seconds: float) -> None:
        if not self.enabled:
            return
        user = scope.get("user")
        event: dict[str, Any] = {
            "method": scope["method"],
            "route": scope.get("path_template") or "unmatched",
            "status": status,
            "client_id": getattr(user, "client_id", None),
            "latency_ms": round(seconds * 1000, 3),
            "event": "request",
        }
        _add_call_context(None, "info", event)
        event["level"] = "info"
        event["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        line = self.render(event) + "\n"
        if not self._lines:
            self._schedule_flush()
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self.flush_bytes:
            self.flush()

    def flush(self) -> None:
        """Write what the buffer holds (nothing to do when it is empty)."""
        lines, self._lines, self._size = self._lines, [], 0
        if not lines:
            return
        try:
            self.stream.write("".join(lines))
            self.stream.flush()
        except (OSError, ValueError):
            # A closed or broken stderr must not fail the requests that log to it.
            pass

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Outside an event loop nothing would fire the timer: the next flush (a full
            # buffer, shutdown or exit) writes the line.
            return
        loop.call_later(self.flush_seconds, self.flush)


class _StandardError(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever `sys.stderr` is when a record is written, not the one at
    configuration: the stream it was given may have been replaced and closed since (a test
    runner's capture, a daemonised worker)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """`StreamHandler` assigns its stream; the current `sys.stderr` is always used."""
