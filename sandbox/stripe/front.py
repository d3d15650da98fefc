"""What Stripe does before a request reaches an endpoint: request ids, API keys, rate limiting
and idempotency (https://docs.stripe.com/api/idempotent_requests).

A plain ASGI layer in front of the Litestar app: it stamps `Request-Id` and `Stripe-Version`
on every answer, refuses a missing or wrong secret key (401), answers 429 past the rate limit,
and for a POST with `Idempotency-Key` replays the first answer (with `Idempotent-Replayed:
true`) or refuses the key reused with other parameters (400 `idempotency_error`). A request
whose body never arrived whole (its caller disconnected first) is not run at all.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from sandbox.stripe.context import RequestInfo, serving
from sandbox.stripe.errors import (
    StripeApiError,
    error_body,
    idempotency_error,
    invalid_request,
    rate_limited,
)
from sandbox.stripe.store import API_VERSION

__all__ = ["StripeFront"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_TTL = 24 * 3_600
"""Stripe keeps idempotency keys for at least 24 hours."""
_UNSAVED_STATUSES = {400, 401, 429}
"""Refused before the endpoint ran (bad parameters, key, rate): Stripe saves no result."""
_PUBLIC_PREFIX = "/hosted/"


@dataclass(kw_only=True)
class _Saved:
    fingerprint: str
    created: float
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


class _RateLimiter:
    """A token bucket of `rate` tokens refilled per second (Stripe's limit is per second)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._tokens = float(rate)
        self._stamp = time.monotonic()

    def admit(self) -> bool:
        now = time.monotonic()
        self._tokens = min(float(self.rate), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class StripeFront:
    """ASGI wrapper: request id, auth, rate limit, idempotency, then the endpoint app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_key: str,
        rate_limit_per_second: int | None,
        request_ids: Callable[[], str],
    ) -> None:
        self.app = app
        self._secret_key = secret_key
        self._rate = rate_limit_per_second
        self._limiter = _RateLimiter(rate_limit_per_second) if rate_limit_per_second else None
        self._request_ids = request_ids
        self._saved: dict[tuple[str, str], _Saved] = {}

    def reset(self) -> None:
        self._saved.clear()
        self._limiter = _RateLimiter(self._rate) if self._rate else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the caller left before its request arrived whole: Stripe never saw it
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = self._request_ids()
        info = RequestInfo(
            request_id=request_id,
            idempotency_key=headers.get("idempotency-key"),
            origin=_origin(scope, headers),
            prefix=_prefix(scope),
        )
        stamped = _stamping(send, request_id)
        with serving(info):
            try:
                await self._serve(scope, headers, body, stamped)
            except StripeApiError as error:
                await _send_error(stamped, error, request_id)

    async def _serve(self, scope: Scope, headers: dict[str, str], body: bytes, send: Send) -> None:
        if _inner_path(scope).startswith(_PUBLIC_PREFIX):
            await self.app(scope, _replay(body), send)
            return
        if self._limiter is not None and not self._limiter.admit():
            raise rate_limited(1)
        api_key = self._authenticate(headers)
        key = headers.get("idempotency-key")
        if key is None or scope["method"] != "POST":
            await self.app(scope, _replay(body), send)
            return
        await self._idempotent(scope, api_key, key, body, send)

    def _authenticate(self, headers: dict[str, str]) -> str:
        key = _api_key(headers.get("authorization", ""))
        if key is None:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details.",
                headers={"WWW-Authenticate": 'Basic realm="Stripe"'},
            )
        if key != self._secret_key:
            shown = f"{key[:8]}{'*' * 12}{key[-4:]}" if len(key) > 12 else "****"
            raise StripeApiError(
                401,
                f"Invalid API Key provided: {shown}",
                code="api_key_invalid",
                headers={"WWW-Authenticate": 'Basic realm="Stripe"'},
            )
        return key

    async def _idempotent(
        self, scope: Scope, api_key: str, key: str, body: bytes, send: Send
    ) -> None:
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise invalid_request(
                f"Idempotency-Key is too long: at most {MAX_IDEMPOTENCY_KEY} characters.",
                param="Idempotency-Key",
            )
        self._expire()
        fingerprint = _fingerprint(scope, body)
        saved = self._saved.get((api_key, key))
        if saved is not None:
            if saved.fingerprint != fingerprint:
                raise idempotency_error(key)
            if saved.status is None:
                raise StripeApiError(
                    409,
                    "There is currently another in-progress request using this Idempotent Key "
                    "(that probably means you submitted twice, and the other request is still "
                    "going through): " + key + ". Please try again later.",
                    type_="idempotency_error",
                )
            await _send_saved(send, saved)
            return
        record = _Saved(fingerprint=fingerprint, created=time.monotonic())
        self._saved[(api_key, key)] = record
        try:
            await self.app(scope, _replay(body), _capturing(send, record))
        finally:
            if record.status is None or record.status in _UNSAVED_STATUSES:
                self._saved.pop((api_key, key), None)

    def _expire(self) -> None:
        horizon = time.monotonic() - IDEMPOTENCY_TTL
        for key in [k for k, saved in self._saved.items() if saved.created < horizon]:
            del self._saved[key]


def _api_key(authorization: str) -> str | None:
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return credential.strip()
    if scheme.lower() == "basic" and credential.strip():
        # Stripe takes the key as the Basic username with an empty password.
        try:
            decoded = base64.b64decode(credential.strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def _fingerprint(scope: Scope, body: bytes) -> str:
    pairs = sorted(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    query = scope.get("query_string", b"").decode("latin-1")
    return json.dumps([scope["method"], _inner_path(scope).rstrip("/"), query, pairs])


def _inner_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "") or ""
    return path[len(root) :] if root and path.startswith(root) else path


def _prefix(scope: Scope) -> str:
    """The mount prefix: `root_path`, or what a Litestar mount cut from the raw path."""
    root: str = scope.get("root_path", "") or ""
    if root:
        return root.rstrip("/")
    raw = scope.get("raw_path")
    if not raw:
        return ""
    raw_path = bytes(raw).decode("latin-1").split("?", 1)[0].rstrip("/")
    inner = str(scope["path"]).rstrip("/")
    if inner and raw_path.endswith(inner) and len(raw_path) > len(inner):
        return raw_path[: -len(inner)]
    return ""


def _origin(scope: Scope, headers: dict[str, str]) -> str:
    scheme = str(scope.get("scheme", "http"))
    host = headers.get("host")
    if not host and scope.get("server"):
        server_host, port = scope["server"]
        host = f"{server_host}:{port}"
    return f"{scheme}://{host or 'localhost'}"


def _stamping(send: Send, request_id: str) -> Send:
    async def stamped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (name, value)
                for name, value in message.get("headers", [])
                if name.lower() not in (b"request-id", b"stripe-version")
            ]
            headers.append((b"request-id", request_id.encode()))
            headers.append((b"stripe-version", API_VERSION.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return stamped


def _capturing(send: Send, record: _Saved) -> Send:
    async def capture(message: Message) -> None:
        if message["type"] == "http.response.start":
            record.status = int(message["status"])
            record.headers = [
                (bytes(name), bytes(value)) for name, value in message.get("headers", [])
            ]
        elif message["type"] == "http.response.body":
            record.body += message.get("body", b"")
        await send(message)

    return capture


async def _send_saved(send: Send, saved: _Saved) -> None:
    headers = [(n, v) for n, v in saved.headers if n.lower() != b"idempotent-replayed"]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": saved.status, "headers": headers})
    await send({"type": "http.response.body", "body": saved.body})


async def _send_error(send: Send, error: StripeApiError, request_id: str) -> None:
    body = json.dumps(error_body(error, request_id)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in error.headers.items()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body; None when the caller disconnected before its last chunk (a request
    cut short is not run, so it saves no result under its idempotency key)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive
