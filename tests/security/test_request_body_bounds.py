"""Every request body the OpenAPI document describes is bounded: each array declares
`maxItems`, each integer a `maximum`, each free-form map `maxProperties`, so no caller can
send a list or a number that makes the gateway or a vendor work without end."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.support.apps import gateway_app, settings_for

_UPPER = {
    "array": ("maxItems",),
    "integer": ("maximum", "exclusiveMaximum"),
    "object": ("maxProperties",),
}


def openapi(tmp_path: Path) -> dict[str, Any]:
    document: dict[str, Any] = gateway_app(
        settings_for(tmp_path, emulated=True)
    ).openapi_schema.to_schema()
    return document


def unbounded(
    node: Any, where: str, schemas: Mapping[str, Any], bounds: frozenset[str] = frozenset(),
    seen: frozenset[str] = frozenset(),
) -> Iterator[str]:
    """Paths below `node` whose values have no upper bound. Bounds written beside a
    `oneOf` (Litestar puts an optional field's there) hold for each of its branches."""
    if not isinstance(node, Mapping):
        return
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        if name not in seen:
            yield from unbounded(schemas[name], where, schemas, bounds, seen | {name})
        return
    bounds = bounds | {key for key in node if key.startswith("max")}
    for alternative in ("oneOf", "anyOf", "allOf"):
        for branch in node.get(alternative, ()):
            yield from unbounded(branch, where, schemas, bounds, seen)
    declared = node.get("type")
    kinds = {declared} if isinstance(declared, str) else set(declared or ())
    for kind in kinds:
        free_map = kind == "object" and isinstance(node.get("additionalProperties"), Mapping)
        if (kind in ("array", "integer") or free_map) and not bounds & set(_UPPER[kind]):
            yield f"{where}: {kind} without {' or '.join(_UPPER[kind])}"
    for name, field in node.get("properties", {}).items():
        yield from unbounded(field, f"{where}.{name}", schemas, seen=seen)
    if isinstance(node.get("items"), Mapping):
        yield from unbounded(node["items"], f"{where}[]", schemas, seen=seen)
    if isinstance(node.get("additionalProperties"), Mapping):
        yield from unbounded(node["additionalProperties"], f"{where}{{}}", schemas, seen=seen)


def test_every_request_body_array_integer_and_map_is_bounded(tmp_path: Path) -> None:
    document = openapi(tmp_path)
    schemas = document.get("components", {}).get("schemas", {})
    bodies = [
        (f"{method.upper()} {path}", media.get("schema", {}))
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
        for media in operation["requestBody"].get("content", {}).values()
    ]

    found = [hole for where, schema in bodies for hole in unbounded(schema, where, schemas)]

    assert any(where.startswith("POST /process/v1/subscription-amendments") for where, _ in bodies)
    assert found == []


def test_the_amendment_bounds_are_the_documented_ones(tmp_path: Path) -> None:
    schemas = openapi(tmp_path)["components"]["schemas"]
    amendment = schemas["AmendmentRequest"]["properties"]
    change = schemas["ItemChangeRequest"]["properties"]

    assert amendment["changes"]["maxItems"] == 20
    assert change["quantity"]["maximum"] == 1_000_000
    assert schemas["RetryRequest"]["properties"]["input"]["maxProperties"] == 100


def test_the_check_finds_an_unbounded_array_and_integer() -> None:
    schemas = {"Line": {"type": "object", "properties": {"quantity": {"type": "integer"}}}}
    body = {"type": "array", "items": {"$ref": "#/components/schemas/Line"}}

    assert list(unbounded(body, "POST /x", schemas)) == [
        "POST /x: array without maxItems",
        "POST /x[].quantity: integer without maximum or exclusiveMaximum",
    ]
