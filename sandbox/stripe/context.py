"""What the emulator knows about the request being served, for links, events and logs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import msgspec

__all__ = ["RequestInfo", "current_request", "serving"]


class RequestInfo(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str | None = None
    idempotency_key: str | None = None
    origin: str = "http://localhost"
    """`scheme://host[:port]` the request came in on."""
    prefix: str = ""
    """The mount prefix in front of `/v1` (empty when the emulator is served alone)."""

    @property
    def base_path(self) -> str:
        return self.prefix

    @property
    def base_url(self) -> str:
        return f"{self.origin}{self.prefix}"


_NO_REQUEST = RequestInfo()
_current: ContextVar[RequestInfo] = ContextVar("stripe_emulator_request")


def current_request() -> RequestInfo:
    return _current.get(_NO_REQUEST)


@contextmanager
def serving(info: RequestInfo) -> Iterator[None]:
    """Make `info` the current request for the block (tasks started inside inherit it)."""
    token = _current.set(info)
    try:
        yield
    finally:
        _current.reset(token)
