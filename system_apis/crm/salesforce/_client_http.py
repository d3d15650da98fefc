"""Salesforce's wire facts for the error table: how its refusals read, where it differs.

Salesforce's rows before the default table (`system_apis.outbound.DEFAULT_ERRORS`):

    403 REQUEST_LIMIT_EXCEEDED (daily quota)  -> UpstreamUnavailable, retry after UTC midnight
    300 (several records match)               -> UpstreamConflict
    any other status                          -> UpstreamInvalid with the fields it names

The token endpoint has its own table: 429 and 5xx retry, anything else is UpstreamAuthFailed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import msgspec

from contracts.errors import (
    FieldError,
    UpstreamAuthFailed,
    UpstreamConflict,
    UpstreamInvalid,
    UpstreamUnavailable,
)
from system_apis.crm.salesforce._wire import ErrorEntry, OAuthError
from system_apis.crm.salesforce.mapping import canonical_pointer
from system_apis.outbound import ErrorRule, ErrorTable, Fault

__all__ = [
    "ERRORS",
    "REQUEST_ID_HEADER",
    "TOKEN_ERRORS",
    "VENDOR",
    "error_entries",
    "field_errors",
    "parse_usage",
    "request_id",
    "seconds_until_quota_reset",
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


def read_fault(response: httpx.Response, *, sobject: str | None = None) -> Fault:
    """A refusal of the data API: its first error code and message, the fields it names."""
    rid = request_id(response)
    entries = error_entries(response)
    code = entries[0].code if entries else None
    text = f"Salesforce {_what(response)} answered {response.status_code}"
    if entries:
        text += f" {code}: {entries[0].message.strip()}"
    text += f" (request id {rid})" if rid else ""
    return Fault(message=text, code=code, request_id=rid, errors=field_errors(entries, sobject))


def field_errors(entries: list[ErrorEntry], sobject: str | None) -> list[FieldError]:
    """One FieldError per field an error names (canonical pointers where known)."""
    errors: list[FieldError] = []
    for entry in entries:
        detail = f"{entry.code}: {entry.message.strip()}"
        pointers = [canonical_pointer(sobject, name) for name in entry.fields] or [""]
        errors.extend(FieldError(pointer=pointer, detail=detail) for pointer in pointers)
    return errors


def read_token_fault(response: httpx.Response) -> Fault:
    """A refusal of the token endpoint: its OAuth error, when the body is one."""
    try:
        refusal = _oauth_error.decode(response.content)
        reason = f"{refusal.error}: {refusal.error_description or ''}".strip()
        code: str | None = refusal.error
    except msgspec.DecodeError:
        reason, code = response.text[:200], None
    return Fault(
        message=f"Salesforce refused our credentials ({response.status_code} {reason})",
        code=code, request_id=request_id(response),
    )


def _what(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url.path}"


ERRORS = ErrorTable(
    VENDOR,
    name="Salesforce",
    read=read_fault,
    overrides=(
        # The org's daily API allowance is spent: a 403, but it comes back with the new day.
        ErrorRule(403, UpstreamUnavailable, code="REQUEST_LIMIT_EXCEEDED",
                  retry_after=lambda: float(seconds_until_quota_reset())),
        ErrorRule(300, UpstreamConflict),  # an external id matching several records
    ),
    fallback=UpstreamInvalid,
)
"""The data API's refusals (any status of 300 or more)."""

_TOKEN_UNAVAILABLE = "Salesforce token endpoint answered {status}"
TOKEN_ERRORS = ErrorTable(
    VENDOR,
    name="Salesforce",
    read=read_token_fault,
    rules=(
        ErrorRule(429, UpstreamUnavailable, message=_TOKEN_UNAVAILABLE),
        ErrorRule(range(500, 600), UpstreamUnavailable, message=_TOKEN_UNAVAILABLE),
    ),
    fallback=UpstreamAuthFailed,
)
"""The token endpoint's refusals: retry on 429 and 5xx, else our credentials were refused."""
