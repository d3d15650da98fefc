"""The client's one door to NetSuite: send a request, map every failure, decode bodies.

Errors become `contracts.errors` through `ERRORS` (the error table with NetSuite's wire reader),
with NetSuite's `X-N-OperationId` (the id its support traces a request by) in the message.
NetSuite names its errors by `o:errorCode` whatever the status, so its rows come first:

    429, CONCURRENCY_LIMIT_EXCEEDED, SSS_REQUEST_LIMIT_EXCEEDED -> UpstreamUnavailable (1 s)
    5xx                                                         -> UpstreamUnavailable
    401, 403, INVALID_LOGIN, INSUFFICIENT_PERMISSION            -> UpstreamAuthFailed
    NONEXISTENT_ID                                              -> UpstreamNotFound
    any other status the default table does not name            -> UpstreamInvalid
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import msgspec

from contracts.errors import (
    FieldError,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamInvalid,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from system_apis.erp.netsuite._wire import ErrorDocument
from system_apis.outbound import ErrorRule, ErrorTable, Fault

__all__ = ["ERRORS", "VENDOR", "Transport"]

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
        except httpx.HTTPError as exc:
            raise ERRORS.unavailable(exc, what) from exc
        if response.status_code >= 400:
            error = ERRORS.error_for(response, what)
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


def read_fault(response: httpx.Response, what: str) -> Fault:
    """A NetSuite error document (RFC 7807 style, details in `o:errorDetails`)."""
    request_id = response.headers.get("X-N-OperationId")
    document = _error_document(response)
    codes = [detail.error_code for detail in document.details if detail.error_code]
    code = codes[0] if codes else None
    text = "; ".join(detail.detail for detail in document.details if detail.detail)
    message = f"NetSuite {what}: {response.status_code} {code or ''} {text}".strip()
    if request_id:
        message += f" (operation {request_id})"
    errors = [
        FieldError(
            pointer=detail.error_path or detail.error_query_param or detail.error_header or "",
            detail=detail.detail,
        )
        for detail in document.details
    ]
    return Fault(message=message, code=code, request_id=request_id, errors=errors)


def _error_document(response: httpx.Response) -> ErrorDocument:
    try:
        return msgspec.json.decode(response.content, type=ErrorDocument)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ErrorDocument()


_BUSY = 1.0
"""Seconds to wait when NetSuite refuses for concurrency without a Retry-After."""

ERRORS = ErrorTable(
    VENDOR,
    name="NetSuite",
    read=read_fault,
    overrides=(
        # https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156268771716.html
        ErrorRule(None, UpstreamUnavailable, code="CONCURRENCY_LIMIT_EXCEEDED", retry_after=_BUSY),
        ErrorRule(None, UpstreamUnavailable, code="SSS_REQUEST_LIMIT_EXCEEDED", retry_after=_BUSY),
        ErrorRule(429, UpstreamUnavailable, retry_after=_BUSY),
        ErrorRule(range(500, 600), UpstreamUnavailable),
        ErrorRule(401, UpstreamAuthFailed),
        ErrorRule(403, UpstreamAuthFailed),
        ErrorRule(None, UpstreamAuthFailed, code="INVALID_LOGIN"),
        ErrorRule(None, UpstreamAuthFailed, code="INSUFFICIENT_PERMISSION"),
        ErrorRule(None, UpstreamNotFound, code="NONEXISTENT_ID"),
    ),
    fallback=UpstreamInvalid,
)
"""NetSuite's error table (see the module docstring)."""
