"""What stands in front of the emulated REST data API: token check and the daily API quota.

Every call under `/services/data/vXX.X/` needs a live access token (else 401
INVALID_SESSION_ID) and spends one call of the org's daily allowance (spent: 403
REQUEST_LIMIT_EXCEEDED, not 429). Every such answer carries `Sforce-Limit-Info:
api-usage=N/LIMIT`, which clients read to budget their calls.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import msgspec

from sandbox.salesforce.auth import OAuthServer

__all__ = ["ASGIApp", "DataApiGate", "ErrorAnswer", "Quota", "error_answer", "inner_path"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DATA_PATH = re.compile(r"^/services/data/v\d+\.\d+(?:/.*)?$")
_JSON = "application/json;charset=UTF-8"


@dataclass
class Quota:
    """The org's daily API request allowance and what was used of it."""

    limit: int
    used: int = 0

    def header(self) -> str:
        return f"api-usage={self.used}/{self.limit}"


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


def error_answer(
    status: int, code: str, message: str, quota: Quota, *extra: tuple[str, str]
) -> ErrorAnswer:
    """A Salesforce REST error (JSON array) with the quota and request id headers."""
    body = msgspec.json.encode([{"message": message, "errorCode": code}])
    headers = (
        ("Content-Type", _JSON),
        ("Sforce-Limit-Info", quota.header()),
        ("X-SFDC-Request-Id", uuid.uuid4().hex),
        *extra,
    )
    return ErrorAnswer(status, body, headers)


def inner_path(scope: Scope) -> str:
    """The path inside the emulator, whether it is served alone or mounted under a prefix."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "") or ""
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


class DataApiGate:
    """ASGI wrapper: token and quota checks, and the quota header, on the data API."""

    def __init__(self, app: ASGIApp, *, oauth: OAuthServer, quota: Quota) -> None:
        self.app = app
        self.oauth = oauth
        self.quota = quota

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _DATA_PATH.match(inner_path(scope)):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _drain(receive)
            await _send(send, refusal)
            return
        self.quota.used += 1
        await self.app(scope, receive, self._stamping(send))

    def _refusal(self, scope: Scope) -> ErrorAnswer | None:
        if self.oauth.grant_for(_bearer(scope)) is None:
            return error_answer(
                401, "INVALID_SESSION_ID", "Session expired or invalid", self.quota,
                ("WWW-Authenticate", "Token"),
            )
        if self.quota.used >= self.quota.limit:
            return error_answer(
                403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", self.quota
            )
        return None

    def _stamping(self, send: Send) -> Send:
        async def stamped(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"sforce-limit-info"
                ]
                headers.append((b"sforce-limit-info", self.quota.header().encode()))
                headers.append((b"x-sfdc-request-id", uuid.uuid4().hex.encode()))
                message["headers"] = headers
            await send(message)

        return stamped


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            # Salesforce takes `OAuth <token>` as well as the standard `Bearer <token>`.
            if scheme.lower() in ("bearer", "oauth"):
                return str(token).strip()
    return None


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _send(send: Send, answer: ErrorAnswer) -> None:
    headers = [(name.lower().encode(), value.encode()) for name, value in answer.headers]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
