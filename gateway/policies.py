"""The per-route policies, in one Litestar middleware layer, in the order the request path
requires: who is calling and whether the route allows it (a 403 spends no quota; a 401 spends
the anonymous quota of the caller's address), their quota, the version's lifecycle, and last
the Idempotency-Key claim (a refused request claims nothing).

Each policy's logic is in its own module (`auth`, `rate_limits`, `versioning`,
`idempotency`); they are composed here rather than stacked as four middleware layers because
each Litestar layer costs several microseconds a request and one `send` wrapper does for all
(measured with `bench/gateway_overhead.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from contracts.errors import FieldError, InvalidRequest, Unauthenticated
from gateway.auth import Authenticator
from gateway.idempotency import IdempotencyPolicy
from gateway.rate_limits import RateLimiter
from gateway.versioning import VersionRegistry

__all__ = ["RoutePolicies"]


class RoutePolicies(ASGIMiddleware):
    scopes = ("http",)  # type: ignore[assignment]

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        rate_limiter: RateLimiter,
        versions: VersionRegistry,
        idempotency: IdempotencyPolicy,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.rate_limiter = rate_limiter
        self.versions = versions if versions.deprecated_entries() else None
        self.idempotency = idempotency
        self.clock = clock or (lambda: datetime.now(UTC))

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope["route_handler"]
        if getattr(handler, "is_mount", False):
            # Mounted ASGI apps (the vendor sandboxes) answer as their vendor would.
            await next_app(scope, receive, send)
            return
        opt = handler.opt
        _refuse_repeated_query_parameters(scope)
        limited = self.rate_limiter.applies_to(scope)
        if not opt.get("public"):
            try:
                await self.authenticator.authenticate(scope)
            except Unauthenticated:
                # A missing or invalid token is an anonymous caller: counted by address
                # (a 429 once that is spent), so guessing tokens costs quota too.
                if limited:
                    await self.rate_limiter.admit(scope)
                raise
        extra: tuple[tuple[bytes, bytes], ...] = ()
        if limited:
            extra = await self.rate_limiter.admit(scope)
        if self.versions is not None:
            extra += self.versions.lifecycle_headers(scope, self.clock())
        if extra:
            send = _with_headers(send, extra)
        if self.idempotency.applies_to(scope):
            await self.idempotency.run(scope, receive, send, next_app)
        else:
            await next_app(scope, receive, send)


def _refuse_repeated_query_parameters(scope: Scope) -> None:
    """No route takes a list in its query: `?status=a&status=b` would silently keep one value,
    so it is refused instead (400 naming the parameter)."""
    raw: bytes = scope.get("query_string", b"")
    if not raw or b"&" not in raw:
        return
    names = [unquote_plus(part.split("=", 1)[0]) for part in raw.decode("latin-1").split("&")]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise InvalidRequest(
            "each query parameter may be given once",
            errors=[
                FieldError(pointer=f"query.{name}", detail="given more than once")
                for name in repeated
            ],
        )


def _with_headers(send: Send, extra: tuple[tuple[bytes, bytes], ...]) -> Send:
    async def send_with_headers(message: Any) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return send_with_headers
