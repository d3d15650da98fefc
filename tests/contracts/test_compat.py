"""Breaking-change detection between schema versions."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from contracts.compat import breaking_changes, diff_documents, diff_versions
from contracts.schema import json_schema


@pytest.fixture
def invoice():
    return json_schema("v1", "Invoice")


def _evolve(
    document: dict[str, Any], change: Callable[[dict[str, Any]], object]
) -> dict[str, Any]:
    evolved = copy.deepcopy(document)
    change(evolved)
    return evolved


def test_identical_schemas_are_compatible(invoice):
    assert breaking_changes(invoice, copy.deepcopy(invoice)) == []


def test_an_optional_field_added_is_compatible(invoice):
    def add_optional(doc):
        doc["properties"]["po_number"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
        doc["$defs"]["InvoiceLine"]["properties"]["sku"] = {"type": "string"}

    assert breaking_changes(invoice, _evolve(invoice, add_optional)) == []


def test_widening_is_compatible(invoice):
    def widen(doc):
        doc["properties"]["status"]["enum"].append("scheduled")
        doc["properties"]["number"] = {}
        del doc["properties"]["legal_entity"]["maxLength"]
        doc["required"].remove("legal_entity")

    assert breaking_changes(invoice, _evolve(invoice, widen)) == []


def test_a_required_field_added_is_breaking(invoice):
    def add_required(doc):
        doc["properties"]["po_number"] = {"type": "string"}
        doc["required"].append("po_number")

    assert breaking_changes(invoice, _evolve(invoice, add_required)) == [
        "po_number: required field added"
    ]


def test_an_optional_field_made_required_is_breaking(invoice):
    changes = breaking_changes(invoice, _evolve(invoice, lambda d: d["required"].append("number")))
    assert changes == ["number: field became required"]


def test_a_field_removed_is_breaking(invoice):
    def remove(doc):
        del doc["properties"]["tax"]
        del doc["$defs"]["InvoiceLine"]["properties"]["tax_rate_bps"]

    assert breaking_changes(invoice, _evolve(invoice, remove)) == [
        "tax: field removed",
        "lines[].tax_rate_bps: field removed",
    ]


def test_a_narrowed_type_is_breaking(invoice):
    def narrow(doc):
        doc["properties"]["number"] = {"type": "string"}  # null no longer accepted
        doc["properties"]["total"] = {"type": "string"}
        doc["$defs"]["InvoiceLine"]["properties"]["quantity"]["maximum"] = 1000

    changes = breaking_changes(invoice, _evolve(invoice, narrow))
    assert any(c.startswith("number: type narrowed: null no longer accepted") for c in changes)
    assert any(c.startswith("total: type narrowed: integer no longer accepted") for c in changes)
    assert "lines[].quantity: constraint tightened: maximum None -> 1000" in changes


def test_free_text_limited_to_an_enum_is_breaking(invoice):
    def limit(doc):
        doc["properties"]["legal_entity"] = {"enum": ["US01", "DE01"]}

    assert breaking_changes(invoice, _evolve(invoice, limit)) == [
        "legal_entity: type narrowed: any string was accepted, now only an enum"
    ]


def test_an_enum_value_removed_is_breaking(invoice):
    def drop(doc):
        doc["properties"]["status"]["enum"].remove("uncollectible")

    assert breaking_changes(invoice, _evolve(invoice, drop)) == [
        'status: enum value removed: "uncollectible"'
    ]


def test_an_enum_value_removed_inside_a_nullable_nested_field_is_breaking():
    customer = json_schema("v1", "Customer")

    def drop(doc):
        doc["properties"]["risk_level"]["anyOf"][0]["enum"].remove("medium")

    assert breaking_changes(customer, _evolve(customer, drop)) == [
        'risk_level: enum value removed: "medium"'
    ]


def test_unknown_fields_newly_refused_is_breaking():
    customer = json_schema("v1", "Customer")
    changes = breaking_changes(
        customer, _evolve(customer, lambda d: d.update(additionalProperties=False))
    )
    assert changes == ["(root): unknown fields now refused"]


def test_changes_inside_shared_definitions_are_found_through_refs():
    customer = json_schema("v1", "Customer")

    def drop_city(doc):
        del doc["$defs"]["Address"]["properties"]["city"]

    assert breaking_changes(customer, _evolve(customer, drop_city)) == [
        "billing_address.city: field removed",
        "shipping_address.city: field removed",
    ]


def test_map_values_are_compared():
    customer = json_schema("v1", "Customer")

    def narrow_refs(doc):
        doc["properties"]["refs"]["additionalProperties"] = {"type": "integer"}

    changes = breaking_changes(customer, _evolve(customer, narrow_refs))
    assert changes[0].startswith("refs{}: type narrowed: string no longer accepted")


def test_recursive_definitions_terminate():
    node = {
        "$ref": "#/$defs/Node",
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"child": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}},
            }
        },
    }
    assert breaking_changes(node, copy.deepcopy(node)) == []


def test_diff_documents_reports_removed_contracts_and_changes_per_name(invoice):
    old = {"Invoice": invoice, "Customer": json_schema("v1", "Customer")}
    new = {"Invoice": _evolve(invoice, lambda d: d["required"].append("number"))}
    assert diff_documents(old, new) == {
        "Customer": ["(root): contract removed"],
        "Invoice": ["number: field became required"],
    }


def test_a_version_is_compatible_with_itself():
    assert diff_versions("v1", "v1") == {}
