"""The ASGI front of the emulator: NetSuite's per-account concurrency limit, and the public
base URL (scheme, host, mount prefix) the links in responses are built from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from sandbox.control import (
    ASGIApp,
    EmulatedVendor,
    FaultRenderer,
    Receive,
    Scope,
    Send,
)

__all__ = ["BASE_KEY", "AccountGate", "public_base"]

BASE_KEY = "erpgw.netsuite.base"
_UNGOVERNED = ("/_emulator/", "/services/rest/auth/")


class AccountGate(EmulatedVendor):
    """`EmulatedVendor` plus the account's concurrency governance.

    NetSuite refuses requests beyond the account's concurrent-request limit (5 for a base
    account) with 429 CONCURRENCY_LIMIT_EXCEEDED. The limit is counted around the whole
    request, injected latency included, so slow requests hold their slot as they would.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        render_fault: FaultRenderer,
        reset: Callable[[], None],
        concurrency_limit: int | None,
    ) -> None:
        super().__init__(app, render_fault=render_fault, reset=reset)
        self.concurrency_limit = concurrency_limit
        self.in_flight = 0
        self.concurrency_rejections = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope[BASE_KEY] = _base_of(scope)
        if len(scope["path"]) > 1 and scope["path"].endswith("/"):
            # A Litestar mount hands over `/rest/of/path/`; the control API wants no slash.
            scope["path"] = scope["path"].rstrip("/")
        governed = not any(marker in scope["path"] for marker in _UNGOVERNED)
        if not governed or self.concurrency_limit is None:
            await super().__call__(scope, receive, send)
            return
        if self.in_flight >= self.concurrency_limit:
            self.concurrency_rejections += 1
            await _reject(self.render_fault(429, 1), receive, send)
            return
        self.in_flight += 1
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.in_flight -= 1


def public_base(scope: Scope | Any) -> str:
    """The URL this emulator is reached at, without a trailing slash."""
    base = scope.get(BASE_KEY)
    return str(base) if base else _base_of(scope)


def _base_of(scope: Scope) -> str:
    scheme = scope.get("scheme", "http")
    host = next((value.decode("latin-1") for name, value in scope.get("headers", [])
                 if name == b"host"), None)
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] in (None, 80, 443) else f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}{_mount_prefix(scope)}"


def _mount_prefix(scope: Scope) -> str:
    """The path prefix in front of the emulator's own paths.

    A Litestar mount strips the prefix from `path` and leaves `root_path` alone, while
    Starlette-style mounts set `root_path`; `raw_path` always keeps what the client sent.
    """
    root: str = scope.get("root_path", "") or ""
    path: str = scope["path"]
    inner = path[len(root):] if root and path.startswith(root) else path
    raw = scope.get("raw_path")
    if not raw:
        return root.rstrip("/")
    full = unquote(bytes(raw).split(b"?")[0].decode("latin-1")).rstrip("/")
    inner = inner.rstrip("/")
    if inner and full.endswith(inner):
        return full[: len(full) - len(inner)].rstrip("/")
    return full if not inner else root.rstrip("/")


async def _reject(fault: Any, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body", False):
        pass
    headers = [
        (b"content-type", fault.content_type.encode()),
        (b"content-length", str(len(fault.body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in fault.headers),
    ]
    await send({"type": "http.response.start", "status": fault.status, "headers": headers})
    await send({"type": "http.response.body", "body": fault.body})
