"""Emulator routes on sObject rows: create, read, update, delete, upsert, collections."""

from __future__ import annotations

from typing import Any

from litestar import Response, delete, get, patch, post

from sandbox.salesforce.context import (
    AnyRequest,
    Segment,
    api_version,
    data_path,
    json_body,
    json_response,
    render,
    state_of,
)
from sandbox.salesforce.errors import AmbiguousExternalId, ApiError
from sandbox.salesforce.ids import KEY_PREFIXES
from sandbox.salesforce.schema import OBJECTS
from sandbox.salesforce.store import EmulatedOrg

__all__ = ["ROUTES"]

MAX_COLLECTION = 200
"""sObject Collections take at most 200 records per request."""
_ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was "
    "using AllOrNone header",
    "fields": [],
}
_TYPE_BY_PREFIX = {prefix: name for name, prefix in KEY_PREFIXES.items() if name in OBJECTS}


@get("/services/data/{version:str}/sobjects")
async def describe_global(request: AnyRequest, version: Segment) -> Response[bytes]:
    api_version(version)
    return json_response(
        {
            "encoding": "UTF-8",
            "maxBatchSize": MAX_COLLECTION,
            "sobjects": [
                {
                    "name": name,
                    "keyPrefix": KEY_PREFIXES[name],
                    "urls": {"sobject": data_path(request, version, f"sobjects/{name}")},
                }
                for name in OBJECTS
            ],
        }
    )


@get("/services/data/{version:str}/sobjects/{sobject:str}")
async def basic_info(request: AnyRequest, version: Segment, sobject: Segment) -> Response[bytes]:
    api_version(version)
    spec = state_of(request).org.spec(sobject)
    return json_response({"objectDescribe": _describe(spec.name), "recentItems": []})


@post("/services/data/{version:str}/sobjects/{sobject:str}", status_code=201)
async def create(request: AnyRequest, version: Segment, sobject: Segment) -> Response[bytes]:
    api_version(version)
    body = _object(await json_body(request))
    org = state_of(request).org
    spec = org.spec(sobject)
    if any(key.lower() == "id" for key in body):
        raise ApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call")
    record_id = org.insert(spec.name, body)
    location = data_path(request, version, f"sobjects/{spec.name}/{record_id}")
    return json_response(
        {"id": record_id, "success": True, "errors": []}, 201, {"Location": location}
    )


@get("/services/data/{version:str}/sobjects/{sobject:str}/{record_id:str}")
async def read(
    request: AnyRequest, version: Segment, sobject: Segment, record_id: Segment
) -> Response[bytes]:
    api_version(version)
    org = state_of(request).org
    spec = org.spec(sobject)
    if record_id.lower() == "describe":
        return json_response(_describe(spec.name))
    fields = request.query_params.get("fields")
    names = [name.strip() for name in fields.split(",") if name.strip()] if fields else None
    return json_response(render(request, version, spec, org.get(spec.name, record_id), names))


@patch("/services/data/{version:str}/sobjects/{sobject:str}/{record_id:str}", status_code=204)
async def update(
    request: AnyRequest, version: Segment, sobject: Segment, record_id: Segment
) -> None:
    api_version(version)
    body = _object(await json_body(request))
    state_of(request).org.update(sobject, record_id, body)


@delete("/services/data/{version:str}/sobjects/{sobject:str}/{record_id:str}", status_code=204)
async def remove(
    request: AnyRequest, version: Segment, sobject: Segment, record_id: Segment
) -> None:
    api_version(version)
    state_of(request).org.delete(sobject, record_id)


@get("/services/data/{version:str}/sobjects/{sobject:str}/{field:str}/{value:str}")
async def read_by_external_id(
    request: AnyRequest, version: Segment, sobject: Segment, field: Segment, value: Segment
) -> Response[bytes]:
    api_version(version)
    org = state_of(request).org
    spec = org.spec(sobject)
    matches = org.find(spec, org.external_id_field(spec, field), value)
    if len(matches) > 1:
        raise AmbiguousExternalId(spec.name, matches)
    if not matches:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return json_response(render(request, version, spec, org.records[spec.name][matches[0]]))


