"""Every error of every route as RFC 9457 `application/problem+json`; the one place that does it.

The table below maps each error class of `contracts.errors` to its HTTP status; Litestar's own
HTTP exceptions (routing, validation, body size) keep theirs, except that a body refused only
for values past its declared bounds is a 422, as a route's own content checks are; a lost
database (connection refused or dropped, tables missing, from SQLAlchemy, its drivers or DBOS)
is translated to `DatabaseUnavailable` (503 + Retry-After); anything else is a 500 whose body
says nothing about internals (the traceback goes to the log with the correlation id).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec
import sqlalchemy.exc
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from contracts import errors as e
from system_apis.outbound import TRANSPORT_ERROR_CODE

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "STATUS_BY_ERROR",
    "as_database_outage",
    "exception_handlers",
    "problem_response_parts",
    "send_problem",
]

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:erp-gateway:problem:"

STATUS_BY_ERROR: dict[type[e.GatewayError], int] = {
    e.GatewayError: 500,
    e.RequestRejected: 400,
    e.InvalidRequest: 400,
    e.ValidationFailed: 422,
    e.OwnershipViolation: 422,
    e.Unauthenticated: 401,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.Conflict: 409,
    e.Gone: 410,
    e.PayloadTooLarge: 413,
    e.RateLimited: 429,
    e.ServiceUnavailable: 503,
    e.DatabaseUnavailable: 503,
    e.UpstreamError: 502,
    e.UpstreamUnavailable: 503,
    e.UpstreamRejected: 502,
    e.UpstreamNotFound: 404,
    e.UpstreamConflict: 409,
    e.UpstreamInvalid: 422,
    e.UpstreamAuthFailed: 502,
    e.FlowAborted: 409,
}
"""Most specific class wins (the exception's MRO is walked)."""

log = structlog.get_logger("gateway.errors")

DATABASE_RETRY_AFTER_SECONDS = 5
"""What a caller is told to wait while the database is gone (readiness is probed as often)."""
_OUTAGE_SQLSTATES = frozenset({"3D000", "3F000", "42P01", "53300", "57P01", "57P02", "57P03"})
"""PostgreSQL codes of a database that is gone or empty: no such database, schema or table,
too many connections, shut down by an administrator, crashed, not accepting connections
(class 08, connection exceptions, is matched by its prefix)."""
_OUTAGE_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}
)


def as_database_outage(exc: BaseException) -> e.DatabaseUnavailable | None:
    """`DatabaseUnavailable` when `exc` (or what caused it) says the database is unreachable
    or lacks its tables; None for any other failure."""
    for cause in _causes(exc):
        if _is_outage(cause):
            return e.DatabaseUnavailable(
                "The gateway's database is unavailable; nothing was changed, retry later",
                retry_after=DATABASE_RETRY_AFTER_SECONDS,
                code="database_unavailable",
            )
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, its causes and contexts, and the driver errors SQLAlchemy wraps (`orig`)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 32:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _is_outage(exc: BaseException) -> bool:
    if isinstance(
        exc,
        sqlalchemy.exc.OperationalError
        | sqlalchemy.exc.InterfaceError
        | sqlalchemy.exc.DisconnectionError
        | sqlalchemy.exc.TimeoutError,
    ):
        return True
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(state, str) and (state.startswith("08") or state in _OUTAGE_SQLSTATES):
        return True
    if isinstance(exc, ConnectionError):
        return True
    # asyncpg reports a refused connection to every address it tried as one plain OSError.
    return isinstance(exc, OSError) and (
        exc.errno in _OUTAGE_ERRNOS or str(exc).startswith("Multiple exceptions: [Errno")
    )


