"""Stripe's error answers: the exception the emulator raises and the body Stripe sends for it.

Every Stripe error is `{"error": {"type", "code", "message", "param", "doc_url",
"request_log_url"}}` (https://docs.stripe.com/api/errors); `type` is one of api_error,
card_error, idempotency_error, invalid_request_error.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = [
    "StripeApiError",
    "card_declined",
    "error_body",
    "idempotency_error",
    "invalid_request",
    "no_such",
    "rate_limited",
]

_DOCS = "https://stripe.com/docs/error-codes"
_LOGS = "https://dashboard.stripe.com/test/logs"


class StripeApiError(Exception):
    """An error answer: HTTP status plus the fields of Stripe's error object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.headers = headers or {}


def error_body(error: StripeApiError, request_id: str | None) -> dict[str, Any]:
    """The JSON body Stripe answers with for `error`."""
    body: dict[str, Any] = {"type": error.type, "message": error.message}
    if error.code is not None:
        body["code"] = error.code
        body["doc_url"] = f"{_DOCS}/{error.code.replace('_', '-')}"
    if error.decline_code is not None:
        body["decline_code"] = error.decline_code
    if error.param is not None:
        body["param"] = error.param
    if request_id is not None:
        body["request_log_url"] = f"{_LOGS}/{request_id}?t={int(time.time())}"
    body.update(error.extra)
    return {"error": body}


def invalid_request(
    message: str, *, param: str | None = None, code: str | None = None
) -> StripeApiError:
    """A 400 `invalid_request_error` (bad or missing parameter, wrong state)."""
    return StripeApiError(400, message, code=code, param=param)


def no_such(kind: str, object_id: str, *, param: str = "id") -> StripeApiError:
    """A 404 `resource_missing`, worded as Stripe words it (`No such customer: 'cus_x'`)."""
    return StripeApiError(
        404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


def idempotency_error(key: str) -> StripeApiError:
    return StripeApiError(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
        type_="idempotency_error",
    )


def rate_limited(retry_after: int) -> StripeApiError:
    # Stripe answers rate limiting with type invalid_request_error and code rate_limit
    # (https://docs.stripe.com/rate-limits); Stripe-Should-Retry tells SDKs to back off and retry.
    return StripeApiError(
        429,
        "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        code="rate_limit",
        headers={"Retry-After": str(retry_after), "Stripe-Should-Retry": "true"},
    )


def card_declined(decline_code: str, message: str, *, extra: dict[str, Any]) -> StripeApiError:
    return StripeApiError(
        402,
        message,
        type_="card_error",
        code="card_declined",
        decline_code=decline_code,
        extra=extra,
    )
