"""What the emulator's route modules share: the org state, URL building, JSON in and out."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, cast

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.params import PathParameter

from sandbox.salesforce.auth import OAuthServer
from sandbox.salesforce.errors import AmbiguousExternalId, ApiError
from sandbox.salesforce.front import Quota
from sandbox.salesforce.ids import KEY_PREFIXES, make_id
from sandbox.salesforce.query import render_record
from sandbox.salesforce.schema import ObjectSpec
from sandbox.salesforce.store import EmulatedOrg

__all__ = [
    "JSON",
    "LATEST_VERSION",
    "SUPPORTED_VERSIONS",
    "AnyRequest",
    "OrgState",
    "Segment",
    "api_version",
    "base_url",
    "data_path",
    "handle_error",
    "json_body",
    "json_response",
    "record_url",
    "render",
    "root_path",
    "state_of",
]

LATEST_VERSION = "62.0"
SUPPORTED_VERSIONS = ("58.0", "59.0", "60.0", "61.0", "62.0")
JSON = "application/json;charset=UTF-8"
_MAX_OPEN_CURSORS = 50

AnyRequest = Request[Any, Any, Any]
Segment = Annotated[str, PathParameter()]
"""A path segment parameter of an emulator route."""

_encoder = msgspec.json.Encoder(decimal_format="number")
# Numbers with a fraction become Decimal: money must never pass through a float.
_decoder = msgspec.json.Decoder(float_hook=Decimal)


@dataclass
class OrgState:
    """Everything the routes read and change; the emulator owns one and resets it."""

    org: EmulatedOrg
    oauth: OAuthServer
    quota: Quota
    page_size: int
    cursors: OrderedDict[str, list[dict[str, Any]]] = field(default_factory=OrderedDict)
    cursor_count: int = 0

    def open_cursor(self, rows: list[dict[str, Any]]) -> str:
        """Keep a query's rows for `nextRecordsUrl`; the oldest cursors are dropped."""
        self.cursor_count += 1
        locator = make_id(KEY_PREFIXES["QueryLocator"], f"ak{self.cursor_count:010d}")
        self.cursors[locator] = rows
        while len(self.cursors) > _MAX_OPEN_CURSORS:
            self.cursors.popitem(last=False)
        return locator


def state_of(request: AnyRequest) -> OrgState:
    return cast(OrgState, request.app.state.org_state)


def root_path(request: AnyRequest) -> str:
    return str(request.scope.get("root_path", "") or "").rstrip("/")


def base_url(request: AnyRequest) -> str:
    """scheme://host[:port] + root path: the instance URL as this request reached us."""
    url = request.url
    return f"{url.scheme}://{url.netloc}{root_path(request)}"


def api_version(version: str) -> str:
    """`v62.0` -> `62.0`; an unknown version is NOT_FOUND, as Salesforce answers."""
    number = version[1:] if version.startswith("v") else ""
    if number not in SUPPORTED_VERSIONS:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return number


def data_path(request: AnyRequest, version: str, rest: str) -> str:
    return f"{root_path(request)}/services/data/v{api_version(version)}/{rest}"


def record_url(request: AnyRequest, version: str) -> Callable[[str, str], str]:
    return lambda sobject, record_id: data_path(
        request, version, f"sobjects/{sobject}/{record_id}"
    )


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    return Response(
        content=_encoder.encode(payload),
        status_code=status,
        media_type=JSON,
        headers=dict(headers or {}),
    )


async def json_body(request: AnyRequest) -> Any:
    raw = await request.body()
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character in JSON: {exc}") from exc


def render(
    request: AnyRequest,
    version: str,
    spec: ObjectSpec,
    record: dict[str, Any],
    fields: list[str] | None = None,
) -> dict[str, Any]:
    """A record as `GET /sobjects/{Type}/{id}` answers it (all fields, or `?fields=`)."""
    chosen = None
    if fields is not None:
        chosen = []
        for name in fields:
            field_spec = spec.field(name)
            if field_spec is None:
                raise ApiError(
                    400, "INVALID_FIELD", f"No such column '{name}' on entity '{spec.name}'"
                )
            chosen.append(field_spec)
    return render_record(spec, record, record_url(request, version), chosen)


def handle_error(request: AnyRequest, exc: Exception) -> Response[bytes]:
    """Every failure in Salesforce's JSON-array shape, never a framework error page."""
    if isinstance(exc, ApiError):
        return json_response(exc.body(), exc.status)
    if isinstance(exc, AmbiguousExternalId):
        # 300 Multiple Choices: the body lists the matching records' URLs.
        version = str(request.path_params.get("version", f"v{LATEST_VERSION}"))
        urls = [data_path(request, version, f"sobjects/{exc.sobject}/{i}") for i in exc.ids]
        return json_response(urls, 300)
    if isinstance(exc, HTTPException):
        return json_response([_http_error(request, exc)], exc.status_code)
    return json_response(
        [
            {
                "message": f"An unexpected error occurred: {type(exc).__name__}",
                "errorCode": "UNKNOWN_EXCEPTION",
            }
        ],
        500,
    )


def _http_error(request: AnyRequest, exc: HTTPException) -> dict[str, str]:
    if exc.status_code == 404:
        return {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("allow", "")
        return {
            "message": f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}",
            "errorCode": "METHOD_NOT_ALLOWED",
        }
    return {"message": str(exc.detail), "errorCode": "JSON_PARSER_ERROR"}
