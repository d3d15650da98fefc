"""The Zendesk client's one door to the API: send, map every failure, decode, page.

Failures become `contracts.errors` through `ERRORS` (the error table with Zendesk's wire reader),
with Zendesk's `X-Request-Id` (the id its support traces a request by) in the message. Zendesk's
one row before the default table: a reused Idempotency-Key with another body (400
IdempotentRequestError) is an UpstreamConflict.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

import httpx
import msgspec

from contracts.errors import (
    FieldError,
    UpstreamConflict,
    UpstreamRejected,
)
from system_apis.outbound import (
    IDEMPOTENT_EXTENSION,
    PATH_TEMPLATE_EXTENSION,
    ErrorRule,
    ErrorTable,
    Fault,
    paginate,
)
from system_apis.support.zendesk._wire import ErrorBody, ErrorObject, ListPage
from system_apis.support.zendesk.mapping import MappingError

__all__ = [
    "ERRORS",
    "MAX_PAGE_SIZE",
    "VENDOR",
    "Transport",
    "decode",
    "next_cursor",
    "unmappable",
]

VENDOR = "zendesk"
MAX_PAGE_SIZE = 100  # Zendesk's limit for page[size] on cursor-paginated lists is 100.
T = TypeVar("T")
P = TypeVar("P", bound=ListPage)
_REQUEST_ID_HEADERS = ("x-request-id", "x-zendesk-request-id")


class Transport:
    """Sends requests through the shared `httpx.AsyncClient` with Zendesk auth."""

    def __init__(self, http: httpx.AsyncClient, auth: httpx.Auth | None) -> None:
        self.http = http
        self.auth = auth

    async def send(
        self,
        method: str,
        template: str,
        *,
        path_params: Mapping[str, str | int] | None = None,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        """Send one request to `template` (a path with `{name}` slots); errors are raised.

        `idempotent` marks an unsafe request that is nevertheless safe to repeat (an upsert, a
        request carrying an Idempotency-Key), so the outbound policy may retry it.
        """
        path = template.format(**(path_params or {}))
        extensions: dict[str, Any] = {PATH_TEMPLATE_EXTENSION: template}
        if idempotent:
            extensions[IDEMPOTENT_EXTENSION] = True
        request = self.http.build_request(
            method, path, params=dict(params) if params else None,
            content=None if json is None else msgspec.json.encode(json),
            headers={"Content-Type": "application/json", **(headers or {})}
            if json is not None else dict(headers or {}),
            extensions=extensions,
        )
        try:
            response = await self.http.send(request, auth=self.auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as exc:
            raise ERRORS.unavailable(exc, f"{method} {template}") from exc
        if response.is_error:
            error = ERRORS.error_for(response)
            raise error from httpx.HTTPStatusError(
                str(error), request=response.request, response=response
            )
        return response

    async def call(self, method: str, template: str, kind: type[T], **kwargs: Any) -> T:
        """`send`, then decode the answer into `kind`."""
        return decode(await self.send(method, template, **kwargs), kind)

    async def get(self, template: str, kind: type[T], **kwargs: Any) -> T:
        return await self.call("GET", template, kind, **kwargs)

    async def pages(
        self,
        template: str,
        kind: type[P],
        *,
        params: Mapping[str, str | int] | None = None,
        path_params: Mapping[str, str | int] | None = None,
        cursor: str | None = None,
    ) -> AsyncIterator[P]:
        """Every cursor page of a list, until Zendesk says there are no more.

        Raises UpstreamRejected when Zendesk hands back a cursor it already gave (a loop).
        """
        async def fetch(after: str | None) -> P:
            query: dict[str, str | int] = {**(params or {}), "page[size]": MAX_PAGE_SIZE}
            if after is not None:
                query["page[after]"] = after
            return await self.get(template, kind, params=query, path_params=path_params)

        async for page in paginate(fetch, next_cursor, vendor=VENDOR,
                                   what=f"Zendesk list {template}", start=cursor):
            yield page


def next_cursor(page: ListPage) -> str | None:
    """The cursor of the page after `page`, None on the last page."""
    if page.meta is None or not page.meta.has_more:
        return None
    return page.meta.after_cursor


def decode(response: httpx.Response, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(response.content, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UpstreamRejected(
            f"Zendesk answered {response.request.method} {response.request.url.path} with an "
            f"unexpected body: {exc}{_request_id_note(response)}",
            vendor=VENDOR, status=response.status_code, request_id=_request_id(response),
            code="unexpected_response",
        ) from exc


def unmappable(exc: MappingError) -> UpstreamRejected:
    """A Zendesk record that cannot become its canonical contract (missing fields)."""
    return UpstreamRejected(str(exc), vendor=VENDOR, code="unmappable_record")


def read_fault(response: httpx.Response) -> Fault:
    """A Zendesk error answer, in any of its shapes (see `ErrorBody`)."""
    body = _error_body(response.content)
    return Fault(
        message=f"Zendesk answered {response.request.method} {response.request.url.path} "
        f"with {response.status_code}: {_summary(body)}{_request_id_note(response)}",
        code=_code(body),
        request_id=_request_id(response),
        errors=_field_errors(body),
    )


_ERROR_DECODER = msgspec.json.Decoder(ErrorBody)


def _error_body(content: bytes) -> ErrorBody:
    try:
        return _ERROR_DECODER.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ErrorBody()


def _code(body: ErrorBody) -> str | None:
    if isinstance(body.error, str):
        return body.error
    if body.errors:
        return body.errors[0].code
    return None


def _summary(body: ErrorBody) -> str:
    if isinstance(body.error, ErrorObject):
        return f"{body.error.title}: {body.error.message}"
    parts = [body.error if isinstance(body.error, str) else None, body.description]
    parts += [item.detail or item.title for item in body.errors or []]
    parts += [f"{field}: {p.description}" for field, ps in (body.details or {}).items()
              for p in ps]
    return "; ".join(part for part in parts if part) or "no error body"


def _field_errors(body: ErrorBody) -> list[FieldError]:
    errors = [
        FieldError(pointer=field, detail=problem.description or problem.error or "invalid")
        for field, problems in (body.details or {}).items()
        for problem in problems
    ]
    for item in body.errors or []:
        pointer = (item.source or {}).get("pointer") or item.code or "request"
        errors.append(FieldError(pointer=pointer, detail=item.detail or item.title or "invalid"))
    return errors


def _request_id(response: httpx.Response) -> str | None:
    return next((response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers),
                None)


def _request_id_note(response: httpx.Response) -> str:
    request_id = _request_id(response)
    return f" (request id {request_id})" if request_id else ""


ERRORS = ErrorTable(
    VENDOR,
    name="Zendesk",
    read=read_fault,
    overrides=(
        # https://developer.zendesk.com/api-reference/introduction/idempotency/
        ErrorRule(400, UpstreamConflict, code="IdempotentRequestError"),
    ),
)
"""Zendesk's error table (see the module docstring)."""
