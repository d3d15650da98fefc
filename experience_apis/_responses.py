"""Conditional answers of the views: canonical JSON, an ETag over it, `If-None-Match` -> 304.

The body is the view's data as canonical JSON (keys sorted, no insignificant whitespace) and
the ETag is a hash of exactly those bytes, so two answers carry the same ETag when their data
is the same. Views put no generation time or correlation id in their data for that reason.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec
from litestar import Request, Response

__all__ = ["conditional_response", "etag_for", "wants_fresh"]

_CACHE_CONTROL = "private, no-cache"
"""Browsers and proxies may keep a view, but must revalidate it (cheap: a 304)."""


def etag_for(body: bytes) -> str:
    """A strong ETag over `body`: 128 bits of its SHA-256, base64url."""
    digest = hashlib.sha256(body).digest()[:16]
    return '"' + base64.urlsafe_b64encode(digest).decode().rstrip("=") + '"'


def conditional_response(request: Request[Any, Any, Any], data: object) -> Response[bytes]:
    """`data` as canonical JSON with its ETag, or an empty 304 when the caller has it."""
    body = msgspec.json.encode(data, order="sorted")
    etag = etag_for(body)
    headers = {"ETag": etag, "Cache-Control": _CACHE_CONTROL, "Vary": "Authorization"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(content=b"", status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)


def wants_fresh(request: Request[Any, Any, Any]) -> bool:
    """True when the caller asked to bypass caches (`Cache-Control: no-cache` or `no-store`,
    or the HTTP/1.0 `Pragma: no-cache`)."""
    directives = {
        part.strip().lower().split("=", 1)[0]
        for part in request.headers.get("cache-control", "").split(",")
    }
    if directives & {"no-cache", "no-store"}:
        return True
    return "no-cache" in request.headers.get("pragma", "").lower()


def _matches(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison, `*` matches any current representation."""
    if not header:
        return False
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False
