"""One record per vendor attempt, for the operations console and audits.

A record holds what the gateway may keep: the platform, method, a path template with every
identifier replaced by `{id}`, status, latency and the correlation of the flow that made the
call. Never headers or bodies (credentials, personal data), never the query string (search
terms), and never a raw identifier in the path (it would make metrics labels unbounded).
"""

from __future__ import annotations

import re
from collections import deque
from datetime import datetime
from functools import lru_cache
from typing import Protocol

import msgspec

__all__ = [
    "ID_PLACEHOLDER",
    "CallRecorder",
    "InMemoryCallRecorder",
    "VendorCall",
    "path_template",
]

ID_PLACEHOLDER = "{id}"

_DIGITS = re.compile(r"\d+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Prefixed object ids such as cus_NffrFeUfNV2Hib or in_1MtHbELkdIwHu7ix; the tail must carry
# a digit or a capital so that path words like payment_intents or billing_portal stay.
_PREFIXED_ID = re.compile(r"[a-z]{1,16}_(?=[A-Za-z0-9]*[0-9A-Z])[A-Za-z0-9]{4,}")
# 15- or 18-character record ids (001xx000003DGb2AAG) always contain digits; a 15-letter
# record type name such as customerpayment does not.
_RECORD_ID = re.compile(r"(?=[A-Za-z]*[0-9])[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_EXTENSION = re.compile(r"(.+?)(\.(?:json|xml))")


class VendorCall(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt of one vendor request."""

    system: str
    """The platform: salesforce, stripe, zendesk or netsuite."""
    method: str
    path_template: str
    """The path with identifiers replaced by `{id}`; never the query string."""
    status: int | None
    """The vendor's HTTP status; None when no answer came (connection error, timeout)."""
    latency_ms: float
    attempt: int
    """1 for the first attempt of a request, 2 for its first retry, ..."""
    correlation_id: str | None
    flow_id: str | None
    step: str | None
    error: str | None
    """A short description of a transport failure (exception type and message)."""
    started_at: datetime
    """When the attempt started, UTC."""


class CallRecorder(Protocol):
    """Where vendor call records go. `record` is on the request path: buffer, never block."""

    async def record(self, call: VendorCall) -> None: ...


class InMemoryCallRecorder:
    """The latest `capacity` records in memory, for tests and emulated runs."""

    def __init__(self, capacity: int = 1000) -> None:
        self._calls: deque[VendorCall] = deque(maxlen=capacity)

    async def record(self, call: VendorCall) -> None:
        self._calls.append(call)

    @property
    def calls(self) -> list[VendorCall]:
        """The records kept, oldest first."""
        return list(self._calls)

    def clear(self) -> None:
        """Forget every record."""
        self._calls.clear()


@lru_cache(maxsize=4096)
def path_template(path: str) -> str:
    """`path` with identifier-looking segments replaced by `{id}` (a `.json` suffix is kept)."""
    return "/".join(_template_segment(segment) for segment in path.split("/"))


def _template_segment(segment: str) -> str:
    if not segment:
        return segment
    suffix = ""
    match = _EXTENSION.fullmatch(segment)
    if match is not None:
        segment, suffix = match.group(1), match.group(2)
    if _is_identifier(segment):
        return ID_PLACEHOLDER + suffix
    return segment + suffix


def _is_identifier(segment: str) -> bool:
    return (
        segment.startswith("eid:")
        or _DIGITS.fullmatch(segment) is not None
        or _UUID.fullmatch(segment) is not None
        or _PREFIXED_ID.fullmatch(segment) is not None
        or _RECORD_ID.fullmatch(segment) is not None
    )
