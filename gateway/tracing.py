"""Trace context: accept or mint W3C `traceparent` and `X-Correlation-ID`, echo both, bind both
to every log line and to the call context that outbound vendor calls carry on."""

from __future__ import annotations

import os
import re
import secrets
from typing import Any

from contracts.context import CallContext, use_context

__all__ = ["begin_trace", "child_traceparent", "new_traceparent"]

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
ZERO_TRACE = "0" * 32
ZERO_SPAN = "0" * 16


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def child_traceparent(parent: str | None) -> str:
    """A traceparent for a call made on behalf of `parent`: same trace, new span."""
    match = TRACEPARENT.match(parent or "")
    if match is None:
        return new_traceparent()
    return f"00-{match.group(1)}-{secrets.token_hex(8)}-{match.group(3)}"


def begin_trace(scope: Any) -> list[tuple[bytes, bytes]]:
    """Accept or mint the request's trace context, make it current (log lines and outbound
    vendor calls read it from `contracts.context`), and return the headers that echo it."""
    traceparent, correlation_id = _incoming(scope["headers"])
    scope.setdefault("state", {})["correlation_id"] = correlation_id
    use_context(CallContext(correlation_id=correlation_id, traceparent=traceparent))
    return [
        (b"traceparent", traceparent.encode()),
        (b"x-correlation-id", correlation_id.encode()),
    ]


def _incoming(headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
    traceparent: str | None = None
    correlation_id: str | None = None
    for name, value in headers:
        if name == b"traceparent":
            traceparent = value.decode("latin-1").strip().lower()
        elif name == b"x-correlation-id":
            correlation_id = value.decode("latin-1").strip()
    if traceparent is None or not _valid_traceparent(traceparent):
        random = os.urandom(24).hex()
        traceparent = f"00-{random[:32]}-{random[32:]}-01"
        # A request that starts a trace is correlated by its trace id: one random draw.
        correlation_id = correlation_id or random[:32]
    if correlation_id is None or not CORRELATION_ID.match(correlation_id):
        correlation_id = os.urandom(16).hex()
    return traceparent, correlation_id


def _valid_traceparent(value: str) -> bool:
    match = TRACEPARENT.match(value)
    return bool(match) and match.group(1) != ZERO_TRACE and match.group(2) != ZERO_SPAN  # type: ignore[union-attr]
