"""RFC 9457 problem details, the body of every error response, with the gateway's extensions."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["Problem", "ProblemFieldError"]


class ProblemFieldError(msgspec.Struct, frozen=True, kw_only=True):
    """What is wrong with one member of the request."""

    pointer: str
    """JSON Pointer (RFC 6901) into the request body, e.g. `/billing_address/country`, or
    the query parameter's name."""
    detail: str


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An `application/problem+json` body; members left at their default are not emitted."""

    type: str = "about:blank"
    """URI reference naming the kind of problem; `about:blank` means the status says it all."""
    title: str | None = None
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    detail: str | None = None
    instance: str | None = None
    errors: list[ProblemFieldError] | None = None
    correlation_id: str | None = None
    """The request's `X-Correlation-ID`, to quote when asking about it."""
    code: str | None = None
    """A stable machine-readable error code, e.g. `ownership_violation`."""
