"""Fault injection and the control API shared by every vendor emulator.

An emulator is a Litestar app speaking one vendor's wire format. `EmulatedVendor` wraps it as
a plain ASGI app that answers `/_emulator/reset` and `/_emulator/faults` itself (never affected
by the faults it sets) and injects outages, errors, latency and rate limiting on every other
path, in the vendor's own error shape, counting what it served so a chaos test can prove it.
Writes to the control API take `Content-Type: application/json` only (else 415), so no
cross-site form can reach it.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

__all__ = ["EmulatedVendor", "FaultCounters", "FaultResponse", "Faults"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTROL_PREFIX = "/_emulator"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Faults(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The fault set of one emulator; posting a new one replaces the whole set."""

    outage: bool = False
    """Every matching request answers 503 in the vendor's shape."""
    error_rate: float = 0.0
    """Probability (0..1) that a matching request answers `error_status`."""
    error_status: int = 500
    latency_ms: int = 0
    """Added before a matching request is served (a long one makes clients time out); the
    request is still served after it, whole, as a vendor finishes work its caller gave up on."""
    latency_rate: float = 1.0
    """Probability (0..1) that a matching request is delayed by `latency_ms`."""
    rate_limit: bool = False
    """Every matching request answers 429 with `Retry-After: retry_after`."""
    retry_after: int = 1
    path: str | None = None
    """Glob over the path inside the emulator (e.g. `/v1/invoices*`); None matches all."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        if not 0.0 <= self.latency_rate <= 1.0:
            raise ValueError("latency_rate must be between 0 and 1")
        if not 400 <= self.error_status <= 599:
            raise ValueError("error_status must be a 4xx or 5xx status")
        if self.latency_ms < 0 or self.retry_after < 0:
            raise ValueError("latency_ms and retry_after must not be negative")


class FaultCounters(msgspec.Struct, kw_only=True):
    """How many requests each fault actually touched since the last reset or fault change."""

    requests: int = 0
    outage: int = 0
    error: int = 0
    latency: int = 0
    rate_limit: int = 0


class FaultResponse(msgspec.Struct, kw_only=True, frozen=True):
    """A vendor-shaped answer for an injected fault."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


FaultRenderer = Callable[[int, int | None], FaultResponse]
"""(status, retry_after or None) -> the vendor's own error answer for that status."""


class EmulatedVendor:
    """ASGI wrapper: control API + fault injection in front of one vendor emulator app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        render_fault: FaultRenderer,
        reset: Callable[[], None],
        seed: int = 0,
    ) -> None:
        self.app = app
        self.render_fault = render_fault
        self._reset = reset
        self.faults = Faults()
        self.counters = FaultCounters()
        self._random = random.Random(seed)

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        self.counters = FaultCounters()

    def reset(self) -> None:
        """Back to the seeded state with no faults."""
        self._reset()
        self.set_faults(Faults())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _inner_path(scope)
        if path.startswith(CONTROL_PREFIX):
            # A Litestar mount hands mounted apps the path with a trailing slash.
            await self._control(scope, path.rstrip("/"), receive, send)
            return
        # The vendor has the request whole before any fault holds it: a server hands the app
        # only `http.disconnect` once the caller has gone, so a body read after the hold
        # would be lost, and a request its caller gave up on would run without its
        # parameters (an idempotency key then saved for other parameters than the retry's).
        arrived = await _arrival(receive)
        fault = await self._inject(path)
        if fault is not None:
            await _respond(send, fault.status, fault.body, fault.content_type, fault.headers)
            return
        await self.app(scope, _replaying(arrived, receive), send)

    async def _inject(self, path: str) -> FaultResponse | None:
        faults = self.faults
        if faults.path is not None and not fnmatch.fnmatchcase(path, faults.path):
            return None
        self.counters.requests += 1
        if faults.latency_ms and (
            faults.latency_rate >= 1.0 or self._random.random() < faults.latency_rate
        ):
            self.counters.latency += 1
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.outage:
            self.counters.outage += 1
            return self.render_fault(503, None)
        if faults.rate_limit:
            self.counters.rate_limit += 1
            return self.render_fault(429, faults.retry_after)
        if faults.error_rate and self._random.random() < faults.error_rate:
            self.counters.error += 1
            retry_after = faults.retry_after if faults.error_status in (429, 503) else None
            return self.render_fault(faults.error_status, retry_after)
        return None

    async def _control(self, scope: Scope, path: str, receive: Receive, send: Send) -> None:
        method = scope["method"]
        body = await _read_body(receive)
        if method not in _SAFE_METHODS and not _is_json(scope):
            # A cross-site HTML form (or a "simple" fetch) can only send form or text bodies,
            # never application/json, so it cannot reset an emulator or set its faults.
            await _respond_json(
                send,
                415,
                {
                    "error": "unsupported_media_type",
                    "detail": "the control API accepts only Content-Type: application/json",
                },
            )
            return
        if path == f"{CONTROL_PREFIX}/reset" and method == "POST":
            self.reset()
            await _respond_json(send, 200, {"reset": True})
        elif path == f"{CONTROL_PREFIX}/faults" and method == "GET":
            await _respond_json(send, 200, self._fault_state())
        elif path == f"{CONTROL_PREFIX}/faults" and method == "POST":
            try:
                faults = msgspec.json.decode(body or b"{}", type=Faults)
            except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
                await _respond_json(send, 400, {"error": "invalid_faults", "detail": str(exc)})
                return
            self.set_faults(faults)
            await _respond_json(send, 200, self._fault_state())
        else:
            await _respond_json(send, 404, {"error": "not_found", "detail": path})

    def _fault_state(self) -> dict[str, Any]:
        return {
            "faults": msgspec.to_builtins(self.faults),
            "counters": msgspec.to_builtins(self.counters),
        }


def _is_json(scope: Scope) -> bool:
    """Whether the request says its body is JSON (`application/json`, parameters allowed)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-type":
            media_type: str = value.decode("latin-1").split(";", 1)[0].strip().lower()
            return media_type == "application/json"
    return False


def _inner_path(scope: Scope) -> str:
    """The path inside the emulator, whether it is served alone or mounted under a prefix."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "") or ""
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _arrival(receive: Receive) -> list[MutableMapping[str, Any]]:
    """The request's messages as the server hands them: its body chunks up to the last, or
    up to the caller's disconnect."""
    messages: list[MutableMapping[str, Any]] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replaying(arrived: list[MutableMapping[str, Any]], receive: Receive) -> Receive:
    """`receive` for the app: the messages already read, then the server's own (which
    tells of a disconnect)."""
    pending = deque(arrived)

    async def replay() -> MutableMapping[str, Any]:
        return pending.popleft() if pending else await receive()

    return replay


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: tuple[tuple[str, str], ...] = (),
) -> None:
    raw_headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def _respond_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    await _respond(send, status, msgspec.json.encode(payload), "application/json")
