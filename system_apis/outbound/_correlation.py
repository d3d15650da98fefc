"""W3C trace context for vendor calls: each attempt is a child span of the caller's span."""

from __future__ import annotations

import random
import re

__all__ = ["child_traceparent", "new_correlation_id"]

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# Sampled: a trace we start ourselves is one we want to see.
_MINTED_FLAGS = "01"
# Ids only need to be unique, not secret; the OS-seeded Mersenne Twister is several times
# cheaper than reading the kernel's random source on every vendor call.
_random = random.Random()


def child_traceparent(parent: str | None) -> str:
    """A `traceparent` in the caller's trace with a new span id; a new trace if `parent` is
    absent or invalid (https://www.w3.org/TR/trace-context/#traceparent-header)."""
    span_id = _nonzero_hex(8)
    match = _TRACEPARENT.fullmatch(parent.strip().lower()) if parent else None
    if match is not None:
        version, trace_id, parent_id, flags = match.groups()
        if version != "ff" and trace_id != _ZERO_TRACE and parent_id != _ZERO_SPAN:
            return f"00-{trace_id}-{span_id}-{flags}"
    return f"00-{_nonzero_hex(16)}-{span_id}-{_MINTED_FLAGS}"


def new_correlation_id() -> str:
    """A correlation id for a vendor request made outside any caller's context."""
    return f"{_random.getrandbits(128):032x}"


def _nonzero_hex(size: int) -> str:
    while True:
        value = _random.getrandbits(size * 8)
        if value:
            return f"{value:0{size * 2}x}"
