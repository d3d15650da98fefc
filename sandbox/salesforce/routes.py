"""Emulator routes outside the sObject rows: token endpoint, versions, limits and SOQL query."""

from __future__ import annotations

import time

from litestar import Response, get, post

from sandbox.salesforce.auth import TokenError
from sandbox.salesforce.context import (
    SUPPORTED_VERSIONS,
    AnyRequest,
    OrgState,
    Segment,
    api_version,
    base_url,
    data_path,
    json_response,
    record_url,
    root_path,
    state_of,
)
from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.query import execute

__all__ = ["ROUTES"]

_RELEASES = {
    "58.0": "Summer '23",
    "59.0": "Winter '24",
    "60.0": "Spring '24",
    "61.0": "Summer '24",
    "62.0": "Winter '25",
}


@post("/services/oauth2/token", status_code=200)
async def token(request: AnyRequest) -> Response[bytes]:
    form = await request.form()
    fields = {key: str(value) for key, value in form.items()}
    try:
        answer = state_of(request).oauth.grant_token(
            fields,
            request.headers.get("authorization"),
            base_url=base_url(request),
            now=time.time(),
        )
    except TokenError as exc:
        return json_response(exc.body(), exc.status)
    return json_response(answer)


@get("/services/data")
async def versions(request: AnyRequest) -> Response[bytes]:
    return json_response(
        [
            {
                "label": _RELEASES[number],
                "url": f"{root_path(request)}/services/data/v{number}",
                "version": number,
            }
            for number in SUPPORTED_VERSIONS
        ]
    )


@get("/services/data/{version:str}")
async def resources(request: AnyRequest, version: Segment) -> Response[bytes]:
    return json_response(
        {name: data_path(request, version, name) for name in ("sobjects", "query", "limits")}
    )


@get("/services/data/{version:str}/limits")
async def limits(request: AnyRequest, version: Segment) -> Response[bytes]:
    api_version(version)
    quota = state_of(request).quota
    remaining = max(quota.limit - quota.used, 0)
    return json_response({"DailyApiRequests": {"Max": quota.limit, "Remaining": remaining}})


@get("/services/data/{version:str}/query")
async def query(request: AnyRequest, version: Segment) -> Response[bytes]:
    api_version(version)
    text = request.query_params.get("q")
    if not text:
        raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
    state = state_of(request)
    _, rows = execute(state.org, text, record_url(request, version))
    return _page(request, version, state, state.open_cursor(rows), 0)


@get("/services/data/{version:str}/query/{locator:str}")
async def query_more(request: AnyRequest, version: Segment, locator: Segment) -> Response[bytes]:
    api_version(version)
    # nextRecordsUrl ends in `<locator>-<records already returned>`.
    cursor, _, offset = locator.rpartition("-")
    state = state_of(request)
    if cursor not in state.cursors or not offset.isdigit():
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return _page(request, version, state, cursor, int(offset))


def _page(
    request: AnyRequest, version: str, state: OrgState, locator: str, offset: int
) -> Response[bytes]:
    rows = state.cursors[locator]
    end = offset + state.page_size
    page: dict[str, object] = {"totalSize": len(rows), "done": end >= len(rows)}
    if end < len(rows):
        page["nextRecordsUrl"] = data_path(request, version, f"query/{locator}-{end}")
    else:
        state.cursors.pop(locator, None)
    page["records"] = rows[offset:end]
    return json_response(page)


ROUTES = [token, versions, resources, limits, query, query_more]
