"""The emulated account's endpoints: the token endpoint, the record API (create, read with
`expandSubResources`, update, upsert and read by external id, delete, filtered and paged lists)
and SuiteQL, with NetSuite's error documents."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request, Response, route
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException
from litestar.params import FromPath

from sandbox.netsuite import render
from sandbox.netsuite.auth import TOKEN_PATH, OAuthError
from sandbox.netsuite.errors import (
    COLLECTION,
    ERROR,
    SINGULAR,
    WireError,
    encode,
    error_body,
    operation_id,
)
from sandbox.netsuite.front import public_base
from sandbox.netsuite.query import parse_filter
from sandbox.netsuite.records import TYPES
from sandbox.netsuite.store import RecordStore
from sandbox.netsuite.suiteql import parse_suiteql
from sandbox.netsuite.tables import table_rows

if TYPE_CHECKING:
    from sandbox.netsuite.emulator import NetSuiteEmulator

__all__ = ["ROUTES", "on_error"]

RECORD = render.RECORD_PATH
SUITEQL = "/services/rest/query/v1/suiteql"
MAX_LIMIT = 1000  # NetSuite's page size limit for record lists and SuiteQL.
_JSON = msgspec.json.Decoder(float_hook=Decimal)


# ------------------------------------------------------------------------------ responses


def _respond(
    payload: Any, *, status: int = 200, media_type: str = SINGULAR,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    body = b"" if payload is None else encode(payload)
    return Response(content=body, status_code=status, media_type=media_type,
                    headers={"X-N-OperationId": operation_id(), **(headers or {})})


def on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, WireError):
        body = error_body(exc.status, exc.code, exc.detail, path=exc.path,
                          query_param=exc.query_param)
        return _respond(body, status=exc.status, media_type=ERROR, headers=exc.headers)
    if isinstance(exc, NotFoundException):
        body = error_body(404, "NONEXISTENT_ID", f"The path {request.url.path} does not exist.")
        return _respond(body, status=404, media_type=ERROR)
    if isinstance(exc, MethodNotAllowedException):
        body = error_body(405, "INVALID_METHOD", f"{request.method} is not allowed here.")
        return _respond(body, status=405, media_type=ERROR)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        body = error_body(exc.status_code, "INVALID_CONTENT", str(exc.detail))
        return _respond(body, status=exc.status_code, media_type=ERROR)
    body = error_body(500, "UNEXPECTED_ERROR", "An unexpected error occurred.")
    return _respond(body, status=500, media_type=ERROR)


def _emulator(request: Request[Any, Any, Any]) -> NetSuiteEmulator:
    emulator: NetSuiteEmulator = request.app.state["netsuite"]
    return emulator


def _base(request: Request[Any, Any, Any]) -> str:
    return public_base(request.scope)


def _authorized(request: Request[Any, Any, Any]) -> NetSuiteEmulator:
    emulator = _emulator(request)
    emulator.tokens.check_bearer(request.headers.get("authorization"))
    return emulator


async def _json_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = _JSON.decode(raw or b"{}")
    except msgspec.DecodeError as exc:
        raise WireError(400, "INVALID_CONTENT", f"The request body is not valid JSON: {exc}") \
            from exc
    if not isinstance(body, dict):
        raise WireError(400, "INVALID_CONTENT", "The request body must be a JSON object.")
    return body


def _location(request: Request[Any, Any, Any], rtype: str, rid: str) -> dict[str, str]:
    return {"Location": f"{_base(request)}{RECORD}/{rtype}/{rid}"}


def _int_param(request: Request[Any, Any, Any], name: str, default: int, low: int,
               high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise WireError(400, "INVALID_PARAMETER",
                        f"Invalid value for the query parameter {name}: {raw}.",
                        query_param=name)
    return value


# ------------------------------------------------------------------------------- handlers


@route(TOKEN_PATH, http_method=["POST"])
async def token(request: Request[Any, Any, Any]) -> Response[bytes]:
    emulator = _emulator(request)
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    try:
        answer = emulator.tokens.issue(form, f"{_base(request)}{TOKEN_PATH}")
    except OAuthError as exc:
        payload = {"error": exc.error, "error_description": exc.description}
        return _respond(payload, status=exc.status, media_type="application/json")
    return _respond(answer, media_type="application/json", headers={"Cache-Control": "no-store"})


@route(RECORD + "/{rtype:str}", http_method=["GET", "POST"])
async def records(request: Request[Any, Any, Any], rtype: FromPath[str]) -> Response[bytes]:
    emulator = _authorized(request)
    store = emulator.store
    store.spec(rtype)
    if request.method == "POST":
        key = request.headers.get("x-netsuite-idempotency-key")
        rid = store.create(rtype, await _json_body(request), idempotency_key=key)
        return _respond(None, status=204, headers=_location(request, rtype, rid))
    return _list(request, store, rtype)


def _list(request: Request[Any, Any, Any], store: RecordStore, rtype: str) -> Response[bytes]:
    limit = _int_param(request, "limit", MAX_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, 10**9)
    q = request.query_params.get("q")
    ids = store.ids(rtype)
    if q:
        ids = _filtered(store, rtype, ids, q)
    base = _base(request)
    page = [
        {"links": [{"rel": "self", "href": f"{base}{RECORD}/{rtype}/{rid}"}], "id": rid}
        for rid in ids[offset : offset + limit]
    ]
    params = {"q": q} if q else {}
    body = render.collection(f"{base}{RECORD}/{rtype}", page, total=len(ids), limit=limit,
                             offset=offset, params=params)
    return _respond(body, media_type=COLLECTION)


def _filtered(store: RecordStore, rtype: str, ids: list[str], q: str) -> list[str]:
    spec = TYPES[rtype]
    condition = parse_filter(q)
    known = spec.fields | {"id", "externalid"} | {name.lower() for name in spec.refs}
    unknown = sorted(condition.fields - known)
    if unknown:
        raise WireError(400, "INVALID_PARAMETER",
                        f"Invalid search query. Unknown field '{unknown[0]}' for {rtype}.",
                        query_param="q")
    return store.matching(rtype, ids, condition)


@route(RECORD + "/{rtype:str}/{key:str}", http_method=["GET", "PATCH", "PUT", "DELETE"],
       status_code=200)
async def record_item(
    request: Request[Any, Any, Any], rtype: FromPath[str], key: FromPath[str]
) -> Response[bytes]:
    emulator = _authorized(request)
    store = emulator.store
    store.spec(rtype)
    if request.method == "PUT":
        if not key.startswith("eid:") or len(key) == 4:
            raise WireError(400, "INVALID_ID", "Upsert needs an external ID: PUT /{type}/eid:{id}")
        rid, _ = store.upsert(rtype, key[4:], await _json_body(request))
        return _respond(None, status=204, headers=_location(request, rtype, rid))
    rid = store.resolve(rtype, key)
    if request.method == "PATCH":
        store.update(rtype, rid, await _json_body(request))
        return _respond(None, status=204)
    if request.method == "DELETE":
        store.delete(rtype, rid)
        return _respond(None, status=204)
    expand = request.query_params.get("expandSubResources", "").lower() == "true"
    return _respond(render.record(store, rtype, rid, _base(request), expand=expand))


@route(RECORD + "/{rtype:str}/{key:str}/{name:str}", http_method=["GET"])
async def record_sublist(
    request: Request[Any, Any, Any], rtype: FromPath[str], key: FromPath[str],
    name: FromPath[str],
) -> Response[bytes]:
    emulator = _authorized(request)
    store = emulator.store
    spec = store.spec(rtype)
    rid = store.resolve(rtype, key)
    if name != spec.sublist:
        raise WireError(404, "NONEXISTENT_ID", f"Sublist '{name}' does not exist on {rtype}.")
    return _respond(render.sublist(store, rtype, rid, _base(request), expand=True),
                    media_type=COLLECTION)


@route(SUITEQL, http_method=["POST"])
async def suiteql(request: Request[Any, Any, Any]) -> Response[bytes]:
    emulator = _authorized(request)
    limit = _int_param(request, "limit", MAX_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, 10**9)
    body = await _json_body(request)
    if not isinstance(body.get("q"), str) or not body["q"].strip():
        raise WireError(400, "INVALID_CONTENT", "The request body needs a query in 'q'.",
                        path="q")
    query = parse_suiteql(body["q"])
    columns, rows = table_rows(emulator.store, query.table, query.types)
    result = query.run(rows, columns)
    items = [
        {"links": [], **{name: render.suiteql_cell(value) for name, value in row.items()
                         if value is not None}}
        for row in result[offset : offset + limit]
    ]
    page = render.collection(f"{_base(request)}{SUITEQL}", items, total=len(result),
                             limit=limit, offset=offset)
    return _respond(page, media_type=COLLECTION)


ROUTES = [token, records, record_item, record_sublist, suiteql]
