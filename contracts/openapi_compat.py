"""Breaking changes between two OpenAPI documents of a published API major.

What a client of the old document may depend on, and so what must not change: every route
(path and method) stays; no parameter is removed or becomes required, and a request body does
not become required or stricter; every documented status code of an operation stays; a
response body keeps its fields and their types, and its enums keep their values. Additions
(routes, optional parameters, fields, status codes, enum values in requests) pass.

Each breaking change is named by the JSON pointer of the old document's node it is about
(`/paths/~1system~1billing~1v1~1invoices/get/responses/200/content/application~1json/schema
/properties/total`), followed by what changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from contracts.compat import schema_changes

__all__ = ["ApiBreak", "breaking_api_changes", "pointer"]

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# A response may gain a required field or refuse nothing new: only a request is hurt by these.
_REQUEST_ONLY = ("required field added", "field became required", "unknown fields now refused")


class ApiBreak(msgspec.Struct, frozen=True, kw_only=True):
    """One breaking change: where (a JSON pointer into the old document) and what."""

    pointer: str
    change: str


def pointer(*tokens: str) -> str:
    """An RFC 6901 JSON pointer of `tokens` (`/` and `~` escaped)."""
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in tokens)


def breaking_api_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[ApiBreak]:
    """Every incompatible change from document `old` to document `new`."""
    found: list[ApiBreak] = []
    new_paths: Mapping[str, Any] = new.get("paths", {})
    for path, old_item in old.get("paths", {}).items():
        for method, old_operation in _operations(old_item):
            at = ("paths", path, method)
            new_operation = new_paths.get(path, {}).get(method)
            if new_operation is None:
                found.append(ApiBreak(pointer=pointer(*at), change="route removed"))
                continue
            found += _parameters(at, old_item, old_operation, new_paths[path], new_operation)
            found += _request_body(at, old, old_operation, new, new_operation)
            found += _responses(at, old, old_operation, new, new_operation)
    return found


def _operations(item: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for method in METHODS:
        operation = item.get(method)
        if isinstance(operation, Mapping):
            yield method, operation


def _parameter_map(item: Mapping[str, Any], operation: Mapping[str, Any]) -> dict[Any, Any]:
    merged = {(p["in"], p["name"]): p for p in item.get("parameters", []) if "name" in p}
    merged |= {(p["in"], p["name"]): p for p in operation.get("parameters", []) if "name" in p}
    return merged


def _parameters(
    at: tuple[str, ...],
    old_item: Mapping[str, Any],
    old_operation: Mapping[str, Any],
    new_item: Mapping[str, Any],
    new_operation: Mapping[str, Any],
) -> list[ApiBreak]:
    old_parameters = _parameter_map(old_item, old_operation)
    new_parameters = _parameter_map(new_item, new_operation)
    found = []
    for (where, name), old_parameter in old_parameters.items():
        here = pointer(*at, "parameters", f"{where}:{name}")
        if (where, name) not in new_parameters:
            found.append(ApiBreak(pointer=here, change=f"{where} parameter {name} removed"))
            continue
        new_parameter = new_parameters[(where, name)]
        if new_parameter.get("required") and not old_parameter.get("required"):
            found.append(ApiBreak(pointer=here, change=f"{where} parameter {name} became required"))
        old_schema, new_schema = old_parameter.get("schema"), new_parameter.get("schema")
        if isinstance(old_schema, Mapping) and isinstance(new_schema, Mapping):
            # Parameter schemas are inline (no $ref into the documents).
            for entry in schema_changes(old_schema, old_schema, new_schema, new_schema):
                what = entry.partition(": ")[2]
                found.append(ApiBreak(pointer=f"{here}/schema", change=f"{name}: {what}"))
    for (where, name), new_parameter in new_parameters.items():
        if (where, name) not in old_parameters and new_parameter.get("required"):
            here = pointer(*at, "parameters", f"{where}:{name}")
            found.append(ApiBreak(pointer=here, change=f"required {where} parameter {name} added"))
    return found


def _request_body(
    at: tuple[str, ...],
    old: Mapping[str, Any],
    old_operation: Mapping[str, Any],
    new: Mapping[str, Any],
    new_operation: Mapping[str, Any],
) -> list[ApiBreak]:
    old_body = old_operation.get("requestBody")
    new_body = new_operation.get("requestBody")
    if new_body is None:
        return []
    if old_body is None:
        if new_body.get("required"):
            return [ApiBreak(pointer=pointer(*at, "requestBody"), change="request body required")]
        return []
    found = []
    if new_body.get("required") and not old_body.get("required"):
        found.append(ApiBreak(pointer=pointer(*at, "requestBody"), change="became required"))
    for media, old_media in old_body.get("content", {}).items():
        new_media = new_body.get("content", {}).get(media)
        here = (*at, "requestBody", "content", media)
        if new_media is None:
            found.append(ApiBreak(pointer=pointer(*here), change=f"{media} no longer accepted"))
            continue
        found += _schema(here, old, old_media, new, new_media, request=True)
    return found


def _responses(
    at: tuple[str, ...],
    old: Mapping[str, Any],
    old_operation: Mapping[str, Any],
    new: Mapping[str, Any],
    new_operation: Mapping[str, Any],
) -> list[ApiBreak]:
    found = []
    new_responses = new_operation.get("responses", {})
    for status, old_response in old_operation.get("responses", {}).items():
        here = (*at, "responses", str(status))
        new_response = new_responses.get(status)
        if new_response is None:
            found.append(ApiBreak(pointer=pointer(*here), change=f"status {status} removed"))
            continue
        for media, old_media in old_response.get("content", {}).items():
            new_media = new_response.get("content", {}).get(media)
            if new_media is None:
                found.append(
                    ApiBreak(pointer=pointer(*here, "content", media), change=f"{media} removed")
                )
                continue
            found += _schema((*here, "content", media), old, old_media, new, new_media)
    return found


def _schema(
    at: tuple[str, ...],
    old: Mapping[str, Any],
    old_media: Mapping[str, Any],
    new: Mapping[str, Any],
    new_media: Mapping[str, Any],
    *,
    request: bool = False,
) -> list[ApiBreak]:
    old_schema, new_schema = old_media.get("schema"), new_media.get("schema")
    if not isinstance(old_schema, Mapping) or not isinstance(new_schema, Mapping):
        return []
    found = []
    for entry in schema_changes(old, old_schema, new, new_schema):
        field, _, what = entry.partition(": ")
        if not request and what.startswith(_REQUEST_ONLY):
            continue
        found.append(ApiBreak(pointer=pointer(*at, "schema") + _field_pointer(field), change=what))
    return found


def _field_pointer(field: str) -> str:
    """`lines[].amount` -> `/properties/lines/items/properties/amount` (`(root)`: none)."""
    if field in ("", "(root)"):
        return ""
    tokens: list[str] = []
    for part in field.split("."):
        name = part.removesuffix("[]").removesuffix("{}")
        suffix = part[len(name) :]
        if name:
            tokens += ["properties", name]
        for marker in (suffix[i : i + 2] for i in range(0, len(suffix), 2)):
            tokens.append("items" if marker == "[]" else "additionalProperties")
    return pointer(*tokens)
