"""The error table: what a vendor's refusal or a failed transport becomes in `contracts.errors`.

A vendor package declares only its wire facts -- how to read its error body into a `Fault`
(code, message, request id, the fields it names) -- and the rows where it differs from the
default table; the first matching row wins, vendor rows first:

    status    vendor code   error                 action
    429       any           UpstreamUnavailable   retry (after Retry-After when given)
    5xx       any           UpstreamUnavailable   retry (after Retry-After when given)
    401, 403  any           UpstreamAuthFailed    fail
    404       any           UpstreamNotFound      fail
    409       any           UpstreamConflict      fail
    400, 422  any           UpstreamInvalid       fail (with the fields the vendor names)
    other     any           the table's fallback  fail (UpstreamRejected unless the vendor says)

A timeout or connection failure is always `UpstreamUnavailable` (`ErrorTable.unavailable`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, Literal, ParamSpec

import httpx

from contracts.errors import (
    FieldError,
    UpstreamAuthFailed,
    UpstreamConflict,
    UpstreamError,
    UpstreamInvalid,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from system_apis.outbound._retry_after import retry_after_of

__all__ = ["DEFAULT_ERRORS", "TRANSPORT_ERROR_CODE", "ErrorRule", "ErrorTable", "Fault"]

TRANSPORT_ERROR_CODE = "transport_error"
"""The code of the error a timeout or connection failure becomes, for every vendor."""

P = ParamSpec("P")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """What one vendor error answer says, read by the vendor package from its own body."""

    message: str
    """The error's message: what failed, the vendor's words and its request id."""
    code: str | None = None
    """The vendor's error code; rows match it, and the error carries it."""
    kind: str | None = None
    """A broader class some vendors name besides the code (Stripe's error `type`); rows
    match it like a code."""
    request_id: str | None = None
    """The id the vendor's support traces the request by."""
    errors: Sequence[FieldError] = ()
    """The fields the vendor names (kept by `UpstreamInvalid`)."""


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """One row of the table: a status (or range) and optionally a vendor code -> an error."""

    status: int | range | None
    """The HTTP status or statuses this row matches; None matches any."""
    error: type[UpstreamError]
    """The contracts error raised; `UpstreamUnavailable` means retry, any other means fail."""
    code: str | None = None
    """Match only answers naming this code (or kind); None matches any."""
    retry_after: float | Callable[[], float] | None = None
    """The wait when the answer has no Retry-After header (the value, or a function giving it)."""
    default_code: str | None = None
    """The code the error carries when the answer names none."""
    kind_as_code: bool = False
    """Carry the vendor's kind as the code when the answer names no code."""
    message: str | None = None
    """A message replacing the fault's, formatted with `status` (e.g. a token endpoint)."""

    @property
    def action(self) -> Literal["retry", "fail"]:
        return "retry" if issubclass(self.error, UpstreamUnavailable) else "fail"

    def matches(self, status: int, fault: Fault) -> bool:
        if isinstance(self.status, int) and status != self.status:
            return False
        if isinstance(self.status, range) and status not in self.status:
            return False
        return self.code is None or self.code in (fault.code, fault.kind)

    def build(self, vendor: str, response: httpx.Response, fault: Fault) -> UpstreamError:
        """The error this row makes of `fault` (the caller raises it `from` the cause)."""
        status = response.status_code
        code = fault.code or self.default_code or (fault.kind if self.kind_as_code else None)
        context: dict[str, Any] = {
            "vendor": vendor, "status": status, "request_id": fault.request_id, "code": code,
        }
        message = self.message.format(status=status) if self.message else fault.message
        if issubclass(self.error, UpstreamUnavailable):
            wait = retry_after_of(response)
            if not wait and self.retry_after is not None:
                wait = self.retry_after() if callable(self.retry_after) else self.retry_after
            return self.error(message, retry_after=wait, **context)
        if issubclass(self.error, UpstreamInvalid):
            return self.error(message, errors=fault.errors, **context)
        return self.error(message, **context)


DEFAULT_ERRORS: tuple[ErrorRule, ...] = (
    ErrorRule(429, UpstreamUnavailable),
    ErrorRule(range(500, 600), UpstreamUnavailable),
    ErrorRule(401, UpstreamAuthFailed),
    ErrorRule(403, UpstreamAuthFailed),
    ErrorRule(404, UpstreamNotFound),
    ErrorRule(409, UpstreamConflict),
    ErrorRule(400, UpstreamInvalid),
    ErrorRule(422, UpstreamInvalid),
)
"""The default table; see the module docstring."""


class ErrorTable(Generic[P]):
    """A vendor's error table: its wire reader, its rows before the default ones, a fallback.

    `read(response, *args)` turns an error answer into a `Fault`; `error_for(response, *args)`
    reads it and returns the error of the first matching row.
    """

    def __init__(
        self,
        vendor: str,
        *,
        name: str,
        read: Callable[Concatenate[httpx.Response, P], Fault],
        overrides: Sequence[ErrorRule] = (),
        rules: Sequence[ErrorRule] = DEFAULT_ERRORS,
        fallback: type[UpstreamError] = UpstreamRejected,
    ) -> None:
        self.vendor = vendor
        self.name = name
        self.read = read
        self.rules: tuple[ErrorRule, ...] = (*overrides, *rules, ErrorRule(None, fallback))

    def rule_for(self, status: int, fault: Fault) -> ErrorRule:
        """The first row matching `status` and the fault's code (the fallback row at last)."""
        return next(rule for rule in self.rules if rule.matches(status, fault))

    def error_for(
        self, response: httpx.Response, /, *args: P.args, **kwargs: P.kwargs
    ) -> UpstreamError:
        """The contracts error for a vendor's error answer."""
        fault = self.read(response, *args, **kwargs)
        return self.rule_for(response.status_code, fault).build(self.vendor, response, fault)

    def unavailable(self, exc: httpx.HTTPError, what: str) -> UpstreamUnavailable:
        """A timeout or connection failure of `what` (the caller raises it `from exc`)."""
        timeout = isinstance(exc, httpx.TimeoutException)
        kind = "timed out" if timeout else f"failed ({type(exc).__name__}: {exc})"
        return UpstreamUnavailable(
            f"{self.name} {what} {kind}", vendor=self.vendor, timeout=timeout,
            code=TRANSPORT_ERROR_CODE,
        )
