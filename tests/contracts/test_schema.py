"""JSON Schema export: valid, self-contained documents that accept real instances."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from jsonschema import Draft202012Validator

from contracts import schema
from contracts.errors import NotFound
from tests.contracts.samples import SAMPLES

NAMES = sorted(schema.published("v1"))


def _validator(document: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(document, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_versions_and_published_names():
    # Every version the gateway lists publishes contracts (a listed version with none would
    # serve an empty schema index).
    assert "v1" in schema.VERSIONS
    assert all(schema.published(version) for version in schema.VERSIONS)
    names = schema.published("v1")
    assert {"Customer", "Invoice", "EventEnvelope", "Problem", "Money", "CustomerPatch"} <= set(
        names
    )
    assert "Page" not in names  # generic: no schema until parametrised
    assert all(issubclass(struct, msgspec.Struct) for struct in names.values())


@pytest.mark.parametrize("name", NAMES)
def test_every_schema_is_valid_draft_2020_12(name):
    document = schema.json_schema("v1", name)
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == f"/contracts/v1/{name}.schema.json"
    assert document["title"] == name
    assert document["type"] == "object"


@pytest.mark.parametrize("name", NAMES)
def test_every_reference_resolves_inside_the_document(name):
    document = schema.json_schema("v1", name)
    text = json.dumps(document)
    for definition in document.get("$defs", {}):
        assert f'"#/$defs/{definition}"' in text
    refs = [part.split('"')[0] for part in text.split('"$ref": "')[1:]]
    assert all(ref.startswith("#/$defs/") for ref in refs)
    assert all(ref.removeprefix("#/$defs/") in document["$defs"] for ref in refs)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_schema_accepts_a_real_instance(name):
    instance = msgspec.to_builtins(SAMPLES[name])
    _validator(schema.json_schema("v1", name)).validate(instance)


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("Customer", {"currency": "usd"}),
        ("Customer", {"legal_entity": None}),
        ("Invoice", {"total": 541.25}),
        ("Invoice", {"status": "settled"}),
        ("SupportCase", {"priority": "critical"}),
        ("Money", {"amount": "12.50"}),
        ("Deal", {"lines": [{"id": "x"}]}),
    ],
)
def test_schema_refuses_what_the_decoder_refuses(name, change):
    instance = {**msgspec.to_builtins(SAMPLES[name]), **change}
    assert list(_validator(schema.json_schema("v1", name)).iter_errors(instance))
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode(instance), type=type(SAMPLES[name]))


def test_input_schemas_refuse_unknown_members():
    document = schema.json_schema("v1", "CustomerPatch")
    assert document["additionalProperties"] is False
    assert document["required"] == []
    assert list(_validator(document).iter_errors({"nmae": "x"}))
    _validator(document).validate({"phone": None})


def test_base_url_makes_the_id_absolute():
    document = schema.json_schema("v1", "Invoice", base_url="https://gw.example/")
    assert document["$id"] == "https://gw.example/contracts/v1/Invoice.schema.json"


def test_returned_documents_are_independent_copies():
    schema.json_schema("v1", "Customer")["properties"].clear()
    assert "legal_name" in schema.json_schema("v1", "Customer")["properties"]


def test_index_lists_every_schema_with_its_url():
    entries = schema.index()
    assert len([e for e in entries if e["version"] == "v1"]) == len(NAMES)
    assert {e["version"] for e in entries} == set(schema.VERSIONS)
    assert {"name": "Customer", "version": "v1", "url": "/contracts/v1/Customer.schema.json"} in (
        entries
    )


def test_unknown_version_or_name_is_not_found():
    with pytest.raises(NotFound):
        schema.json_schema("v9", "Customer")
    with pytest.raises(NotFound):
        schema.json_schema("v1", "Spaceship")
    with pytest.raises(NotFound):
        schema.published("v0")


def test_command_line_writes_and_checks_snapshots(tmp_path, capsys):
    assert schema.main(["--write-snapshots", str(tmp_path)]) == 0
    written = sorted(path.stem for path in (tmp_path / "v1").glob("*.json"))
    assert written == NAMES
    assert json.loads((tmp_path / "v1" / "Money.json").read_text()) == schema.json_schema(
        "v1", "Money"
    )
    assert schema.main(["--check", str(tmp_path)]) == 0
    money = tmp_path / "v1" / "Money.json"
    stored = json.loads(money.read_text())
    stored["properties"]["minor_units_note"] = {"type": "string"}
    money.write_text(json.dumps(stored))
    assert schema.main(["--check", str(tmp_path)]) == 1
    assert "BREAKING v1/Money: minor_units_note: field removed" in capsys.readouterr().out
