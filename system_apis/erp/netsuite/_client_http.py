"""The client's one door to NetSuite: send a request, classify every failure, decode bodies.

Errors become `contracts.errors` in `classify` only, with NetSuite's `X-N-OperationId` (the
id its support traces a request by) in the message.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import msgspec

from contracts.errors import (
    FieldError,
    UpstreamAuthFailed,
    UpstreamConflict,
    UpstreamError,
    UpstreamInvalid,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from system_apis.erp.netsuite._wire import ErrorDocument

__all__ = ["VENDOR", "Transport", "classify", "decode_cursor", "encode_cursor"]

VENDOR = "netsuite"
T = TypeVar("T")
_ENCODER = msgspec.json.Encoder(decimal_format="number")


class Transport:
    """Sends requests through the shared `httpx.AsyncClient` with NetSuite auth."""

    def __init__(self, http: httpx.AsyncClient, auth: httpx.Auth) -> None:
        self.http = http
        self.auth = auth

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
        what: str,
    ) -> httpx.Response:
        request = self.http.build_request(
            method,
            path,
            content=None if json is None else _ENCODER.encode(json),
            params=dict(params) if params else None,
            headers={"Content-Type": "application/json", **(headers or {})}
            if json is not None else headers,
            extensions={"erpgw_idempotent": True} if idempotent else None,
        )
        try:
            response = await self.http.send(request, auth=self.auth)
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable(f"NetSuite timed out on {what}", vendor=VENDOR,
                                      timeout=True) from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"NetSuite unreachable on {what}: {exc}",
                                      vendor=VENDOR) from exc
        if response.status_code >= 400:
            error = classify(response, what)
            raise error from httpx.HTTPStatusError(
                str(error), request=response.request, response=response
            )
        return response

    @staticmethod
    def decode(response: httpx.Response, kind: type[T], what: str) -> T:
        try:
            return msgspec.json.decode(response.content, type=kind)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamError(
                f"NetSuite answered {what} with a body we cannot read: {exc}",
                vendor=VENDOR, status=response.status_code,
                request_id=response.headers.get("X-N-OperationId"),
            ) from exc


def classify(response: httpx.Response, what: str) -> UpstreamError:
    """The contracts error for a NetSuite error answer."""
    status = response.status_code
    request_id = response.headers.get("X-N-OperationId")
    document = _error_document(response)
    codes = [detail.error_code for detail in document.details if detail.error_code]
    code = codes[0] if codes else None
    text = "; ".join(detail.detail for detail in document.details if detail.detail)
    message = f"NetSuite {what}: {status} {code or ''} {text}".strip()
    if request_id:
        message += f" (operation {request_id})"
    common: dict[str, Any] = {"vendor": VENDOR, "status": status, "request_id": request_id,
                              "code": code}
    if status == 429 or code in ("CONCURRENCY_LIMIT_EXCEEDED", "SSS_REQUEST_LIMIT_EXCEEDED"):
        return UpstreamUnavailable(message, retry_after=_retry_after(response) or 1.0, **common)
    if status >= 500:
        return UpstreamUnavailable(message, retry_after=_retry_after(response), **common)
    if status in (401, 403) or code in ("INVALID_LOGIN", "INSUFFICIENT_PERMISSION"):
        return UpstreamAuthFailed(message, **common)
    if status == 404 or code == "NONEXISTENT_ID":
        return UpstreamNotFound(message, **common)
    if status == 409:
        return UpstreamConflict(message, **common)
    errors = [
        FieldError(
            pointer=detail.error_path or detail.error_query_param or detail.error_header or "",
            detail=detail.detail,
        )
        for detail in document.details
    ]
    return UpstreamInvalid(message, errors=errors, **common)


def _error_document(response: httpx.Response) -> ErrorDocument:
    try:
        return msgspec.json.decode(response.content, type=ErrorDocument)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ErrorDocument()


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(float(response.headers["Retry-After"]), 0.0)
    except (KeyError, ValueError):
        return None


def encode_cursor(offset: int) -> str:
    """An opaque cursor for a list offset."""
    return base64.urlsafe_b64encode(f"ns:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The offset in a cursor from `encode_cursor`; ValueError for anything else."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        offset = int(number)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc
    if prefix != "ns" or offset < 0:
        raise ValueError("invalid cursor")
    return offset
