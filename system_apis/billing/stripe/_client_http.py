"""How the Stripe client talks HTTP: one request path, one error classification, cursors.

Every call goes through `Transport.call`, which form-encodes the parameters, passes the
caller's idempotency key in Stripe's `Idempotency-Key` header (marking the request safe to
retry for the outbound policy), and turns every failure into a `contracts.errors` error
carrying Stripe's request id.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import httpx
import msgspec

from contracts.errors import (
    FieldError,
    InvalidRequest,
    UpstreamAuthFailed,
    UpstreamConflict,
    UpstreamError,
    UpstreamInvalid,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from system_apis.billing.stripe._form import FormParams, encode_form
from system_apis.billing.stripe._wire import ErrorBodyWire, ErrorWire, ListWire
from system_apis.outbound import IDEMPOTENT_EXTENSION, PATH_TEMPLATE_EXTENSION

__all__ = [
    "VENDOR",
    "Transport",
    "classify",
    "decode_cursor",
    "encode_cursor",
    "iterate",
]

VENDOR = "stripe"
_CURSOR_PREFIX = "sa:"
T = TypeVar("T")


class Transport:
    """Sends one Stripe request and returns the raw body of a 2xx answer."""

    def __init__(self, http: httpx.AsyncClient, auth: httpx.Auth, base_url: str) -> None:
        self._http = http
        self._auth = auth
        self._base = base_url.rstrip("/")

    async def call(
        self,
        method: str,
        path: str,
        *,
        template: str,
        params: FormParams | None = None,
        idempotency_key: str | None = None,
        what: str,
    ) -> bytes:
        fields = encode_form(params or {})
        headers: dict[str, str] = {}
        extensions: dict[str, Any] = {PATH_TEMPLATE_EXTENSION: template}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
            # Stripe replays a keyed request instead of repeating it, so the policy may retry it.
            extensions[IDEMPOTENT_EXTENSION] = True
        url = f"{self._base}{_quote_segments(path)}"
        content: bytes | None = None
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            content = urlencode(fields).encode()
        elif fields:
            url = f"{url}?{urlencode(fields)}"
        try:
            response = await self._http.request(
                method,
                url,
                content=content,
                headers=headers,
                auth=self._auth,
                extensions=extensions,
            )
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable(
                f"Stripe {what} timed out", vendor=VENDOR, timeout=True
            ) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(
                f"Stripe {what} failed to connect: {exc}", vendor=VENDOR
            ) from exc
        if response.is_success:
            return response.content
        raise classify(response, what)

    @staticmethod
    def decode(content: bytes, kind: type[T], what: str) -> T:
        try:
            return msgspec.json.decode(content, type=kind)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise UpstreamUnavailable(
                f"Stripe {what} answered an unreadable body: {exc}", vendor=VENDOR
            ) from exc


def _quote_segments(path: str) -> str:
    """`path` with each segment percent-encoded: an id in it is data, never URL syntax (a
    control character, `?` or `#` in an id must not break or reshape the request)."""
    return "/".join(quote(segment, safe="") for segment in path.split("/"))


def classify(response: httpx.Response, what: str) -> UpstreamError:
    """The contracts error for a non-2xx Stripe answer (the one place statuses are read)."""
    status = response.status_code
    request_id = response.headers.get("request-id")
    error = _error_body(response)
    detail = error.message or response.reason_phrase
    kind = f"{error.type}/{error.code}" if error.code else error.type
    message = f"Stripe {what} answered {status} ({kind}): {detail} [request {request_id}]"
    common: dict[str, Any] = {"vendor": VENDOR, "status": status, "request_id": request_id}
    if status == 429 or status >= 500:
        return UpstreamUnavailable(
            message, retry_after=_retry_after(response), code=error.code, **common
        )
    if status in (401, 403):
        return UpstreamAuthFailed(message, code=error.code, **common)
    if status == 404:
        return UpstreamNotFound(message, code=error.code, **common)
    if status == 409 or error.type == "idempotency_error":
        return UpstreamConflict(message, code=error.code or error.type, **common)
    if status in (400, 402, 422):
        field = error.param or ("payment_method" if error.type == "card_error" else "")
        code = error.decline_code if error.code == "card_declined" else error.code
        return UpstreamInvalid(
            message,
            errors=[FieldError(pointer=field, detail=detail)] if field else [],
            code=code or error.code,
            **common,
        )
    return UpstreamRejected(message, code=error.code, **common)


def _error_body(response: httpx.Response) -> ErrorBodyWire:
    try:
        return msgspec.json.decode(response.content, type=ErrorWire).error
    except (msgspec.ValidationError, msgspec.DecodeError):
        return ErrorBodyWire(type="api_error", message=response.text[:200] or None)


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def encode_cursor(last_id: str) -> str:
    """An opaque page cursor: Stripe's `starting_after` id, base64url-encoded."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The `starting_after` id inside a cursor from `encode_cursor`; None for the first page."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raw = ""
    if not raw.startswith(_CURSOR_PREFIX) or len(raw) == len(_CURSOR_PREFIX):
        raise InvalidRequest(
            "invalid cursor", errors=[FieldError(pointer="cursor", detail="not a cursor we issued")]
        )
    return raw[len(_CURSOR_PREFIX) :]


async def iterate(
    fetch: Callable[[str | None], Awaitable[ListWire[T]]], *, what: str
) -> AsyncIterator[T]:
    """Every object of a Stripe list, page after page; stops on an empty or last page."""
    seen: set[str] = set()
    after: str | None = None
    while True:
        page = await fetch(after)
        for item in page.data:
            yield item
        if not page.has_more or not page.data:
            return
        after = _last_id(page)
        if after in seen:
            raise UpstreamRejected(
                f"Stripe {what} pagination loop detected at {after}", vendor=VENDOR
            )
        seen.add(after)


def _last_id(page: ListWire[Any]) -> str:
    last = page.data[-1]
    identifier = last.get("id") if isinstance(last, Mapping) else getattr(last, "id", None)
    return str(identifier)
