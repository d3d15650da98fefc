"""Zendesk's error bodies, as the emulator answers them, and the exception its routes raise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ZendeskApiError",
    "bad_request",
    "fault_body",
    "forbidden",
    "idempotency_mismatch",
    "invalid_endpoint",
    "not_found",
    "record_invalid",
    "too_many_requests",
    "unauthenticated",
]


class ZendeskApiError(Exception):
    """Raised inside a route; the app's exception handler answers `body` with `status`."""

    def __init__(
        self, status: int, body: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = dict(body)
        self.headers = dict(headers or {})


def not_found() -> ZendeskApiError:
    return ZendeskApiError(404, {"error": "RecordNotFound", "description": "Not found"})


def invalid_endpoint() -> ZendeskApiError:
    return ZendeskApiError(404, {"error": "InvalidEndpoint", "description": "Not found"})


def unauthenticated() -> ZendeskApiError:
    return ZendeskApiError(401, {"error": "Couldn't authenticate you"})


def forbidden() -> ZendeskApiError:
    return ZendeskApiError(
        403,
        {
            "error": {
                "title": "Forbidden",
                "message": "You do not have access to this page. Please contact the account "
                "owner of this help desk for further help.",
            }
        },
    )


def record_invalid(details: Mapping[str, Sequence[tuple[str, str]]]) -> ZendeskApiError:
    """422 with `details{field: [{description, error}]}`; each value is (error, description)."""
    return ZendeskApiError(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {
                field: [{"description": text, "error": code} for code, text in problems]
                for field, problems in details.items()
            },
        },
    )


def bad_request(code: str, title: str, detail: str | None = None) -> ZendeskApiError:
    """400 in the `{"errors":[{code,title}]}` shape Zendesk uses for parameter problems."""
    error: dict[str, str] = {"code": code, "title": title}
    if detail is not None:
        error["detail"] = detail
    return ZendeskApiError(400, {"errors": [error]})


def idempotency_mismatch() -> ZendeskApiError:
    return ZendeskApiError(
        400,
        {
            "error": "IdempotentRequestError",
            "description": "The request parameters do not match the original request made "
            "with this Idempotency-Key",
        },
    )


def too_many_requests(retry_after: int) -> ZendeskApiError:
    return ZendeskApiError(
        429,
        {"errors": [{"code": "TooManyRequests", "title": "Too many requests"}]},
        headers={"Retry-After": str(retry_after)},
    )


_SERVER_ERRORS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def fault_body(status: int) -> dict[str, Any]:
    """The body Zendesk answers for `status` when it is not a validation problem."""
    if status == 401:
        return unauthenticated().body
    if status == 403:
        return forbidden().body
    if status == 404:
        return not_found().body
    if status == 422:
        return record_invalid({"base": [("InvalidValue", "Record is invalid")]}).body
    if status == 429:
        return too_many_requests(1).body
    if status >= 500:
        return {"status": status, "error": _SERVER_ERRORS.get(status, "Server Error")}
    return bad_request("BadRequest", "Bad request").body
