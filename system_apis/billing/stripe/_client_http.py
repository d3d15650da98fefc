"""How the Stripe client talks HTTP: one request path and Stripe's rows of the error table.

Every call goes through `Transport.call`, which form-encodes the parameters, passes the
caller's idempotency key in Stripe's `Idempotency-Key` header (marking the request safe to
retry for the outbound policy), and turns every failure into a `contracts.errors` error
carrying Stripe's request id through `ERRORS`. Stripe's rows before the default table:

    409 idempotency_key_in_use / idempotency_error  -> UpstreamUnavailable, retry in 1 s
        (another request with the same key is still in flight; it will finish)
    400 idempotency_error (same key, other params)  -> UpstreamConflict
    409 anything else                               -> UpstreamConflict
    402 (card declined, payment required)           -> UpstreamInvalid
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import httpx
import msgspec

from contracts.errors import (
    FieldError,
    UpstreamConflict,
    UpstreamInvalid,
    UpstreamUnavailable,
)
from system_apis.billing.stripe._form import FormParams, encode_form
from system_apis.billing.stripe._wire import ErrorBodyWire, ErrorWire
from system_apis.outbound import (
    IDEMPOTENT_EXTENSION,
    PATH_TEMPLATE_EXTENSION,
    ErrorRule,
    ErrorTable,
    Fault,
)

__all__ = [
    "ERRORS",
    "IN_FLIGHT_RETRY_AFTER",
    "VENDOR",
    "Transport",
]

VENDOR = "stripe"
IN_FLIGHT_RETRY_AFTER = 1.0
"""Seconds to wait for a request Stripe still runs under the same idempotency key."""
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
        except httpx.TransportError as exc:
            raise ERRORS.unavailable(exc, what) from exc
        if response.is_success:
            return response.content
        raise ERRORS.error_for(response, what)

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


def read_fault(response: httpx.Response, what: str) -> Fault:
    """A Stripe error answer: `{"error": {"type", "code", "message", "param", ...}}`."""
    request_id = response.headers.get("request-id")
    error = _error_body(response)
    detail = error.message or response.reason_phrase
    kind = f"{error.type}/{error.code}" if error.code else error.type
    # A declined card names why in `decline_code` (https://docs.stripe.com/declines/codes).
    code = (error.decline_code or error.code) if error.code == "card_declined" else error.code
    field = error.param or ("payment_method" if error.type == "card_error" else "")
    return Fault(
        message=f"Stripe {what} answered {response.status_code} ({kind}): {detail} "
        f"[request {request_id}]",
        code=code,
        kind=error.type,
        request_id=request_id,
        errors=[FieldError(pointer=field, detail=detail)] if field else [],
    )


def _error_body(response: httpx.Response) -> ErrorBodyWire:
    try:
        return msgspec.json.decode(response.content, type=ErrorWire).error
    except (msgspec.ValidationError, msgspec.DecodeError):
        return ErrorBodyWire(type="api_error", message=response.text[:200] or None)


ERRORS = ErrorTable(
    VENDOR,
    name="Stripe",
    read=read_fault,
    overrides=(
        # https://docs.stripe.com/error-codes#idempotency-key-in-use; the sandbox emulator
        # names only the type, so both rows.
        ErrorRule(409, UpstreamUnavailable, code="idempotency_key_in_use",
                  retry_after=IN_FLIGHT_RETRY_AFTER),
        ErrorRule(409, UpstreamUnavailable, code="idempotency_error",
                  retry_after=IN_FLIGHT_RETRY_AFTER, default_code="idempotency_key_in_use"),
        ErrorRule(400, UpstreamConflict, code="idempotency_error", kind_as_code=True),
        ErrorRule(409, UpstreamConflict, kind_as_code=True),
        ErrorRule(402, UpstreamInvalid),
    ),
)
"""Stripe's error table (see the module docstring)."""
