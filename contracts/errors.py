"""The one error tree every layer raises; the gateway alone turns it into HTTP.

    GatewayError
    +-- RequestRejected            the caller's fault; retrying the same request will not help
    |   +-- InvalidRequest         malformed input (field errors listed)
    |   |   +-- ValidationFailed   well-formed but breaks a business rule (field errors listed)
    |   +-- Unauthenticated        no or bad credentials
    |   +-- Forbidden              authenticated but not allowed (scope, legal entity, customer)
    |   +-- NotFound               no such resource (or not visible to this caller)
    |   +-- Conflict               the state of the resource forbids this now
    |   +-- OwnershipViolation     a field written to a system that does not own it
    |   +-- PayloadTooLarge        body over the configured limit
    |   +-- RateLimited            the caller's quota is spent for now
    |   +-- Gone                   the API version is past its sunset
    +-- ServiceUnavailable         the gateway itself cannot serve now (store down, shutting down)
    |   +-- DatabaseUnavailable    its database cannot be reached or lacks its tables
    +-- UpstreamError              a vendor platform answered badly; carries vendor and request id
    |   +-- UpstreamUnavailable    retry later: timeout, connection error, 5xx, 429
    |   +-- UpstreamRejected       do not retry: a vendor 4xx
    |       +-- UpstreamNotFound
    |       +-- UpstreamConflict
    |       +-- UpstreamInvalid    the vendor refused fields (listed)
    |       +-- UpstreamAuthFailed our credentials for the vendor were refused
    +-- FlowAborted                a business rule stopped a flow after compensation ran

HTTP statuses live in `gateway/errors.py`, not here: the process layer never knows HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

__all__ = [
    "Conflict",
    "DatabaseUnavailable",
    "FieldError",
    "FlowAborted",
    "Forbidden",
    "GatewayError",
    "Gone",
    "InvalidRequest",
    "NotFound",
    "OwnershipViolation",
    "PayloadTooLarge",
    "RateLimited",
    "RequestRejected",
    "ServiceUnavailable",
    "Unauthenticated",
    "UpstreamAuthFailed",
    "UpstreamConflict",
    "UpstreamError",
    "UpstreamInvalid",
    "UpstreamNotFound",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "ValidationFailed",
]


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    """One problem with one input field; `pointer` is a JSON Pointer or dotted path."""

    pointer: str
    detail: str


class GatewayError(Exception):
    """Base of every error that crosses a layer."""

    title: str = "Gateway error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class RequestRejected(GatewayError):
    title = "Request rejected"


class InvalidRequest(RequestRejected):
    title = "Invalid request"

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[FieldError] = (),
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.errors = tuple(errors)


class ValidationFailed(InvalidRequest):
    title = "Validation failed"


class Unauthenticated(RequestRejected):
    title = "Unauthenticated"

    def __init__(
        self, message: str, *, error: str = "invalid_token", code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.error = error


class Forbidden(RequestRejected):
    title = "Forbidden"

    def __init__(
        self,
        message: str,
        *,
        required_scopes: Sequence[str] = (),
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.required_scopes = tuple(required_scopes)


class NotFound(RequestRejected):
    title = "Not found"


class Conflict(RequestRejected):
    title = "Conflict"

    def __init__(
        self, message: str, *, retry_after: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class OwnershipViolation(RequestRejected):
    title = "Field owned by another system"

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[FieldError] = (),
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.errors = tuple(errors)


class PayloadTooLarge(RequestRejected):
    title = "Payload too large"


class RateLimited(RequestRejected):
    title = "Too many requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Gone(RequestRejected):
    title = "Gone"


class ServiceUnavailable(GatewayError):
    title = "Service unavailable"

    def __init__(self, message: str, *, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class DatabaseUnavailable(ServiceUnavailable):
    """The gateway's database cannot be reached, or lacks the tables it needs (dropped and
    not yet migrated again): nothing was written, the same request can be sent again."""

    title = "Database unavailable"


class UpstreamError(GatewayError):
    title = "Upstream platform error"

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.vendor = vendor
        self.status = status
        self.request_id = request_id


class UpstreamUnavailable(UpstreamError):
    title = "Upstream platform unavailable"

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        timeout: bool = False,
        code: str | None = None,
    ) -> None:
        super().__init__(message, vendor=vendor, status=status, request_id=request_id, code=code)
        self.retry_after = retry_after
        self.timeout = timeout


class UpstreamRejected(UpstreamError):
    title = "Upstream platform refused the request"


class UpstreamNotFound(UpstreamRejected):
    title = "Upstream record not found"


class UpstreamConflict(UpstreamRejected):
    title = "Upstream conflict"


class UpstreamInvalid(UpstreamRejected):
    title = "Upstream platform refused the data"

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        errors: Sequence[FieldError] = (),
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, vendor=vendor, status=status, request_id=request_id, code=code)
        self.errors = tuple(errors)


class UpstreamAuthFailed(UpstreamRejected):
    title = "Upstream authentication failed"


class FlowAborted(GatewayError):
    title = "Flow aborted"
