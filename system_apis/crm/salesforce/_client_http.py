"""The one place that turns Salesforce answers and httpx failures into contracts errors.

    429, 5xx, timeouts, connection errors     -> UpstreamUnavailable (retry_after when known)
    403 REQUEST_LIMIT_EXCEEDED (daily quota)  -> UpstreamUnavailable, retry after UTC midnight
    401, 403, token endpoint refusals         -> UpstreamAuthFailed
    404 (NOT_FOUND, ENTITY_IS_DELETED)        -> UpstreamNotFound
    300 (several records match), 409          -> UpstreamConflict
    other 4xx                                 -> UpstreamInvalid with the fields it names
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

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
from system_apis.crm.salesforce._wire import ErrorEntry, OAuthError
from system_apis.crm.salesforce.mapping import canonical_pointer

__all__ = [
    "REQUEST_ID_HEADER",
    "VENDOR",
    "classify",
    "error_entries",
    "field_errors",
    "parse_usage",
    "request_id",
    "seconds_until_quota_reset",
    "transport_error",
]

VENDOR = "salesforce"
REQUEST_ID_HEADER = "X-SFDC-Request-Id"
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
_error_list = msgspec.json.Decoder(list[ErrorEntry])
_oauth_error = msgspec.json.Decoder(OAuthError)


def request_id(response: httpx.Response) -> str | None:
    value = response.headers.get(REQUEST_ID_HEADER)
    return str(value) if value else None


def parse_usage(response: httpx.Response) -> tuple[int, int] | None:
    """(used, limit) from `Sforce-Limit-Info: api-usage=18/5000`, when present."""
    match = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def seconds_until_quota_reset(now: datetime | None = None) -> int:
    """The daily allowance is a rolling 24 hours; the next UTC midnight is a fair guess."""
    now = now or datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return max(int((midnight - now).total_seconds()), 1)


def error_entries(response: httpx.Response) -> list[ErrorEntry]:
    """The JSON error array of a refusal (empty when the body is something else)."""
    try:
        return _error_list.decode(response.content)
    except msgspec.DecodeError:
        return []


def transport_error(exc: httpx.HTTPError, what: str) -> UpstreamUnavailable:
    """A timeout or connection failure: always worth retrying later."""
    timeout = isinstance(exc, httpx.TimeoutException)
    kind = "timed out" if timeout else f"failed ({type(exc).__name__})"
    return UpstreamUnavailable(
        f"Salesforce {what} {kind}", vendor=VENDOR, timeout=timeout, code="transport_error"
    )


def classify(
    response: httpx.Response, *, sobject: str | None = None, token: bool = False
) -> UpstreamError:
    """The contracts error for a Salesforce refusal (the caller raises it `from` the cause)."""
    status = response.status_code
    rid = request_id(response)
    if token:
        return _token_refusal(response, rid)
    entries = error_entries(response)
    code = entries[0].code if entries else None
    text = f"Salesforce {_what(response)} answered {status}"
    if entries:
        text += f" {code}: {entries[0].message.strip()}"
    text += f" (request id {rid})" if rid else ""
    if status == 429 or status >= 500:
        return UpstreamUnavailable(
            text, vendor=VENDOR, status=status, request_id=rid, code=code,
            retry_after=_retry_after(response),
        )
    if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        return UpstreamUnavailable(
            text, vendor=VENDOR, status=status, request_id=rid, code=code,
            retry_after=float(seconds_until_quota_reset()),
        )
    if status in (401, 403):
        return UpstreamAuthFailed(text, vendor=VENDOR, status=status, request_id=rid, code=code)
    if status == 404:
        return UpstreamNotFound(text, vendor=VENDOR, status=status, request_id=rid, code=code)
    if status in (300, 409):
        return UpstreamConflict(text, vendor=VENDOR, status=status, request_id=rid, code=code)
    return UpstreamInvalid(
        text, vendor=VENDOR, status=status, request_id=rid, code=code,
        errors=field_errors(entries, sobject),
    )


def field_errors(entries: list[ErrorEntry], sobject: str | None) -> list[FieldError]:
    """One FieldError per field an error names (canonical pointers where known)."""
    errors: list[FieldError] = []
    for entry in entries:
        detail = f"{entry.code}: {entry.message.strip()}"
        pointers = [canonical_pointer(sobject, name) for name in entry.fields] or [""]
        errors.extend(FieldError(pointer=pointer, detail=detail) for pointer in pointers)
    return errors


def _token_refusal(response: httpx.Response, rid: str | None) -> UpstreamError:
    status = response.status_code
    if status == 429 or status >= 500:
        return UpstreamUnavailable(
            f"Salesforce token endpoint answered {status}", vendor=VENDOR, status=status,
            request_id=rid, retry_after=_retry_after(response),
        )
    try:
        refusal = _oauth_error.decode(response.content)
        reason = f"{refusal.error}: {refusal.error_description or ''}".strip()
        code: str | None = refusal.error
    except msgspec.DecodeError:
        reason, code = response.text[:200], None
    return UpstreamAuthFailed(
        f"Salesforce refused our credentials ({status} {reason})", vendor=VENDOR,
        status=status, request_id=rid, code=code,
    )


def _what(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url.path}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
