"""The Zendesk client's one door to the API: send, classify every failure, decode, page.

Failures become `contracts.errors` in `classify` only, with Zendesk's `X-Request-Id` (the id
its support traces a request by) in the message.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

import httpx
import msgspec

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
from system_apis.outbound import IDEMPOTENT_EXTENSION, PATH_TEMPLATE_EXTENSION
from system_apis.support.zendesk._wire import ErrorBody, ErrorObject, ListPage
from system_apis.support.zendesk.mapping import MappingError

__all__ = [
    "MAX_PAGE_SIZE",
    "VENDOR",
    "Transport",
    "classify",
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
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise classify(exc) from exc
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
        seen: set[str] = set()
        while True:
            query: dict[str, str | int] = {**(params or {}), "page[size]": MAX_PAGE_SIZE}
            if cursor is not None:
                query["page[after]"] = cursor
            page = await self.get(template, kind, params=query, path_params=path_params)
            yield page
            cursor = next_cursor(page)
            if cursor is None:
                return
            if cursor in seen:
                raise UpstreamRejected(
                    f"Zendesk repeated cursor {cursor!r} while listing {template}: loop detected",
                    vendor=VENDOR, code="pagination_loop",
                )
            seen.add(cursor)


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


def classify(exc: httpx.HTTPError) -> UpstreamError:
    """The contracts error for a failed Zendesk call: transport failure or error status."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamUnavailable(f"Zendesk timed out: {exc!r}", vendor=VENDOR, timeout=True)
    if not isinstance(exc, httpx.HTTPStatusError):
        return UpstreamUnavailable(f"Zendesk unreachable: {exc!r}", vendor=VENDOR)
    response = exc.response
    status = response.status_code
    body = _error_body(response.content)
    request_id = _request_id(response)
    message = (
        f"Zendesk answered {response.request.method} {response.request.url.path} with "
        f"{status}: {_summary(body)}{_request_id_note(response)}"
    )
    context: dict[str, Any] = {"vendor": VENDOR, "status": status, "request_id": request_id,
                               "code": _code(body)}
    if status == 429 or status >= 500:
        return UpstreamUnavailable(message, retry_after=_retry_after(response), **context)
    if status in (401, 403):
        return UpstreamAuthFailed(message, **context)
    if status == 404:
        return UpstreamNotFound(message, **context)
    if status == 409 or _code(body) == "IdempotentRequestError":
        return UpstreamConflict(message, **context)
    if status in (400, 422):
        return UpstreamInvalid(message, errors=_field_errors(body), **context)
    return UpstreamRejected(message, **context)


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


def _retry_after(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    if raw.strip().isdigit():
        return float(raw.strip())
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now())


def _request_id(response: httpx.Response) -> str | None:
    return next((response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers),
                None)


def _request_id_note(response: httpx.Response) -> str:
    request_id = _request_id(response)
    return f" (request id {request_id})" if request_id else ""