@patch("/services/data/{version:str}/sobjects/{sobject:str}/{field:str}/{value:str}")
async def upsert(
    request: AnyRequest, version: Segment, sobject: Segment, field: Segment, value: Segment
) -> Response[bytes]:
    api_version(version)
    body = _object(await json_body(request))
    org = state_of(request).org
    record_id, created = org.upsert(sobject, field, value, body)
    answer = {"id": record_id, "success": True, "errors": [], "created": created}
    if not created:
        # Recent API versions answer an update by upsert with 200 and a body (older: 204).
        return json_response(answer, 200)
    spec = org.spec(sobject)
    location = data_path(request, version, f"sobjects/{spec.name}/{record_id}")
    return json_response(answer, 201, {"Location": location})


@post("/services/data/{version:str}/composite/sobjects", status_code=200)
async def create_collection(request: AnyRequest, version: Segment) -> Response[bytes]:
    api_version(version)
    all_or_none, records = _collection(await json_body(request))
    org = state_of(request).org
    return json_response(_apply(org, records, all_or_none, creating=True))


@patch("/services/data/{version:str}/composite/sobjects")
async def update_collection(request: AnyRequest, version: Segment) -> Response[bytes]:
    api_version(version)
    all_or_none, records = _collection(await json_body(request))
    org = state_of(request).org
    return json_response(_apply(org, records, all_or_none, creating=False))


def _apply(
    org: EmulatedOrg, records: list[dict[str, Any]], all_or_none: bool, *, creating: bool
) -> list[dict[str, Any]]:
    snapshot = org.snapshot() if all_or_none else None
    results = [_apply_one(org, record, creating=creating) for record in records]
    if snapshot is not None and not all(result["success"] for result in results):
        org.restore(snapshot)
        return [
            result if not result["success"] else {"success": False, "errors": [_ROLLED_BACK]}
            for result in results
        ]
    return results


def _apply_one(org: EmulatedOrg, record: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    body = {k: v for k, v in record.items() if k != "attributes"}
    record_id = next((str(v) for k, v in body.items() if k.lower() == "id" and v), None)
    try:
        if not creating and record_id is None:
            raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call")
        sobject = _record_type(record, record_id)
        if creating:
            if record_id is not None:
                raise ApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call")
            record_id = org.insert(sobject, body)
        else:
            record_id = org.update(sobject, str(record_id), body)
    except ApiError as exc:
        return {"success": False, "errors": [exc.first.composite_entry()]}
    return {"id": record_id, "success": True, "errors": []}


def _record_type(record: dict[str, Any], record_id: str | None) -> str:
    attributes = record.get("attributes")
    if isinstance(attributes, dict) and isinstance(attributes.get("type"), str):
        return str(attributes["type"])
    if record_id is not None and record_id[:3] in _TYPE_BY_PREFIX:
        return _TYPE_BY_PREFIX[record_id[:3]]
    raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")


def _collection(body: Any) -> tuple[bool, list[dict[str, Any]]]:
    body = _object(body)
    records = body.get("records")
    if not isinstance(records, list) or not records:
        raise ApiError(400, "REQUIRED_FIELD_MISSING", "At least 1 record is required")
    if len(records) > MAX_COLLECTION:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into "
            "this call",
        )
    if not all(isinstance(record, dict) for record in records):
        raise ApiError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
    return bool(body.get("allOrNone", False)), records


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of an sObject from a value that is not a JSON object",
        )
    return body


def _describe(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "keyPrefix": KEY_PREFIXES[name],
        "fields": [
            {
                "name": f.name,
                "type": f.kind,
                "createable": f.createable,
                "updateable": f.updateable,
                "nillable": not f.required,
                "externalId": f.external_id,
                "referenceTo": [f.reference_to] if f.reference_to else [],
                "relationshipName": f.relationship,
            }
            for f in OBJECTS[name].fields
        ],
    }


ROUTES = [
    describe_global,
    basic_info,
    create,
    read,
    update,
    remove,
    read_by_external_id,
    upsert,
    create_collection,
    update_collection,
]
