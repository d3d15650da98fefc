"""NetSuite's wire conventions shared by the emulator modules: media types, error bodies, JSON.

REST web services answer errors as RFC 7807-style documents with `o:errorDetails`
(https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156570709583.html).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

__all__ = [
    "COLLECTION",
    "ERROR",
    "SINGULAR",
    "WireError",
    "encode",
    "error_body",
    "operation_id",
]

SINGULAR = "application/vnd.oracle.resource+json; type=singular"
COLLECTION = "application/vnd.oracle.resource+json; type=collection"
ERROR = "application/vnd.oracle.resource+json; type=error"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_SECTIONS = {400: "15.5.1", 401: "15.5.2", 403: "15.5.4", 404: "15.5.5", 405: "15.5.6",
             409: "15.5.10", 415: "15.5.16", 429: "6.6", 500: "15.6.1", 502: "15.6.3",
             503: "15.6.4", 504: "15.6.5"}

# Money is a JSON number with the exact decimal digits (500.0, 0.10), as NetSuite sends it.
_ENCODER = msgspec.json.Encoder(decimal_format="number")


class WireError(Exception):
    """An answer in NetSuite's error shape, raised anywhere inside the emulator."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        path: str | None = None,
        query_param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.path = path
        self.query_param = query_param
        self.headers = headers or {}


def error_body(
    status: int,
    code: str,
    detail: str,
    *,
    path: str | None = None,
    query_param: str | None = None,
) -> dict[str, Any]:
    """The error document NetSuite sends for `status`."""
    entry: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    if path is not None:
        entry["o:errorPath"] = path
    if query_param is not None:
        entry["o:errorQueryParam"] = query_param
    rfc9110 = "https://www.rfc-editor.org/rfc/rfc9110.html"
    section = _SECTIONS.get(status)
    if status == 429:
        # 429 is defined by RFC 6585, not RFC 9110.
        type_uri = "https://www.rfc-editor.org/rfc/rfc6585.html#section-4"
    else:
        type_uri = f"{rfc9110}#section-{section}" if section else rfc9110
    return {
        "type": type_uri,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [entry],
    }


def encode(payload: Any) -> bytes:
    return _ENCODER.encode(payload)


def operation_id() -> str:
    """A value for `X-N-OperationId`, the id NetSuite support traces one request by."""
    return str(uuid.uuid4())