def problem_response_parts(
    exc: BaseException, scope: Any = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, problem body, extra headers) for any exception."""
    if not isinstance(exc, e.GatewayError | HTTPException):
        exc = as_database_outage(exc) or exc
    if isinstance(exc, e.GatewayError):
        status, body, headers = _gateway_problem(exc)
    elif isinstance(exc, HTTPException):
        status, body, headers = _http_problem(exc)
    else:
        status, body, headers = _internal_problem()
    state: Mapping[str, Any] = scope.get("state", {}) if scope is not None else {}
    if state.get("correlation_id"):
        body["correlation_id"] = state["correlation_id"]
    # Policies that refuse a request leave the headers their refusal should carry here
    # (RateLimit fields on a 429, Sunset and Link on a 410).
    for key in ("rate_limit_headers", "problem_headers"):
        for name, value in state.get(key, ()):
            headers.setdefault(name, value)
    if scope is not None:
        body.setdefault("instance", scope.get("path", ""))
    if status >= 500 and not isinstance(exc, e.GatewayError | HTTPException):
        log.error("unhandled_error", exc_info=exc, correlation_id=state.get("correlation_id"))
    return status, body, headers


def _status_of(exc: e.GatewayError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def _gateway_problem(exc: e.GatewayError) -> tuple[int, dict[str, Any], dict[str, str]]:
    status = _status_of(exc)
    slug = exc.code or _slug(type(exc).__name__)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": exc.title,
        "status": status,
        "detail": exc.message,
    }
    if exc.code:
        body["code"] = exc.code
    field_errors = getattr(exc, "errors", ())
    if field_errors:
        body["errors"] = [{"pointer": f.pointer, "detail": f.detail} for f in field_errors]
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    if isinstance(exc, e.UpstreamError):
        body["vendor"] = exc.vendor
        if isinstance(exc, e.UpstreamUnavailable) and exc.timeout:
            status = body["status"] = 504
        _withhold_vendor_words(exc, body)
    if isinstance(exc, e.Unauthenticated):
        headers["WWW-Authenticate"] = _www_authenticate(exc.error, exc.message)
    elif isinstance(exc, e.Forbidden) and exc.required_scopes:
        headers["WWW-Authenticate"] = _www_authenticate(
            "insufficient_scope", exc.message, scope=" ".join(exc.required_scopes)
        )
        body["required_scopes"] = list(exc.required_scopes)
    return status, body, headers


_UPSTREAM_DETAIL: tuple[tuple[type[e.UpstreamError], str], ...] = (
    (e.UpstreamUnavailable, "{vendor} is unavailable; try again later"),
    (e.UpstreamNotFound, "{vendor} has no such record"),
    (e.UpstreamConflict, "{vendor} refused the request as a conflict"),
    (e.UpstreamInvalid, "{vendor} refused the data of the request"),
    (e.UpstreamAuthFailed, "the gateway could not authenticate with {vendor}"),
    (e.UpstreamError, "{vendor} refused the request"),
)


def _withhold_vendor_words(exc: e.UpstreamError, body: dict[str, Any]) -> None:
    """A vendor's own words (its query, its request id, its field messages) and how we called
    it stay in the log: the caller gets what happened and which fields, never the vendor's
    internals. An error the gateway words itself (a view's time budget, an open circuit, a
    spent quota) names nothing of the vendor's and is kept."""
    if exc.status is None and exc.request_id is None and exc.code != TRANSPORT_ERROR_CODE:
        return
    log.warning(
        "upstream_error", vendor=exc.vendor, error=type(exc).__name__, code=exc.code,
        message=exc.message, vendor_status=exc.status,
        vendor_request_id=exc.request_id,
    )
    template = next(text for cls, text in _UPSTREAM_DETAIL if isinstance(exc, cls))
    body["detail"] = template.format(vendor=exc.vendor)
    named = [
        {"pointer": error["pointer"], "detail": f"refused by {exc.vendor}"}
        for error in body.pop("errors", []) if error["pointer"]
    ]
    if named:
        body["errors"] = named


def _http_problem(exc: HTTPException) -> tuple[int, dict[str, Any], dict[str, str]]:
    status = exc.status_code
    if _past_bounds(exc):
        # Well-formed, but a number, list or text past its declared bound: like any
        # request a route refuses on its content, 422 (the request contracts' bounds).
        status = 422
    detail = exc.detail if status < 500 else "The gateway could not complete the request."
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _reason(status),
        "status": status,
        "detail": detail,
    }
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        body["errors"] = [_field_error(item) for item in exc.extra if isinstance(item, dict)]
    headers = {k: v for k, v in (exc.headers or {}).items()}
    return status, body, headers


_BOUND_MESSAGE = re.compile(r"^Expected `[a-z]+` (?:of length )?[<>]=? ")
"""How msgspec words a `Meta` bound violation (`Expected `int` <= 1000000`)."""


def _past_bounds(exc: HTTPException) -> bool:
    """A body refused only for values past the bounds its Struct declares."""
    if not isinstance(exc, ValidationException) or not isinstance(exc.extra, list):
        return False
    items = [item for item in exc.extra if isinstance(item, dict)]
    return bool(items) and all(
        _BOUND_MESSAGE.match(str(item.get("message", ""))) for item in items
    )


def _internal_problem() -> tuple[int, dict[str, Any], dict[str, str]]:
    return (
        500,
        {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "The gateway could not complete the request.",
        },
        {},
    )


def _field_error(item: dict[str, Any]) -> dict[str, str]:
    key = item.get("key") or ""
    source = item.get("source") or "body"
    # A body field as a JSON Pointer (`changes[0].quantity` -> `/changes/0/quantity`), as
    # every other problem of the gateway names it.
    body_pointer = "/" + "/".join(part for part in re.split(r"[.\[\]]", key) if part)
    pointer = body_pointer if source == "body" else f"{source}.{key}"
    return {"pointer": pointer if key else f"/{source}", "detail": str(item.get("message", ""))}


def _www_authenticate(error: str, description: str, scope: str | None = None) -> str:
    parts = ['Bearer realm="erp-gateway"']
    if error:
        parts.append(f'error="{error}"')
        parts.append(f'error_description="{_quote(description)}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return ", ".join(parts)


def _quote(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")


def _slug(name: str) -> str:
    out = "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
    return out


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _to_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    status, body, headers = problem_response_parts(exc, request.scope)
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


exception_handlers: dict[type[Exception] | int, Any] = {
    e.GatewayError: _to_response,
    HTTPException: _to_response,
    Exception: _to_response,
}
"""Registered on the app: every exception a route raises becomes a problem response."""


async def send_problem(scope: Any, send: Any, exc: BaseException) -> int:
    """Answer with the problem for `exc` directly over ASGI (for edge middleware). Returns
    the status sent."""
    status, body, headers = problem_response_parts(exc, scope)
    payload = msgspec.json.encode(body)
    raw_headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(payload)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})
    return status
