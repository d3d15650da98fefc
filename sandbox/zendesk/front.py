"""What every request to the emulated Zendesk passes before its route: the mount prefix, the
optional `.json` suffix, authentication, write permission and the per-minute rate limit."""

from __future__ import annotations

import base64
import binascii
import itertools
import math
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import msgspec

from sandbox.control import ASGIApp, Receive, Scope, Send
from sandbox.zendesk.errors import (
    ZendeskApiError,
    forbidden,
    too_many_requests,
    unauthenticated,
)
from sandbox.zendesk.store import Clock

__all__ = [
    "IDENTITY_KEY",
    "ORIGINAL_PATH_KEY",
    "PREFIX_KEY",
    "Credentials",
    "Identity",
    "RateLimiter",
    "ZendeskFront",
    "mount_prefix",
]

IDENTITY_KEY = "zendesk.identity"
ORIGINAL_PATH_KEY = "zendesk.original_path"
PREFIX_KEY = "zendesk.prefix"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who a request authenticated as; read-only OAuth tokens may not write."""

    email: str
    can_write: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """The credentials the emulated account accepts."""

    email: str
    api_token: str
    oauth_token: str | None = None
    read_only_oauth_token: str | None = None

    def identify(self, authorization: str) -> Identity | None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic":
            return self._basic(value.strip())
        if scheme.lower() == "bearer":
            token = value.strip()
            if self.oauth_token and token == self.oauth_token:
                return Identity(email=self.email, can_write=True)
            if self.read_only_oauth_token and token == self.read_only_oauth_token:
                return Identity(email=self.email, can_write=False)
        return None

    def _basic(self, value: str) -> Identity | None:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        # API token auth: the username is "{email}/token", the password the token itself.
        user, _, secret = decoded.partition(":")
        email, _, kind = user.rpartition("/")
        if kind != "token" or email.casefold() != self.email.casefold():
            return None
        return Identity(email=self.email, can_write=True) if secret == self.api_token else None


class RateLimiter:
    """Zendesk's per-minute account limit as a fixed window on the emulator's clock."""

    def __init__(self, *, limit: int, enforce: bool, clock: Clock) -> None:
        self.limit = limit
        self.enforce = enforce
        self._clock = clock
        self._window = -1
        self._used = 0

    def reset(self) -> None:
        self._window, self._used = -1, 0

    def hit(self) -> tuple[int, int | None]:
        """(remaining after this request, seconds to wait when refused else None)."""
        timestamp = self._clock().timestamp()
        window = int(timestamp // 60)
        if window != self._window:
            self._window, self._used = window, 0
        if self.enforce and self._used >= self.limit:
            return 0, max(1, math.ceil((window + 1) * 60 - timestamp))
        self._used += 1
        return max(0, self.limit - self._used), None

    def headers(self, remaining: int) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-rate-limit", str(self.limit).encode()),
            (b"x-rate-limit-remaining", str(remaining).encode()),
        ]


class ZendeskFront:
    """ASGI layer in front of the emulator's Litestar app."""

    def __init__(self, app: ASGIApp, *, credentials: Credentials, limiter: RateLimiter) -> None:
        self.app = app
        self.credentials = credentials
        self.limiter = limiter
        self._request_ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = _normalised(scope)
        request_id = f"erpgw-zd-{next(self._request_ids):08d}"
        identity = self.credentials.identify(_header(scope, b"authorization"))
        remaining, retry_after = self.limiter.hit()
        extra = [*self.limiter.headers(remaining), (b"x-request-id", request_id.encode())]
        refusal = _refusal(identity, scope["method"], retry_after)
        if refusal is not None:
            await _answer(send, refusal, extra)
            return
        scope[IDENTITY_KEY] = identity

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount_prefix(scope: Scope) -> tuple[str, str]:
    """(prefix the emulator is mounted under, path inside it), however it was mounted.

    Served alone the prefix is empty. Under an ASGI server's root path, `root_path` says it.
    Litestar's `is_mount` strips the prefix from `path` without setting `root_path`, so there
    the prefix is what `raw_path` has in front of `path`.
    """
    path = scope.get("path", "/") or "/"
    root = (scope.get("root_path") or "").rstrip("/")
    if root:
        return root, path[len(root):] if path.startswith(root + "/") or path == root else path
    raw = scope.get("raw_path")
    if not raw:
        return "", path
    full = unquote(raw.decode("latin-1").split("?", 1)[0]).rstrip("/")
    inner = path.rstrip("/")
    if full != inner and full.endswith(inner):
        return full[: len(full) - len(inner)], path
    return "", path


def _normalised(scope: Scope) -> Scope:
    prefix, inner = mount_prefix(scope)
    inner = inner.rstrip("/") or "/"
    original = inner
    # Zendesk accepts every path with or without `.json`; routes are declared without it.
    if inner.endswith(".json"):
        inner = inner[: -len(".json")]
    scope = dict(scope)
    # Litestar strips `root_path` from `path` by splitting on it, which would also cut a path
    # that merely contains the prefix; the prefix travels in our own key instead.
    scope["root_path"] = ""
    scope[PREFIX_KEY] = prefix
    scope["path"] = inner
    scope["raw_path"] = inner.encode()
    scope[ORIGINAL_PATH_KEY] = original
    return scope


def _refusal(
    identity: Identity | None, method: str, retry_after: int | None
) -> ZendeskApiError | None:
    if identity is None:
        return unauthenticated()
    if retry_after is not None:
        return too_many_requests(retry_after)
    if not identity.can_write and method not in _SAFE_METHODS:
        return forbidden()
    return None


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


async def _answer(send: Send, error: ZendeskApiError, extra: list[tuple[bytes, bytes]]) -> None:
    body = msgspec.json.encode(error.body)
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
        *extra,
    ]
    if error.status == 401:
        headers.append((b"www-authenticate", b'Basic realm="Web Password"'))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
